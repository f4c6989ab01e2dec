package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const exampleFile = "../../obdgw.example.yaml"

// writeSecrets creates the secret files the example names, mode 0600, under dir.
func writeSecrets(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"dms.token":       "dms-token-0123456789abcdef\n",
		"tablet.token":    "tablet-token-0123456789abcdef",
		"broker.password": "broker-secret",
		"gw.key":          "-----BEGIN PRIVATE KEY-----",
		"gw.crt":          "-----BEGIN CERTIFICATE-----",
		"ca.pem":          "-----BEGIN CERTIFICATE-----",
	} {
		if err := os.WriteFile(filepath.Join(dir, "secrets", name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestExampleConfigLoadsClean(t *testing.T) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data, "obdgw.example.yaml")
	if err != nil {
		t.Fatalf("the example config does not parse:\n%v", err)
	}
	if cfg.GatewayID != "hz-demo-gw1" || cfg.Company.Code != "330106000099901" || len(cfg.Bays) != 2 ||
		cfg.Bays[1].Rig == nil || cfg.Bays[0].LEDs == nil || cfg.Emission.LimitSet != "a" || cfg.Emission.TwoSpeedIdle.A.IdleCOPct != 0.6 || cfg.Bays[0].LEDs.Red != "GPIO27" || cfg.Broker.Delivery != "receipt" {
		t.Fatalf("example decoded wrongly: %+v", cfg)
	}

	// And with its secret files in place, Load reads them.
	dir := t.TempDir()
	writeSecrets(t, dir)
	path := filepath.Join(dir, "obdgw.yaml")
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	cfg, err = Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.API.Tokens[0].Secret != "dms-token-0123456789abcdef" || cfg.Broker.Password != "broker-secret" {
		t.Fatalf("secrets not loaded: %+v %+v", cfg.API.Tokens, cfg.Broker)
	}
}

const minimal = `
gateway_id: gw1
company: {code: "330106000099901", name: 测试修理厂, province: "33"}
bays:
  - {name: bay1, obd: "serial:///dev/ttyUSB0"}
broker: {url: "mqtts://broker.example.cn:8883"}
api:
  tokens: [{name: dms, file: dms.token}]
`

func TestDefaults(t *testing.T) {
	cfg, err := Parse([]byte(minimal), "min.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if cfg.StateDir != d.StateDir || cfg.API.Listen != "127.0.0.1:8080" || !cfg.Console.Enabled ||
		cfg.Broker.Delivery != "receipt" || cfg.Broker.Inflight != 8 || cfg.Broker.DrainRate != 20 || cfg.API.MaxBodyBytes != 1<<20 {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	// An explicit false survives the default true.
	cfg, err = Parse([]byte(minimal+"console: {enabled: false}\n"), "min.yaml")
	if err != nil || cfg.Console.Enabled {
		t.Fatalf("console.enabled false: %v %+v", err, cfg)
	}
}

func TestEveryProblemReportedWithPathAndLine(t *testing.T) {
	bad := `gateway_id: "GW 1"
company:
  code: "33010600009990A1"
  name: ""
  province: 99
  fax: 123
bays:
  - name: bay1
    obd: serial:///dev/ttyUSB0
  - name: bay1
    obd: com3
    rig: {model: X, address: "serial:///dev/ttyUSB0"}
    leds: {green: GPIO17, red: GPIO17}
broker:
  url: tcp://broker.example.cn:1883
  delivery: maybe
  inflight: lots
  drain_rate: 0
api:
  listen: 8080
  tokens:
    - {name: dms}
console: {enabled: sometimes}
`
	_, err := Parse([]byte(bad), "bad.yaml")
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse = %v, want *Errors", err)
	}
	want := []string{
		"line 1: gateway_id: ",
		"line 3: company.code: ",
		"line 4: company.name: missing",
		"line 5: company.province: ",
		`line 6: company.fax: unknown key "fax" (known keys here: code, name, province)`,
		"line 10: bays[1].name: \"bay1\" is already the name of bays[0]",
		"line 11: bays[1].obd: ",
		"line 12: bays[1].rig.model: ",
		"line 13: bays[1].leds.red: pin GPIO17 is already used by bays[1].leds.green",
		"line 15: broker.url: ",
		"line 16: broker.delivery: ",
		"line 17: broker.inflight: want a whole number",
		"line 18: broker.drain_rate: ",
		"line 20: api.listen: ",
		"line 22: api.tokens[0].file: missing",
		"line 23: console.enabled: want true or false",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error list lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("got:\n%s", msg)
	}
	// Sorted by line so a technician walks the file top to bottom.
	for i := 1; i < len(errs.List); i++ {
		if errs.List[i].Line < errs.List[i-1].Line {
			t.Fatalf("errors not in file order: %v", errs.List)
		}
	}
}

func TestStructuralMistakes(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"duplicate key":       {minimal + "gateway_id: gw2\n", "gateway_id: duplicate key (first at line 2)"},
		"list where map":      {minimal + "console: [1]\n", "console: want a mapping of keys, got a list"},
		"map where list":      {strings.Replace(minimal, "bays:\n  - {name: bay1, obd: \"serial:///dev/ttyUSB0\"}", "bays: {name: bay1}", 1), "bays: want a list, got a mapping"},
		"unknown top level":   {minimal + "brokers: {}\n", `brokers: unknown key "brokers"`},
		"not yaml":            {"gateway_id: [", "not valid YAML"},
		"empty":               {"", "the file is empty"},
		"two documents":       {minimal + "---\ngateway_id: x\n", "a second YAML document"},
		"bool where text":     {strings.Replace(minimal, "gateway_id: gw1", "gateway_id: true", 1), "gateway_id: want text, got the boolean"},
		"no bays":             {strings.Replace(minimal, "bays:\n  - {name: bay1, obd: \"serial:///dev/ttyUSB0\"}", "bays: []", 1), "bays: no bays"},
		"cleartext to remote": {strings.Replace(minimal, "mqtts://broker.example.cn:8883", "tcp://10.0.0.1:1883", 1), "unencrypted"},
		"cert without key":    {strings.Replace(minimal, `broker: {url: "mqtts://broker.example.cn:8883"}`, `broker: {url: "mqtts://broker.example.cn:8883", cert_file: c.pem}`, 1), "cert_file and key_file go together"},
		"emission not a map":  {minimal + "emission: 5\n", "line 9: emission: "},
		"emission typo":       {minimal + "emission:\n  two_speed_idle:\n    a: {idle_co_pct: 0.6, idel_hc_ppm: 80}\n", "line 11: emission.two_speed_idle.a.idel_hc_ppm: unknown key"},
		"emission bad value":  {minimal + "emission:\n  two_speed_idle:\n    a: {idle_co_pct: -1}\n", "line 10: emission.two_speed_idle.a.idle_co_pct: must be a number above 0"},
		"relative state dir":  {minimal + "state_dir: var/obdgw\n", "state_dir: want an absolute directory"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "t.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLocalCleartextBrokerAllowed(t *testing.T) {
	if _, err := Parse([]byte(strings.Replace(minimal, "mqtts://broker.example.cn:8883", "tcp://127.0.0.1:18830", 1)), "t.yaml"); err != nil {
		t.Fatal(err)
	}
}

func TestSecretFilesMustBePrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "obdgw.yaml")
	if err := os.WriteFile(path, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	tok := filepath.Join(dir, "dms.token")
	if err := os.WriteFile(tok, []byte("0123456789abcdef0123\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "api.tokens[0].file: ") || !strings.Contains(err.Error(), "run chmod 600 "+tok) {
		t.Fatalf("Load with a 0644 token = %v, want a refusal telling the chmod", err)
	}
	if strings.Contains(err.Error(), "0123456789abcdef0123") {
		t.Fatal("the error leaks the token")
	}
	if err := os.Chmod(tok, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load after chmod: %v", err)
	}
	if cfg.API.Tokens[0].Secret != "0123456789abcdef0123" {
		t.Fatalf("secret = %q", cfg.API.Tokens[0].Secret)
	}
	// Too short, missing and multi-line tokens are refused too.
	for content, want := range map[string]string{"short": "at least 16", "a\nb-0123456789abcdef": "more than one line"} {
		if err := os.WriteFile(tok, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("token %q: Load = %v, want %q", content, err, want)
		}
	}
	os.Remove(tok)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing token file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile(exampleFile); err == nil {
		f.Add(string(data))
	}
	f.Add(minimal)
	f.Add("bays: [{name: a, obd: 'tcp://[::1]:1', rig: {model: m, address: 'usb://0403:6001'}}]")
	f.Add("a: &x {b: *x}")
	f.Add("- 1\n- 2")
	f.Add("company: {province: '1'}\napi: {listen: ':'}")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := Parse([]byte(s), "fuzz.yaml")
		if err != nil {
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.List) == 0 {
				t.Fatalf("error %v is not a non-empty *Errors", err)
			}
			return
		}
		// Whatever parses must satisfy what the daemon relies on.
		if cfg.GatewayID == "" || len(cfg.Bays) == 0 || len(cfg.API.Tokens) == 0 || cfg.Broker.Inflight < 1 {
			t.Fatalf("accepted an unusable config: %+v", cfg)
		}
	})
}
