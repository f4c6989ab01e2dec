package pgstore

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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/gateway/uplink"
	"github.com/obdgw/obdgw/hack/brokertest"
	"github.com/obdgw/obdgw/hack/chaos"
	"github.com/obdgw/obdgw/hack/pgtest"
	"github.com/obdgw/obdgw/hack/testenv"
)

// TestMain runs the children of the multi-receiver test when asked to: a gateway
// (hack/chaos.RunGateway) or a receiver on the shared database.
func TestMain(m *testing.M) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	if cfg := os.Getenv("OBDGW_CHAOS_GATEWAY"); cfg != "" {
		var c chaos.GatewayConfig
		if err := json.Unmarshal([]byte(cfg), &c); err != nil {
			panic(err)
		}
		if err := chaos.RunGateway(context.Background(), c, log); err != nil {
			fmt.Fprintln(os.Stderr, "gateway:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if cfg := os.Getenv("OBDGW_PG_RECEIVER"); cfg != "" {
		var c receiverConfig
		if err := json.Unmarshal([]byte(cfg), &c); err != nil {
			panic(err)
		}
		if err := runReceiver(c, log); err != nil {
			fmt.Fprintln(os.Stderr, "receiver:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// receiverConfig is what a receiver child gets.
type receiverConfig struct {
	Broker, CAFile, CertFile, KeyFile string
	URL, PasswordFile                 string
	ClientID                          string
}

// runReceiver is `obdgw receive --postgres` without the flags: the wiring of gateway/uplink and
// this package, until the process is killed.
func runReceiver(c receiverConfig, log *slog.Logger) error {
	st, err := Open(context.Background(), Options{URL: c.URL, PasswordFile: c.PasswordFile, Receiver: c.ClientID, Logger: log})
	if err != nil {
		return err
	}
	rx, err := cloud.NewReceiver(uplink.ReceiverOptions(cloud.ReceiverOptions{
		Broker: c.Broker, CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile, ClientID: c.ClientID,
		Store: st, BackoffMin: 20 * time.Millisecond, BackoffMax: 500 * time.Millisecond, Logger: log,
	}))
	if err != nil {
		return err
	}
	return rx.Run(context.Background())
}

// chaosRun shapes one multi-receiver run.
type chaosRun struct {
	Seed          uint64
	Records       int
	AppendFor     time.Duration
	Receivers     int
	ReceiverKills int
	BrokerKills   int
}

// runChaos: a gateway child publishes Records with receipts through a real Mosquitto to
// Receivers receiver children in one $share group on one real PostgreSQL, while receivers
// (SIGKILL, restarted like systemd would) and the broker (SIGKILL, restarted) are killed at
// random moments. Then the database must hold every appended record exactly once.
func runChaos(t *testing.T, c chaosRun) {
	testenv.NoChildProcesses(t)
	rnd := rand.New(rand.NewPCG(c.Seed, 7))
	t.Logf("chaos-pg: seed %d, %d records over ~%v, %d receivers, %d receiver kills, %d broker kills",
		c.Seed, c.Records, c.AppendFor, c.Receivers, c.ReceiverKills, c.BrokerKills)
	b := brokertest.Start(t, brokertest.Config{RequireClientCert: true})
	srv := pgtest.Start(t)
	// The schema exists before the receivers race to create it (they also may: Open migrates
	// under a lock).
	st := open(t, srv, "setup")
	st.Close()

	var mu sync.Mutex
	procs := make([]*exec.Cmd, c.Receivers)
	stopping := make(chan struct{})
	var wg sync.WaitGroup
	for i := range c.Receivers {
		kp := b.CA.Client(t, fmt.Sprintf("receiver-%d", i))
		cj, _ := json.Marshal(receiverConfig{Broker: b.TLSURL(), CAFile: b.CA.CertFile, CertFile: kp.CertFile, KeyFile: kp.KeyFile,
			URL: srv.URL(), PasswordFile: srv.PasswordFile, ClientID: fmt.Sprintf("obdgw-receiver-chaos-%d", i)})
		wg.Go(func() {
			for {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "OBDGW_PG_RECEIVER="+string(cj))
				cmd.Stderr = os.Stderr
				if err := cmd.Start(); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				procs[i] = cmd
				mu.Unlock()
				cmd.Wait()
				select {
				case <-stopping:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	defer func() {
		close(stopping)
		mu.Lock()
		for _, p := range procs {
			if p != nil && p.Process != nil {
				p.Process.Signal(syscall.SIGKILL)
			}
		}
		mu.Unlock()
		wg.Wait()
	}()

	gdir := filepath.Join(t.TempDir(), "gateway")
	os.MkdirAll(gdir, 0o700)
	client := b.CA.Client(t, "gw-chaos")
	gcfg := chaos.GatewayConfig{Dir: gdir, GatewayID: "gw-chaos", Broker: b.TLSURL(), CAFile: b.CA.CertFile,
		CertFile: client.CertFile, KeyFile: client.KeyFile, Delivery: cloud.DeliveryReceipt, Records: c.Records,
		Kinds: []string{"alpha", "beta", "telemetry"}, Interval: c.AppendFor / time.Duration(c.Records), ReceiptTimeout: 3 * time.Second}
	gj, _ := json.Marshal(gcfg)
	finished := make(chan error, 1)
	go func() {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "OBDGW_CHAOS_GATEWAY="+string(gj))
		cmd.Stderr = os.Stderr
		finished <- cmd.Run()
	}()

	type event struct {
		at       time.Duration
		receiver int // -1: the broker
	}
	var events []event
	for range c.BrokerKills {
		events = append(events, event{time.Duration(rnd.Int64N(int64(c.AppendFor))), -1})
	}
	for range c.ReceiverKills {
		events = append(events, event{time.Duration(rnd.Int64N(int64(c.AppendFor))), rnd.IntN(c.Receivers)})
	}
	sort.Slice(events, func(i, j int) bool { return events[i].at < events[j].at })
	start := time.Now()
	for _, ev := range events {
		time.Sleep(time.Until(start.Add(ev.at)))
		if ev.receiver < 0 {
			b.Kill()
			time.Sleep(time.Duration(rnd.IntN(1000)) * time.Millisecond)
			b.Start()
			t.Logf("chaos-pg: %6.1fs broker killed and restarted", time.Since(start).Seconds())
			continue
		}
		mu.Lock()
		if p := procs[ev.receiver]; p != nil && p.Process != nil {
			p.Process.Signal(syscall.SIGKILL)
		}
		mu.Unlock()
		t.Logf("chaos-pg: %6.1fs receiver %d killed", time.Since(start).Seconds(), ev.receiver)
	}
	select {
	case err := <-finished:
		if err != nil {
			t.Fatalf("gateway: %v", err)
		}
	case <-time.After(c.AppendFor + 5*time.Minute):
		t.Fatal("gateway did not finish")
	}
	entries, err := chaos.ReadLog(filepath.Join(gdir, "committed.log"))
	if err != nil {
		t.Fatal(err)
	}
	// The gateway finished: every record has its receipt, sent only after its commit.
	conn := srv.Conn(t)
	rows, err := conn.Query(t.Context(), `SELECT payload::text FROM records ORDER BY gateway, incarnation, seq`)
	if err != nil {
		t.Fatal(err)
	}
	var stored [][]byte
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, []byte(p))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rep := chaos.CheckStored(entries, stored)
	var receivers int
	conn.QueryRow(t.Context(), `SELECT count(DISTINCT receiver) FROM records`).Scan(&receivers)
	t.Logf("chaos-pg: %v, stored by %d receivers, in %v", rep, receivers, time.Since(start).Round(time.Second))
	fmt.Printf("lost / duplicated / reordered: %d / %d / %d\n", rep.Lost, rep.Duplicated, rep.Reordered)
	if !rep.OK() || rep.Appended != c.Records || rep.Stored != c.Records {
		t.Errorf("chaos-pg failed: %v (first lost %s)", rep, rep.FirstLost)
	}
	if receivers < 2 {
		t.Errorf("the records were stored by %d receiver(s): the group did not share them", receivers)
	}
}

// TestChaosPostgresSmall is the small run of `make chaos-pg`: 300 records, two receivers,
// each killed once, and the broker once.
func TestChaosPostgresSmall(t *testing.T) {
	runChaos(t, chaosRun{Seed: uint64(time.Now().UnixNano()), Records: 300, AppendFor: 6 * time.Second,
		Receivers: 2, ReceiverKills: 2, BrokerKills: 1})
}
