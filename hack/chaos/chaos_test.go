//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/gateway/uplink"
	"github.com/obdgw/obdgw/hack/brokertest"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv("OBDGW_CHAOS_GATEWAY"); cfg != "" {
		var c GatewayConfig
		if err := json.Unmarshal([]byte(cfg), &c); err != nil {
			panic(err)
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
		if err := RunGateway(context.Background(), c, log); err != nil {
			fmt.Fprintln(os.Stderr, "gateway:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// TestChaos: CHAOS_RECORDS records (10,000) appended over time by a gateway process while the
// broker is killed CHAOS_BROKER_KILLS times (10) and the gateway CHAOS_GATEWAY_KILLS times
// (10), all with SIGKILL at random moments; then everything the gateway committed must be in
// the receiver's output exactly once, in order per kind.
func TestChaos(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("CHAOS_SEED"), 10, 64); err == nil {
		seed = s
	}
	records := envInt("CHAOS_RECORDS", 10000)
	brokerKills, gatewayKills := envInt("CHAOS_BROKER_KILLS", 10), envInt("CHAOS_GATEWAY_KILLS", 10)
	appendFor := time.Duration(envInt("CHAOS_APPEND_SECONDS", 90)) * time.Second
	rnd := rand.New(rand.NewPCG(seed, 7))
	fmt.Printf("chaos: seed %d (CHAOS_SEED=%d reproduces the schedule), %d records over ~%v, %d broker kills, %d gateway kills\n",
		seed, seed, records, appendFor, brokerKills, gatewayKills)

	b := brokertest.Start(t, brokertest.Config{RequireClientCert: true})
	client := b.CA.Client(t, "gw-chaos")
	rxCert := b.CA.Client(t, "receiver")
	dir := t.TempDir()
	rx, err := cloud.NewReceiver(uplink.ReceiverOptions(cloud.ReceiverOptions{
		Broker: b.TLSURL(), CAFile: b.CA.CertFile, CertFile: rxCert.CertFile, KeyFile: rxCert.KeyFile,
		StatePath: filepath.Join(dir, "rx.db"), OutPath: filepath.Join(dir, "records.jsonl"),
		BackoffMin: 20 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rxDone := make(chan struct{})
	go func() { rx.Run(ctx); close(rxDone) }()

	gdir := filepath.Join(dir, "gateway")
	os.MkdirAll(gdir, 0o700)
	cfg := GatewayConfig{Dir: gdir, GatewayID: "gw-chaos", Broker: b.TLSURL(), CAFile: b.CA.CertFile,
		CertFile: client.CertFile, KeyFile: client.KeyFile, Delivery: cloud.DeliveryReceipt, Records: records,
		Kinds: []string{"alpha", "beta", "telemetry"}, Interval: appendFor / time.Duration(records), ReceiptTimeout: 3 * time.Second}
	cj, _ := json.Marshal(cfg)

	// The supervisor restarts the gateway whenever it dies, like systemd would, until it
	// exits 0 (everything appended and delivered).
	var mu sync.Mutex
	var cur *exec.Cmd
	finished := make(chan struct{})
	srnd := rand.New(rand.NewPCG(seed, 8)) // the supervisor's own source: rand.Rand is not safe for concurrent use
	go func() {
		defer close(finished)
		for {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "OBDGW_CHAOS_GATEWAY="+string(cj))
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			cur = cmd
			mu.Unlock()
			if err := cmd.Wait(); err == nil {
				return
			}
			time.Sleep(time.Duration(srnd.IntN(300)) * time.Millisecond)
		}
	}()

	type event struct {
		at     time.Duration
		broker bool
	}
	var events []event
	for range brokerKills {
		events = append(events, event{time.Duration(rnd.Int64N(int64(appendFor))), true})
	}
	for range gatewayKills {
		events = append(events, event{time.Duration(rnd.Int64N(int64(appendFor))), false})
	}
	sort.Slice(events, func(i, j int) bool { return events[i].at < events[j].at })
	start := time.Now()
	logged := func() int { e, _ := ReadLog(filepath.Join(gdir, "committed.log")); return len(e) }
	for _, ev := range events {
		time.Sleep(time.Until(start.Add(ev.at)))
		if ev.broker {
			b.Kill()
			time.Sleep(time.Duration(rnd.IntN(1500)) * time.Millisecond)
			b.Start()
			fmt.Printf("chaos: %6.1fs broker killed and restarted (%d appended so far)\n", time.Since(start).Seconds(), logged())
		} else {
			mu.Lock()
			if cur != nil && cur.Process != nil {
				cur.Process.Signal(syscall.SIGKILL)
			}
			mu.Unlock()
			fmt.Printf("chaos: %6.1fs gateway killed (%d appended so far)\n", time.Since(start).Seconds(), logged())
		}
	}
	select {
	case <-finished:
	case <-time.After(appendFor + 10*time.Minute):
		t.Fatal("gateway did not finish")
	}
	entries, err := ReadLog(filepath.Join(gdir, "committed.log"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for rx.Status().Accepted < uint64(len(entries)) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-rxDone
	rx.Close()
	rep, err := Check(entries, filepath.Join(dir, "records.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("chaos: %v in %v\n", rep, time.Since(start).Round(time.Second))
	fmt.Printf("lost / duplicated / reordered: %d / %d / %d\n", rep.Lost, rep.Duplicated, rep.Reordered)
	if !rep.OK() || rep.Appended < records {
		t.Errorf("chaos failed: %v (first lost %s)", rep, rep.FirstLost)
	}
}
