package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/drivers/elm327/elm327sim"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/gateway/bay"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/imrecord"
	"github.com/obdgw/obdgw/gateway/workorder"
	"github.com/obdgw/obdgw/hack/testenv"
)

const testToken = "dms-token-0123456789abcdef"

func testConfig(t *testing.T) config.Config {
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	cfg.GatewayID = "gw-test-01"
	cfg.Company = config.Company{Code: "330106000099901", Name: "杭州示例汽车维修有限公司", Province: "33"}
	cfg.API.Tokens = []config.Token{{Name: "dms", Secret: testToken, Role: "manager"}}
	return cfg
}

// startDaemon runs d on a loopback listener; stop cancels it and returns Run's error.
func startDaemon(t *testing.T, cfg *config.Config, o Options) (d *Daemon, base string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.Listener = ln
	d, err = New(cfg, o)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	readyc := make(chan struct{})
	go func() { done <- d.Run(ctx, func() { close(readyc) }) }()
	select {
	case <-readyc:
	case err := <-done:
		cancel()
		t.Fatalf("daemon did not start: %v", err)
	}
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { stop() })
	return d, "http://" + ln.Addr().String(), stop
}

// closingRig is an analyzer whose Close (the last thing before the result is stored) signals
// closing and then takes its time once shutdown has begun.
type closingRig struct {
	*analyzer
	closing  chan struct{}
	shutdown chan struct{}
}

func (r *closingRig) Close() error {
	close(r.closing)
	<-r.shutdown
	time.Sleep(300 * time.Millisecond)
	return nil
}

// TestSelfTestJudgedDuringShutdownIsStored: a self-test whose result is being stored while the
// gateway shuts down is in the buffer file after a restart; Run does not close the store
// under it.
func TestSelfTestJudgedDuringShutdownIsStored(t *testing.T) {
	cfg := testConfig(t)
	cfg.Bays = []config.Bay{{Name: "bay1", OBD: "sim://petrol", Rig: &config.Rig{Model: "nha506", Address: "sim://", Serial: "NHA506-2023-0042"}}}
	idle := &cfg.Emission.TwoSpeedIdle
	idle.Precondition, idle.Stabilise, idle.Sample = 300*time.Millisecond, 200*time.Millisecond, 500*time.Millisecond
	idle.SamplePeriod, idle.ReachTimeout = 50*time.Millisecond, 5*time.Second
	cfg.Emission.Rig.ZeroBeforeTest = false

	var run *emission.Run
	var runMu sync.Mutex
	r := &closingRig{analyzer: &analyzer{rated: 5000, cond: func() int {
		runMu.Lock()
		defer runMu.Unlock()
		if run == nil {
			return 0
		}
		p, _ := run.Latest()
		return p.Condition
	}}, closing: make(chan struct{}), shutdown: make(chan struct{})}
	d, _, stop := startDaemon(t, &cfg, Options{Dial: simDial(t, "petrol"), Poll: 100 * time.Millisecond,
		OpenRig: func(config.Bay) (rig.Rig, error) { return r, nil }})
	km := int64(86412)
	o, err := d.Store().Create(workorder.NewOrder{Plate: "浙A7K2M9", PlateColor: "blue", VIN: "LSVAU218XN2183294", MileageKm: &km, Bay: "bay1",
		EmissionRepair: true, TestNo: "330100202403110001", Fault: "双怠速检验CO超标"})
	if err != nil {
		t.Fatal(err)
	}
	runMu.Lock()
	run, _, err = d.StartSelfTest("bay1", SelfTestRequest{Method: "two_speed_idle", RatedRPM: 5000})
	runMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.closing:
	case <-time.After(30 * time.Second):
		t.Fatal("the self-test did not end")
	}
	if res, _ := run.Result(); res == nil || res.Verdict != emission.Pass {
		t.Fatalf("self-test result %+v, want a pass", res)
	}
	// The result is judged; storing it waits for the rig to close, which happens during
	// shutdown.
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(50 * time.Millisecond)
	close(r.shutdown)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}

	db, err := buffer.Open(filepath.Join(cfg.StateDir, StoreFile), buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, ok, err := imrecord.NewStore(db, imrecord.Options{}).Get(o.ID)
	if err != nil || !ok {
		t.Fatalf("self-test of %s not in the store after a restart (ok %v, err %v)", o.ID, ok, err)
	}
	if st.Result == nil || st.Result.Verdict != emission.Pass || st.RigSerial != "NHA506-2023-0042" {
		t.Errorf("stored self-test %+v", st)
	}
	if _, _, err := d.StartSelfTest("bay1", SelfTestRequest{Method: "two_speed_idle", RatedRPM: 5000}); err != ErrNotRunning {
		t.Errorf("self-test after Run returned: %v, want ErrNotRunning", err)
	}
}

// TestMetricsWithoutBroker: /metrics answers on a gateway with no broker configured, with the
// outbox's and the process's metrics; with a broker configured, the uplink's metrics join
// them in the same registry.
func TestMetricsWithoutBroker(t *testing.T) {
	scrape := func(t *testing.T, base string) []byte {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
		}
		return body
	}
	common := []string{"obdgw_outbox_depth 0", "obdgw_outbox_dead_letters 0", "go_goroutines "}

	cfg := testConfig(t)
	cfg.Broker.URL = ""
	cfg.Bays = []config.Bay{{Name: "bay9", OBD: "serial:///dev/obdgw-test-no-such-adapter"}}
	d, base, stop := startDaemon(t, &cfg, Options{})
	waitFor(t, "bay9 absent", func() bool { return d.Bay("bay9").Status().State == bay.Absent })
	body := scrape(t, base)
	for _, want := range append(common, `obdgw_bay_state{bay="bay9",state="absent"} 1`, `obdgw_bay_connects_total{bay="bay9"} 0`,
		`obdgw_bay_scans_total{bay="bay9",result="failed"} 0`, `obdgw_bay_scan_duration_seconds_count{bay="bay9"} 0`) {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("no broker: /metrics lacks %q", want)
		}
	}
	if bytes.Contains(body, []byte("obdgw_uplink_")) {
		t.Error("uplink metrics on a gateway without an uplink")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// A broker nobody listens at (a closed loopback port): the uplink retries, its metrics say so.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	cfg = testConfig(t)
	cfg.Broker.URL = "tcp://" + closed
	cfg.Bays = []config.Bay{{Name: "bay9", OBD: "serial:///dev/obdgw-test-no-such-adapter"}}
	_, base, stop = startDaemon(t, &cfg, Options{AllowPlainBroker: true})
	body = scrape(t, base)
	for _, want := range append(common, "obdgw_uplink_connected 0") {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("with a broker: /metrics lacks %q", want)
		}
	}
	// Every metric of the gateway's own is documented for the people who run it.
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(body), "\n") {
		name, ok := strings.CutPrefix(line, "# HELP ")
		if !ok || !strings.HasPrefix(name, "obdgw_") {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		n++
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/metrics.md does not describe %s", name)
		}
	}
	if n < 12 {
		t.Errorf("only %d obdgw_ metrics scraped", n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsFollowTheReadRule: /metrics tells the outbox depth, the uplink's state and the
// process's figures, so it follows the API's read rule (issue 18 item 7): a bearer token,
// unless api.anonymous_reads lets reads through; a wrong token is refused either way.
func TestMetricsFollowTheReadRule(t *testing.T) {
	get := func(base, token string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, anon := range []bool{false, true} {
		cfg := testConfig(t)
		cfg.API.AnonymousReads = anon
		_, base, stop := startDaemon(t, &cfg, Options{})
		wantAnon := http.StatusUnauthorized
		if anon {
			wantAnon = http.StatusOK
		}
		if code := get(base, ""); code != wantAnon {
			t.Errorf("anonymous_reads %v: GET /metrics without a token = %d, want %d", anon, code, wantAnon)
		}
		if code := get(base, testToken); code != http.StatusOK {
			t.Errorf("anonymous_reads %v: GET /metrics with the token = %d, want 200", anon, code)
		}
		if code := get(base, "not-the-token-0123456789"); code != http.StatusUnauthorized {
			t.Errorf("anonymous_reads %v: GET /metrics with a wrong token = %d, want 401", anon, code)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunWaitsForARequestedScan: a scan requested through the API, running against a
// simulated adapter on a real pty, is cut short when the gateway stops, and Run returns only
// after it (and every other goroutine of the gateway) has ended.
func TestRunWaitsForARequestedScan(t *testing.T) {
	sc, err := elm327sim.Builtin("petrol")
	if err != nil {
		t.Fatal(err)
	}
	sc.Adapter.ResetDelay = 0
	p := testenv.PTY(t)
	// 40 ms per request makes a scan last seconds: long enough to be cut.
	sim := elm327sim.New(sc, elm327sim.Options{Baud: 38400, Latency: 40 * time.Millisecond})
	simCtx, stopSim := context.WithCancel(context.Background())
	defer stopSim()
	go sim.Serve(simCtx, p.Master)

	cfg := testConfig(t)
	cfg.Bays = []config.Bay{{Name: "bay1", OBD: "serial://" + p.SlavePath + "?baud=38400"}}
	logs := &recorder{}
	d, base, stop := startDaemon(t, &cfg, Options{Poll: 100 * time.Millisecond, Logger: slog.New(logs)})
	waitFor(t, "bay1 scanned on connection", func() bool {
		st := d.Bay("bay1").Status()
		return st.State == bay.Ready && st.LastScan != nil
	})
	before := goroutines()
	req, _ := http.NewRequest("POST", base+"/api/v1/bays/bay1/scan", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST scan: %s", resp.Status)
	}
	waitFor(t, "the requested scan running", func() bool { return d.Bay("bay1").Status().State == bay.Scanning })
	sent := len(sim.Stats().Commands)
	time.Sleep(200 * time.Millisecond)
	if len(sim.Stats().Commands) == sent {
		t.Fatal("the scan sent nothing in 200 ms; it is not in flight")
	}
	http.DefaultClient.CloseIdleConnections()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The requested scan ended, cut short by the gateway's context, before Run returned.
	if msg := logs.find("requested scan failed"); !strings.Contains(msg, "context canceled") {
		t.Errorf("no failed requested scan logged before Run returned (%q)", msg)
	}
	if left := gatewayGoroutines(); left != "" {
		t.Errorf("goroutines of the gateway still running after Run returned:\n%s\n(before the scan:\n%s)", left, before)
	}
}

// recorder is a slog.Handler that keeps every record as one line of text.
type recorder struct {
	mu    sync.Mutex
	lines []string
	attrs []slog.Attr
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorderView{r: r, attrs: as}
}

func (r *recorder) Handle(_ context.Context, rec slog.Record) error { return r.add(nil, rec) }

func (r *recorder) add(attrs []slog.Attr, rec slog.Record) error {
	line := rec.Message
	for _, a := range attrs {
		line += " " + a.String()
	}
	rec.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	r.mu.Lock()
	r.lines = append(r.lines, line)
	r.mu.Unlock()
	return nil
}

// find returns the first line that starts with msg, or "".
func (r *recorder) find(msg string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.HasPrefix(l, msg) {
			return l
		}
	}
	return ""
}

type recorderView struct {
	r     *recorder
	attrs []slog.Attr
}

func (v *recorderView) Enabled(context.Context, slog.Level) bool { return true }
func (v *recorderView) WithGroup(string) slog.Handler            { return v }
func (v *recorderView) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorderView{r: v.r, attrs: append(append([]slog.Attr(nil), v.attrs...), as...)}
}
func (v *recorderView) Handle(_ context.Context, rec slog.Record) error { return v.r.add(v.attrs, rec) }

// gatewayGoroutines returns the stacks of goroutines running code of this module, other than
// the tests and the simulators they started.
func gatewayGoroutines() string {
	var out []string
	for _, g := range strings.Split(goroutines(), "\n\n") {
		if !strings.Contains(g, "github.com/obdgw/obdgw/") || strings.Contains(g, ".Test") ||
			strings.Contains(g, "elm327sim.") || strings.Contains(g, "testing.") {
			continue
		}
		out = append(out, g)
	}
	return strings.Join(out, "\n\n")
}

func goroutines() string {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return string(buf[:n])
}
