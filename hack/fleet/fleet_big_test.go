//go:build fleet

package fleet

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a whole number ≥ 0", name, v)
	}
	return n
}

// TestFleet is `make fleet`: FLEET_GATEWAYS (2,000) gateways and FLEET_RECEIVERS (2)
// receivers, a working day in FLEET_SECONDS (300), the broker killed for FLEET_OUTAGE_SECONDS
// (60), FLEET_BURST (5) records per gateway in each capacity burst; FLEET_SEED reproduces the
// shops' days. It prints the figures and fails on a lost record, an id one receiver stored
// twice, a dead letter or a receiver that stopped.
func TestFleet(t *testing.T) {
	sec := func(name string, def int) time.Duration { return time.Duration(envInt(t, name, def)) * time.Second }
	c := Config{
		Gateways: envInt(t, "FLEET_GATEWAYS", 2000), Receivers: envInt(t, "FLEET_RECEIVERS", 2),
		Seconds: sec("FLEET_SECONDS", 300), Outage: sec("FLEET_OUTAGE_SECONDS", 60),
		Burst: envInt(t, "FLEET_BURST", 5), Seed: uint64(envInt(t, "FLEET_SEED", int(time.Now().UnixNano()%1e9))),
		Logf: func(format string, a ...any) { fmt.Printf(format+"\n", a...) },
	}
	fmt.Printf("fleet: seed %d (FLEET_SEED=%d reproduces the shops' days)\n", c.Seed, c.Seed)
	rep, err := Run(t, c)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Print(rep.String())
	if !rep.OK() {
		t.Errorf("fleet failed: lost %d, stored twice by one receiver %d, unknown %d, dead letters %d, receivers running %v",
			rep.Check.Lost, rep.DuplicatedByOne, rep.Check.Unknown, rep.DeadLetters, rep.RxRunning)
	}
}
