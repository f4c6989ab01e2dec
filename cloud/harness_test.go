package cloud_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/gateway/uplink"
	"github.com/obdgw/obdgw/hack/brokertest"
	"github.com/obdgw/obdgw/hack/chaos"
)

// TestMain lets a test re-execute its own binary as a gateway process (to SIGKILL it).
func TestMain(m *testing.M) {
	if cfg := os.Getenv("OBDGW_RSS_CHILD"); cfg != "" {
		rssChild(cfg)
		os.Exit(0)
	}
	if cfg := os.Getenv("OBDGW_GATEWAY_CHILD"); cfg != "" {
		var c chaos.GatewayConfig
		if err := json.Unmarshal([]byte(cfg), &c); err != nil {
			panic(err)
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if err := chaos.RunGateway(context.Background(), c, log); err != nil {
			log.Error("gateway child", "err", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("OBDGW_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openBox opens a real outbox file in the test's directory.
func openBox(t testing.TB, dir, gw string) *buffer.DB {
	t.Helper()
	box, err := buffer.Open(filepath.Join(dir, "outbox.db"), buffer.Options{GatewayID: gw})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { box.Close() })
	return box
}

// appendRecords appends n records, kinds in turn, and returns what was appended. Tests use
// neutral kinds (alpha, beta, telemetry): delivery does not care about payloads, and the real
// kinds (ehr, im) have payload checks in gateway/wire that these records would not pass.
func appendRecords(t testing.TB, box *buffer.DB, gw string, n int, kinds ...string) []chaos.Entry {
	t.Helper()
	top := chaos.Topic(gw)
	var out []chaos.Entry
	for i := 1; i <= n; i++ {
		kind := kinds[i%len(kinds)]
		b, err := chaos.Envelope(gw, kind, i, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		r, err := box.Append(context.Background(), kind, top.Record(kind), b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, chaos.Entry{ID: r.ID, Kind: kind})
	}
	return out
}

// rx is a running reference receiver.
type rx struct {
	*cloud.Receiver
	out  string
	stop func()
}

func startReceiver(t testing.TB, b *brokertest.Broker, url string, mutate func(*cloud.ReceiverOptions)) *rx {
	t.Helper()
	dir := t.TempDir()
	o := uplink.ReceiverOptions(cloud.ReceiverOptions{
		Broker: url, AllowPlain: strings.HasPrefix(url, "tcp://"), CAFile: b.CA.CertFile,
		StatePath: filepath.Join(dir, "state.db"), OutPath: filepath.Join(dir, "records.jsonl"),
		BackoffMin: 20 * time.Millisecond, BackoffMax: 500 * time.Millisecond, Logger: testLogger(t),
	})
	if mutate != nil {
		mutate(&o)
	}
	r, err := cloud.NewReceiver(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	x := &rx{Receiver: r, out: o.OutPath}
	stopped := false
	x.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
			r.Close()
		}
	}
	t.Cleanup(x.stop)
	waitFor(t, 20*time.Second, "receiver subscribed", func() bool { return r.Status().Connected })
	return x
}

// up is a running uplink.
type up struct {
	*cloud.Uplink
	stop func()
}

func startUplink(t testing.TB, box cloud.Outbox, o cloud.UplinkOptions) *up {
	t.Helper()
	u, err := cloud.NewUplink(box, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { u.Run(ctx); close(done) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return &up{Uplink: u, stop: stop}
}

// gwOptions is a gateway's uplink over TLS to b, receipt mode unless changed.
func gwOptions(t testing.TB, b *brokertest.Broker, gw string) cloud.UplinkOptions {
	o := chaos.UplinkOptions(chaos.GatewayConfig{GatewayID: gw, Broker: b.TLSURL(), CAFile: b.CA.CertFile,
		Delivery: cloud.DeliveryReceipt, ReceiptTimeout: 5 * time.Second}, testLogger(t))
	o.BackoffMin, o.BackoffMax = 20*time.Millisecond, 300*time.Millisecond
	return o
}

// waitFor polls cond; the limit only bounds a hung test, it is not a performance assertion.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func depth(box *buffer.DB) int { return box.Stats().Depth }

// checkDelivery runs the checker and fails on anything but 0 / 0 / 0 with every record stored.
func checkDelivery(t testing.TB, appended []chaos.Entry, out string) chaos.Report {
	t.Helper()
	rep, err := chaos.Check(appended, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	if !rep.OK() || rep.Extra != 0 {
		t.Errorf("delivery check failed: %v (first lost %s)", rep, rep.FirstLost)
	}
	return rep
}
