package cloud

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/obdgw/obdgw/hack/brokertest"
)

// tlsOptions is a TLS uplink with a client certificate issued in dir.
func tlsOptions(t *testing.T, dir string) UplinkOptions {
	ca := brokertest.NewCA(t, dir, "ca")
	kp := ca.Client(t, "gw")
	return UplinkOptions{Broker: "tls://127.0.0.1:8883", ClientID: "gw", CAFile: ca.CertFile,
		CertFile: kp.CertFile, KeyFile: kp.KeyFile, Delivery: DeliveryPUBACK}
}

// withinOrHang runs f and fails the test if it has not returned after a generous bound: a
// call that blocks on a FIFO never returns, and the test must say so instead of hanging.
func withinOrHang(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s hangs (blocked opening the file?)", what)
		return nil
	}
}

// The key's mode is checked every time the TLS configuration is built, that is before every
// connect, with the message the gateway's configuration check gives.
func TestKeyFileModeCheckedAtEveryConnect(t *testing.T) {
	o := tlsOptions(t, t.TempDir())
	if _, _, err := o.tlsConfig(); err != nil {
		t.Fatalf("0600 key refused: %v", err)
	}
	if err := os.Chmod(o.KeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := o.tlsConfig()
	var oe *OptionError
	if !errors.As(err, &oe) || oe.Key != "key_file" ||
		!strings.Contains(err.Error(), "is readable by group or others (mode 0644): run chmod 600 "+o.KeyFile) {
		t.Fatalf("0644 key: %v, want a key_file error telling the chmod", err)
	}
	if _, err := NewUplink(nopOutbox{}, o); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("NewUplink with a 0644 key: %v", err)
	}
	os.Chmod(o.KeyFile, 0o600)
	if _, _, err := o.tlsConfig(); err != nil {
		t.Fatalf("after chmod 600: %v", err)
	}
}

// A FIFO (or any other non-regular file) in place of a secret or certificate is refused at
// once, naming the file, instead of blocking the start for ever.
func TestSecretFIFORefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, c := range []struct {
		key    string
		mutate func(o *UplinkOptions)
	}{
		{"key_file", func(o *UplinkOptions) { o.KeyFile = fifo }},
		{"cert_file", func(o *UplinkOptions) { o.CertFile = fifo }},
		{"ca_file", func(o *UplinkOptions) { o.CAFile = fifo }},
		{"password_file", func(o *UplinkOptions) { o.PasswordFile = fifo }},
		{"key_file", func(o *UplinkOptions) { o.KeyFile = dir }},
	} {
		o := tlsOptions(t, t.TempDir())
		c.mutate(&o)
		err := withinOrHang(t, c.key+" as a FIFO", func() error { _, _, err := o.tlsConfig(); return err })
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Key != c.key || !strings.Contains(err.Error(), "is not a regular file") {
			t.Errorf("%s: %v, want a %s error saying it is not a regular file", c.key, err, c.key)
		}
	}
}

// An expired client certificate is named as such when the configuration is loaded (the
// injected clock stands for a box two days on), and the broker's TLS alert is explained as an
// expired certificate, not as an ACL problem.
func TestExpiredClientCertificate(t *testing.T) {
	o := tlsOptions(t, t.TempDir())
	o.Now = func() time.Time { return time.Now().Add(48 * time.Hour) }
	_, _, err := o.tlsConfig()
	var ce *CertExpiredError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "client certificate expired on ") ||
		!strings.Contains(err.Error(), "renew") {
		t.Fatalf("expired certificate at load: %v", err)
	}
	// A gateway with an expired certificate still starts: it keeps its records and says why
	// it cannot deliver them.
	if _, err := NewUplink(nopOutbox{}, o); err != nil {
		t.Errorf("NewUplink with an expired certificate: %v", err)
	}
	o.Now = time.Now
	for _, in := range []string{
		"cloud: connect tls://127.0.0.1:8883: remote error: tls: expired certificate",
		"cloud: connection lost: remote error: tls: expired certificate",
	} {
		got := explain(errors.New(in), o)
		if !strings.Contains(got, "client certificate") || !strings.Contains(got, "expired") || strings.Contains(got, "ACL") {
			t.Errorf("explain(%q) = %q, want the expired client certificate named", in, got)
		}
	}
}

// A cleartext tcp:// broker is what the configuration and its example allow: one on this box.
// A remote one is refused, and the message says how to run it.
func TestPlainBrokerOnlyOnLoopback(t *testing.T) {
	for _, url := range []string{"tcp://127.0.0.1:1883", "tcp://localhost:1883", "mqtt://[::1]:1883"} {
		o := UplinkOptions{Broker: url, ClientID: "gw", Delivery: DeliveryPUBACK}
		if _, err := NewUplink(nopOutbox{}, o); err != nil {
			t.Errorf("%s: %v", url, err)
		}
	}
	o := UplinkOptions{Broker: "tcp://192.0.2.7:1883", ClientID: "gw", Delivery: DeliveryPUBACK}
	_, err := NewUplink(nopOutbox{}, o)
	var oe *OptionError
	if !errors.As(err, &oe) || oe.Key != "broker_url" || !strings.Contains(err.Error(), "tls://") || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("remote cleartext broker: %v", err)
	}
	o.AllowPlain = true
	if _, err := NewUplink(nopOutbox{}, o); err != nil {
		t.Errorf("remote cleartext broker with AllowPlain: %v", err)
	}
}
