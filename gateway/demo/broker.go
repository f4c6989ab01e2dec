package demo

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// startBroker runs an in-process MQTT broker with a TLS listener on a free loopback port and
// returns its URL. It accepts any client: it stands in for the provincial broker only here.
func startBroker(t *brokerTLS, log *slog.Logger) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("demo: broker listener: %w", err)
	}
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{t.Server}, MinVersion: tls.VersionTLS12})
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: false, Logger: log.With("component", "demo-broker")})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		ln.Close()
		return "", nil, err
	}
	if err := srv.AddListener(listeners.NewNet("demo-tls", tln)); err != nil {
		ln.Close()
		return "", nil, err
	}
	go srv.Serve()
	return "tls://" + ln.Addr().String(), func() { srv.Close() }, nil
}
