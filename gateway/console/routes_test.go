package console_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/gateway/api"
)

// TestConsoleCallsOnlyRealRoutes reads every API call in app.js and checks it against the
// routes the API registers, so a renamed route breaks this test and not the shop's tablet.
func TestConsoleCallsOnlyRealRoutes(t *testing.T) {
	// app.js and the other scripts of the page (not the translations, not the vendored library).
	files, err := filepath.Glob(filepath.Join("assets", "*.js"))
	if err != nil {
		t.Fatal(err)
	}
	var src []byte
	for _, f := range files {
		if b := filepath.Base(f); strings.HasPrefix(b, "i18n") || strings.HasPrefix(b, "uPlot") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, b...)
	}
	type call struct{ method, path string }
	var calls []call
	for _, m := range regexp.MustCompile("api\\(\"([A-Z]+)\", [`\"]([^`\"?]+)").FindAllStringSubmatch(string(src), -1) {
		calls = append(calls, call{m[1], m[2]})
	}
	// The two streams are read with fetch directly.
	for _, m := range regexp.MustCompile("(?:\\$\\{API\\}|API \\+ \")(/[^`\"?]+)").FindAllStringSubmatch(string(src), -1) {
		calls = append(calls, call{"GET", m[1]})
	}
	if len(calls) < 15 {
		t.Fatalf("found %d API calls in app.js: the pattern is off", len(calls))
	}
	routes := api.New(api.Options{}).Routes()
	seg := regexp.MustCompile(`\$\{[^}]*\}`)
	covered := map[string]bool{}
	for _, c := range calls {
		path := seg.ReplaceAllString(c.path, "X")
		found := false
		for _, r := range routes {
			if r.Method == c.method && matches(r.Path, path) {
				found = true
				covered[r.Method+" "+r.Path] = true
				break
			}
		}
		if !found {
			t.Errorf("app.js calls %s %s, which the API does not have", c.method, c.path)
		}
	}
	// What the console is for: each of these must be reachable from the page.
	for _, want := range []string{"GET /bays", "GET /bays/{bay}", "POST /bays/{bay}/scan", "POST /bays/{bay}/clear-dtcs", "GET /bays/{bay}/live",
		"GET /workorders", "POST /workorders", "GET /workorders/{id}", "PATCH /workorders/{id}", "POST /workorders/{id}/items",
		"POST /workorders/{id}/parts", "POST /workorders/{id}/scans", "POST /workorders/{id}/settle", "POST /workorders/{id}/revisions",
		"GET /outbox", "GET /outbox/records", "GET /deadletters", "POST /deadletters/{seq}/requeue", "GET /uplink", "GET /events",
		"POST /bays/{bay}/selftest", "GET /bays/{bay}/selftest", "POST /bays/{bay}/selftest/abort", "GET /bays/{bay}/selftest/progress",
		"GET /bays/{bay}/obd-check", "GET /whoami", "GET /audit", "GET /waste/ledger", "POST /waste/handovers",
		"GET /vehicles/{vin}/history", "GET /scans/{id}", "GET /workorders/{id}/selftest"} {
		if !covered[want] {
			t.Errorf("the console never calls %s", want)
		}
	}
}

// matches reports whether a concrete path ("/bays/X/live") fits a route pattern
// ("/bays/{bay}/live").
func matches(pattern, path string) bool {
	p, q := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(p) != len(q) {
		return false
	}
	for i := range p {
		if strings.HasPrefix(p[i], "{") {
			if q[i] == "" {
				return false
			}
			continue
		}
		if p[i] != q[i] {
			return false
		}
	}
	return true
}
