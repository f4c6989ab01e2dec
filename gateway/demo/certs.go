package demo

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/obdgw/obdgw/gateway/pki"
)

// brokerTLS is a throw-away CA and a server certificate for 127.0.0.1 and localhost: the demo
// broker speaks TLS so the demo exercises the same uplink path a shop uses.
type brokerTLS struct {
	CAFile string
	Server tls.Certificate
}

func newBrokerTLS(dir string) (*brokerTLS, error) {
	now := time.Now()
	ca, err := pki.NewCA("obdgw demo CA", now.Add(-time.Hour), now.Add(30*24*time.Hour))
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	srv, err := ca.Issue(pki.Request{CommonName: "obdgw demo broker", Usage: pki.Server,
		Hosts: []string{"127.0.0.1", "::1", "localhost"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour)})
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	cert, err := tls.X509KeyPair(srv.CertPEM, srv.KeyPEM)
	if err != nil {
		return nil, fmt.Errorf("demo: server certificate: %w", err)
	}
	caFile := filepath.Join(dir, "demo-ca.pem")
	if err := os.WriteFile(caFile, ca.Pair.CertPEM, 0o644); err != nil {
		return nil, err
	}
	return &brokerTLS{CAFile: caFile, Server: cert}, nil
}
