//go:build chaos

package pgstore

import (
	"os"
	"strconv"
	"testing"
	"time"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// TestChaosPostgres (`make chaos-pg`): CHAOS_RECORDS (2,000) records to CHAOS_RECEIVERS (3)
// receivers on one database, CHAOS_RECEIVER_KILLS (10) receiver kills and CHAOS_BROKER_KILLS
// (4) broker kills over CHAOS_APPEND_SECONDS (60); CHAOS_SEED reproduces a schedule.
func TestChaosPostgres(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("CHAOS_SEED"), 10, 64); err == nil {
		seed = s
	}
	runChaos(t, chaosRun{Seed: seed, Records: envInt("CHAOS_RECORDS", 2000),
		AppendFor: time.Duration(envInt("CHAOS_APPEND_SECONDS", 60)) * time.Second,
		Receivers: envInt("CHAOS_RECEIVERS", 3), ReceiverKills: envInt("CHAOS_RECEIVER_KILLS", 10), BrokerKills: envInt("CHAOS_BROKER_KILLS", 4)})
}
