package daemon

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/gateway/bay"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/gateway/workorder"
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

// richRig is the scripted analyzer with a rich λ.
type richRig struct {
	*analyzer
	lambda float64
}

func (r *richRig) Read(ctx context.Context) (rig.Reading, error) {
	rd, err := r.analyzer.Read(ctx)
	rd.Lambda = rig.F(r.lambda)
	return rd, err
}

// emissionBay starts a daemon with one bay whose car is the named elm327sim scenario and whose
// rig is r (registered as model), and opens an emission-repair order on it.
func emissionBay(t *testing.T, scenario, model string, r rig.Rig, edit func(*config.Config)) (*Daemon, string, workorder.Order) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Bays = []config.Bay{{Name: "bay1", OBD: "sim://" + scenario, Rig: &config.Rig{Model: model, Address: "sim://", Serial: "RIG-2023-0042"}}}
	idle := &cfg.Emission.TwoSpeedIdle
	idle.Precondition, idle.Stabilise, idle.Sample = 300*time.Millisecond, 200*time.Millisecond, 500*time.Millisecond
	idle.SamplePeriod, idle.ReachTimeout = 50*time.Millisecond, 5*time.Second
	cfg.Emission.Rig.ZeroBeforeTest = false
	if edit != nil {
		edit(&cfg)
	}
	d, base, _ := startDaemon(t, &cfg, Options{Dial: simDial(t, scenario), Poll: 100 * time.Millisecond,
		OpenRig: func(config.Bay) (rig.Rig, error) { return r, nil }})
	waitFor(t, "a scan on bay1", func() bool { st := d.Bay("bay1").Status(); return st.State == bay.Ready && st.LastScan != nil })
	km := int64(86412)
	o, err := d.Store().Create(workorder.NewOrder{Plate: "浙A7K2M9", PlateColor: "blue", VIN: d.Bay("bay1").Status().VIN, MileageKm: &km, Bay: "bay1",
		EmissionRepair: true, TestNo: "330100202403110001", Fault: "双怠速检验CO超标"})
	if err != nil {
		t.Fatal(err)
	}
	return d, base, o
}

// followRun points the analyzer's script at the bay's run once it has started.
func followRun(d *Daemon, an *analyzer) {
	var mu sync.Mutex
	an.cond = func() int {
		mu.Lock()
		defer mu.Unlock()
		run, err := d.SelfTest("bay1")
		if err != nil {
			return 0
		}
		p, _ := run.Latest()
		return p.Condition
	}
}

// TestSelfTestPreconditionsRefusedAtStart: a method that does not fit the bay's instrument or
// the car's fuel is refused by the API at once (422, saying what to run instead), before the
// rig is read; a bad fuel name is a 400 naming the field.
func TestSelfTestPreconditionsRefusedAtStart(t *testing.T) {
	an := &analyzer{rated: 5000}
	d, base, _ := emissionBay(t, "petrol", "nha506", an, nil)
	followRun(d, an)
	for _, c := range []struct {
		body string
		code int
		want string
	}{
		{`{"method":"free_acceleration","rated_rpm":5000}`, http.StatusUnprocessableEntity, "free acceleration needs an opacimeter, and this bay's instrument is a gas analyzer"},
		{`{"method":"two_speed_idle","rated_rpm":5000,"fuel":"diesel"}`, http.StatusUnprocessableEntity, "run free_acceleration (GB 3847-2018)"},
		{`{"method":"two_speed_idle","rated_rpm":5000,"fuel":"kerosene"}`, http.StatusBadRequest, `"field":"fuel"`},
		{`{"method":"two_speed_idle","rated_rpm":5000,"gross_mass_kg":-1}`, http.StatusBadRequest, `"field":"gross_mass_kg"`},
	} {
		code, body := apiCall(t, base, "POST", "/bays/bay1/selftest", c.body)
		if code != c.code || !strings.Contains(string(body), c.want) {
			t.Errorf("POST %s: %d %s, want %d saying %q", c.body, code, body, c.code, c.want)
		}
	}
	if _, err := d.SelfTest("bay1"); err == nil {
		t.Error("a refused start left a run on the bay")
	}
}

// TestSelfTestOnADieselByItsScan: the bay's scan says the car is a compression-ignition
// engine, so two-speed idle is refused without a fuel on the request.
func TestSelfTestOnADieselByItsScan(t *testing.T) {
	an := &analyzer{rated: 3000}
	_, base, _ := emissionBay(t, "diesel", "nha506", an, nil)
	code, body := apiCall(t, base, "POST", "/bays/bay1/selftest", `{"method":"two_speed_idle","rated_rpm":3000}`)
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(body), "compression ignition (diesel), as its OBD readiness says") {
		t.Errorf("two-speed idle on the diesel: %d %s", code, body)
	}
}

// TestLambdaShownNotJudgedThroughTheAPI: λ 0.90 fails a petrol car; the same car stated to
// have no closed-loop fuel control with a three-way catalyst passes, its λ shown, not judged,
// and its heavy mass moves high idle to 1800 ± 200 r/min.
func TestLambdaShownNotJudgedThroughTheAPI(t *testing.T) {
	for _, c := range []struct {
		body    string
		verdict string
		judged  bool
		hiMin   float64
	}{
		{`{"method":"two_speed_idle","rated_rpm":5000}`, "fail", true, 2300},
		{`{"method":"two_speed_idle","rated_rpm":5000,"lambda_judged":false,"gross_mass_kg":4200}`, "pass", false, 1600},
	} {
		t.Run(c.verdict, func(t *testing.T) {
			an := &analyzer{rated: 5000}
			rr := &richRig{analyzer: an, lambda: 0.90}
			d, base, _ := emissionBay(t, "petrol", "nha506", rr, nil)
			followRun(d, an)
			if c.hiMin < 2000 {
				an.highRPM = 1800
			}
			code, body := apiCall(t, base, "POST", "/bays/bay1/selftest", c.body)
			if code != http.StatusAccepted {
				t.Fatalf("start: %d %s", code, body)
			}
			run, _ := d.SelfTest("bay1")
			<-run.Done()
			code, body = apiCall(t, base, "GET", "/bays/bay1/selftest", "")
			var st struct {
				Result struct {
					Verdict string `json:"verdict"`
					Items   []struct {
						Name      string  `json:"name"`
						Value     float64 `json:"value"`
						NotJudged bool    `json:"not_judged"`
					} `json:"items"`
					Idle struct {
						LambdaJudged bool    `json:"lambda_judged"`
						HighIdleMin  float64 `json:"high_idle_rpm_min"`
					} `json:"two_speed_idle"`
				} `json:"result"`
			}
			if err := json.Unmarshal(body, &st); err != nil || code != http.StatusOK {
				t.Fatalf("GET selftest: %d %s", code, body)
			}
			r := st.Result
			if r.Verdict != c.verdict || r.Idle.LambdaJudged != c.judged || r.Idle.HighIdleMin != c.hiMin {
				t.Errorf("verdict %s λ judged %v high idle from %v, want %s %v %v: %s", r.Verdict, r.Idle.LambdaJudged, r.Idle.HighIdleMin, c.verdict, c.judged, c.hiMin, body)
			}
			if len(r.Items) == 0 || r.Items[0].Name != "AIR_COEFFICIENT" || r.Items[0].Value != 0.9 || r.Items[0].NotJudged == c.judged {
				t.Errorf("λ item %+v", r.Items)
			}
		})
	}
}

// TestEmissionRepairWithoutSelfTestNeedsAReason: settling an emission repair with no judged
// self-test is refused (409, naming what is missing and how to run one); with
// no_selftest_reason it settles, and the M-station record says no self-test was made.
func TestEmissionRepairWithoutSelfTestNeedsAReason(t *testing.T) {
	an := &analyzer{rated: 5000}
	d, base, o := emissionBay(t, "petrol", "nha506", an, nil)
	if _, err := d.Bay("bay1").ScanNow(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "scan attached", func() bool { got, _ := d.Store().Get(o.ID); return len(got.Scans) > 0 })
	if _, err := d.Store().AddItems(o.ID, workorder.Item{Name: "更换三元催化转化器", Hours: "2.5"}); err != nil {
		t.Fatal(err)
	}
	// The car failed its inspection today, just after midnight; the repair began when the order
	// was opened, later the same day. The record keeps that time, not the day's midnight.
	today := time.Now().In(wire.IMZone).Format("2006-01-02")
	code, body := apiCall(t, base, "PATCH", "/workorders/"+o.ID, `{"failed_test_end":"`+today+` 00:00:01"}`)
	if code != http.StatusOK {
		t.Fatalf("PATCH failed_test_end: %d %s", code, body)
	}
	got, _ := d.Store().Get(o.ID)
	wantRepair := got.Created.In(wire.IMZone).Format(wire.IMTimeLayout)
	if got.FailedTestEnd != strings.ReplaceAll(today, "-", "")+"000001" {
		t.Errorf("failed_test_end stored as %q", got.FailedTestEnd)
	}
	if wantRepair < today+" 00:00:01" {
		wantRepair = today + " 00:00:01"
	}
	code, body = apiCall(t, base, "POST", "/workorders/"+o.ID+"/settle", `{"costlistcode":"HS2024031300187"}`)
	for _, want := range []string{"needs a judged post-repair self-test", "/api/v1/bays/{bay}/selftest", "no_selftest_reason", `"field":"no_selftest_reason"`} {
		if code != http.StatusConflict || !strings.Contains(string(body), want) {
			t.Errorf("settle without a self-test: %d %s, want 409 saying %q", code, body, want)
		}
	}
	if recs, _ := d.db.Peek(10); len(recs) != 0 {
		t.Fatalf("a refused settlement queued %d records", len(recs))
	}
	code, body = apiCall(t, base, "POST", "/workorders/"+o.ID+"/settle", `{"costlistcode":"HS2024031300187","no_selftest_reason":"分析仪送检定，车主不愿等待"}`)
	if code != http.StatusOK {
		t.Fatalf("settle with a reason: %d %s", code, body)
	}
	recs, err := d.db.Peek(10)
	if err != nil {
		t.Fatal(err)
	}
	var im []byte
	for _, r := range recs {
		if r.Kind == "im" {
			im = r.Payload
		}
	}
	if len(recs) != 2 || im == nil {
		t.Fatalf("outbox holds %d records, want the ehr and the im record", len(recs))
	}
	for _, want := range []string{`"SELF_TEST":null`, `"NO_SELF_TEST_REASON":"分析仪送检定，车主不愿等待"`,
		`"TEST_DATE_END":"` + today + ` 00:00:01"`, `"REPAIR_TIME":"` + wantRepair + `"`} {
		if !containsString(im, want) {
			t.Errorf("im record lacks %s", want)
		}
	}
}

// opacimeter is a scripted opacimeter following the procedure's phases: idle smoke between
// accelerations, and the n-th measured acceleration's k at peaks[n-1] while it lasts.
type opacimeter struct {
	d     func() (phase string, acc int)
	peaks []float64
}

func (o *opacimeter) Read(ctx context.Context) (rig.Reading, error) {
	phase, acc := o.d()
	k, rpm := 0.05, 750.0
	if phase == "accelerate" && acc >= 1 && acc <= len(o.peaks) {
		k, rpm = o.peaks[acc-1], 2400
	}
	return rig.Reading{Time: time.Now(), KM1: rig.F(k), OpacityPct: rig.F(100 * (1 - math.Exp(-k*0.43))), RPM: rig.F(rpm), OilC: rig.F(85)}, nil
}
func (o *opacimeter) String() string { return "scripted opacimeter" }
func (o *opacimeter) Halt() error    { return nil }
func (o *opacimeter) Close() error   { return nil }

// TestFreeAccelerationJudgedOnceThroughTheAPI: a diesel on an opacimeter bay, started through
// the API, whose peaks 1.1951, 1.1951, 1.2151 m⁻¹ average 1.2018: judged 1.20, a pass. Rounding
// each peak first would have made it 1.21, a fail. The M-station record prints the peaks to
// two decimals and the judged mean.
func TestFreeAccelerationJudgedOnceThroughTheAPI(t *testing.T) {
	var d *Daemon
	op := &opacimeter{peaks: []float64{1.1951, 1.1951, 1.2151}, d: func() (string, int) {
		if d == nil {
			return "", 0
		}
		run, err := d.SelfTest("bay1")
		if err != nil {
			return "", 0
		}
		p, _ := run.Latest()
		return p.Phase, p.Acceleration
	}}
	d, base, o := emissionBay(t, "diesel", "nht6", op, func(cfg *config.Config) {
		f := &cfg.Emission.FreeAcceleration
		f.PurgeAccelerations, f.Accelerate, f.IdleBetween, f.SamplePeriod, f.ReachTimeout = 0, 400*time.Millisecond, 200*time.Millisecond, 50*time.Millisecond, 5*time.Second
	})
	code, body := apiCall(t, base, "POST", "/bays/bay1/selftest", `{"method":"free_acceleration","rated_rpm":2400,"fuel":"diesel"}`)
	if code != http.StatusAccepted {
		t.Fatalf("start: %d %s", code, body)
	}
	run, _ := d.SelfTest("bay1")
	<-run.Done()
	res, err := run.Result()
	if err != nil || res.Verdict != emission.Pass || res.Accel.AvgKM1 == nil || *res.Accel.AvgKM1 != 1.2 {
		t.Fatalf("verdict %v avg %v err %v reasons %+v", res.Verdict, res.Accel.AvgKM1, err, res.Reasons)
	}
	waitFor(t, "the self-test kept on the order", func() bool { _, ok, _ := d.tests.Get(o.ID); return ok })
	if _, err := d.Store().AddItems(o.ID, workorder.Item{Name: "清洗DPF", Hours: "1.5"}); err != nil {
		t.Fatal(err)
	}
	if code, body := apiCall(t, base, "POST", "/workorders/"+o.ID+"/settle", `{"costlistcode":"HS2024031300188"}`); code != http.StatusOK {
		t.Fatalf("settle: %d %s", code, body)
	}
	recs, _ := d.db.Peek(10)
	var im []byte
	for _, r := range recs {
		if r.Kind == "im" {
			im = r.Payload
		}
	}
	for _, want := range []string{`"EMISSION_ONE":"1.20"`, `"EMISSION_THREE":"1.22"`, `"EMISSION_AVG":"1.20"`, `"EMISSION_IF":"1"`} {
		if !containsString(im, want) {
			t.Errorf("im record lacks %s", want)
		}
	}
}

// TestRevisionKeepsTheNoSelfTestRule: an emission repair settled with a reason and no
// self-test; a revision that clears the reason is refused like the settlement would be, and one
// that restates it sends a new M-station record revision carrying the new reason.
func TestRevisionKeepsTheNoSelfTestRule(t *testing.T) {
	an := &analyzer{rated: 5000}
	d, base, o := emissionBay(t, "petrol", "nha506", an, nil)
	if _, err := d.Store().AddItems(o.ID, workorder.Item{Name: "更换三元催化转化器", Hours: "2.5"}); err != nil {
		t.Fatal(err)
	}
	if code, body := apiCall(t, base, "POST", "/workorders/"+o.ID+"/settle", `{"costlistcode":"HS2024031300189","no_selftest_reason":"分析仪故障"}`); code != http.StatusOK {
		t.Fatalf("settle: %d %s", code, body)
	}
	code, body := apiCall(t, base, "POST", "/workorders/"+o.ID+"/revisions", `{"reason":"撤回原因","no_selftest_reason":""}`)
	if code != http.StatusConflict || !strings.Contains(string(body), `"field":"no_selftest_reason"`) {
		t.Fatalf("revision clearing the reason: %d %s, want 409 on no_selftest_reason", code, body)
	}
	code, body = apiCall(t, base, "POST", "/workorders/"+o.ID+"/revisions", `{"reason":"原因更正","no_selftest_reason":"分析仪送检定"}`)
	if code != http.StatusOK {
		t.Fatalf("revision restating the reason: %d %s", code, body)
	}
	recs, _ := d.db.Peek(10)
	var ims [][]byte
	for _, r := range recs {
		if r.Kind == "im" {
			ims = append(ims, r.Payload)
		}
	}
	if len(ims) != 2 || !containsString(ims[1], `"NO_SELF_TEST_REASON":"分析仪送检定"`) || !containsString(ims[1], `"revision":2`) {
		t.Fatalf("%d im records; the last: %s", len(ims), ims[len(ims)-1])
	}
}

// TestLambdaJudgedWhenTheCarRunsClosedLoop: a CNG car is not judged on λ by default; when the
// car answers fuel system status "closed loop" (PID 03) at the start of the test its λ is
// judged, and a rich λ fails it.
func TestLambdaJudgedWhenTheCarRunsClosedLoop(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("..", "..", "drivers", "elm327", "elm327sim", "scenarios", "petrol.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		pid03   string
		verdict emission.Verdict
		by      string
	}{
		{"open loop", `"03": "01 00"`, emission.Pass, "fuel_cng"},
		{"closed loop", `"03": "02 00"`, emission.Fail, "obd_closed_loop"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sc := strings.Replace(string(base), "    pids:\n", "    pids:\n      "+c.pid03+"\n", 1)
			path := filepath.Join(t.TempDir(), "petrol-fuel-status.yaml")
			if err := os.WriteFile(path, []byte(sc), 0o644); err != nil {
				t.Fatal(err)
			}
			an := &analyzer{rated: 5000}
			d, apiBase, _ := emissionBay(t, path, "nha506", &richRig{analyzer: an, lambda: 0.90}, nil)
			followRun(d, an)
			code, body := apiCall(t, apiBase, "POST", "/bays/bay1/selftest", `{"method":"two_speed_idle","rated_rpm":5000,"fuel":"cng"}`)
			if code != http.StatusAccepted {
				t.Fatalf("start: %d %s", code, body)
			}
			run, _ := d.SelfTest("bay1")
			<-run.Done()
			res, _ := run.Result()
			if res == nil || res.Verdict != c.verdict || res.Idle.LambdaJudgedBy != c.by {
				t.Fatalf("result %+v, want %s with λ decided by %s", res, c.verdict, c.by)
			}
		})
	}
}
