package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/elm327/elm327sim"
	"github.com/obdgw/obdgw/drivers/serialport/ptypair"
	"github.com/obdgw/obdgw/gateway/bay"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/imrecord"
	"github.com/obdgw/obdgw/hack/testenv"
)

// sse reads one server-sent-event stream of the daemon until ctx ends, handing each event's
// type and data to fn until fn returns true.
func sse(t *testing.T, ctx context.Context, url string, fn func(typ string, data []byte) bool) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	typ := ""
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			typ = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && fn(typ, []byte(v)) {
			return
		}
	}
	t.Fatalf("GET %s ended: %v", url, sc.Err())
}

// TestScanStepsAndPickedLiveValuesOverARealAdapter: the simulated petrol car behind the real
// ELM327 driver on a pty. A requested scan announces its steps on the event stream, first to
// last; the live stream of picked PIDs carries them decoded (the adapter does multi-PID
// requests), keyed by PID.
func TestScanStepsAndPickedLiveValuesOverARealAdapter(t *testing.T) {
	testenv.SkipShort(t, "a pty with the ELM327 simulator")
	sc, err := elm327sim.Builtin("petrol")
	if err != nil {
		t.Fatal(err)
	}
	sc.Adapter.ResetDelay = 0
	p, err := ptypair.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sim := elm327sim.New(sc, elm327sim.Options{NoLatency: true})
	simCtx, stopSim := context.WithCancel(context.Background())
	defer stopSim()
	go sim.Serve(simCtx, p.Master)

	cfg := testConfig(t)
	cfg.Broker.URL = ""
	cfg.Bays = []config.Bay{{Name: "bay1", OBD: "serial://" + p.SlavePath}}
	d, base, stop := startDaemon(t, &cfg, Options{Poll: 100 * time.Millisecond})
	defer stop()
	waitFor(t, "bay1 scanned", func() bool { st := d.Bay("bay1").Status(); return st.State == bay.Ready && st.LastScan != nil })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ectx, stopEvents := context.WithCancel(ctx)
	started := make(chan struct{})
	var steps []string
	total := 0
	go func() {
		// The request waits until the stream is open.
		<-started
		req, _ := http.NewRequest("POST", base+"/api/v1/bays/bay1/scan", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	sse(t, ectx, base+"/api/v1/events", func(typ string, data []byte) bool {
		var ev struct {
			Type string `json:"type"`
			Data struct {
				Step  string `json:"step"`
				Index int    `json:"index"`
				Total int    `json:"total"`
			} `json:"data"`
		}
		json.Unmarshal(data, &ev)
		if started != nil {
			close(started)
			started = nil
		}
		switch ev.Type {
		case "scan.step":
			if ev.Data.Index != len(steps)+1 {
				t.Errorf("step %s came as %d/%d after %d steps", ev.Data.Step, ev.Data.Index, ev.Data.Total, len(steps))
			}
			steps = append(steps, ev.Data.Step)
			total = ev.Data.Total
		case "scan.done":
			return true
		}
		return false
	})
	stopEvents()
	if len(steps) != total || total < 10 || steps[0] != "adapter" || steps[len(steps)-1] != "context_pids" {
		t.Fatalf("scan steps heard: %v (total %d)", steps, total)
	}

	sse(t, ctx, base+"/api/v1/bays/bay1/live?pids=0C,06,07,44", func(typ string, data []byte) bool {
		var v map[string]float64
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("live data %s: %v", data, err)
		}
		if len(v) == 0 {
			return false
		}
		if v["0C"] != 825 || v["06"] != 0 || v["07"] != -1.5625 || v["44"] != 1 || len(v) != 4 {
			t.Fatalf("picked live values %v, want 0C 825, 06 0, 07 -1.5625, 44 1", v)
		}
		return true
	})
	// The four PIDs in one request, in PID order.
	if n := sim.Stats().Commands; !containsPrefix(n, "0106070C44") {
		t.Errorf("no multi-PID request 0106070C44 among the adapter's last commands %q", n[max(0, len(n)-8):])
	}
}

func containsPrefix(cmds []string, p string) bool {
	for _, c := range cmds {
		if strings.HasPrefix(strings.ReplaceAll(c, " ", ""), p) {
			return true
		}
	}
	return false
}

// TestHistoryListsTheKeptSelfTest: a judged self-test the daemon kept for an order shows in
// the car's history and, in full, under the order.
func TestHistoryListsTheKeptSelfTest(t *testing.T) {
	cfg := testConfig(t)
	cfg.Broker.URL = ""
	d, base, stop := startDaemon(t, &cfg, Options{})
	defer stop()
	call := func(method, path, body string, out any) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+"/api/v1"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			json.NewDecoder(resp.Body).Decode(out)
		}
		return resp.StatusCode
	}
	const vin = "LK6ADCE15PB405127"
	var o struct{ ID string }
	if code := call("POST", "/workorders", `{"plate":"浙A12345","plate_color":"blue","vin":"`+vin+`"}`, &o); code != 201 && code != 200 {
		t.Fatalf("open order: %d", code)
	}
	end := time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC)
	if err := d.tests.Keep(imrecord.SelfTest{Order: o.ID, Bay: "bay2", RigModel: "NHA-506", RigSerial: "A1-0042",
		Result: &emission.Result{Method: emission.TwoSpeedIdle, Verdict: emission.Pass, Start: end.Add(-4 * time.Minute), End: end, Rig: "/dev/ttyUSB1@9600 NHA-506"}}); err != nil {
		t.Fatal(err)
	}
	var h struct {
		Items []struct {
			Kind     string
			SelfTest map[string]any `json:"selftest"`
		}
	}
	if code := call("GET", "/vehicles/"+vin+"/history", "", &h); code != 200 {
		t.Fatalf("history: %d", code)
	}
	found := false
	for _, it := range h.Items {
		if it.Kind == "selftest" {
			found = it.SelfTest["order"] == o.ID && it.SelfTest["verdict"] == "pass" && it.SelfTest["method"] == "two_speed_idle" && it.SelfTest["result"] == nil
		}
	}
	if !found {
		t.Fatalf("history %+v lacks the kept self-test of %s", h, o.ID)
	}
	var st map[string]any
	if code := call("GET", "/workorders/"+o.ID+"/selftest", "", &st); code != 200 || st["rig_serial"] != "A1-0042" || st["result"] == nil {
		t.Fatalf("order self-test: %d %v", code, st)
	}
}
