// Package pki makes the certificates a trial deployment needs: a private CA, the broker's
// server certificate, and client certificates whose common name is the identity the broker's
// ACL keys on (a gateway id, a receiver's name). `obdgw setup --trial-pki`, the demo and the
// broker tests use it. A province's production PKI is its own; this is for trials and tests.
//
// Keys are ECDSA P-256, written as PKCS #8 PEM with mode 0600; certificates as PEM, 0644.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// CA is a certificate authority with its key.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	Pair Pair // the CA's own certificate and key as PEM
}

// Pair is a certificate and its private key, PEM encoded.
type Pair struct {
	CertPEM, KeyPEM []byte
}

// Request describes a certificate to issue.
type Request struct {
	CommonName string
	// Usage: Server for a broker (its Hosts go in the subject alternative names), Client for
	// a gateway or a receiver.
	Usage     Usage
	Hosts     []string // DNS names or IP addresses; a server certificate needs at least one
	NotBefore time.Time
	NotAfter  time.Time
}

// Usage is what a certificate may be used for.
type Usage int

const (
	Client Usage = iota
	Server
)

// NewCA makes a self-signed CA named cn, valid from notBefore to notAfter.
func NewCA(cn string, notBefore, notAfter time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kp, err := encode(der, key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key, Pair: kp}, nil
}

// LoadCA reads a CA written by NewCA (Pair.Write), to issue more certificates with it.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("pki: the CA file holds no PEM certificate")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: %q is not a CA certificate", cert.Subject.CommonName)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("pki: the CA key file holds no PEM key")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: CA key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("pki: the CA key is not the key of the CA certificate")
	}
	return &CA{Cert: cert, key: key, Pair: Pair{CertPEM: certPEM, KeyPEM: keyPEM}}, nil
}

// Issue signs a new certificate with a fresh key.
func (ca *CA) Issue(r Request) (Pair, error) {
	if r.CommonName == "" {
		return Pair{}, errors.New("pki: a certificate needs a common name")
	}
	if r.Usage == Server && len(r.Hosts) == 0 {
		return Pair{}, errors.New("pki: a server certificate needs the host names or addresses clients connect to")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: r.CommonName},
		NotBefore:    r.NotBefore,
		NotAfter:     r.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if r.Usage == Server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range r.Hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return Pair{}, fmt.Errorf("pki: certificate for %s: %w", r.CommonName, err)
	}
	return encode(der, key)
}

// Write writes the certificate (mode 0644) and the key (mode 0600). It refuses to replace an
// existing file: a key in use is never overwritten by accident.
func (p Pair) Write(certPath, keyPath string) error {
	if err := WriteNew(keyPath, p.KeyPEM, 0o600); err != nil {
		return err
	}
	return WriteNew(certPath, p.CertPEM, 0o644)
}

// WriteNew creates path with data and mode; an existing file is an error (os.ErrExist).
func WriteNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil { // whatever the umask
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func encode(der []byte, key *ecdsa.PrivateKey) (Pair, error) {
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Pair{}, err
	}
	return Pair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}, nil
}

// serial is a random 128-bit serial number, as RFC 5280 asks of a CA (unique per issuer).
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n.Add(n, big.NewInt(1))
}
