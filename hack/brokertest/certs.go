package brokertest

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/obdgw/obdgw/gateway/pki"
)

// CA is a certificate authority generated for one test (gateway/pki does the work).
type CA struct {
	CertFile string // PEM, what a client passes as its CA file
	ca       *pki.CA
	name     string
	dir      string
}

// KeyPair is a certificate and its key as PEM files.
type KeyPair struct {
	CertFile, KeyFile string
}

// NewCA makes a self-signed CA in dir.
func NewCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	ca, err := pki.NewCA(name, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatalf("brokertest: CA: %v", err)
	}
	c := &CA{CertFile: filepath.Join(dir, name+".crt"), ca: ca, name: name, dir: dir}
	if err := os.WriteFile(c.CertFile, ca.Pair.CertPEM, 0o644); err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	return c
}

// Server issues a server certificate for 127.0.0.1, ::1 and localhost.
func (ca *CA) Server(t testing.TB, name string) KeyPair {
	t.Helper()
	return ca.issue(t, pki.Request{CommonName: name, Usage: pki.Server, Hosts: []string{net.IPv4(127, 0, 0, 1).String(), "::1", "localhost"}}, "")
}

// Client issues a client certificate with common name cn (the gateway id).
func (ca *CA) Client(t testing.TB, cn string) KeyPair {
	t.Helper()
	return ca.issue(t, pki.Request{CommonName: cn, Usage: pki.Client}, "")
}

// ClientExpired issues a client certificate with common name cn that expired an hour ago.
func (ca *CA) ClientExpired(t testing.TB, cn string) KeyPair {
	t.Helper()
	return ca.issue(t, pki.Request{CommonName: cn, Usage: pki.Client, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}, "-expired")
}

func (ca *CA) issue(t testing.TB, r pki.Request, suffix string) KeyPair {
	t.Helper()
	if r.NotAfter.IsZero() {
		r.NotBefore, r.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	}
	p, err := ca.ca.Issue(r)
	if err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	base := filepath.Join(ca.dir, ca.name+"-"+r.CommonName+suffix)
	kp := KeyPair{CertFile: base + ".crt", KeyFile: base + ".key"}
	if err := os.WriteFile(kp.CertFile, p.CertPEM, 0o644); err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	if err := os.WriteFile(kp.KeyFile, p.KeyPEM, 0o600); err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	return kp
}
