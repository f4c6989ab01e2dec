package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const ehrOnly = `
gateway_id: gw1
company: {code: "330106000099901", name: 测试修理厂, province: "33"}
bays:
  - {name: bay1, obd: "serial:///dev/ttyUSB0"}
api:
  tokens: [{name: dms, file: dms.token}]
uplink:
  transport: ehr-https
  ehr:
    url: https://qcda.96520.com/restservices/lcipprodatarest/
    app_secret_file: ehr.secret
    timeout: 20s
    expired_codes: ["-3"]
`

func TestEHRTransportNeedsNoBroker(t *testing.T) {
	cfg, err := Parse([]byte(ehrOnly), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.EHRHTTPS() || cfg.Broker.URL != "" || cfg.Uplink.EHR.Timeout != 20*time.Second || len(cfg.Uplink.EHR.ExpiredCodes) != 1 {
		t.Fatalf("decoded %+v", cfg.Uplink)
	}
	// The MQTT transport still needs its broker.
	_, err = Parse([]byte(strings.Replace(ehrOnly, "transport: ehr-https", "transport: mqtt", 1)), "t.yaml")
	if err == nil || !strings.Contains(err.Error(), "broker.url") || !strings.Contains(err.Error(), "uplink.transport") {
		t.Errorf("mqtt without a broker and with uplink.ehr: %v", err)
	}
}

func TestEHRTransportMistakesNamed(t *testing.T) {
	const root = "https://qcda.96520.com/restservices/lcipprodatarest/"
	for _, tc := range []struct{ old, new, want string }{
		{"transport: ehr-https", "transport: https", "uplink.transport"},
		{root, "http://qcda.96520.com/x/", "uplink.ehr.url"},
		{root, "ftp://127.0.0.1/x/", "uplink.ehr.url"},
		{root, "https://u:p@qcda.96520.com/x/", "uplink.ehr.url"},
		{"url: " + root, "add_path: /abs/add", "uplink.ehr.url"},
		{"url: " + root, "url: " + root + "\n    add_path: /abs/add", "uplink.ehr.add_path"},
		{"    app_secret_file: ehr.secret\n", "", "uplink.ehr.app_secret_file"},
		{"timeout: 20s", "timeout: 20", "uplink.ehr.timeout"},
		{"timeout: 20s", "timeout: 1h", "uplink.ehr.timeout"},
		{"timeout: 20s", "token_lifetime: 5s", "uplink.ehr.token_lifetime"},
		{`expired_codes: ["-3"]`, "expired_codes: -3", "uplink.ehr.expired_codes"},
	} {
		bad := strings.Replace(ehrOnly, tc.old, tc.new, 1)
		if bad == ehrOnly {
			t.Fatalf("%q not in the configuration", tc.old)
		}
		_, err := Parse([]byte(bad), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want+":") {
			t.Errorf("%q → %q: %v, want an error naming %s", tc.old, tc.new, err, tc.want)
		}
	}
	if _, err := Parse([]byte(strings.Replace(ehrOnly, "https://qcda.96520.com/restservices/lcipprodatarest/", "http://127.0.0.1:8099/x/", 1)), "t.yaml"); err != nil {
		t.Errorf("http:// to a loopback platform: %v", err)
	}
}

func TestEHRSecretsLoadedPrivately(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "obdgw.yaml")
	if err := os.WriteFile(path, []byte(ehrOnly), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dms.token"), []byte("dms-token-0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "ehr.secret")
	if err := os.WriteFile(secret, []byte("companypassword-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "uplink.ehr.app_secret_file: ") || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("0644 secret: %v", err)
	}
	if strings.Contains(err.Error(), "companypassword-1") {
		t.Fatal("the error leaks the secret")
	}
	os.Chmod(secret, 0o600)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Uplink.EHR.AppSecret != "companypassword-1" || cfg.Uplink.EHR.AppKey != "330106000099901" {
		t.Errorf("app key %q secret %q; want company.code as the key when no app_key_file", cfg.Uplink.EHR.AppKey, cfg.Uplink.EHR.AppSecret)
	}
	withKey := strings.Replace(ehrOnly, "app_secret_file: ehr.secret", "app_secret_file: ehr.secret\n    app_key_file: ehr.key", 1)
	os.WriteFile(path, []byte(withKey), 0o640)
	os.WriteFile(filepath.Join(dir, "ehr.key"), []byte("330106000099902"), 0o600)
	if cfg, err = Load(path); err != nil || cfg.Uplink.EHR.AppKey != "330106000099902" {
		t.Errorf("app_key_file: %v %+v", err, cfg)
	}
	if s, err := ReadSecret(secret); err != nil || s != "companypassword-1" {
		t.Errorf("ReadSecret: %q %v", s, err)
	}
}

// The commented uplink section of the example file is a working configuration once its
// comment marks are taken off.
func TestExampleEHRSectionParses(t *testing.T) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#uplink:") {
			in = true
		}
		if in && !strings.HasPrefix(line, "#") {
			in = false
		}
		if in {
			line = strings.TrimPrefix(line, "#")
		}
		out = append(out, line)
	}
	cfg, err := Parse([]byte(strings.Join(out, "\n")), "obdgw.example.yaml")
	if err != nil {
		t.Fatalf("the example's uplink section does not parse:\n%v", err)
	}
	e := cfg.Uplink.EHR
	if !cfg.EHRHTTPS() || e.URL == "" || e.AppSecretFile != "secrets/ehr.secret" || e.Timeout != 15*time.Second || e.TokenLifetime != time.Hour || e.AddPath != "lcipprocarfixrecordadd/query" {
		t.Errorf("decoded %+v", cfg.Uplink)
	}
}
