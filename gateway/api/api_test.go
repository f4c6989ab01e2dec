package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/audit"
	"github.com/obdgw/obdgw/gateway/workorder"
)

const (
	dmsToken   = "dms-token-0123456789abcdef"
	ownerName  = "王晓明"
	ownerPhone = "13905710042"
	carVIN     = "LJ8ECM2B2R1063348"
)

// fakeBays is a Bays with one bay, "bay1", holding a car with carVIN.
type fakeBays struct {
	mu     sync.Mutex
	scans  int
	clears []ClearRequest
	live   chan LiveValues
	slow   time.Duration // a clear takes this long (a car on a slow protocol)
}

func (f *fakeBays) List() []BayStatus {
	b, _ := f.Status("bay1")
	return []BayStatus{b}
}

func (f *fakeBays) Status(name string) (BayStatus, error) {
	if name != "bay1" {
		return BayStatus{}, fmt.Errorf("%w: %q", ErrNoBay, name)
	}
	return BayStatus{Name: "bay1", State: "ready", Adapter: "/dev/pts/9@38400 ELM327 v1.5", Vehicle: &Vehicle{VIN: carVIN, MIL: new(true)}}, nil
}

func (f *fakeBays) Scan(ctx context.Context, name string) error {
	if _, err := f.Status(name); err != nil {
		return err
	}
	f.mu.Lock()
	f.scans++
	f.mu.Unlock()
	return nil
}

func (f *fakeBays) ClearDTCs(ctx context.Context, name string, req ClearRequest) (ClearResult, error) {
	if _, err := f.Status(name); err != nil {
		return ClearResult{}, err
	}
	if f.slow > 0 {
		select {
		case <-time.After(f.slow):
		case <-ctx.Done():
			return ClearResult{}, fmt.Errorf("the clear was cut short: %w", ctx.Err())
		}
	}
	f.mu.Lock()
	f.clears = append(f.clears, req)
	f.mu.Unlock()
	if req.VIN != carVIN {
		return ClearResult{}, fmt.Errorf("%w: the car reports %s", ErrVINMismatch, carVIN)
	}
	return ClearResult{Bay: name, VIN: req.VIN, Cleared: true, ScanBefore: "SC000001", ScanAfter: "SC000002"}, nil
}

func (f *fakeBays) Live(ctx context.Context, name string) (<-chan LiveValues, error) {
	if _, err := f.Status(name); err != nil {
		return nil, err
	}
	return f.live, nil
}

func (f *fakeBays) clearCount() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.clears) }

type fixture struct {
	t     *testing.T
	srv   *httptest.Server
	api   *Server
	db    *buffer.DB
	store *workorder.Store
	bays  *fakeBays
	logs  *bytes.Buffer
}

func newFixture(t *testing.T, anonymousReads bool) *fixture {
	t.Helper()
	return newFixtureAt(t, filepath.Join(t.TempDir(), "obdgw.db"), anonymousReads)
}

// newFixtureAt is newFixture with the buffer file at path.
func newFixtureAt(t *testing.T, path string, anonymousReads bool) *fixture {
	t.Helper()
	now := func() time.Time { return time.Date(2024, 3, 13, 2, 0, 0, 0, time.UTC) }
	db, err := buffer.Open(path, buffer.Options{GatewayID: "gw-test", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store := workorder.New(db, workorder.Options{Company: "杭州示例汽车维修有限公司", CompanyCode: "330106000099901", Province: "33",
		GatewayID: "gw-test", Now: now, Logger: log})
	bays := &fakeBays{live: make(chan LiveValues, 4)}
	a := New(Options{Store: store, Bays: bays, Outbox: db, Tokens: append([]Token{{Name: "dms", Secret: dmsToken, Role: RoleManager}, {Name: "tablet", Secret: "tablet-token-0123456789"}}, roleTokens()...),
		AnonymousReads: anonymousReads, MaxBodyBytes: 4096, Logger: log, Audit: audit.New(db, audit.Options{Now: now})})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &fixture{t: t, srv: srv, api: a, db: db, store: store, bays: bays, logs: logs}
}

// do sends a request; token "" sends none.
func (f *fixture) do(method, path, token, body string) (int, map[string]any) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+Prefix+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &m); err != nil {
			f.t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
		}
	}
	return resp.StatusCode, m
}

func (f *fixture) mustDo(want int, method, path, body string) map[string]any {
	f.t.Helper()
	code, m := f.do(method, path, dmsToken, body)
	if code != want {
		f.t.Fatalf("%s %s = %d %v, want %d", method, path, code, m, want)
	}
	return m
}

const newOrderBody = `{"plate":"浙A7K2M9","plate_color":"blue","mileage_km":86412,"bay":"bay1","fault_description":"双怠速检验CO超标","test_no":"440600202403110042","emission_repair":true,"owner_name":"王晓明","owner_phone":"13905710042"}`

// concrete fills the path parameters of a route pattern.
func concrete(path string) string {
	r := strings.NewReplacer("{id}", "WO000001", "{bay}", "bay1", "{seq}", "1")
	return r.Replace(path)
}

func TestEveryWriteNeedsAToken(t *testing.T) {
	for _, anon := range []bool{false, true} {
		t.Run(fmt.Sprintf("anonymous_reads=%v", anon), func(t *testing.T) {
			f := newFixture(t, anon)
			f.mustDo(201, "POST", "/workorders", newOrderBody)
			before, _ := f.store.Get("WO000001")
			writes := 0
			for _, rt := range f.api.Routes() {
				path := concrete(rt.Path)
				for _, tok := range []string{"", "wrong-token-0123456789abcdef", dmsToken[:len(dmsToken)-1]} {
					if anon && tok == "" && !isWrite(rt.Method) && (strings.HasSuffix(rt.Path, "/live") || rt.Path == "/events") {
						continue // an allowed anonymous stream would never end; auth is what is tested here
					}
					code, m := f.do(rt.Method, path, tok, `{"confirm":true,"vin":"`+carVIN+`","request_id":"x","costlistcode":"HS1","name":"x","hours":1}`)
					switch {
					case isPublic(rt):
						if code != 200 {
							t.Errorf("%s %s (public) = %d", rt.Method, path, code)
						}
					case isWrite(rt.Method) || !anon || tok != "":
						if code != http.StatusUnauthorized || m["error"] == "" {
							t.Errorf("%s %s with token %q = %d %v, want 401", rt.Method, path, tok, code, m)
						}
					}
				}
				if isWrite(rt.Method) {
					writes++
				}
			}
			if writes < 10 {
				t.Fatalf("only %d write routes enumerated", writes)
			}
			after, _ := f.store.Get("WO000001")
			if after.Status != before.Status || len(after.Items) != 0 || f.bays.clearCount() != 0 || f.bays.scans != 0 {
				t.Fatalf("an unauthenticated request changed something: %+v, clears %d", after, f.bays.clearCount())
			}
			if rs, _ := f.db.Peek(10); len(rs) != 0 {
				t.Fatalf("outbox: %+v", rs)
			}
			if strings.Contains(f.logs.String(), dmsToken) || strings.Contains(f.logs.String(), "wrong-token") {
				t.Fatal("a token reached the log")
			}
		})
	}
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(openapiYAML, &doc); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, false)
	registered := map[string]bool{}
	for _, rt := range f.api.Routes() {
		key := strings.ToLower(rt.Method) + " " + rt.Path
		registered[key] = true
		ops, ok := doc.Paths[rt.Path]
		if !ok {
			t.Errorf("openapi.yaml lacks path %s", rt.Path)
			continue
		}
		if _, ok := ops[strings.ToLower(rt.Method)]; !ok {
			t.Errorf("openapi.yaml lacks %s %s", rt.Method, rt.Path)
		}
	}
	for path, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			if !registered[m+" "+path] {
				t.Errorf("openapi.yaml describes %s %s, which is not registered", strings.ToUpper(m), path)
			}
		}
	}
	// The document is served too.
	code, _ := f.do("GET", "/openapi.yaml", "", "")
	if code != 200 {
		t.Fatalf("GET /openapi.yaml = %d", code)
	}
}

func TestWorkOrderFlow(t *testing.T) {
	f := newFixture(t, true)
	o := f.mustDo(201, "POST", "/workorders", newOrderBody)
	id, _ := o["id"].(string)
	if id != "WO000001" || o["owner"] != nil || o["plate"] != "浙A7K2M9" {
		t.Fatalf("created %v", o)
	}
	// Owner data: never in lists, only on explicit request with a token.
	list := f.mustDo(200, "GET", "/workorders", "")
	b, _ := json.Marshal(list)
	if strings.Contains(string(b), ownerPhone) || strings.Contains(string(b), ownerName) || !strings.Contains(string(b), id) {
		t.Fatalf("list %s", b)
	}
	if g := f.mustDo(200, "GET", "/workorders/"+id, ""); g["owner"] != nil {
		t.Fatalf("owner shown without include: %v", g)
	}
	g := f.mustDo(200, "GET", "/workorders/"+id+"?include=owner", "")
	if ow, _ := g["owner"].(map[string]any); ow == nil || ow["phone"] != ownerPhone {
		t.Fatalf("include=owner: %v", g)
	}
	if code, m := f.do("GET", "/workorders/"+id+"?include=owner", "", ""); code != 401 || m["field"] != "include" {
		t.Fatalf("anonymous include=owner = %d %v", code, m)
	}
	if code, m := f.do("GET", "/workorders/"+id+"?include=phone", dmsToken, ""); code != 400 || m["field"] != "include" {
		t.Fatalf("include=phone = %d %v", code, m)
	}

	report := `{"time":"2024-03-11T03:00:00Z","vin":"` + carVIN + `","vin_valid":true,"mil":true,"dtcs":{"stored":[{"code":"P0420","ecu":"7E8","service":"03","description":"催化器效率低于阈值(第1排)"},{"code":"P0171","ecu":"7E8","service":"03","description":"系统过稀(第1排)"}],"pending":[],"permanent":[]}}`
	o = f.mustDo(200, "POST", "/workorders/"+id+"/scans", `{"bay":"bay1","report":`+report+`}`)
	if o["vin"] != carVIN || o["vin_source"] != "obd" {
		t.Fatalf("after scan %v", o)
	}
	scans := f.mustDo(200, "GET", "/scans?bay=bay1", "")
	if items, _ := scans["items"].([]any); len(items) != 1 || items[0].(map[string]any)["order"] != id {
		t.Fatalf("scans %v", scans)
	}
	if free := f.mustDo(200, "GET", "/scans?unattached=true", ""); len(free["items"].([]any)) != 0 {
		t.Fatalf("unattached scans %v", free)
	}
	if code, m := f.do("GET", "/scans?unattached=maybe", dmsToken, ""); code != 400 || m["field"] != "unattached" {
		t.Fatalf("bad filter = %d %v", code, m)
	}
	f.mustDo(200, "POST", "/workorders/"+id+"/items", `{"name":"更换三元催化转化器","hours":2.5}`)
	o = f.mustDo(200, "POST", "/workorders/"+id+"/parts", `{"name":"三元催化转化器总成","code":"1205100-TW01","quantity":1}`)
	if items, _ := o["items"].([]any); len(items) != 1 {
		t.Fatalf("items %v", o["items"])
	}
	o = f.mustDo(200, "PATCH", "/workorders/"+id, `{"fault_description":"双怠速检验CO超标"}`)

	st := f.mustDo(200, "POST", "/workorders/"+id+"/settle", `{"costlistcode":"HS2024031300187","settle_date":"20240313"}`)
	if ord, _ := st["order"].(map[string]any); ord["status"] != "settled" || st["outbox_seq"] != float64(1) {
		t.Fatalf("settle %v", st)
	}
	if ob := f.mustDo(200, "GET", "/outbox", ""); ob["depth"] != float64(1) {
		t.Fatalf("outbox %v", ob)
	}
	recs := f.mustDo(200, "GET", "/outbox/records", "")
	b, _ = json.Marshal(recs)
	if !strings.Contains(string(b), `"costlistcode":"HS2024031300187"`) || !strings.Contains(string(b), "尾气治理：双怠速检验CO超标；读码P0420") {
		t.Fatalf("outbox records %s", b)
	}
	if strings.Contains(string(b), ownerPhone) || strings.Contains(string(b), ownerName) {
		t.Fatal("owner data in the outbox")
	}
	// Settled: no silent edit; a revision instead.
	if code, _ := f.do("PATCH", "/workorders/"+id, dmsToken, `{"mileage_km":1}`); code != 409 {
		t.Fatalf("PATCH settled = %d", code)
	}
	rv := f.mustDo(200, "POST", "/workorders/"+id+"/revisions", `{"reason":"里程录入错误","mileage_km":86421}`)
	if ord, _ := rv["order"].(map[string]any); ord["revision"] != float64(2) {
		t.Fatalf("revision %v", rv)
	}
	hist := f.mustDo(200, "GET", "/workorders/"+id+"/records", "")
	if items, _ := hist["items"].([]any); len(items) != 2 {
		t.Fatalf("records %v", hist)
	}
	// Validation failures name the field with 422.
	o2 := f.mustDo(201, "POST", "/workorders", `{"plate":"浙A10001","plate_color":"blue","fault_description":"异响"}`)
	code, m := f.do("POST", "/workorders/"+o2["id"].(string)+"/settle", dmsToken, `{"costlistcode":"HS2024031300187"}`)
	if code != 422 || m["field"] == nil || m["problems"] == nil {
		t.Fatalf("invalid settle = %d %v", code, m)
	}
	fields := fmt.Sprint(m["problems"])
	for _, want := range []string{"vin", "mileage_km", "costlistcode"} {
		if !strings.Contains(fields, want) {
			t.Errorf("problems %s lack %s", fields, want)
		}
	}
	if code, _ := f.do("GET", "/workorders/WO999999", dmsToken, ""); code != 404 {
		t.Fatalf("missing order = %d", code)
	}
	if code, m := f.do("GET", "/workorders?status=closed", dmsToken, ""); code != 400 || m["field"] != "status" {
		t.Fatalf("bad filter = %d %v", code, m)
	}
	if strings.Contains(f.logs.String(), ownerPhone) || strings.Contains(f.logs.String(), ownerName) {
		t.Fatal("owner data in the log")
	}
}

func TestMalformedBodiesAreRefusedAndLoseNothing(t *testing.T) {
	f := newFixture(t, false)
	f.mustDo(201, "POST", "/workorders", newOrderBody)
	f.mustDo(200, "POST", "/workorders/WO000001/items", `{"name":"保养","hours":1}`)
	for _, tc := range []struct {
		name, method, path, body, ctype string
		code                            int
		field, msg                      string
	}{
		{"empty", "POST", "/workorders", "", "", 400, "", "empty body"},
		{"truncated", "POST", "/workorders", `{"plate":"浙A10001"`, "", 400, "", "malformed JSON"},
		{"syntax", "POST", "/workorders", `{"plate":}`, "", 400, "plate", "malformed JSON at byte"},
		{"array", "POST", "/workorders", `[]`, "", 400, "", "want a JSON object, got an array"},
		{"null", "POST", "/workorders/WO000001/settle", `null`, "", 400, "", "want a JSON object, got null"},
		{"null clear", "POST", "/bays/bay1/clear-dtcs", ` null `, "", 400, "", "got null"},
		{"wrong type", "POST", "/workorders", `{"plate":1,"plate_color":"blue"}`, "", 400, "plate", "want a JSON string"},
		{"wrong number", "POST", "/workorders", `{"plate":"浙A10001","plate_color":"blue","mileage_km":"far"}`, "", 400, "mileage_km", ""},
		{"unknown field", "POST", "/workorders", `{"plate":"浙A10001","plate_color":"blue","colour":"red"}`, "", 400, "colour", "unknown field"},
		{"trailing", "POST", "/workorders", `{"plate":"浙A10001","plate_color":"blue"} {}`, "", 400, "", "trailing data"},
		{"too large", "POST", "/workorders", `{"plate":"` + strings.Repeat("x", 5000) + `"}`, "", 413, "", "larger than 4096"},
		{"form", "POST", "/workorders", `plate=x`, "application/x-www-form-urlencoded", 415, "", "application/json"},
		{"bad value", "POST", "/workorders", `{"plate":"浙A10001","plate_color":"purple"}`, "", 400, "plate_color", "want one of"},
		{"hours not a number", "POST", "/workorders/WO000001/items", `{"name":"x","hours":"lots"}`, "", 400, "hours", "want a number"},
		{"hours too precise", "POST", "/workorders/WO000001/items", `{"name":"x","hours":1.25}`, "", 400, "items[0].hours", "decimal"},
		{"patch unknown", "PATCH", "/workorders/WO000001", `{"owner":{"name":"x"}}`, "", 400, "owner", "unknown field"},
		{"scan report unknown field", "POST", "/workorders/WO000001/scans", `{"report":{"vin":"x","colour":1}}`, "", 400, "report.colour", "unknown field"},
		{"scan neither", "POST", "/workorders/WO000001/scans", `{}`, "", 400, "scan_id", ""},
		{"settle no code", "POST", "/workorders/WO000001/settle", `{}`, "", 400, "costlistcode", ""},
		{"settle bad date", "POST", "/workorders/WO000001/settle", `{"costlistcode":"A","settle_date":"13/03/2024"}`, "", 400, "settle_date", ""},
		{"revise open", "POST", "/workorders/WO000001/revisions", `{"reason":"x","mileage_km":1}`, "", 409, "", "not settled"},
		{"scan with body", "POST", "/bays/bay1/scan", `{"now":true}`, "", 400, "now", "unknown field"},
		{"requeue bad seq", "POST", "/deadletters/abc/requeue", ``, "", 400, "seq", ""},
		// issue 18 item 7: what encoding/json let through
		{"field name case", "POST", "/workorders", `{"PLATE":"浙A1","plate_color":"blue"}`, "", 400, "PLATE", "unknown field"},
		{"duplicate key", "POST", "/workorders", `{"plate":"浙A10001","plate":"浙B20002","plate_color":"blue"}`, "", 400, "plate", "twice"},
		{"invalid UTF-8", "POST", "/workorders", "{\"plate\":\"浙A1\xff\",\"plate_color\":\"blue\"}", "", 400, "plate", "UTF-8"},
		{"lone surrogate", "POST", "/workorders", `{"plate":"浙A10001\ud800","plate_color":"blue"}`, "", 400, "plate", "UTF-8"},
		{"replacement character", "POST", "/workorders", `{"plate":"浙A10001","plate_color":"blue","fault_description":"怠速�抖动"}`, "", 400, "fault_description", "U+FFFD"},
		{"bidi override", "POST", "/workorders", "{\"plate\":\"浙A\u202E1\",\"plate_color\":\"blue\"}", "", 400, "plate", "U+202E"},
		{"escaped bidi override", "POST", "/workorders", `{"plate":"浙A10001","plate_color":"blue","items":[{"name":"\u202e换油","hours":1}]}`, "", 400, "items[0].name", "U+202E"},
		{"control character", "PATCH", "/workorders/WO000001", `{"owner_name":"王\u0007"}`, "", 400, "owner_name", "U+0007"},
		{"bidi in a report", "POST", "/workorders/WO000001/scans", `{"report":{"vin":"x","dtcs":{"stored":[{"code":"P0420","description":"\u202e"}]}}}`, "", 400, "report.dtcs.stored[0].description", "U+202E"},
		{"duplicate in a report", "POST", "/workorders/WO000001/scans", `{"report":{"vin":"x","vin":"y"}}`, "", 400, "report.vin", "twice"},
		{"no content type", "POST", "/workorders", `{"plate":"浙A10001","plate_color":"blue"}`, "none", 415, "", "application/json"},
		{"json-ish content type", "POST", "/workorders", `{"plate":"浙A10001","plate_color":"blue"}`, "application/jsonp", 415, "", "application/json"},
		{"not UTF-8 charset", "POST", "/workorders", `{"plate":"浙A10001","plate_color":"blue"}`, "application/json; charset=gbk", 415, "", "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, f.srv.URL+Prefix+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+dmsToken)
			ct := tc.ctype
			if ct == "" {
				ct = "application/json"
			}
			if ct != "none" {
				req.Header.Set("Content-Type", ct)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
				t.Fatalf("error answer is not JSON: %v", err)
			}
			msg, _ := m["error"].(string)
			field, _ := m["field"].(string)
			if resp.StatusCode != tc.code || msg == "" || field != tc.field || !strings.Contains(msg, tc.msg) {
				t.Fatalf("= %d %v; want %d field %q message containing %q", resp.StatusCode, m, tc.code, tc.field, tc.msg)
			}
		})
	}
	o, err := f.store.Get("WO000001")
	if err != nil || o.Plate != "浙A7K2M9" || len(o.Items) != 1 || o.Status != workorder.Open || o.Owner == nil {
		t.Fatalf("stored order after bad requests: %+v, %v", o, err)
	}
	if list, _, _ := f.store.List(workorder.Filter{}); len(list) != 1 {
		t.Fatalf("%d orders stored, want 1", len(list))
	}
}

func TestClearDTCsOnlyConfirmedAndNeverReplayed(t *testing.T) {
	f := newFixture(t, false)
	for _, tc := range []struct{ body, field string }{
		{`{"vin":"` + carVIN + `","request_id":"r1"}`, "confirm"},
		{`{"confirm":false,"vin":"` + carVIN + `","request_id":"r1"}`, "confirm"},
		{`{"confirm":true,"request_id":"r1"}`, "vin"},
		{`{"confirm":true,"vin":"LJ8ECM2B2R106334","request_id":"r1"}`, "vin"},
		{`{"confirm":true,"vin":"` + carVIN + `"}`, "request_id"},
		{`{"confirm":"yes","vin":"` + carVIN + `","request_id":"r1"}`, "confirm"},
	} {
		code, m := f.do("POST", "/bays/bay1/clear-dtcs", dmsToken, tc.body)
		if code != 400 || m["field"] != tc.field {
			t.Errorf("%s = %d %v, want 400 on %s", tc.body, code, m, tc.field)
		}
	}
	if n := f.bays.clearCount(); n != 0 {
		t.Fatalf("%d clears sent for refused requests", n)
	}
	body := `{"confirm":true,"vin":"` + strings.ToLower(carVIN) + `","request_id":"r1"}`
	res := f.mustDo(200, "POST", "/bays/bay1/clear-dtcs", body)
	if res["cleared"] != true || res["scan_before"] != "SC000001" {
		t.Fatalf("clear %v", res)
	}
	// The same request again — a retry, a double tap — is refused and not sent.
	if code, m := f.do("POST", "/bays/bay1/clear-dtcs", dmsToken, body); code != 409 || m["field"] != "request_id" {
		t.Fatalf("replay = %d %v", code, m)
	}
	if n := f.bays.clearCount(); n != 1 {
		t.Fatalf("clears sent = %d, want exactly 1", n)
	}
	// Another car's VIN: the bay refuses.
	if code, m := f.do("POST", "/bays/bay1/clear-dtcs", dmsToken, `{"confirm":true,"vin":"LSVNV2182E2100001","request_id":"r2"}`); code != 409 || m["field"] != "vin" {
		t.Fatalf("mismatch = %d %v", code, m)
	}
	if code, _ := f.do("POST", "/bays/bay9/clear-dtcs", dmsToken, `{"confirm":true,"vin":"`+carVIN+`","request_id":"r3"}`); code != 404 {
		t.Fatalf("unknown bay = %d", code)
	}
}

func TestBaysAndLiveStream(t *testing.T) {
	f := newFixture(t, false)
	bays := f.mustDo(200, "GET", "/bays", "")
	if items, _ := bays["items"].([]any); len(items) != 1 {
		t.Fatalf("bays %v", bays)
	}
	if b := f.mustDo(200, "GET", "/bays/bay1", ""); b["state"] != "ready" {
		t.Fatalf("bay %v", b)
	}
	if code, _ := f.do("GET", "/bays/nope", dmsToken, ""); code != 404 {
		t.Fatalf("unknown bay = %d", code)
	}
	f.mustDo(202, "POST", "/bays/bay1/scan", "")
	f.mustDo(202, "POST", "/bays/bay1/scan", "{}")
	if f.bays.scans != 2 {
		t.Fatalf("scans started: %d", f.bays.scans)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+Prefix+"/bays/bay1/live", nil)
	req.Header.Set("Authorization", "Bearer "+dmsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("live = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	f.bays.live <- LiveValues{"rpm": 812, "coolant_c": 88.5, "speed_kmh": 0}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "data: ") {
			var v map[string]float64
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &v); err != nil || v["rpm"] != 812 || v["coolant_c"] != 88.5 {
				t.Fatalf("live data %q: %v", line, err)
			}
			return
		}
	}
	t.Fatalf("stream ended without data: %v", sc.Err())
}

func TestOutboxDeadLetterRequeue(t *testing.T) {
	f := newFixture(t, false)
	r, err := f.db.Append(context.Background(), "ehr", "obdgw/v1/33/330106000099901/gw-test/ehr", []byte(`{"id":"","kind":"ehr"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.DeadLetter(r.Seq, "platform: -1 参数无效"); err != nil {
		t.Fatal(err)
	}
	dl := f.mustDo(200, "GET", "/deadletters", "")
	items, _ := dl["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["reason"] != "platform: -1 参数无效" {
		t.Fatalf("dead letters %v", dl)
	}
	rq := f.mustDo(200, "POST", fmt.Sprintf("/deadletters/%d/requeue", r.Seq), "")
	if rq["id"] != r.ID {
		t.Fatalf("requeued %v, want id %s kept", rq, r.ID)
	}
	if code, _ := f.do("POST", fmt.Sprintf("/deadletters/%d/requeue", r.Seq), dmsToken, ""); code != 404 {
		t.Fatalf("requeue twice = %d", code)
	}
	if ob := f.mustDo(200, "GET", "/outbox", ""); ob["depth"] != float64(1) || ob["dead_letters"] != float64(0) {
		t.Fatalf("outbox %v", ob)
	}
	if up := f.mustDo(200, "GET", "/uplink", ""); up["connected"] != false {
		t.Fatalf("uplink %v", up)
	}
	if code, _ := f.do("GET", "/events", dmsToken, ""); code != 404 {
		t.Fatalf("events without a bus = %d", code)
	}
	if code, m := f.do("GET", "/nothing", dmsToken, ""); code != 404 || m["error"] == nil {
		t.Fatalf("unknown route = %d %v", code, m)
	}
}

// FuzzDecodeBody feeds arbitrary bodies to the strict decoder for every request type: it must
// never panic, every refusal is a 4xx with a message, and nothing accepted holds a character
// the decoder refuses (U+FFFD, bidirectional controls, control characters).
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{newOrderBody, `{"name":"x","hours":1}`, `{"confirm":true,"vin":"` + carVIN + `","request_id":"r"}`,
		`{"reason":"x","mileage_km":1,"items":[{"name":"a","hours":"1.0"}]}`, `{"report":{"vin":"x"}}`, `{}`, `[]`, `{"a":1}`, `{"plate":"\ud800"}`, ``, `nul`, `{"items":null}`,
		`{"PLATE":"x"}`, `{"plate":"a","plate":"b"}`, "{\"plate\":\"\xff\"}", `{"plate":"\u202e"}`, "{\"plate\":\"\uFFFD\"}", `{"items":[{"name":"\u2066x","hours":1}]}`} {
		f.Add([]byte(s))
	}
	targets := []func() any{
		func() any { return &workorder.NewOrder{} }, func() any { return &workorder.Patch{} }, func() any { return &workorder.Item{} },
		func() any { return &workorder.Part{} }, func() any { return &workorder.SettleRequest{} }, func() any { return &workorder.RevisionRequest{} },
		func() any { return &ClearRequest{} }, func() any { return &AttachScanRequest{} },
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, mk := range targets {
			v := mk()
			e := decodeBody(http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(bytes.NewReader(body)), 4096), v, false)
			if e == nil {
				// What is accepted holds no refused character and no damaged text (encoding/json
				// would write invalid UTF-8 as U+FFFD).
				out, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if err := checkRunes(string(out)); err != nil {
					t.Fatalf("decode %q accepted %s: %v", body, out, err)
				}
				continue
			}
			if e.status < 400 || e.status > 499 || e.msg == "" {
				t.Fatalf("decode %q: %d %q", body, e.status, e.msg)
			}
		}
	})
}

// TestALongRequestOutlivesTheServerTimeouts: the server's read and write timeouts bound how
// long a client takes to send its request and to take the answer, not how long the gateway
// works on it: a clear that takes longer than both is neither cancelled nor loses its answer.
func TestALongRequestOutlivesTheServerTimeouts(t *testing.T) {
	f := newFixture(t, false)
	const timeout = 200 * time.Millisecond
	srv := httptest.NewUnstartedServer(f.api.Handler())
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = timeout, timeout
	srv.Start()
	defer srv.Close()
	f.srv = srv
	f.bays.slow = 5 * timeout
	res := f.mustDo(200, "POST", "/bays/bay1/clear-dtcs", `{"confirm":true,"vin":"`+carVIN+`","request_id":"r-slow"}`)
	if res["cleared"] != true || f.bays.clearCount() != 1 {
		t.Fatalf("slow clear = %v (%d clears)", res, f.bays.clearCount())
	}
}

// TestFullDiskAnswers503AndHealthSaysSo fills a real (small tmpfs) file system under the
// buffer file (issue 18 item 7): a write is answered 503 saying the disk is full and that
// nothing was stored, /health answers 503 "degraded" while writes fail, and both recover once
// there is room again. Mounting needs root (CAP_SYS_ADMIN); elsewhere the test skips.
func TestFullDiskAnswers503AndHealthSaysSo(t *testing.T) {
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CAP_SYS_ADMIN): the full-disk answer is not tested here")
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): the full-disk answer is not tested here", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	f := newFixtureAt(t, filepath.Join(dir, "obdgw.db"), false)
	f.mustDo(201, "POST", "/workorders", newOrderBody)
	if code, m := f.do("GET", "/health", "", ""); code != 200 || m["status"] != "ok" {
		t.Fatalf("/health before the disk filled = %d %v", code, m)
	}

	// Fill what is left of the file system.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := filler.Write(chunk); err != nil {
			break
		}
	}
	filler.Close()

	created := 1
	code, m := 0, map[string]any(nil)
	for range 100 {
		if code, m = f.do("POST", "/workorders", dmsToken, newOrderBody); code != http.StatusCreated {
			break
		}
		created++
	}
	msg, _ := m["error"].(string)
	if code != http.StatusServiceUnavailable || !strings.Contains(msg, "the gateway's disk is full") ||
		!strings.Contains(msg, "nothing was stored") || !strings.Contains(msg, dir) {
		t.Fatalf("a write on a full disk = %d %v; want 503 saying the disk holding %s is full and nothing was stored", code, m, dir)
	}
	if code, m := f.do("GET", "/health", "", ""); code != http.StatusServiceUnavailable || m["status"] != "degraded" ||
		!strings.Contains(fmt.Sprint(m["error"]), "disk is full") {
		t.Errorf("/health while writes fail = %d %v; want 503 degraded naming the full disk", code, m)
	}
	if list, _, err := f.store.List(workorder.Filter{}); err != nil || len(list) != created {
		t.Errorf("%d orders stored after the refusal (%v), want the %d answered 201", len(list), err, created)
	}

	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	f.mustDo(201, "POST", "/workorders", newOrderBody)
	if code, m := f.do("GET", "/health", "", ""); code != 200 || m["status"] != "ok" {
		t.Errorf("/health after a write went through again = %d %v", code, m)
	}
}

func TestSettlementWaitsForTheClock(t *testing.T) {
	db, err := buffer.Open(filepath.Join(t.TempDir(), "obdgw.db"), buffer.Options{GatewayID: "gw-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A box that booted without a clock source believes it is 1970.
	now := func() time.Time { return time.Date(1970, 1, 1, 8, 0, 0, 0, time.UTC) }
	store := workorder.New(db, workorder.Options{Company: "测试修理厂", CompanyCode: "330106000099901", Province: "33", GatewayID: "gw-test", Now: now})
	srv := httptest.NewServer(New(Options{Store: store, Outbox: db, Tokens: []Token{{Name: "dms", Secret: dmsToken}}}).Handler())
	defer srv.Close()
	f := &fixture{t: t, srv: srv}
	o := f.mustDo(201, "POST", "/workorders", `{"plate":"浙A10001","plate_color":"blue","vin":"`+carVIN+`","mileage_km":5,"fault_description":"保养"}`)
	code, m := f.do("POST", "/workorders/"+o["id"].(string)+"/settle", dmsToken, `{"costlistcode":"HS1"}`)
	if code != 503 || !strings.Contains(m["error"].(string), "clock") {
		t.Fatalf("settle with an unset clock = %d %v", code, m)
	}
	if rs, _ := db.Peek(10); len(rs) != 0 {
		t.Fatalf("a record dated 1970 was queued: %+v", rs)
	}
}

// TestRequestLogLevel: a shop's tablets poll all day; answered requests (2xx–4xx) log at
// debug, so an info log holds what happened to the shop's data, and 5xx at warn.
func TestRequestLogLevel(t *testing.T) {
	for status, want := range map[int]slog.Level{200: slog.LevelDebug, 201: slog.LevelDebug, 401: slog.LevelDebug,
		409: slog.LevelDebug, 500: slog.LevelWarn, 503: slog.LevelWarn} {
		if got := requestLevel(status); got != want {
			t.Errorf("status %d logs at %v, want %v", status, got, want)
		}
	}
}

// TestBackupNeedsATokenAndIsAStore: POST /backup streams a copy that opens as a store holding
// the settled order's record; without a token it is 401 even with anonymous reads on.
func TestBackupNeedsATokenAndIsAStore(t *testing.T) {
	f := newFixture(t, true)
	if _, err := f.db.Append(context.Background(), "ehr", "obdgw/ehr", []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+Prefix+"/backup", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("backup without a token: %s, want 401", resp.Status)
	}
	req, _ = http.NewRequest("POST", f.srv.URL+Prefix+"/backup", nil)
	req.Header.Set("Authorization", "Bearer "+dmsToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("backup: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	dest := filepath.Join(t.TempDir(), "copy.db")
	if _, err := buffer.WriteBackup(dest, func(w io.Writer) (int64, error) { return io.Copy(w, resp.Body) }); err != nil {
		t.Fatal(err)
	}
	b, err := buffer.Open(dest, buffer.Options{})
	if err != nil {
		t.Fatalf("the copy is not a store: %v", err)
	}
	defer b.Close()
	if recs, _ := b.Peek(10); len(recs) != 1 || string(recs[0].Payload) != `{"x":1}` {
		t.Fatalf("copy holds %+v", recs)
	}
}
