package config

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/serialport"
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
	} {
		if err := os.WriteFile(filepath.Join(dir, "secrets", name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	testPKI(t, filepath.Join(dir, "secrets"), time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
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
		cfg.Bays[1].Rig == nil || cfg.Bays[0].LEDs == nil || cfg.Emission.LimitSet != "a" || cfg.Emission.TwoSpeedIdle.A.IdleCOPct != 0.6 || cfg.Bays[0].LEDs.Red != "GPIO27" || cfg.Broker.Delivery != "receipt" || cfg.API.MaxConnections != 128 {
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
		cfg.Broker.Delivery != "receipt" || cfg.Broker.Inflight != 8 || cfg.Broker.DrainRate != 20 || cfg.API.MaxBodyBytes != 1<<20 ||
		cfg.API.MaxConnections != DefaultMaxConnections {
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
    rig: {model: X, address: "serial:///dev/ttyUSB0", serail: "123"}
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
  max_connections: 2
console: {enabled: sometimes}
`
	_, err := Parse([]byte(bad), "bad.yaml")
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse = %v, want *Errors", err)
	}
	want := []string{
		"bad.yaml:1: gateway_id: ",
		"bad.yaml:3: company.code: ",
		"bad.yaml:4: company.name: missing",
		"bad.yaml:5: company.province: ",
		"bad.yaml:6: company.fax: unknown key (known keys here: code, name, province)",
		"bad.yaml:10: bays[1].name: \"bay1\" is already the name of bays[0]",
		"bad.yaml:11: bays[1].obd: \"com3\" is not a device address",
		"bad.yaml:12: bays[1].rig.model: ",
		"bad.yaml:12: bays[1].rig.address: the same device as bays[0].obd",
		"bad.yaml:12: bays[1].rig.serail: unknown key (did you mean serial?)",
		"bad.yaml:13: bays[1].leds.red: pin GPIO17 is already used by bays[1].leds.green",
		"bad.yaml:15: broker.url: ",
		"bad.yaml:16: broker.delivery: ",
		"bad.yaml:17: broker.inflight: want a whole number, got \"lots\"",
		"bad.yaml:18: broker.drain_rate: ",
		"bad.yaml:20: api.listen: ",
		"bad.yaml:22: api.tokens[0].file: missing",
		"bad.yaml:23: api.max_connections: 2: want between 4 and 10000",
		"bad.yaml:24: console.enabled: want true or false",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error list lacks %q", w)
		}
	}
	if len(errs.List) != len(want) {
		t.Errorf("%d problems, want %d", len(errs.List), len(want))
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
		"duplicate key":       {minimal + "gateway_id: gw2\n", "t.yaml:9: gateway_id: duplicate key (first at line 2)"},
		"list where map":      {minimal + "console: [1]\n", "t.yaml:9: console: want a mapping of keys, got a list"},
		"map where list":      {strings.Replace(minimal, "bays:\n  - {name: bay1, obd: \"serial:///dev/ttyUSB0\"}", "bays: {name: bay1}", 1), "t.yaml:4: bays: want a list, got a mapping"},
		"list where value":    {minimal + "records: {max_outbox_records: [1]}\n", "t.yaml:9: records.max_outbox_records: want a whole number, got a list"},
		"unknown top level":   {minimal + "brokers: {}\n", "t.yaml:9: brokers: unknown key (did you mean broker?)"},
		"key of another case": {minimal + "Console: {}\n", "t.yaml:9: Console: unknown key (did you mean console?)"},
		"key not a word":      {minimal + "[a]: 1\n", "t.yaml:9: a key must be a plain word, got a list"},
		"merge key":           {minimal + "records: {<<: {max_outbox_records: 1}}\n", "t.yaml:9: records.<<: merge keys are not supported"},
		"not yaml":            {"gateway_id: [", "t.yaml:1: not valid YAML: did not find expected node content at the end of the file"},
		"empty":               {"", "t.yaml: the file is empty"},
		"two documents":       {minimal + "---\ngateway_id: x\n", "t.yaml:9: a second YAML document"},
		"broken 2nd document": {minimal + "---\ngateway_id: [\n", "t.yaml:10: not valid YAML"},
		"bool where text":     {strings.Replace(minimal, "gateway_id: gw1", "gateway_id: true", 1), "t.yaml:2: gateway_id: want text, got the boolean"},
		"no bays":             {strings.Replace(minimal, "bays:\n  - {name: bay1, obd: \"serial:///dev/ttyUSB0\"}", "bays: []", 1), "bays: no bays"},
		"cleartext to remote": {strings.Replace(minimal, "mqtts://broker.example.cn:8883", "tcp://10.0.0.1:1883", 1), "unencrypted"},
		"cert without key":    {strings.Replace(minimal, `broker: {url: "mqtts://broker.example.cn:8883"}`, `broker: {url: "mqtts://broker.example.cn:8883", cert_file: c.pem}`, 1), "cert_file and key_file go together"},
		"emission not a map":  {minimal + "emission: 5\n", "t.yaml:9: emission: want a mapping of keys, got \"5\""},
		"emission typo":       {minimal + "emission:\n  two_speed_idle:\n    a: {idle_co_pct: 0.6, idel_hc_ppm: 80}\n", "t.yaml:11: emission.two_speed_idle.a.idel_hc_ppm: unknown key (did you mean idle_hc_ppm?)"},
		"emission bad value":  {minimal + "emission:\n  two_speed_idle:\n    a: {idle_co_pct: -1}\n", "t.yaml:11: emission.two_speed_idle.a.idle_co_pct: must be a number above 0, got -1"},
		"emission bare secs":  {minimal + "emission:\n  two_speed_idle:\n    precondition: 30\n", "t.yaml:11: emission.two_speed_idle.precondition: want a duration with its unit, like 30s or 5m, got \"30\""},
		"emission not secs":   {minimal + "emission:\n  two_speed_idle:\n    sample: soon\n", "t.yaml:11: emission.two_speed_idle.sample: want a duration"},
		"emission relation":   {minimal + "emission:\n  two_speed_idle:\n    lambda_min: 1.1\n", "t.yaml:10: emission.two_speed_idle.lambda_max: 1.05 must be above lambda_min 1.1"},
		"emission limit set":  {minimal + "emission: {limit_set: c}\n", "t.yaml:9: emission.limit_set: \"c\": want \"a\""},
		"emission list":       {minimal + "emission: {free_acceleration: [1, 2]}\n", "t.yaml:9: emission.free_acceleration: want a mapping of keys, got a list"},
		"relative state dir":  {minimal + "state_dir: var/obdgw\n", "t.yaml:9: state_dir: want an absolute directory"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "t.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
}

// A syntax error points at the line to fix. The YAML library names, for some errors, the line
// before the one at fault, or the line where the enclosing list starts; Parse corrects both.
func TestSyntaxErrorLines(t *testing.T) {
	for _, c := range []struct {
		yaml string
		line int
		msg  string
	}{
		// Indentation mistakes inside a list or mapping: the library names where the list or
		// mapping starts (counted from 0).
		{"gateway_id: a\nbays:\n  - name: a\n    obd: x\n   rig: y\nc: 2\n", 5, "did not find expected '-' indicator (check the indentation of this line)"},
		{"a: 1\nb:\n  - 1\n  c: 2\n", 4, "did not find expected '-' indicator"},
		{"- 1\nb: 2\n", 2, "did not find expected '-' indicator"},
		{"a:\n  b: 1\n c: 2\n", 3, "did not find expected key"},
		{"# note\na:\n  b: 1\n  c: 2\n d: 3\n", 5, "did not find expected key"},
		// Parser errors at the start of a flow collection: the library counts from 0.
		{"a: 1\nb: {c: 1\nd: 3\n", 2, "did not find expected ',' or '}'"},
		{"a: 1\nb: [1, 2\nc: 3\n", 2, "did not find expected ',' or ']'"},
		{"a: 1\nb: !foo!x 1\n", 2, "found undefined tag handle"},
		{"gateway_id: [\n", 1, "did not find expected node content at the end of the file"},
		// Scanner errors: the library's line is right.
		{"a: 1\nb:\n\tc: 2\n", 3, "found character that cannot start any token (a tab: indent with spaces)"},
		{"a: 1\nb c\nd: 3\n", 2, "could not find expected ':'"},
		{"a: 1\nb: x: y\n", 2, "mapping values are not allowed in this context"},
		{"a: 1\nb: 'x\nd: 3\n", 2, "found unexpected end of stream"},
		// Errors the library reports without a line.
		{"a: 1\nb: *nope\n", 2, "*nope refers to no anchor &nope above it"},
		{"a: 1\nb: \"\x01\"\n", 2, "control characters are not allowed"},
		{"a: 1\n\nb: \xff\n", 3, "invalid leading UTF-8 octet"},
		// In a second document.
		{"a: 1\n---\nb:\n  - 1\n  c: 2\n", 5, "did not find expected '-' indicator"},
	} {
		_, err := Parse([]byte(c.yaml), "t.yaml")
		var errs *Errors
		if !errors.As(err, &errs) || len(errs.List) != 1 {
			t.Errorf("%q: Parse = %v, want one problem", c.yaml, err)
			continue
		}
		if e := errs.List[0]; e.Line != c.line || !strings.HasPrefix(e.Msg, "not valid YAML: ") || !strings.Contains(e.Msg, c.msg) {
			t.Errorf("%q: %v\nwant line %d: not valid YAML: …%s", c.yaml, e, c.line, c.msg)
		}
	}
}

// What the configuration accepts as a device address is exactly what serialport.Open accepts:
// both use serialport.ParseAddr.
func TestDeviceAddressesAsOpenReadsThem(t *testing.T) {
	for _, addr := range []string{
		"usb://10c4:ea60",                   // a hex PID the configuration's own check refused
		"/dev/ttyUSB0",                      // a bare path, as on the command line
		"serial:///tmp/obdgw-pty?baud=9600", // a pty outside /dev
		"serial:///dev/ttyUSB0?baud=0",      // the configuration's own check took any digits
		"serial:///dev/ttyUSB0?buad=38400",
		"tcp://192.168.0.10:35000",
		"tcp://192.168.0.10:35000?baud=38400",
		"serial://dev/ttyUSB0",
		"com3",
	} {
		yaml := strings.Replace(minimal, `obd: "serial:///dev/ttyUSB0"`, "obd: "+strconv.Quote(addr), 1)
		_, err := Parse([]byte(yaml), "t.yaml")
		_, perr := serialport.ParseAddr(addr)
		if (err == nil) != (perr == nil) {
			t.Errorf("%q: config says %v; serialport.ParseAddr says %v", addr, err, perr)
		}
		if perr != nil && (err == nil || !strings.Contains(err.Error(), "t.yaml:5: bays[0].obd: "+strings.TrimPrefix(perr.Error(), "serialport: "))) {
			t.Errorf("%q: %v\nwant the parser's reason at bays[0].obd", addr, err)
		}
	}
	// One device is one device whatever the spelling of its address.
	two := strings.Replace(minimal, `  - {name: bay1, obd: "serial:///dev/ttyUSB0"}`,
		`  - {name: bay1, obd: "serial:///dev/ttyUSB0?baud=38400"}
  - {name: bay2, obd: "/dev/ttyUSB1", rig: {model: nanhua-nha506, address: "/dev/ttyUSB0"}}`, 1)
	if _, err := Parse([]byte(two), "t.yaml"); err == nil || !strings.Contains(err.Error(), "t.yaml:6: bays[1].rig.address: the same device as bays[0].obd") {
		t.Errorf("one device in two bays: %v", err)
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
	if data, err := os.ReadFile("../emission/limits.example.yaml"); err == nil {
		f.Add(minimal + string(data))
	}
	f.Add(minimal + "emission: {two_speed_idle: {a: &x {idle_co_pct: .nan}, b: *x, precondition: 30}}")
	f.Add(minimal + "update: {repository: \"http://[::1]:1/x\", root_file: r.json, check_every: 1h, health_timeout: 1s}")
	f.Add("a:\n  - 1\n  b: 2\n")
	f.Add("a:\n  b: 1\n c: 2\n---\n")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := Parse([]byte(s), "fuzz.yaml")
		if err != nil {
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.List) == 0 {
				t.Fatalf("error %v is not a non-empty *Errors", err)
			}
			for _, e := range errs.List {
				if e.Line < 0 || e.Line > strings.Count(s, "\n")+1 {
					t.Fatalf("%v: line outside the file", e)
				}
			}
			return
		}
		// Whatever parses must satisfy what the daemon relies on.
		if cfg.GatewayID == "" || len(cfg.Bays) == 0 || len(cfg.API.Tokens) == 0 || cfg.Broker.Inflight < 1 {
			t.Fatalf("accepted an unusable config: %+v", cfg)
		}
		for _, b := range cfg.Bays {
			if _, err := serialport.ParseAddr(b.OBD); err != nil {
				t.Fatalf("accepted an address Open refuses: %v", err)
			}
		}
		if err := cfg.Emission.Validate(); err != nil {
			t.Fatalf("accepted emission limits that do not validate: %v", err)
		}
	})
}

func TestUpdateSection(t *testing.T) {
	cfg, err := Parse([]byte(minimal), "t.yaml")
	if err != nil || cfg.Update != nil {
		t.Fatalf("no update section: %+v, %v; want none", cfg.Update, err)
	}
	cfg, err = Parse([]byte(minimal+"update: {repository: \"https://updates.example.cn/obdgw/\", root_file: root.json}\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if u := cfg.Update; u.CheckEvery != DefaultCheckEvery || u.HealthTimeout != DefaultHealthTimeout || u.RootFile != "root.json" {
		t.Fatalf("defaults: %+v", u)
	}
	cfg, err = Parse([]byte(minimal+"update: {repository: \"http://127.0.0.1:8000/\", root_file: root.json, check_every: 10m, health_timeout: 2s}\n"), "t.yaml")
	if err != nil || cfg.Update.CheckEvery.String() != "10m0s" || cfg.Update.HealthTimeout.String() != "2s" {
		t.Fatalf("loopback http, set durations: %+v %v", cfg, err)
	}
	for name, c := range map[string]struct{ yaml, want string }{
		"missing repository": {"update: {root_file: r.json}\n", "t.yaml:9: update.repository: missing"},
		"plain http afar":    {"update: {repository: \"http://updates.example.cn/\", root_file: r.json}\n", "t.yaml:9: update.repository: \"http://updates.example.cn/\": plain http is allowed only to a server on this box"},
		"other scheme":       {"update: {repository: \"ftp://u.example.cn/\", root_file: r.json}\n", "update.repository: scheme \"ftp\": want https://"},
		"query":              {"update: {repository: \"https://u.example.cn/?a=1\", root_file: r.json}\n", "without user, query or fragment"},
		"missing root":       {"update: {repository: \"https://u.example.cn/\"}\n", "t.yaml:9: update.root_file: missing"},
		"check too often":    {"update: {repository: \"https://u.example.cn/\", root_file: r.json, check_every: 1s}\n", "update.check_every: 1s: want between 1m and 720h"},
		"timeout bad":        {"update: {repository: \"https://u.example.cn/\", root_file: r.json, health_timeout: 48h}\n", "update.health_timeout: 48h0m0s: want between 1s and 24h"},
		"typo":               {"update: {repository: \"https://u.example.cn/\", root_file: r.json, check_evry: 1h}\n", "update.check_evry: unknown key (did you mean check_every?)"},
	} {
		_, err := Parse([]byte(minimal+c.yaml), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", name, err, c.want)
		}
	}
}

func TestUpdateRootFileResolvedAndChecked(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "dms.token"), []byte("dms-token-0123456789abcdef"), 0o600)
	path := filepath.Join(dir, "obdgw.yaml")
	os.WriteFile(path, []byte(minimal+"update: {repository: \"https://u.example.cn/\", root_file: update-root.json}\n"), 0o640)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "update.root_file") || !strings.Contains(err.Error(), filepath.Join(dir, "update-root.json")) {
		t.Fatalf("missing root file: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "update-root.json"), []byte("{}"), 0o644)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Resolve(cfg.Update.RootFile); got != filepath.Join(dir, "update-root.json") {
		t.Errorf("root file resolved to %s", got)
	}
}

func TestTokenRoles(t *testing.T) {
	// A configuration written before roles: its token is the DMS's, shop_software.
	cfg, err := Parse([]byte(minimal), "min.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.API.Tokens[0].Role; got != "shop_software" {
		t.Fatalf("a token without a role has role %q, want shop_software", got)
	}
	withRoles := strings.Replace(minimal, "tokens: [{name: dms, file: dms.token}]",
		"tokens: [{name: dms, file: dms.token}, {name: boss, file: boss.token, role: manager}, {name: desk, file: desk.token, role: front_desk}]", 1)
	if cfg, err = Parse([]byte(withRoles), "min.yaml"); err != nil {
		t.Fatal(err)
	}
	if cfg.API.Tokens[1].Role != "manager" || cfg.API.Tokens[2].Role != "front_desk" {
		t.Fatalf("roles: %+v", cfg.API.Tokens)
	}
	bad := strings.Replace(minimal, "tokens: [{name: dms, file: dms.token}]", "tokens: [{name: dms, file: dms.token, role: admin}]", 1)
	_, err = Parse([]byte(bad), "min.yaml")
	if err == nil {
		t.Fatal("role admin accepted")
	}
	for _, want := range []string{"api.tokens[0].role", `"admin"`, "technician, front_desk, manager, shop_software, monitor"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestWasteDueDays(t *testing.T) {
	cfg, err := Parse([]byte(minimal), "min.yaml")
	if err != nil || cfg.Waste.DueDays != 90 {
		t.Fatalf("default due days: %v %+v", err, cfg)
	}
	if cfg, err = Parse([]byte(minimal+"waste: {due_days: 30}\n"), "min.yaml"); err != nil || cfg.Waste.DueDays != 30 {
		t.Fatalf("due_days 30: %v %+v", err, cfg)
	}
	_, err = Parse([]byte(minimal+"waste: {due_days: 0}\n"), "min.yaml")
	if err == nil || !strings.Contains(err.Error(), "waste.due_days") {
		t.Fatalf("due_days 0: %v", err)
	}
	if cfg, err = Parse([]byte(minimal+"waste: {codes: {scrap_tyre: 900-005-S17}}\n"), "min.yaml"); err != nil || cfg.Waste.Codes.Map()["scrap_tyre"] != "900-005-S17" {
		t.Fatalf("a configured code: %v %+v", err, cfg)
	}
	_, err = Parse([]byte(minimal+"waste: {codes: {scrap_steel: \"废钢\"}}\n"), "min.yaml")
	if err == nil || !strings.Contains(err.Error(), "waste.codes.scrap_steel") {
		t.Fatalf("a code that is no code: %v", err)
	}
}
