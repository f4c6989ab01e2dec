package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"time"
)

// checkCAFile checks that path holds at least one PEM certificate and that none has expired or
// is not valid yet: a broker certificate cannot be verified against a CA that is not there.
func checkCAFile(path string, now time.Time) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fmt.Errorf("%s: certificate %d does not parse: %v", path, n+1, err)
		}
		if err := validAt(cert, now); err != nil {
			return fmt.Errorf("%s: the CA certificate %q %v", path, cert.Subject.CommonName, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s holds no PEM certificate (want the CA that signed the broker's certificate, -----BEGIN CERTIFICATE-----)", path)
	}
	return nil
}

// checkClientCert checks the gateway's client certificate: it parses, the key file holds the
// key that belongs to it, and it is valid now (an expired certificate shows at the broker only
// as a refused connection).
func checkClientCert(certPath, keyPath string, now time.Time) error {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return fmt.Errorf("%s with key %s: %v", certPath, keyPath, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("%s: %v", certPath, err)
	}
	if err := validAt(cert, now); err != nil {
		return fmt.Errorf("%s: the client certificate %q %v; ask the province for a new one", certPath, cert.Subject.CommonName, err)
	}
	return nil
}

func validAt(cert *x509.Certificate, now time.Time) error {
	switch {
	case now.After(cert.NotAfter):
		return fmt.Errorf("expired on %s", cert.NotAfter.UTC().Format(time.DateOnly))
	case now.Before(cert.NotBefore):
		return fmt.Errorf("is not valid before %s (is the clock right?)", cert.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}
