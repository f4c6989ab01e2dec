package console

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/obd"
)

func get(t *testing.T, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	Handler().ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w
}

func TestHandlerServesThePageWithItsPolicy(t *testing.T) {
	for _, path := range []string{"/", "/app.js", "/i18n.js", "/style.css", "/assets/app.js"} {
		w := get(t, "GET", path)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s = %d", path, w.Code)
		}
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Fatalf("GET %s: CSP %q", path, csp)
		}
	}
	if w := get(t, "GET", "/"); !strings.Contains(w.Body.String(), `<script src="app.js"`) || w.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("index: %d %q %q", w.Code, w.Header().Get("Cache-Control"), w.Body.String()[:80])
	}
	if w := get(t, "POST", "/"); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST / = %d, want 405", w.Code)
	}
	if w := get(t, "GET", "/nope.js"); w.Code != http.StatusNotFound {
		t.Fatalf("GET /nope.js = %d, want 404", w.Code)
	}
}

// The shop may have no internet: nothing in the page may reach another host, and the page runs
// no inline script (the policy would block it anyway).
func TestAssetsAreSelfContained(t *testing.T) {
	outside := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|@font-face|<script>|\son[a-z]+=`)
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, path)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if l := strings.TrimSpace(line); strings.HasPrefix(l, "//") || strings.HasPrefix(l, "/*! ") && strings.HasSuffix(l, "*/") {
				continue // a comment, or a vendored library's banner naming where it comes from
			}
			// The SVG namespace is a name, not an address the browser loads.
			line = strings.ReplaceAll(line, `xmlns="http://www.w3.org/2000/svg"`, "")
			if m := outside.FindString(line); m != "" {
				t.Errorf("%s: %q reaches outside the gateway or runs inline: %s", path, m, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Every key used by the page exists in both languages.
func TestTranslationsComplete(t *testing.T) {
	key := regexp.MustCompile(`"([a-z][a-z0-9_.]*)":`)
	zh, en := map[string]bool{}, map[string]bool{}
	// i18n.js holds the tables; i18n-shop.js adds the shop views' keys in the same shape.
	for _, f := range []string{"assets/i18n.js", "assets/i18n-shop.js"} {
		b, err := fs.ReadFile(assets, f)
		if err != nil {
			t.Fatal(err)
		}
		src := string(b)
		zhAt, enAt := strings.Index(src, "zh: {"), strings.Index(src, "en: {")
		if zhAt < 0 || enAt < zhAt {
			t.Fatalf("%s: no zh and en tables", f)
		}
		for _, k := range key.FindAllStringSubmatch(src[zhAt:enAt], -1) {
			zh[k[1]] = true
		}
		for _, k := range key.FindAllStringSubmatch(src[enAt:], -1) {
			en[k[1]] = true
		}
	}
	for k := range zh {
		if !en[k] {
			t.Errorf("key %q has no English text", k)
		}
	}
	for k := range en {
		if !zh[k] {
			t.Errorf("key %q has no Chinese text", k)
		}
	}
	var used []string
	for _, f := range pageSources(t) {
		b, err := fs.ReadFile(assets, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?:\bt\(|data-t=)"([a-z][a-z0-9_.]*)"`).FindAllStringSubmatch(string(b), -1) {
			used = append(used, m[1])
		}
	}
	if len(used) < 50 {
		t.Fatalf("found only %d translated keys in the page: the pattern is off", len(used))
	}
	for _, k := range used {
		if strings.HasSuffix(k, ".") { // a prefix completed at run time ("bay.state." + state)
			n := 0
			for z := range zh {
				if strings.HasPrefix(z, k) {
					n++
				}
			}
			if n == 0 {
				t.Errorf("the page builds keys from %q, which has no translations", k)
			}
			continue
		}
		if !zh[k] {
			t.Errorf("the page uses %q, which has no translation", k)
		}
	}
}

func TestDTCLookup(t *testing.T) {
	w := get(t, "GET", "/dtc.json?codes=P0420,p0171,,X9999,P0420,%3Cscript%3E")
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET /dtc.json = %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	var got map[string]DTCText
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d codes %v, want P0420 and P0171 only", len(got), got)
	}
	for _, c := range []string{"P0420", "P0171"} {
		if want := (DTCText{ZH: obd.DescribeDTC(c, "zh"), EN: obd.DescribeDTC(c, "en")}); got[c] != want {
			t.Fatalf("%s = %+v, want %+v", c, got[c], want)
		}
	}
	many := strings.Repeat("P0420,", 65)
	if w := get(t, "GET", "/dtc.json?codes="+many); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `"field":"codes"`) {
		t.Fatalf("65 codes: %d %s", w.Code, w.Body.String())
	}
}

func TestLabels(t *testing.T) {
	w := get(t, "GET", "/labels.json")
	var l Labels
	if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil {
		t.Fatal(err)
	}
	if got := l.Monitors[obd.MonCatalyst]; got.ZH != obd.MonitorLabel(obd.MonCatalyst, "zh") || got.EN != obd.MonitorLabel(obd.MonCatalyst, "en") || got.ZH == got.EN {
		t.Fatalf("catalyst label %+v", got)
	}
	rpm, _ := obd.LookupPID(0x0C)
	if got := l.PIDs["0C"]; got.EN != rpm.Label("en") || got.ZH != rpm.Label("zh") {
		t.Fatalf("PID 0C label %+v", got)
	}
	if len(l.Monitors) != len(monitors) {
		t.Fatalf("%d monitor labels, want %d", len(l.Monitors), len(monitors))
	}
}

// FuzzDTCQuery feeds the lookup arbitrary query strings: it must answer JSON holding only
// well-formed codes, or refuse with 400.
func FuzzDTCQuery(f *testing.F) {
	for _, s := range []string{"P0420", "P0420,P0171", "", ",,,", "u0100,B1234,c0035", "P04200", "P0G20", "%ZZ", strings.Repeat("P0420,", 70)} {
		f.Add(s)
	}
	code := regexp.MustCompile(`^[PCBU][0-9A-F]{4}$`)
	f.Fuzz(func(t *testing.T, q string) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/dtc.json", nil)
		r.URL.RawQuery = "codes=" + q
		Handler().ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK:
			var got map[string]DTCText
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("%q: body %q: %v", q, w.Body.String(), err)
			}
			for k, v := range got {
				if !code.MatchString(k) || v.ZH == "" || v.EN == "" {
					t.Fatalf("%q: entry %q %+v", q, k, v)
				}
			}
		case http.StatusBadRequest:
		default:
			t.Fatalf("%q: status %d", q, w.Code)
		}
	})
}

// pageSources are the console's own files that use translations and call the API: the page
// and every script of it except the translations and the vendored chart library.
func pageSources(t *testing.T) []string {
	t.Helper()
	out := []string{"assets/index.html"}
	js, err := fs.Glob(assets, "assets/*.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range js {
		if !strings.HasPrefix(f, "assets/i18n") && !strings.HasPrefix(f, "assets/uPlot") {
			out = append(out, f)
		}
	}
	return out
}
