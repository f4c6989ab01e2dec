package daemon

import (
	"net"
	"testing"
)

// The configuration (and its example) accepts a cleartext tcp:// broker on this box; the
// daemon started as `obdgw run` starts it (no AllowPlainBroker) instead of refusing what the
// configuration let through.
func TestLoopbackCleartextBrokerAsConfigured(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	cfg := testConfig(t)
	cfg.Broker.URL = "tcp://" + closed
	_, _, stop := startDaemon(t, &cfg, Options{})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
