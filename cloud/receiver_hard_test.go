package cloud_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/gateway/uplink"
	"github.com/obdgw/obdgw/hack/brokertest"
)

// retryLog records the receiver's "not connected" lines: the error and the wait it chose.
type retryLog struct {
	mu    sync.Mutex
	lines []retryLine
}

type retryLine struct {
	err  string
	wait time.Duration
}

func (h *retryLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *retryLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *retryLog) WithGroup(string) slog.Handler            { return h }
func (h *retryLog) Handle(_ context.Context, r slog.Record) error {
	var l retryLine
	found := false
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "err":
			l.err = a.Value.String()
		case "retry_in":
			l.wait, found = a.Value.Duration(), true
		}
		return true
	})
	if found {
		h.mu.Lock()
		h.lines = append(h.lines, l)
		h.mu.Unlock()
	}
	return nil
}

func (h *retryLog) snapshot() []retryLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]retryLine(nil), h.lines...)
}

// After each broker restart the receiver comes back at the base backoff: a session that
// subscribed resets it, so a receiver does not wait longer after every outage while the
// gateways' receipts time out. The jitter is fixed at one half, so each wait is half its
// ceiling and the test reads the ceiling from the log.
func TestReceiverBackoffResetsAfterSubscribe(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{})
	h := &retryLog{}
	const base = 40 * time.Millisecond
	r := startReceiver(t, b, b.URL(), func(o *cloud.ReceiverOptions) {
		o.BackoffMin, o.BackoffMax = base, 20*time.Second
		o.Rand = func() float64 { return 0.5 }
		o.Logger = slog.New(h)
	})
	const restarts = 4
	for i := 0; i < restarts; i++ {
		n := r.Status().Reconnects
		b.Stop()
		// The lost session and two refused connects: the backoff grows while the broker is away.
		waitFor(t, 60*time.Second, "failed reconnects", func() bool { return r.Status().Reconnects >= n+3 })
		b.Start()
		waitFor(t, 60*time.Second, "subscribed again", func() bool { return r.Status().Connected })
	}
	lost := 0
	for _, l := range h.snapshot() {
		t.Logf("retry in %v after %s", l.wait, l.err)
		if !strings.Contains(l.err, "connection lost") {
			continue
		}
		lost++
		if l.wait != base/2 {
			t.Errorf("after a subscribed session was lost the receiver waits %v (ceiling %v), want the base ceiling %v", l.wait, 2*l.wait, base)
		}
	}
	if lost != restarts {
		t.Errorf("%d lost sessions logged, want %d", lost, restarts)
	}
}

// A message larger than the receiver's limit is dropped before anything reads it — the
// validator never sees it, nothing of it reaches the output — and the receiver stays up and
// stores what comes next.
func TestReceiverDropsOversizeMessage(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{})
	var mu sync.Mutex
	largest := 0
	r := startReceiver(t, b, b.URL(), func(o *cloud.ReceiverOptions) {
		validate := o.Validate
		o.Validate = func(topic string, payload []byte) (cloud.Verdict, error) {
			mu.Lock()
			largest = max(largest, len(payload))
			mu.Unlock()
			return validate(topic, payload)
		}
	})
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("gw-big").SetWriteTimeout(time.Minute))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(0)
	big := bytes.Repeat([]byte(`{"id":"gw-big-1","x":"`), 20<<20/22)
	if tok := c.Publish("obdgw/v1/33/330106000099901/gw-big/alpha", 1, false, big); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	waitFor(t, 60*time.Second, "the oversize message counted", func() bool { return r.Status().Rejected >= 1 })

	dir := t.TempDir()
	box := openBox(t, dir, "gw-after")
	appended := appendRecords(t, box, "gw-after", 5, "alpha")
	u := startUplink(t, box, gwOptions(t, b, "gw-after"))
	waitFor(t, 60*time.Second, "records after the oversize one delivered", func() bool { return depth(box) == 0 })
	u.stop()
	st := r.Status()
	r.stop()
	mu.Lock()
	defer mu.Unlock()
	if largest > 256<<10 {
		t.Errorf("the validator was handed a %d-byte payload, past the 256 KiB limit", largest)
	}
	if !st.Running || !st.Connected || st.Accepted != 5 {
		t.Errorf("receiver status after the oversize message: %+v", st)
	}
	out, err := os.ReadFile(r.out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("gw-big")) || len(out) > 64<<10 {
		t.Errorf("the oversize message reached the output (%d bytes)", len(out))
	}
	checkDelivery(t, appended, r.out)
}

// The receiver checks its key's mode at every connect, like the gateway: a key made readable
// by others stops the reconnect after a broker restart with the chmod to run, and the receiver
// comes back once it is fixed.
func TestReceiverRechecksKeyModeOnReconnect(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{RequireClientCert: true})
	kp := b.CA.Client(t, "rx")
	r := startReceiver(t, b, b.TLSURL(), func(o *cloud.ReceiverOptions) {
		o.CertFile, o.KeyFile = kp.CertFile, kp.KeyFile
	})
	if err := os.Chmod(kp.KeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	b.Restart()
	waitFor(t, 60*time.Second, "the key's mode in the status", func() bool {
		return strings.Contains(r.Status().LastError, "run chmod 600 "+kp.KeyFile)
	})
	if st := r.Status(); st.Connected {
		t.Errorf("connected with a 0644 key: %+v", st)
	}
	os.Chmod(kp.KeyFile, 0o600)
	waitFor(t, 60*time.Second, "connected after chmod 600", func() bool { return r.Status().Connected })
}

// An expired client certificate is named as such, never as an ACL problem: at load, and —
// when this box's clock is behind and the load check passes — from the broker's TLS alert.
func TestExpiredClientCertificateNamed(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{RequireClientCert: true})
	kp := b.CA.ClientExpired(t, "gw-old")
	dir := t.TempDir()
	box := openBox(t, dir, "gw-old")
	appendRecords(t, box, "gw-old", 3, "alpha")
	for _, c := range []struct {
		name string
		now  func() time.Time
		want string
	}{
		{"clock right", time.Now, "client certificate expired on "},
		{"clock behind", func() time.Time { return time.Now().Add(-24 * time.Hour) }, "refused our client certificate as expired"},
	} {
		o := gwOptions(t, b, "gw-old")
		o.CertFile, o.KeyFile, o.Now = kp.CertFile, kp.KeyFile, c.now
		u := startUplink(t, box, o)
		waitFor(t, 30*time.Second, c.name+": an error in the status", func() bool { return u.Status().Reconnects >= 2 })
		u.stop()
		st := u.Status()
		t.Logf("%s: %s", c.name, st.LastError)
		if !strings.Contains(st.LastError, c.want) || strings.Contains(st.LastError, "ACL") {
			t.Errorf("%s: status error %q, want it to contain %q and not blame the ACL", c.name, st.LastError, c.want)
		}
		if d := depth(box); d != 3 {
			t.Fatalf("%s: outbox depth %d, want the 3 records kept", c.name, d)
		}
	}
	// The receiver, its clock behind as well: it starts, and its status names the certificate.
	o := uplink.ReceiverOptions(cloud.ReceiverOptions{
		Broker: b.TLSURL(), CAFile: b.CA.CertFile, CertFile: kp.CertFile, KeyFile: kp.KeyFile,
		StatePath: filepath.Join(dir, "rx.db"), OutPath: filepath.Join(dir, "rx.jsonl"),
		BackoffMin: 20 * time.Millisecond, BackoffMax: 300 * time.Millisecond, Logger: testLogger(t),
		Now: func() time.Time { return time.Now().Add(-24 * time.Hour) },
	})
	r, err := cloud.NewReceiver(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	waitFor(t, 30*time.Second, "receiver: an error in the status", func() bool { return r.Status().Reconnects >= 2 })
	cancel()
	<-done
	r.Close()
	st := r.Status()
	t.Logf("receiver: %s", st.LastError)
	if !strings.Contains(st.LastError, "refused our client certificate as expired") || strings.Contains(st.LastError, "ACL") {
		t.Errorf("receiver: status error %q, want the expired certificate named and not the ACL blamed", st.LastError)
	}
}

// brokerLimits is the broker setting docs/delivery.md ("Limits") tells a province to use.
const brokerLimits = "max_packet_size 300000\n"

// With the documented broker limit a 20 MB publish never reaches the receiver: the broker
// closes the publisher's connection, and the records after it arrive.
func TestBrokerPacketLimitStopsOversizeMessage(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{Extra: brokerLimits})
	r := startReceiver(t, b, b.URL(), nil)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("gw-big").SetWriteTimeout(time.Minute))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	big := bytes.Repeat([]byte("x"), 20<<20)
	tok := c.Publish("obdgw/v1/33/330106000099901/gw-big/alpha", 1, false, big)
	// paho reports the broker's close as an error or leaves the token waiting; either way the
	// publish must not have been acknowledged as delivered.
	if tok.WaitTimeout(30*time.Second) && tok.Error() == nil {
		t.Errorf("the broker acknowledged a 20 MB publish past its max_packet_size")
	}
	waitFor(t, 30*time.Second, "the broker to drop the publisher", func() bool { return !c.IsConnectionOpen() })
	c.Disconnect(0)

	dir := t.TempDir()
	box := openBox(t, dir, "gw-after")
	appended := appendRecords(t, box, "gw-after", 3, "alpha")
	u := startUplink(t, box, gwOptions(t, b, "gw-after"))
	waitFor(t, 60*time.Second, "records after the oversize one delivered", func() bool { return depth(box) == 0 })
	u.stop()
	st := r.Status()
	r.stop()
	if st.Rejected != 0 || st.Accepted != 3 || !st.Connected {
		t.Errorf("receiver status: %+v, want the 3 records and nothing of the oversize one", st)
	}
	checkDelivery(t, appended, r.out)
}
