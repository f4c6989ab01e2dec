package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	// The drivers register their models, as they do in the obdgw binary.
	_ "github.com/obdgw/obdgw/drivers/nanhua"
	_ "github.com/obdgw/obdgw/drivers/opacity"
	"github.com/obdgw/obdgw/gateway/pki"
)

// testPKI writes ca.pem, gw.crt and gw.key (mode 0600) into dir, replacing what is there: a
// CA and a client certificate signed by it, valid from notBefore to notAfter (gateway/pki
// makes them, as obdgw setup does).
func testPKI(t *testing.T, dir string, notBefore, notAfter time.Time) {
	t.Helper()
	ca, err := pki.NewCA("test CA", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	gw, err := ca.Issue(pki.Request{CommonName: "hz-demo-gw1", Usage: pki.Client, NotBefore: notBefore, NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"ca.pem": ca.Pair.CertPEM, "gw.crt": gw.CertPEM, "gw.key": gw.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// exampleIn writes the example configuration with its secrets under a fresh directory and
// returns the configuration's path.
func exampleIn(t *testing.T) (dir, path string) {
	t.Helper()
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	writeSecrets(t, dir)
	path = filepath.Join(dir, "obdgw.yaml")
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

// TestPathsResolveAgainstTheConfigFile: every file name in the configuration means the same
// file whatever the working directory (systemd starts the daemon in /): the loaded
// configuration holds absolute paths under the configuration's directory.
func TestPathsResolveAgainstTheConfigFile(t *testing.T) {
	dir, _ := exampleIn(t)
	t.Chdir("/")
	rel, err := filepath.Rel("/", filepath.Join(dir, "obdgw.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(rel) // relative to /, the working directory
	if err != nil {
		t.Fatalf("Load from another working directory: %v", err)
	}
	for name, p := range map[string]string{"ca_file": cfg.Broker.CAFile, "cert_file": cfg.Broker.CertFile,
		"key_file": cfg.Broker.KeyFile, "password_file": cfg.Broker.PasswordFile, "tokens[0].file": cfg.API.Tokens[0].File, "file": cfg.File} {
		if !filepath.IsAbs(p) || !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Errorf("%s = %q, want an absolute path under %s", name, p, dir)
		}
	}
	if _, err := os.Stat(cfg.Broker.CAFile); err != nil {
		t.Errorf("ca_file does not name the file: %v", err)
	}
}

// TestCertificatesCheckedAtLoad: what would only show at the broker as a refused connection
// is refused at start with the file and the reason: an expired or not-yet-valid client
// certificate, a key that is not the certificate's, a CA file without a certificate.
func TestCertificatesCheckedAtLoad(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name   string
		mutate func(t *testing.T, secrets string)
		want   []string
	}{
		{"expired", func(t *testing.T, s string) { testPKI(t, s, now.Add(-48*time.Hour), now.Add(-24*time.Hour)) },
			[]string{"broker.cert_file", "gw.crt", "expired on " + now.Add(-24*time.Hour).UTC().Format(time.DateOnly), "ask the province"}},
		{"not yet valid", func(t *testing.T, s string) { testPKI(t, s, now.Add(24*time.Hour), now.Add(48*time.Hour)) },
			[]string{"broker.cert_file", "not valid before", "clock"}},
		{"key of another certificate", func(t *testing.T, s string) {
			other := t.TempDir()
			testPKI(t, other, now.Add(-time.Hour), now.Add(time.Hour))
			key, _ := os.ReadFile(filepath.Join(other, "gw.key"))
			if err := os.WriteFile(filepath.Join(s, "gw.key"), key, 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"broker.cert_file", "gw.key", "private key does not match"}},
		{"CA file without a certificate", func(t *testing.T, s string) {
			if err := os.WriteFile(filepath.Join(s, "ca.pem"), []byte("hello\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"broker.ca_file", "holds no PEM certificate"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, path := exampleIn(t)
			c.mutate(t, filepath.Join(dir, "secrets"))
			_, err := Load(path)
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestRigModelMustBeKnown: with the drivers registered (as in the obdgw binary), a rig model no
// driver knows is refused at load, listing the known names, instead of failing every
// self-test later; the example's "nanhua-nha506" (maker and model) is found.
func TestRigModelMustBeKnown(t *testing.T) {
	base, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ model, want string }{
		{"nanhua-nha506", ""},
		{"nha506", ""},
		{"nanhua-nha999", `bays[1].rig.model: "nanhua-nha999": no driver of that name; known: `},
		{"mexa-nha506", `no driver of that name`},
	} {
		data := strings.Replace(string(base), "model: nanhua-nha506", "model: "+c.model, 1)
		_, err := Parse([]byte(data), "obdgw.yaml")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s refused: %v", c.model, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "nha506")):
			t.Errorf("%s: error %v, want %q listing the known models", c.model, err, c.want)
		}
	}
}
