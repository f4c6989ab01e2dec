package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestMutualTLS: a broker certificate and a client certificate issued by one CA complete a
// TLS handshake with client authentication on loopback, and the server sees the client's
// common name (the identity the broker's ACL keys on).
func TestMutualTLS(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("trial CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue(Request{CommonName: "broker", Usage: Server, Hosts: []string{"127.0.0.1", "localhost"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Issue(Request{CommonName: "hz-gw1", Usage: Client, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.Pair.CertPEM) {
		t.Fatal("CA PEM not accepted")
	}
	sc, err := tls.X509KeyPair(srv.CertPEM, srv.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := tls.X509KeyPair(cli.CertPEM, cli.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{sc}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			got <- err.Error()
			return
		}
		got <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cc}, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	c.Write([]byte("x"))
	c.Close()
	if cn := <-got; cn != "hz-gw1" {
		t.Fatalf("server saw %q, want the client's common name hz-gw1", cn)
	}
}

func TestLoadCAAndWrite(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("trial CA", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	if err := ca.Pair.Write(crt, key); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{crt: 0o644, key: 0o600} {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v want %v", p, err, st.Mode().Perm(), mode)
		}
	}
	if err := ca.Pair.Write(crt, key); !errors.Is(err, os.ErrExist) {
		t.Errorf("a second write replaced the files: %v", err)
	}
	cp, _ := os.ReadFile(crt)
	kp, _ := os.ReadFile(key)
	again, err := LoadCA(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Issue(Request{CommonName: "rx", NotBefore: now, NotAfter: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	other, _ := NewCA("other", now, now.Add(time.Hour))
	if _, err := LoadCA(cp, other.Pair.KeyPEM); err == nil {
		t.Error("a CA loaded with another CA's key")
	}
	leaf, _ := ca.Issue(Request{CommonName: "gw", NotBefore: now, NotAfter: now.Add(time.Hour)})
	if _, err := LoadCA(leaf.CertPEM, leaf.KeyPEM); err == nil {
		t.Error("a client certificate loaded as a CA")
	}
	if _, err := ca.Issue(Request{CommonName: "broker", Usage: Server}); err == nil {
		t.Error("a server certificate without hosts")
	}
}
