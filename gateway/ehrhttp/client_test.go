package ehrhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/gateway/ehrhttp/ehrhttptest"
	"github.com/obdgw/obdgw/gateway/wire"
)

// docExample is the full example of docs/ehr-record.md §3.1, the national form as the
// platform takes it, read from the page itself so the test follows the documentation.
func docExample(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../docs/ehr-record.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(b, []byte("### 3.1 Full example"))
	if !ok {
		t.Fatal("docs/ehr-record.md has no §3.1 Full example")
	}
	_, after, ok = bytes.Cut(after, []byte("```json\n"))
	block, _, ok2 := bytes.Cut(after, []byte("```"))
	if !ok || !ok2 {
		t.Fatal("docs/ehr-record.md §3.1 has no json block")
	}
	var c bytes.Buffer
	if err := json.Compact(&c, block); err != nil {
		t.Fatalf("§3.1 example is not JSON: %v", err)
	}
	return c.Bytes()
}

// exampleEnvelope is the ehr/1 envelope the gateway would publish for the record of the
// documented example: the national fields under record, our bookkeeping under meta.
const exampleEnvelope = `{"id":"gw-hz-0001-42","kind":"ehr","schema":"ehr/1","gateway":"gw-hz-0001",
 "company_code":"330106000099901","created_at":"2024-03-13T07:42:10Z","payload":{
 "record":{"basicInfo":{"vehicleplatenumber":"浙A7K2M9","companyname":"杭州示例汽车维修有限公司",
  "vin":"LJ8ECM2B2R1063348","repairdate":"20240311","repairmileage":"86412","settledate":"20240313",
  "faultdescription":"尾气治理：双怠速检验CO超标；读码P0420 催化器效率低于阈值(第1排)、P0171 系统过稀(第1排)",
  "costlistcode":"HS2024031300187"},
  "vehiclepartslist":[{"partsname":"三元催化转化器总成","partscode":"1205100-TW01","partsquantity":"1"},
   {"partsname":"后氧传感器","partscode":"3612020-TW02","partsquantity":"1"},
   {"partsname":"排气管密封垫","partscode":"1200013-TW03","partsquantity":"2"}],
  "repairprojectlist":[{"repairproject":"排放故障诊断（OBD读码、尾气检测）","workinghours":"1.0"},
   {"repairproject":"更换三元催化转化器","workinghours":"2.5"},
   {"repairproject":"更换后氧传感器","workinghours":"0.5"}]},
 "meta":{"workorder":"WO000042","costlistcode":"HS2024031300187","revision":1,"vin_source":"obd","test_no":"330106202403110012"}}}`

// TestBodyIsTheDocumentedExample: the ehr/1 envelope maps to exactly the bytes of the
// documented national example — field names, order, every value a string, both lists, the
// token in the body, nothing of meta.
func TestBodyIsTheDocumentedExample(t *testing.T) {
	want := docExample(t)
	rec, env, err := RecordOf([]byte(exampleEnvelope))
	if err != nil {
		t.Fatal(err)
	}
	if env.ID != "gw-hz-0001-42" {
		t.Errorf("envelope id %q", env.ID)
	}
	got, err := Body(rec, "5d0c9e2b7a4f4c18b3e6a1f09d27c4e8")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("body differs from docs/ehr-record.md §3.1\ngot:  %s\nwant: %s", got, want)
	}
	for _, leak := range []string{"meta", "test_no", "WO000042", "revision"} {
		if bytes.Contains(got, []byte(leak)) {
			t.Errorf("body carries %q, which is ours, not the national form's", leak)
		}
	}
}

func TestBodyListsNeverNull(t *testing.T) {
	got, err := Body(wire.EHRRecord{Basic: wire.EHRBasicInfo{CostListNo: "X1"}}, "tok")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte(`"vehiclepartslist":[]`)) || !bytes.Contains(got, []byte(`"repairprojectlist":[]`)) {
		t.Errorf("empty lists must be [] (docs/ehr-record.md §9 rule 2): %s", got)
	}
	if _, err := Body(wire.EHRRecord{}, ""); err == nil {
		t.Error("a body without a token must be refused")
	}
}

func TestRecordOfRefusesWhatIsNotAnEHRRecord(t *testing.T) {
	for name, env := range map[string]string{
		"not json":      `{`,
		"im kind":       strings.Replace(strings.Replace(exampleEnvelope, `"kind":"ehr"`, `"kind":"im"`, 1), `"schema":"ehr/1"`, `"schema":"im/1"`, 1),
		"token in it":   strings.Replace(exampleEnvelope, `"record":{`, `"record":{"access_token":"x",`, 1),
		"meta mismatch": strings.Replace(exampleEnvelope, `"costlistcode":"HS2024031300187","revision"`, `"costlistcode":"OTHER","revision"`, 1),
	} {
		if _, _, err := RecordOf([]byte(env)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func exampleRecord(t *testing.T) wire.EHRRecord {
	rec, _, err := RecordOf([]byte(exampleEnvelope))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestAddLogsInOnceAndSendsTheRecord(t *testing.T) {
	p := ehrhttptest.New(t)
	c, waits := newTestClient(t, p, nil)
	rec := exampleRecord(t)
	for range 2 {
		if out, err := c.Add(t.Context(), rec); err != nil || out != Added {
			t.Fatalf("Add: %v, %v", out, err)
		}
	}
	logins, adds, stored := p.Counts()
	if logins != 1 || adds != 2 || stored != 1 || len(*waits) != 0 {
		t.Errorf("logins %d adds %d stored %d waits %v; want one token for both adds", logins, adds, stored, *waits)
	}
	want, _ := rec.Encode()
	var a, b any
	json.Unmarshal(want, &a)
	json.Unmarshal(p.Record("HS2024031300187"), &b)
	if ja, _ := json.Marshal(a); !bytes.Equal(ja, mustJSON(b)) {
		t.Errorf("platform stored\n%s\nwant\n%s", mustJSON(b), ja)
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// fakeClock is a clock a test moves by hand.
type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time { return f.t }

func TestTokenRenewedBeforeItsLifetimeEnds(t *testing.T) {
	p := ehrhttptest.New(t)
	clk := &fakeClock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}
	c, _ := newTestClient(t, p, func(o *Options) { o.Now, o.TokenLifetime = clk.now, time.Hour })
	rec := exampleRecord(t)
	if _, err := c.Add(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(50 * time.Minute) // within the lifetime less its tenth: same token
	if _, err := c.Add(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	if l, _, _ := p.Counts(); l != 1 {
		t.Fatalf("logins %d after 50 min of a 1 h token, want 1", l)
	}
	clk.t = clk.t.Add(5 * time.Minute) // 55 min: renewed before it runs out
	if _, err := c.Add(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	if l, adds, _ := p.Counts(); l != 2 || adds != 3 {
		t.Errorf("logins %d adds %d, want a new token before the lifetime ends and no failed add", l, adds)
	}
}

func TestExpiredTokenAnswerLogsInAgainOnce(t *testing.T) {
	p := ehrhttptest.New(t)
	c, waits := newTestClient(t, p, nil)
	rec := exampleRecord(t)
	if _, err := c.Add(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	p.Script(ehrhttptest.ExpireToken) // the platform expires every token mid-run
	if out, err := c.Add(t.Context(), rec); err != nil || out != Added {
		t.Fatalf("Add after expiry: %v %v", out, err)
	}
	if l, adds, _ := p.Counts(); l != 2 || adds != 3 || len(*waits) != 0 {
		t.Errorf("logins %d adds %d waits %v; want one new login and the add sent again at once", l, adds, *waits)
	}
	// A fresh token said to be expired again is the platform's trouble: no third login in this
	// Add, and not the record's fault.
	p.Script(ehrhttptest.ExpireToken, ehrhttptest.ExpireToken)
	_, err := c.Add(t.Context(), rec)
	var refused *RefusedError
	if errors.As(err, &refused) {
		t.Errorf("expired tokens made the record refused: %v", err)
	}
}

func TestRateLimitHonoursRetryAfter(t *testing.T) {
	p := ehrhttptest.New(t)
	c, waits := newTestClient(t, p, nil)
	p.Script(ehrhttptest.RateLimit)
	if _, err := c.Add(t.Context(), exampleRecord(t)); err != nil {
		t.Fatal(err)
	}
	if len(*waits) != 1 || (*waits)[0] != 7*time.Second {
		t.Errorf("waits %v, want the 7 s the platform asked for", *waits)
	}
	c2, waits2 := newTestClient(t, p, func(o *Options) { o.MaxRetryAfter = 3 * time.Second })
	p.Script(ehrhttptest.RateLimit)
	if _, err := c2.Add(t.Context(), exampleRecord(t)); err != nil {
		t.Fatal(err)
	}
	if len(*waits2) != 1 || (*waits2)[0] != 3*time.Second {
		t.Errorf("waits %v, want Retry-After capped at max_retry_after 3 s", *waits2)
	}
}

func TestRateLimitCodeIsTemporary(t *testing.T) {
	p := ehrhttptest.New(t)
	c, waits := newTestClient(t, p, func(o *Options) { o.RateLimitCodes = []string{"-1"} })
	p.Script(ehrhttptest.Refuse) // "-1", configured here as the province's rate-limit code
	if _, err := c.Add(t.Context(), exampleRecord(t)); err != nil {
		t.Fatal(err)
	}
	if len(*waits) != 1 {
		t.Errorf("waits %v, want one backoff", *waits)
	}
}

func TestServerErrorsRetriedWithBackoffThenGiveUp(t *testing.T) {
	p := ehrhttptest.New(t)
	c, waits := newTestClient(t, p, func(o *Options) { o.BackoffMin, o.BackoffMax = time.Second, 3*time.Second })
	p.Script(ehrhttptest.ServerError, ehrhttptest.ServerError)
	if _, err := c.Add(t.Context(), exampleRecord(t)); err != nil {
		t.Fatal(err)
	}
	// Rand is 0.5: half of 1 s, then half of 2 s (full jitter under a doubling ceiling).
	if want := []time.Duration{500 * time.Millisecond, time.Second}; !equalDur(*waits, want) {
		t.Errorf("waits %v, want %v", *waits, want)
	}
	p.Script(ehrhttptest.ServerError, ehrhttptest.ServerError, ehrhttptest.ServerError, ehrhttptest.ServerError)
	*waits = nil
	_, err := c.Add(t.Context(), exampleRecord(t))
	var ce *CallError
	if !errors.As(err, &ce) || ce.HTTPStatus != http.StatusServiceUnavailable {
		t.Fatalf("after 4 × 503: %v, want a CallError with HTTP 503", err)
	}
	if want := []time.Duration{500 * time.Millisecond, time.Second, 1500 * time.Millisecond}; !equalDur(*waits, want) {
		t.Errorf("waits %v, want %v (capped at backoff_max)", *waits, want)
	}
	if _, adds, _ := p.Counts(); adds != 7 {
		t.Errorf("adds %d, want 3 + 4 (attempts bounded)", adds)
	}
}

func equalDur(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRefusedRecordIsPermanentAndNotRetried(t *testing.T) {
	p := ehrhttptest.New(t)
	c, waits := newTestClient(t, p, nil)
	p.Script(ehrhttptest.Refuse)
	_, err := c.Add(t.Context(), exampleRecord(t))
	var refused *RefusedError
	if !errors.As(err, &refused) || refused.Code != "-1" || !strings.Contains(refused.Status, "参数无效") || !refused.Permanent() {
		t.Fatalf("err %v, want the platform's code -1 and its text", err)
	}
	if !strings.Contains(err.Error(), "code -1") {
		t.Errorf("message %q does not name the code", err)
	}
	if _, adds, stored := p.Counts(); adds != 1 || stored != 0 || len(*waits) != 0 {
		t.Errorf("adds %d stored %d waits %v: a refusal is never sent again", adds, stored, *waits)
	}
}

// Without configured expired codes, a refusal is first taken as a stale token (what the
// public clients do), once; the same answer with a fresh token is the record's.
func TestRefusalWithoutKnownCodesTriesAFreshTokenOnce(t *testing.T) {
	p := ehrhttptest.New(t)
	c, _ := newTestClient(t, p, func(o *Options) { o.ExpiredCodes = nil })
	p.Script(ehrhttptest.RefuseAlways)
	_, err := c.Add(t.Context(), exampleRecord(t))
	var refused *RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("err %v, want refused", err)
	}
	if l, adds, _ := p.Counts(); l != 2 || adds != 2 {
		t.Errorf("logins %d adds %d, want 2 and 2", l, adds)
	}
}

func TestDuplicateCodeCountsAsDelivered(t *testing.T) {
	p := ehrhttptest.New(t)
	c, _ := newTestClient(t, p, func(o *Options) { o.DuplicateCodes = []string{"-5"} })
	p.Script(ehrhttptest.DuplicateCode)
	if out, err := c.Add(t.Context(), exampleRecord(t)); err != nil || out != Duplicate {
		t.Fatalf("Add: %v %v, want Duplicate", out, err)
	}
}

func TestSlowAnswerTimesOut(t *testing.T) {
	p := ehrhttptest.New(t)
	c, _ := newTestClient(t, p, func(o *Options) { o.Timeout, o.Attempts = 200*time.Millisecond, 2 })
	if _, err := c.Add(t.Context(), exampleRecord(t)); err != nil { // log in first
		t.Fatal(err)
	}
	p.Script(ehrhttptest.Slow, ehrhttptest.Slow)
	_, err := c.Add(t.Context(), exampleRecord(t))
	var ce *CallError
	if !errors.As(err, &ce) || ce.Err == nil || ce.Call != "add" {
		t.Fatalf("err %v, want a CallError carrying the timeout", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "Timeout") && !strings.Contains(err.Error(), "deadline") {
		t.Errorf("err %v does not say it timed out", err)
	}
}

func TestLoginRefusedIsNotTheRecordsFault(t *testing.T) {
	p := ehrhttptest.New(t)
	c, _ := newTestClient(t, p, func(o *Options) { o.AppSecret, o.Attempts = "wrong", 2 })
	_, err := c.Add(t.Context(), exampleRecord(t))
	var ce *CallError
	if !errors.As(err, &ce) || ce.Call != "token" || ce.Code != "-11" {
		t.Fatalf("err %v, want the login's -11", err)
	}
	if !strings.Contains(err.Error(), "app key and secret") {
		t.Errorf("message %q does not say what to check", err)
	}
	var refused *RefusedError
	if errors.As(err, &refused) {
		t.Error("a refused login must not make the record refused")
	}
}

func TestSecretsAndTokensNeverLogged(t *testing.T) {
	p := ehrhttptest.New(t)
	var logs bytes.Buffer
	c, _ := newTestClient(t, p, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	p.Script(ehrhttptest.ExpireToken, ehrhttptest.RateLimit, ehrhttptest.ServerError, ehrhttptest.Refuse)
	rec := exampleRecord(t)
	c.Add(t.Context(), rec)
	c.Add(t.Context(), rec)
	if logs.Len() == 0 {
		t.Fatal("nothing logged: the test would prove nothing")
	}
	secrets := append([]string{ehrhttptest.Password}, p.Tokens()...)
	if len(secrets) < 3 {
		t.Fatalf("tokens %v: the expiry was not seen", secrets)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs.String(), s) {
			t.Errorf("log carries a secret %q:\n%s", s, logs.String())
		}
	}
}

func TestOptionsRefuseCleartextAndNameTheKey(t *testing.T) {
	base := Options{AppKey: ehrhttptest.Company, AppSecret: "x"}
	for _, tc := range []struct{ url, key string }{
		{"", "url"},
		{"http://platform.example.cn/restservices/lcipprodatarest/", "url"},
		{"ftp://127.0.0.1/", "url"},
		{"https://user:pw@platform.example.cn/", "url"},
		{"https:///nohost", "url"},
	} {
		o := base
		o.URL = tc.url
		_, err := New(o)
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Key != tc.key {
			t.Errorf("%q: %v, want an error naming %s", tc.url, err, tc.key)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8080/x/", "http://localhost/x", "https://qcda.96520.com/restservices/lcipprodatarest/"} {
		o := base
		o.URL = u
		if _, err := New(o); err != nil {
			t.Errorf("%q: %v", u, err)
		}
	}
	o := base
	o.URL, o.AppKey = "https://qcda.96520.com/", ""
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "app_key_file") {
		t.Errorf("no app key: %v", err)
	}
	o = base
	o.URL, o.AddPath = "https://qcda.96520.com/", "https://elsewhere.example/add"
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "add_path") {
		t.Errorf("absolute add_path: %v", err)
	}
}

func TestParseAnswer(t *testing.T) {
	for in, want := range map[string]Answer{
		`{"code":"1","status":"新增成功"}`:                      {Code: "1", Status: "新增成功"},
		`{"code":1,"message":"ok"}`:                         {Code: "1", Status: "ok"},
		`{"code":"1","status":"获取成功","access_token":"abc"}`: {Code: "1", Status: "获取成功", Token: "abc"},
		` {"code":-11,"msg":"密码错误","extra":{"x":1}}`:        {Code: "-11", Status: "密码错误"},
		`{"code":"-99","status":null}`:                      {Code: "-99"},
	} {
		got, err := ParseAnswer([]byte(in))
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{``, `<html>502</html>`, `{"status":"x"}`, `{"code":true}`, `{"code":"1"`, `[]`} {
		if _, err := ParseAnswer([]byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": 0, "7": 7 * time.Second, "-3": 0, "soon": 0,
		"Sun, 01 Mar 2026 08:00:30 GMT": 30 * time.Second,
		"Sun, 01 Mar 2026 07:00:00 GMT": 0,
	} {
		if got := retryAfter(in, now); got != want {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
}

func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{`{"code":"1","status":"新增成功"}`, `{"code":-11}`, `<html>`, `{"code":"1","access_token":"a"}`, `{"code":1e400}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAnswer(b)
		if err == nil && a.Code == "" {
			t.Errorf("%q: accepted without a code", b)
		}
		if err != nil && a != (Answer{}) {
			t.Errorf("%q: error with a partial answer", b)
		}
	})
}

func TestForwarderSendsStoredEnvelopes(t *testing.T) {
	p := ehrhttptest.New(t)
	c, _ := newTestClient(t, p, nil)
	send := c.Forwarder(false)
	env := strings.Replace(exampleEnvelope, `"company_code":"330106000099901"`, `"company_code":"`+ehrhttptest.Company+`"`, 1)
	if err := send(t.Context(), "gw-hz-0001-42", []byte(env)); err != nil {
		t.Fatal(err)
	}
	if p.Record("HS2024031300187") == nil {
		t.Fatal("not at the platform")
	}
	var perm interface{ Permanent() bool }
	other := strings.Replace(env, `"company_code":"`+ehrhttptest.Company+`"`, `"company_code":"330106000099999"`, 1)
	for name, err := range map[string]error{
		"another shop": send(t.Context(), "gw-hz-0001-42", []byte(other)),
		"not ehr/1":    send(t.Context(), "gw-hz-0001-42", []byte(`{"id":"gw-hz-0001-42"}`)),
		"id mismatch":  send(t.Context(), "gw-hz-0001-43", []byte(env)),
		"refused":      func() error { p.Script(ehrhttptest.Refuse); return send(t.Context(), "gw-hz-0001-42", []byte(env)) }(),
	} {
		if !errors.As(err, &perm) || !perm.Permanent() {
			t.Errorf("%s: %v, want a permanent error", name, err)
		}
	}
	if err := c.Forwarder(true)(t.Context(), "gw-hz-0001-42", []byte(other)); err != nil {
		t.Errorf("any company: %v", err)
	}
	p.Script(ehrhttptest.ServerError, ehrhttptest.ServerError, ehrhttptest.ServerError, ehrhttptest.ServerError)
	if err := send(t.Context(), "gw-hz-0001-42", []byte(env)); err == nil || errors.As(err, &perm) {
		t.Errorf("5xx: %v, want a temporary error", err)
	}
}
