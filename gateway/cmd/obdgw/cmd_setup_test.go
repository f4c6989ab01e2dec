package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSetupThenCheckConfig: `obdgw setup --trial-pki` on an empty directory makes the token
// files and certificates the annotated example config names, with the modes the daemon asks
// for; with them the example passes `run --check-config`. A second run keeps every secret.
func TestSetupThenCheckConfig(t *testing.T) {
	dir := t.TempDir()
	args := []string{"setup", "--dir", dir, "--trial-pki", "--gateway-id", "hz-demo-gw1", "--broker-host", "broker.example.cn,127.0.0.1"}
	var out, errb bytes.Buffer
	if code := runMain(args, &out, &errb); code != 0 {
		t.Fatalf("setup: exit %d\n%s", code, errb.String())
	}
	modes := map[string]os.FileMode{
		"secrets": 0o700 | os.ModeDir, "secrets/dms.token": 0o600, "secrets/tablet.token": 0o600,
		"secrets/gw.key": 0o600, "secrets/gw.crt": 0o644, "secrets/ca.pem": 0o644,
		"pki": 0o700 | os.ModeDir, "pki/ca.key": 0o600, "pki/broker.key": 0o600, "pki/receiver1.key": 0o600,
	}
	before := map[string][]byte{}
	for f, mode := range modes {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode() != mode {
			t.Errorf("%s: %v, mode %v, want %v", f, err, st.Mode(), mode)
		}
		if !st.IsDir() {
			before[f], _ = os.ReadFile(filepath.Join(dir, f))
		}
	}
	if !strings.Contains(out.String(), "ca_file: secrets/ca.pem") || !strings.Contains(out.String(), "chown -R obdgw:obdgw") {
		t.Errorf("setup does not say what goes where:\n%s", out.String())
	}
	// The gateway's certificate chains to the CA, names the gateway, and the broker's names
	// the hosts given.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(before["secrets/ca.pem"])
	gw, err := tls.LoadX509KeyPair(filepath.Join(dir, "secrets/gw.crt"), filepath.Join(dir, "secrets/gw.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(gw.Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil || leaf.Subject.CommonName != "hz-demo-gw1" {
		t.Errorf("gateway certificate %q: %v", leaf.Subject.CommonName, err)
	}
	br, err := tls.LoadX509KeyPair(filepath.Join(dir, "pki/broker.crt"), filepath.Join(dir, "pki/broker.key"))
	if err != nil {
		t.Fatal(err)
	}
	bl, _ := x509.ParseCertificate(br.Certificate[0])
	for _, host := range []string{"broker.example.cn", "127.0.0.1"} {
		if _, err := bl.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
			t.Errorf("broker certificate for %s: %v", host, err)
		}
	}

	// The example configuration, as shipped, with the files setup made.
	example, err := os.ReadFile(filepath.Join("..", "..", "..", "obdgw.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(example), "state_dir: /var/lib/obdgw", "state_dir: "+filepath.Join(dir, "state"), 1)
	if cfg == string(example) {
		t.Fatal("the example has no state_dir line to point at the test's directory")
	}
	os.WriteFile(filepath.Join(dir, "obdgw.yaml"), []byte(cfg), 0o640)
	os.WriteFile(filepath.Join(dir, "secrets/broker.password"), []byte("from-the-province\n"), 0o600) // the province gives it
	out.Reset()
	if code := runMain([]string{"run", "--check-config", "--config", filepath.Join(dir, "obdgw.yaml")}, &out, &errb); code != 0 {
		t.Fatalf("check-config with setup's files: exit %d\n%s", code, errb.String())
	}

	// Again: nothing replaced.
	out.Reset()
	if code := runMain(args, &out, &errb); code != 0 {
		t.Fatalf("second setup: exit %d\n%s", code, errb.String())
	}
	for f, b := range before {
		if now, _ := os.ReadFile(filepath.Join(dir, f)); !bytes.Equal(now, b) {
			t.Errorf("second setup replaced %s", f)
		}
	}
	if n := strings.Count(out.String(), "kept (exists)"); n < 6 {
		t.Errorf("second setup says kept %d times:\n%s", n, out.String())
	}
}

func TestSetupUsage(t *testing.T) {
	for _, args := range [][]string{
		{"setup", "--trial-pki", "--broker-host", "b"},
		{"setup", "--trial-pki", "--gateway-id", "gw1"},
		{"setup", "--gateway-id", "gw1"},
		{"setup", "--tokens", "a b"},
	} {
		var out, errb bytes.Buffer
		args = append(args, "--dir", t.TempDir())
		if code := runMain(args, &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
