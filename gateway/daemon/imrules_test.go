package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/gateway/bay"
	"github.com/obdgw/obdgw/gateway/config"
)

// apiCall sends one authenticated request and returns the status and the body.
func apiCall(t *testing.T, base, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+"/api/v1"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestOBDCheckCountsTheStationsMonitors: the simulated petrol car has the catalyst and the
// evaporative system incomplete. Stations count the catalyst only; the evaporative system is
// shown as not counted, and the configured list decides.
func TestOBDCheckCountsTheStationsMonitors(t *testing.T) {
	for _, c := range []struct {
		name      string
		spark     []string
		max       int
		undone    float64
		status    string
		lineParts []string
	}{
		{"defaults", nil, 2, 1, "pass", []string{"1 counted readiness monitor(s) incomplete (at most 2 allowed): Catalyst", "not counted by inspection stations: Evaporative system"}},
		{"configured", []string{"catalyst", "evap"}, 1, 2, "fail", []string{"2 counted readiness monitors incomplete, more than 1: Catalyst, Evaporative system"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Bays = []config.Bay{{Name: "bay1", OBD: "sim://petrol"}}
			if c.spark != nil {
				cfg.Emission.OBD.ReadinessSpark = c.spark
			}
			cfg.Emission.OBD.MaxIncomplete = c.max
			d, base, _ := startDaemon(t, &cfg, Options{Dial: simDial(t, "petrol"), Poll: 100 * time.Millisecond})
			waitFor(t, "a scan on bay1", func() bool { st := d.Bay("bay1").Status(); return st.State == bay.Ready && st.LastScan != nil })
			code, body := apiCall(t, base, "GET", "/bays/bay1/obd-check", "")
			if code != http.StatusOK {
				t.Fatalf("obd-check: %d %s", code, body)
			}
			var chk struct {
				A7    map[string]any `json:"ods_a7"`
				Lines []struct {
					Rule, Status, EN string
				} `json:"lines"`
				Counted []string `json:"incomplete_counted"`
			}
			if err := json.Unmarshal(body, &chk); err != nil {
				t.Fatal(err)
			}
			if chk.A7["READY_STATE_UNDONE"] != c.undone {
				t.Errorf("READY_STATE_UNDONE %v, want %v", chk.A7["READY_STATE_UNDONE"], c.undone)
			}
			found := false
			for _, l := range chk.Lines {
				if l.Rule != "readiness" {
					continue
				}
				found = true
				if l.Status != c.status {
					t.Errorf("readiness %s, want %s: %s", l.Status, c.status, l.EN)
				}
				for _, p := range c.lineParts {
					if !strings.Contains(l.EN, p) {
						t.Errorf("readiness line %q lacks %q", l.EN, p)
					}
				}
			}
			if !found {
				t.Errorf("no readiness line in %s", body)
			}
		})
	}
}
