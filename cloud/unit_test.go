package cloud

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestBackoffFullJitterDoublesToTheCap(t *testing.T) {
	b := backoff{base: time.Second, max: 30 * time.Second, rand: func() float64 { return 0.999999 }}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i, w := range want {
		got := b.next()
		if lo := w*time.Second - time.Millisecond; got < lo || got > w*time.Second {
			t.Errorf("attempt %d: ceiling %v, want %v", i, got, w*time.Second)
		}
	}
	b.reset()
	b.rand = func() float64 { return 0 }
	if got := b.next(); got != 0 {
		t.Errorf("full jitter must reach 0, got %v", got)
	}
	// With the real source every wait stays within its ceiling.
	b = backoff{base: 100 * time.Millisecond, max: time.Second}
	for i := range 50 {
		ceil := min(time.Second, 100*time.Millisecond<<min(i, 10))
		if d := b.next(); d < 0 || d > ceil {
			t.Fatalf("attempt %d: %v outside [0, %v]", i, d, ceil)
		}
	}
}

// The limiter under a fake clock: a burst goes at once, the rest at the rate.
func TestLimiterPacesTheDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		l := newLimiter(10, 5, start)
		for range 25 {
			if d := l.reserve(time.Now()); d > 0 {
				time.Sleep(d)
			}
		}
		// 5 free, then 20 at 10/s.
		if el := time.Since(start); el != 2*time.Second {
			t.Errorf("25 records at 10/s with burst 5 took %v of fake time, want 2s", el)
		}
		if newLimiter(0, 0, start) != nil {
			t.Error("rate 0 must mean unlimited")
		}
	})
}

func TestOptionErrorsNameTheKey(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose")
	os.WriteFile(loose, []byte("pw\n"), 0o644)
	cases := []struct {
		key    string
		mutate func(o *UplinkOptions)
	}{
		{"broker_url", func(o *UplinkOptions) { o.Broker = "" }},
		{"broker_url", func(o *UplinkOptions) { o.Broker = "tcp://192.0.2.7:1883" }},
		{"broker_url", func(o *UplinkOptions) { o.Broker = "http://127.0.0.1:1883" }},
		{"broker_url", func(o *UplinkOptions) { o.Broker = "tls://127.0.0.1" }},
		{"gateway_id", func(o *UplinkOptions) { o.ClientID = "" }},
		{"key_file", func(o *UplinkOptions) { o.CertFile = "x.crt" }},
		{"in_flight", func(o *UplinkOptions) { o.InFlight = -1 }},
		{"delivery", func(o *UplinkOptions) { o.Delivery = "maybe" }},
		{"receipt_topic", func(o *UplinkOptions) { o.ReceiptTopic = "" }},
		{"drain_rate", func(o *UplinkOptions) { o.DrainRate = -1 }},
		{"backoff_max", func(o *UplinkOptions) { o.BackoffMin, o.BackoffMax = time.Minute, time.Second }},
		{"keepalive", func(o *UplinkOptions) { o.Keepalive = time.Millisecond }},
		{"ca_file", func(o *UplinkOptions) { o.CAFile = filepath.Join(dir, "missing.pem") }},
		{"ca_file", func(o *UplinkOptions) { o.CAFile = loose }},
		{"password_file", func(o *UplinkOptions) { o.PasswordFile = loose }},
		{"status_topic", func(o *UplinkOptions) { o.StatusTopic = "x" }},
	}
	for _, c := range cases {
		o := UplinkOptions{Broker: "tls://127.0.0.1:8883", ClientID: "gw", ReceiptTopic: "r",
			ParseReceipt: func([]byte) (Receipt, error) { return Receipt{}, nil }}
		c.mutate(&o)
		_, err := NewUplink(nopOutbox{}, o)
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Key != c.key {
			t.Errorf("%s: err = %v, want an OptionError naming %s", c.key, err, c.key)
		}
	}
	_, err := NewUplink(nopOutbox{}, UplinkOptions{Broker: "tls://127.0.0.1:8883", ClientID: "gw", PasswordFile: loose, Delivery: DeliveryPUBACK})
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable password file: %v", err)
	}
	os.Chmod(loose, 0o600)
	if _, err := NewUplink(nopOutbox{}, UplinkOptions{Broker: "tls://127.0.0.1:8883", ClientID: "gw", PasswordFile: loose, Delivery: DeliveryPUBACK}); err != nil {
		t.Errorf("0600 password file refused: %v", err)
	}
}

func TestExplainSaysWhatToCheck(t *testing.T) {
	o := UplinkOptions{Broker: "tls://127.0.0.1:8883", CAFile: "/etc/obdgw/ca.pem"}
	for in, want := range map[string]string{
		"network Error : tls: failed to verify certificate: x509: certificate signed by unknown authority": "check ca_file (/etc/obdgw/ca.pem)",
		"dial tcp 127.0.0.1:8883: connect: connection refused":                                             "is the broker running",
		"network Error : remote error: tls: bad certificate":                                               "client certificate",
		"not Authorized": "credentials",
		"x509: certificate has expired or is not yet valid": "is the clock synced",
	} {
		got := explain(errors.New(in), o)
		if !strings.Contains(got, want) || !strings.Contains(got, in) {
			t.Errorf("explain(%q) = %q, want it to contain %q and the original", in, got, want)
		}
	}
	if got := explain(fmt.Errorf("x: %w", &NoReceiptError{ID: "gw-1", After: time.Second}), o); !strings.Contains(got, "no receipt for gw-1") {
		t.Errorf("no receipt: %q", got)
	}
}
