package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/elm327"
	"github.com/obdgw/obdgw/drivers/elm327/elm327sim"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/gateway/bay"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/workorder"
)

// pipePort makes one end of a net.Pipe a serialport.Port.
type pipePort struct{ net.Conn }

func (pipePort) String() string { return "pipe" }

// simDial serves an elm327sim scenario on an in-memory pipe to the real elm327 driver.
func simDial(t *testing.T, scenario string) func(ctx context.Context, b config.Bay) (bay.Conn, error) {
	return func(ctx context.Context, b config.Bay) (bay.Conn, error) {
		sc, err := elm327sim.Load(scenario)
		if err != nil {
			t.Fatal(err)
		}
		host, dev := net.Pipe()
		sim := elm327sim.New(sc, elm327sim.Options{Baud: -1, NoLatency: true})
		go sim.Serve(ctx, dev)
		a, err := elm327.NewContext(ctx, pipePort{host}, elm327.Options{})
		if err != nil {
			host.Close()
			return nil, err
		}
		return a, nil
	}
}

// analyzer is a scripted five-gas analyzer that follows the procedure's phases: it holds the
// engine where the operator is asked to hold it, and reports clean post-repair gases.
type analyzer struct {
	mu      sync.Mutex
	cond    func() int // the procedure's current condition (0 precondition … 4 idle sampling)
	rated   float64
	highRPM float64 // high idle; 0: 2500 r/min
}

func (a *analyzer) Read(ctx context.Context) (rig.Reading, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	rpm := 800.0
	switch c := a.cond(); c {
	case emission.CondPrecondition:
		rpm = 0.7 * a.rated
	case 1, 2:
		rpm = 2500
		if a.highRPM > 0 {
			rpm = a.highRPM
		}
	}
	hc, co := 20.0, 0.1
	return rig.Reading{Time: time.Now(), HCppm: rig.F(hc), COPct: rig.F(co), CO2Pct: rig.F(14.8), O2Pct: rig.F(0.3),
		NOppm: rig.F(80), Lambda: rig.F(1.0), RPM: rig.F(rpm), OilC: rig.F(90)}, nil
}
func (a *analyzer) String() string { return "scripted analyzer" }
func (a *analyzer) Halt() error    { return nil }
func (a *analyzer) Close() error   { return nil }

// TestEmissionRepairSettlesWithBothRecords: an emission-repair order on a bay with an analyzer
// gets its scan, a post-repair two-speed-idle self-test, and at settlement both the JT/T 1132
// record and the M-station record land in the outbox in one transaction.
func TestEmissionRepairSettlesWithBothRecords(t *testing.T) {
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	cfg.GatewayID = "gw-test-01"
	cfg.Company = config.Company{Code: "330106000099901", Name: "杭州示例汽车维修有限公司", Province: "33"}
	cfg.Bays = []config.Bay{{Name: "bay1", OBD: "sim://petrol", Rig: &config.Rig{Model: "nha506", Address: "sim://", Serial: "NHA506-2023-0042"}}}
	idle := &cfg.Emission.TwoSpeedIdle
	idle.Precondition, idle.Stabilise, idle.Sample = 300*time.Millisecond, 200*time.Millisecond, 500*time.Millisecond
	idle.SamplePeriod, idle.ReachTimeout = 50*time.Millisecond, 5*time.Second
	cfg.Emission.Rig.ZeroBeforeTest = false
	cfg.API.Tokens = []config.Token{{Name: "dms", Secret: "dms-token-0123456789abcdef", Role: "manager"}}

	an := &analyzer{rated: 5000}
	var runMu sync.Mutex
	var run *emission.Run
	an.cond = func() int {
		runMu.Lock()
		defer runMu.Unlock()
		if run == nil {
			return 0
		}
		p, _ := run.Latest()
		return p.Condition
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(&cfg, Options{Listener: ln, Dial: simDial(t, "petrol"), Poll: 100 * time.Millisecond,
		OpenRig: func(config.Bay) (rig.Rig, error) { return an, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "bay1 ready with a VIN", func() bool { st := d.Bay("bay1").Status(); return st.State == bay.Ready && st.VIN != "" })
	vin := d.Bay("bay1").Status().VIN
	// No emission-repair order on the bay yet, or one named that does not take a self-test:
	// the start is refused, saying what to open first.
	plain, err := d.Store().Create(workorder.NewOrder{Plate: "浙A1B2C3", PlateColor: "blue"})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"method":"two_speed_idle","rated_rpm":5000}`, `{"method":"two_speed_idle","rated_rpm":5000,"order":"` + plain.ID + `"}`} {
		req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/api/v1/bays/bay1/selftest", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer dms-token-0123456789abcdef")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict || !strings.Contains(string(msg), "no open emission-repair work order") ||
			!strings.Contains(string(msg), "test_no first") || strings.Count(string(msg), "emission-repair") != 1 {
			t.Errorf("self-test with %s and no emission order: %s %s", body, resp.Status, msg)
		}
	}
	km := int64(86412)
	o, err := d.Store().Create(workorder.NewOrder{Plate: "浙A7K2M9", PlateColor: "blue", VIN: vin, MileageKm: &km, Bay: "bay1",
		EmissionRepair: true, TestNo: "330100202403110001", Fault: "双怠速检验CO超标", OwnerName: "李四", OwnerPhone: "13900139000"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Bay("bay1").ScanNow(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "scan attached", func() bool { got, _ := d.Store().Get(o.ID); return len(got.Scans) > 0 })

	// Started through the REST API, as the console's self-test page does.
	runMu.Lock()
	req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/api/v1/bays/bay1/selftest",
		strings.NewReader(`{"method":"two_speed_idle","rated_rpm":5000}`))
	req.Header.Set("Authorization", "Bearer dms-token-0123456789abcdef")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err == nil && resp.StatusCode != http.StatusAccepted {
		err = fmt.Errorf("POST selftest: %s", resp.Status)
	}
	if err == nil {
		var st struct {
			Order string `json:"order"`
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.Order != o.ID {
			err = fmt.Errorf("self-test started for order %q, want the bay's open order %s", st.Order, o.ID)
		}
	}
	if err == nil {
		run, err = d.SelfTest("bay1")
	}
	runMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	res, err := run.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != emission.Pass {
		b, _ := json.MarshalIndent(res, "", " ")
		t.Fatalf("self-test verdict %s:\n%s", res.Verdict, b)
	}
	waitFor(t, "self-test result kept on the order", func() bool {
		var ok bool
		_, ok, _ = d.tests.Get(o.ID)
		return ok
	})
	if _, err := d.Store().AddItems(o.ID, workorder.Item{Name: "更换三元催化转化器", Hours: "2.5"}); err != nil {
		t.Fatal(err)
	}
	st, err := d.Store().Settle(o.ID, workorder.SettleRequest{CostListCode: "HS2024031300187"})
	if err != nil {
		t.Fatal(err)
	}
	if st.IMSeq == 0 {
		t.Fatal("settlement queued no M-station record")
	}
	recs, err := d.db.Peek(10)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string][]byte{}
	for _, r := range recs {
		kinds[r.Kind] = r.Payload
	}
	if len(recs) != 2 || kinds["ehr"] == nil || kinds["im"] == nil {
		t.Fatalf("outbox holds %d records %v, want one ehr and one im", len(recs), keys(kinds))
	}
	var im map[string]any
	if err := json.Unmarshal(kinds["im"], &im); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"330100202403110001", "NHA506-2023-0042", vin} {
		if !containsString(kinds["im"], want) {
			t.Errorf("im record lacks %q", want)
		}
	}
	if !containsString(kinds["ehr"], "尾气治理") {
		t.Error("ehr record of an emission repair does not say 尾气治理")
	}
	for _, secret := range []string{"李四", "13900139000"} {
		for k, p := range kinds {
			if containsString(p, secret) {
				t.Errorf("owner data %q in the %s record", secret, k)
			}
		}
	}
	if _, _, err := d.StartSelfTest("bay1", SelfTestRequest{Method: "two_speed_idle", RatedRPM: 5000}); err == nil {
		t.Error("self-test started on a bay whose order is settled")
	}
}

func TestSelfTestNeedsARig(t *testing.T) {
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	cfg.GatewayID = "gw-test-02"
	cfg.Company = config.Company{Code: "330106000099901", Name: "测试", Province: "33"}
	cfg.Bays = []config.Bay{{Name: "bay1", OBD: "sim://"}}
	d, err := New(&cfg, Options{Dial: func(context.Context, config.Bay) (bay.Conn, error) { return nil, context.Canceled }})
	if err != nil {
		t.Fatal(err)
	}
	defer d.db.Close()
	if _, _, err := d.StartSelfTest("bay1", SelfTestRequest{Method: "two_speed_idle"}); err != ErrNoRig {
		t.Fatalf("self-test on a bay without a rig: %v", err)
	}
	if _, _, err := d.StartSelfTest("bay9", SelfTestRequest{Method: "two_speed_idle"}); err == nil {
		t.Fatal("self-test on an unknown bay started")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func containsString(b []byte, s string) bool {
	return json.Valid(b) && len(s) > 0 && strings.Contains(string(b), s)
}
