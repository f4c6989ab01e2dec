package daemon

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/gateway/bay"
	"github.com/obdgw/obdgw/gateway/config"
)

// TestNoAdapterIsNotBlamedOnTheIgnition: a scan or clear asked of a bay with nothing plugged
// in is refused with the reason a technician can act on (plug the adapter in), not with the
// ignition question of a silent car.
func TestNoAdapterIsNotBlamedOnTheIgnition(t *testing.T) {
	cfg := testConfig(t)
	cfg.Broker.URL = ""
	cfg.Bays = []config.Bay{{Name: "bay9", OBD: "serial:///dev/obdgw-test-no-such-adapter"}}
	d, base, stop := startDaemon(t, &cfg, Options{})
	defer stop()
	waitFor(t, "bay9 absent", func() bool { return d.Bay("bay9").Status().State == bay.Absent })
	for _, c := range []struct{ path, body string }{
		{"/api/v1/bays/bay9/scan", ""},
		{"/api/v1/bays/bay9/clear-dtcs", `{"confirm":true,"vin":"LJ8ECM2B2R1063348","request_id":"r-noadapter-1"}`},
	} {
		req, _ := http.NewRequest("POST", base+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict || !strings.Contains(string(b), "no OBD adapter") || strings.Contains(string(b), "ignition") {
			t.Errorf("POST %s on a bay without adapter: %s %s, want 409 saying there is no adapter", c.path, resp.Status, b)
		}
	}
}
