package brokertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority generated for one test.
type CA struct {
	CertFile string // PEM, what a client passes as its CA file
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	dir      string
}

// KeyPair is a certificate and its key as PEM files.
type KeyPair struct {
	CertFile, KeyFile string
}

var serial int64 = time.Now().UnixNano()

// NewCA makes a self-signed CA in dir.
func NewCA(t testing.TB, dir, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"obdgw test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("brokertest: CA certificate: %v", err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &CA{CertFile: filepath.Join(dir, name+".crt"), cert: cert, key: key, dir: dir}
	writePEM(t, ca.CertFile, "CERTIFICATE", der, 0o644)
	return ca
}

// Server issues a server certificate for 127.0.0.1, ::1 and localhost.
func (ca *CA) Server(t testing.TB, name string) KeyPair {
	t.Helper()
	return ca.issue(t, name, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, []string{"localhost"})
}

// Client issues a client certificate with common name cn (the gateway id).
func (ca *CA) Client(t testing.TB, cn string) KeyPair {
	t.Helper()
	return ca.issue(t, cn, x509.ExtKeyUsageClientAuth, nil, nil)
}

// ClientExpired issues a client certificate with common name cn that expired an hour ago.
func (ca *CA) ClientExpired(t testing.TB, cn string) KeyPair {
	t.Helper()
	return ca.issueValid(t, cn, x509.ExtKeyUsageClientAuth, nil, nil, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour), "-expired")
}

func (ca *CA) issue(t testing.TB, cn string, usage x509.ExtKeyUsage, ips []net.IP, dns []string) KeyPair {
	return ca.issueValid(t, cn, usage, ips, dns, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour), "")
}

func (ca *CA) issueValid(t testing.TB, cn string, usage x509.ExtKeyUsage, ips []net.IP, dns []string, notBefore, notAfter time.Time, suffix string) KeyPair {
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"obdgw test"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  ips,
		DNSNames:     dns,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("brokertest: certificate for %s: %v", cn, err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(ca.dir, ca.cert.Subject.CommonName+"-"+cn+suffix)
	kp := KeyPair{CertFile: base + ".crt", KeyFile: base + ".key"}
	writePEM(t, kp.CertFile, "CERTIFICATE", der, 0o644)
	writePEM(t, kp.KeyFile, "PRIVATE KEY", kder, 0o600)
	return kp
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("brokertest: key: %v", err)
	}
	return key
}

func nextSerial() *big.Int {
	serial++
	return big.NewInt(serial)
}

func writePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatalf("brokertest: %v", err)
	}
}
