package console_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/gateway/api"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/emission/emissiontest"
	"github.com/obdgw/obdgw/obd"
)

// fakeSelfTests stands in for the daemon's self-test runner: it records what the console asks
// for, streams the progress updates the test feeds it and ends a run with the result the test
// gives it. The results and updates themselves come from the real procedure (idleRuns), and the
// OBD check is the real emission.CheckOBD over the fake bay's scan report.
type fakeSelfTests struct {
	bays *fakeBays

	mu      sync.Mutex
	starts  []api.SelfTestRequest
	aborts  int
	status  *api.SelfTestStatus // nil: no test has run
	subs    map[chan any]struct{}
	aborted *emission.Result // how an aborted run ends
	refuse  error            // Start fails with this (the daemon's "cannot start" errors)
}

func (f *fakeSelfTests) Start(bay string, req api.SelfTestRequest) (api.SelfTestStatus, error) {
	if bay != bayName {
		return api.SelfTestStatus{}, fmt.Errorf("%w: %q", api.ErrNoBay, bay)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, req)
	if f.refuse != nil {
		return api.SelfTestStatus{}, f.refuse
	}
	if f.status != nil && f.status.Running {
		return api.SelfTestStatus{}, api.ErrTestRunning
	}
	f.status = &api.SelfTestStatus{Bay: bay, Order: req.Order, Method: req.Method, Running: true}
	return *f.status, nil
}

func (f *fakeSelfTests) Status(bay string) (api.SelfTestStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if bay != bayName || f.status == nil {
		return api.SelfTestStatus{}, fmt.Errorf("%w: %q", api.ErrNoSelfTest, bay)
	}
	return *f.status, nil
}

func (f *fakeSelfTests) Abort(bay string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if bay != bayName || f.status == nil {
		return fmt.Errorf("%w: %q", api.ErrNoSelfTest, bay)
	}
	f.aborts++
	if f.status.Running && f.aborted != nil {
		f.endLocked(f.aborted, "emission: test aborted: context canceled")
	}
	return nil
}

// Progress is the daemon's Subscribe: the latest update first, closed when the run ends.
func (f *fakeSelfTests) Progress(ctx context.Context, bay string) (<-chan any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if bay != bayName || f.status == nil {
		return nil, fmt.Errorf("%w: %q", api.ErrNoSelfTest, bay)
	}
	ch := make(chan any, 16)
	if f.status.Progress != nil {
		ch <- f.status.Progress
	}
	if !f.status.Running {
		close(ch)
		return ch, nil
	}
	f.subs[ch] = struct{}{}
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.subs[ch]; ok {
			delete(f.subs, ch)
			close(ch)
		}
	}()
	return ch, nil
}

func (f *fakeSelfTests) OBDCheck(bay string) (any, error) {
	if bay != bayName {
		return nil, fmt.Errorf("%w: %q", api.ErrNoBay, bay)
	}
	f.bays.mu.Lock()
	defer f.bays.mu.Unlock()
	return emission.CheckOBD(emission.OBDInputFromScan(&f.bays.report, carVIN)), nil
}

func (f *fakeSelfTests) send(p emission.Progress) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status.Progress = p
	for ch := range f.subs {
		select {
		case ch <- p:
		default:
		}
	}
}

func (f *fakeSelfTests) end(res *emission.Result, errText string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.endLocked(res, errText)
}

func (f *fakeSelfTests) endLocked(res *emission.Result, errText string) {
	f.status.Running = false
	f.status.Result = res
	f.status.Error = errText
	for ch := range f.subs {
		delete(f.subs, ch)
		close(ch)
	}
}

func (f *fakeSelfTests) watchers() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.subs) }

func (f *fakeSelfTests) calls() ([]api.SelfTestRequest, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.SelfTestRequest(nil), f.starts...), f.aborts
}

// idleRun is one real two-speed idle run on the fake clock: the procedure's own result and
// every progress update it gave the operator.
type idleRun struct {
	res     *emission.Result
	err     error
	updates []emission.Progress
}

// idleRuns runs the real two-speed idle procedure twice under testing/synctest (about two
// minutes of fake time each, milliseconds of real time) with limit set b: once aborted by the
// operator during high-idle sampling, once to the end with idle CO over the limit.
func idleRuns(t *testing.T) (aborted, failed idleRun) {
	t.Helper()
	high := emissiontest.Gas{HC: 28, CO: 0.12, CO2: 14.6, O2: 0.5, Lambda: 1.01}
	low := emissiontest.Gas{HC: 35, CO: 0.55, CO2: 14.3, O2: 0.6, Lambda: 1.01}
	run := func(abortIn string) (r idleRun) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			op := &emissiontest.Operator{Speeds: emissiontest.IdleSpeeds()}
			n := 0
			rg := &emissiontest.Rig{Name: "/dev/ttyUSB1@9600 NHA-506", Script: func(int) (rig.Reading, error) {
				phase, _, _ := op.Phase()
				g := high
				if strings.HasPrefix(phase, "idle") {
					g = low
				}
				n++
				g.HC += float64(n % 3) // a little noise, so the process chart has a shape
				return g.Reading(op.RPM(), 88), nil
			}}
			r.res, r.err = emission.RunTest(ctx, emission.Test{
				Method: emission.TwoSpeedIdle, Rig: rg, Limits: emission.DefaultLimits(), LimitSet: emission.SetB,
				Vehicle: emission.Vehicle{VIN: carVIN, RatedRPM: 6000},
				OnProgress: func(p emission.Progress) {
					op.OnProgress(p)
					if abortIn != "" && p.Phase == abortIn && p.SecondsLeft > 0 && p.SecondsLeft < 25 {
						cancel()
					}
				},
			})
			r.updates = op.Updates()
		})
		if r.res == nil {
			t.Fatalf("two-speed idle gave no result: %v", r.err)
		}
		return r
	}
	aborted, failed = run("high_idle_sample"), run("")
	if aborted.res.Verdict != emission.Aborted {
		t.Fatalf("the run aborted by the operator ended %s (%v)", aborted.res.Verdict, aborted.err)
	}
	if failed.res.Verdict != emission.Fail || len(failed.res.Reasons) == 0 {
		t.Fatalf("the run with idle CO %.2f %% under limit set b ended %s %+v, want a fail with its reason", low.CO, failed.res.Verdict, failed.res.Reasons)
	}
	return aborted, failed
}

// sampling returns an update of the high-idle sampling window with a countdown and a reading,
// the n-th such (0-based).
func sampling(t *testing.T, ups []emission.Progress, n int) emission.Progress {
	t.Helper()
	for _, u := range ups {
		if u.Phase == "high_idle_sample" && u.SecondsLeft > 0 && u.Reading != nil && u.Window != nil && u.Prompt.ZH != "" {
			if n == 0 {
				return u
			}
			n--
		}
	}
	t.Fatal("the procedure gave no high-idle sampling update with a countdown")
	return emission.Progress{}
}

func (e *env) waitSelfTestWatchers(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for e.tests.watchers() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the bay page never opened the self-test progress stream")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testSelfTestStartAbortResult drives the self-test panel of a bay with a rig: the form's
// errors, a start, live progress, an abort behind its confirmation, a second start that ends
// with the judged fail, in Chinese and then English.
func testSelfTestStartAbortResult(t *testing.T, browser context.Context) {
	aborted, failed := idleRuns(t)
	e := newEnv(t)
	e.bays.rig = "nha506 /dev/ttyUSB1@9600"
	e.tests.aborted = aborted.res
	p := newPage(t, browser)
	p.login(e)
	p.goTo(e.url + "/#/bays/bay1")
	p.waitJS(`document.querySelector("#st-form")`, "the self-test form on a bay with a rig")
	p.waitText("[data-role=selftest] h2", "排放自检")

	// Two-speed idle without the rated speed: said on the page, nothing sent.
	p.do(chromedp.SetValue(chromedp.CSS("#st-method"), "two_speed_idle"))
	p.click("[data-act=st-start]")
	p.waitText("#st-form [data-role=errors]", "额定转速")
	p.waitJS(`document.querySelector('#st-form [name=rated_rpm]').getAttribute("aria-invalid") === "true"`, "the rated speed marked")
	// A rated speed the API refuses: its 400 names the field, which is marked.
	p.set("#st-form [name=rated_rpm]", "12000")
	p.click("[data-act=st-start]")
	errs := p.waitText("#st-form [data-role=errors]", "rated_rpm")
	if !strings.Contains(errs, "额定转速") {
		t.Fatalf("errors %q: want the field named in words too", errs)
	}
	p.waitJS(`document.querySelector('#st-form [name=rated_rpm]').getAttribute("aria-invalid") === "true"`, "the rated speed marked after the API's 400")
	if starts, _ := e.tests.calls(); len(starts) != 0 {
		t.Fatalf("refused forms reached the runner: %+v", starts)
	}
	p.shot("selftest-form-error")

	p.set("#st-form [name=rated_rpm]", "6000")
	p.do(chromedp.SetValue(chromedp.CSS("#st-limit"), "b"))
	p.click("[data-act=st-start]")
	p.waitJS(`document.querySelector("[data-act=st-abort]")`, "the running view with its abort button")
	starts, _ := e.tests.calls()
	if len(starts) != 1 || starts[0].Method != "two_speed_idle" || starts[0].RatedRPM != 6000 || starts[0].LimitSet != "b" {
		t.Fatalf("start requests %+v, want one two_speed_idle at 6000 r/min with limit set b", starts)
	}

	// Live progress, as the procedure gave it.
	e.waitSelfTestWatchers(t)
	u := sampling(t, aborted.updates, 0)
	e.tests.send(u)
	p.waitText("[data-role=prompt]", u.Prompt.ZH)
	p.waitText("[data-role=seconds-left]", fmt.Sprintf("%d s", u.SecondsLeft))
	p.waitText("[data-role=phase]", "高怠速检测")
	p.waitText("[data-role=selftest-rpm]", fmt.Sprintf("%.0f", *u.RPM))
	p.waitText("[data-role=rpm-window]", "转速在范围内")
	p.waitText(`[data-gas="co_pct"]`, fmt.Sprintf("%.2f", *u.Reading.COPct))
	u2 := sampling(t, aborted.updates, 3)
	e.tests.send(u2)
	p.waitText("[data-role=seconds-left]", fmt.Sprintf("%d s", u2.SecondsLeft))
	p.shot("selftest-running")
	// The language switch re-renders the running test and keeps following it.
	p.click("#lang")
	p.waitText("[data-role=prompt]", u2.Prompt.EN)
	p.waitText("[data-role=phase]", "high idle, sampling")
	p.click("#lang")
	p.waitText("[data-role=prompt]", u2.Prompt.ZH)

	// Abort wants a confirmation; keeping the test sends nothing.
	p.click("[data-act=st-abort]")
	p.waitJS(`document.getElementById("abort-dialog").open`, "the abort dialog")
	p.click("#abort-dialog [data-act=cancel]")
	p.waitJS(`!document.getElementById("abort-dialog").open`, "the dialog to close")
	if _, n := e.tests.calls(); n != 0 {
		t.Fatalf("%d aborts after cancelling the dialog", n)
	}
	p.click("[data-act=st-abort]")
	p.waitJS(`document.getElementById("abort-dialog").open`, "the abort dialog")
	// A double tap on the confirmation is still one request.
	p.eval(`(function(){const b=document.querySelector("#abort-dialog [data-act=confirm-abort]");b.click();b.click();return ""})()`)
	p.waitText("[data-role=verdict]", "已中止")
	p.waitText("[data-role=reasons]", aborted.res.Reasons[0].ZH)
	time.Sleep(300 * time.Millisecond) // a second request would arrive now
	if _, n := e.tests.calls(); n != 1 {
		t.Fatalf("%d abort requests, want exactly 1", n)
	}

	// A new test, which ends with the procedure's judged fail.
	p.click("[data-act=st-new]")
	p.waitJS(`document.querySelector("#st-form")`, "the form again")
	p.set("#st-form [name=rated_rpm]", "6000")
	p.do(chromedp.SetValue(chromedp.CSS("#st-limit"), "b"))
	p.click("[data-act=st-start]")
	p.waitJS(`document.querySelector("[data-act=st-abort]")`, "the second run")
	e.waitSelfTestWatchers(t)
	fu := sampling(t, failed.updates, 0)
	e.tests.send(fu)
	p.waitText("[data-role=seconds-left]", fmt.Sprintf("%d s", fu.SecondsLeft))
	e.tests.end(failed.res, "")

	res := failed.res
	p.waitText("[data-role=verdict]", "不合格")
	if v := p.eval(`document.querySelector("[data-role=verdict]").dataset.verdict`); v != "fail" {
		t.Fatalf("verdict data %q", v)
	}
	for _, r := range res.Reasons {
		p.waitText("[data-role=reasons]", r.ZH)
	}
	var over []emission.Item
	for _, it := range res.Items {
		row := p.waitText(fmt.Sprintf(`[data-role=st-items] tr[data-item="%s"]`, it.Name), fmt.Sprintf("%.*f", it.Decimals, it.Value))
		if pass := p.eval(fmt.Sprintf(`document.querySelector('[data-role=st-items] tr[data-item="%s"]').dataset.pass`, it.Name)); pass != fmt.Sprint(it.Pass) {
			t.Errorf("%s: row says pass=%s, the result %v", it.Name, pass, it.Pass)
		}
		if !it.Pass {
			over = append(over, it)
			if !strings.Contains(row, "不合格") || !strings.Contains(row, fmt.Sprintf("%.*f", it.Decimals, it.Limit)) {
				t.Errorf("row of %s over its limit: %q, want its limit and 不合格", it.Name, row)
			}
		}
	}
	if len(over) == 0 {
		t.Fatalf("the failed result has no item over its limit: %+v", res.Items)
	}
	hi := res.Idle.HighIdle
	if hi == nil || hi.Lambda == nil || hi.LambdaComputed == nil {
		t.Fatalf("high-idle averages without both λ: %+v", hi)
	}
	p.waitText(`[data-role=lambda] tr[data-phase="high_idle"] [data-role=lambda-analyzer]`, fmt.Sprintf("%.3f", *hi.Lambda))
	p.waitText(`[data-role=lambda] tr[data-phase="high_idle"] [data-role=lambda-computed]`, fmt.Sprintf("%.3f", *hi.LambdaComputed))
	if n := p.eval(`String(document.querySelectorAll("[data-role=process-chart] svg polyline").length)`); n == "0" {
		t.Fatal("no process chart")
	}
	if n := p.eval(`String(document.querySelectorAll("[data-role=process] tr").length - 1)`); n != fmt.Sprint(len(res.Idle.Process)) {
		t.Fatalf("process table has %s rows, the result %d seconds", n, len(res.Idle.Process))
	}
	p.shot("selftest-result")

	p.click("#lang")
	p.waitText("[data-role=verdict]", "Fail")
	for _, r := range res.Reasons {
		p.waitText("[data-role=reasons]", r.EN)
	}
	p.waitText(fmt.Sprintf(`[data-role=st-items] tr[data-item="%s"]`, over[0].Name), "Fail")
	p.waitText(`[data-role=st-items] tr[data-item="IDLE_CO"]`, "Idle CO")
	p.shot("selftest-result-en")
	if starts, aborts := e.tests.calls(); len(starts) != 2 || aborts != 1 {
		t.Fatalf("%d starts and %d aborts, want 2 and 1", len(starts), aborts)
	}
}

// testOBDCheck shows the inspection station's OBD check of the bay's last scan, line by line,
// as the real emission.CheckOBD judges the fake bay's report (MIL on, a stored code).
func testOBDCheck(t *testing.T, browser context.Context) {
	e := newEnv(t)
	e.bays.mu.Lock()
	check := emission.CheckOBD(emission.OBDInputFromScan(&e.bays.report, carVIN))
	e.bays.mu.Unlock()
	var mil, dtc emission.CheckLine
	for _, l := range check.Lines {
		switch l.Rule {
		case "mil":
			mil = l
		case "dtc":
			dtc = l
		}
	}
	if check.Pass || mil.Status != "fail" || dtc.Status != "fail" {
		t.Fatalf("check of a car with the MIL on and P0420 stored: %+v", check)
	}
	p := newPage(t, browser)
	p.login(e)
	p.goTo(e.url + "/#/bays/bay1")
	p.waitText("[data-role=obd-result]", "不合格")
	p.waitText(`[data-role=obd-lines] tr[data-rule="mil"][data-status="fail"]`, mil.ZH)
	p.waitText(`[data-role=obd-lines] tr[data-rule="mil"]`, "不通过")
	p.waitText(`[data-role=obd-lines] tr[data-rule="dtc"][data-status="fail"]`, dtc.ZH)
	if n := p.eval(`String(document.querySelectorAll("[data-role=obd-lines] tr").length)`); n != fmt.Sprint(len(check.Lines)) {
		t.Fatalf("%s lines shown, the check has %d", n, len(check.Lines))
	}
	if p.eval(`String(document.querySelector("[data-role=selftest]").hidden)`) != "true" {
		t.Fatal("a bay without a rig shows the self-test panel")
	}
	p.shot("obd-check")
	p.click("#lang")
	p.waitText(`[data-role=obd-lines] tr[data-rule="mil"]`, mil.EN)
	p.waitText("[data-role=obd-result]", "Fail")

	// After the repair: the MIL off and no code; checking again says so.
	e.bays.mu.Lock()
	e.bays.report.MIL = new(false)
	e.bays.report.DTCs.Stored = e.bays.report.DTCs.Stored[:0] // read, and none
	after := emission.CheckOBD(emission.OBDInputFromScan(&e.bays.report, carVIN))
	e.bays.mu.Unlock()
	if !after.Pass {
		t.Fatalf("check after the repair: %+v", after)
	}
	p.click("[data-act=obd-recheck]")
	for _, l := range after.Lines {
		p.waitText(fmt.Sprintf(`[data-role=obd-lines] tr[data-rule="%s"][data-status="%s"]`, l.Rule, l.Status), l.EN)
	}
	p.waitText("[data-role=obd-result]", "Pass")

	// An adapter that lost the bus after connecting: the MIL, the codes and the readiness were
	// not read. The check cannot judge the car (neither pass nor fail) and the scan shows
	// unknown, never off or none.
	e.bays.mu.Lock()
	e.bays.report.MIL, e.bays.report.Readiness = nil, nil
	e.bays.report.DTCs = obd.DTCLists{}
	e.bays.report.Unread = nil
	for _, item := range []string{obd.ItemMIL, obd.ItemReadiness, obd.ItemDTCsStored, obd.ItemDTCsPending, obd.ItemDTCsPermanent} {
		step := map[string]string{obd.ItemMIL: "readiness", obd.ItemReadiness: "readiness"}[item]
		if step == "" {
			step = item
		}
		e.bays.report.Unread = append(e.bays.report.Unread, obd.Unread{Item: item, Step: step, Status: obd.StepFailed, Reason: "elm327: can error"})
	}
	broken := emission.CheckOBD(emission.OBDInputFromScan(&e.bays.report, carVIN))
	e.bays.mu.Unlock()
	if broken.Verdict != emission.CannotJudge {
		t.Fatalf("check of a scan that read nothing: %+v", broken)
	}
	p.click("[data-act=obd-recheck]")
	p.waitText(`[data-role=obd-result][data-verdict="cannot_judge"]`, "Cannot judge (communication)")
	p.waitText(`[data-role=obd-lines] tr[data-rule="communication"][data-status="fail"]`, "cannot judge")
	p.goTo(e.url + "/#/") // and back, so the bay page renders the new last scan
	p.waitText(`[data-bay="bay1"] [data-mil="unknown"]`, "unknown")
	p.goTo(e.url + "/#/bays/bay1")
	p.waitText(`[data-role=mil][data-mil="unknown"]`, "unknown")
	p.waitText("[data-role=dtcs-unread]", "step failed")
	p.waitText("[data-role=readiness-unread]", "unknown")
	if n := p.eval(`String(document.querySelectorAll("[data-role=dtcs]").length)`); n != "0" {
		t.Errorf("the scan shows a DTC list (%s) for codes that were not read", n)
	}
	p.click("#lang")
	p.waitText(`[data-role=obd-result][data-verdict="cannot_judge"]`, "无法判定（通讯）")
	p.waitText(`[data-role=mil][data-mil="unknown"]`, "未知")
}

// accelRun runs the real free-acceleration procedure on the fake clock: three purges, then
// three measured accelerations with the given peak k (m⁻¹); each acceleration's puff rises and
// falls over its first samples.
func accelRun(t *testing.T, peaks ...float64) idleRun {
	t.Helper()
	shape := []float64{0.1, 0.4, 0.8, 1.0, 0.9, 0.6, 0.4, 0.25, 0.15, 0.1}
	var r idleRun
	synctest.Test(t, func(t *testing.T) {
		op := &emissiontest.Operator{Speeds: emissiontest.AccelSpeeds()}
		count, last := 0, ""
		rg := &emissiontest.Rig{Name: "/dev/ttyUSB2@9600 NHT-6", Script: func(int) (rig.Reading, error) {
			phase, tick, _ := op.Phase()
			if phase == "accelerate" && last != "accelerate" {
				count++
			}
			last = phase
			k := 0.05
			if phase == "accelerate" && count-1 < len(peaks) && tick < len(shape) {
				k = peaks[count-1] * shape[tick]
			}
			return rig.Reading{KM1: rig.F(k), OpacityPct: rig.F(emission.NFromK(k, emission.DefaultPathLengthM)), RPM: rig.F(op.RPM()), OilC: rig.F(85)}, nil
		}}
		r.res, r.err = emission.RunTest(context.Background(), emission.Test{
			Method: emission.FreeAcceleration, Rig: rg, Limits: emission.DefaultLimits(),
			Vehicle: emission.Vehicle{VIN: carVIN, RatedRPM: 3200}, OnProgress: op.OnProgress,
		})
		r.updates = op.Updates()
	})
	if r.res == nil || r.res.Accel == nil {
		t.Fatalf("free acceleration gave no result: %v", r.err)
	}
	return r
}

// testFreeAccelerationResult opens a bay whose free-acceleration test has already ended: the
// page reads the result, with the peaks of each acceleration; a new test of a diesel needs no
// rated speed, and its acceleration phase shows which acceleration it is.
func testFreeAccelerationResult(t *testing.T, browser context.Context) {
	run := accelRun(t, 2.5, 2.0, 1.5, 0.80, 0.90, 1.00)
	if run.res.Verdict != emission.Pass {
		t.Fatalf("free acceleration ended %s %+v, want a pass", run.res.Verdict, run.res.Reasons)
	}
	e := newEnv(t)
	e.bays.rig = "nht6 /dev/ttyUSB2@9600"
	e.tests.status = &api.SelfTestStatus{Bay: bayName, Method: "free_acceleration", Result: run.res}
	p := newPage(t, browser)
	p.login(e)
	p.goTo(e.url + "/#/bays/bay1")
	p.waitText("[data-role=verdict]", "合格")
	p.waitText("[data-role=selftest] h2", "自由加速")
	a := run.res.Accel
	if n := p.eval(`String(document.querySelectorAll("[data-role=peaks] tr").length)`); n != fmt.Sprint(len(a.PeaksKM1)+2) {
		t.Fatalf("peaks table has %s rows, want header, %d peaks and the average", n, len(a.PeaksKM1))
	}
	p.waitText("[data-role=peaks]", fmt.Sprintf("%.2f", *a.AvgKM1))
	it, ok := run.res.Item("EMISSION")
	if !ok {
		t.Fatalf("no EMISSION item in %+v", run.res.Items)
	}
	p.waitText(`[data-role=st-items] tr[data-item="EMISSION"]`, fmt.Sprintf("%.2f", it.Limit))
	p.waitText(`[data-role=st-items] tr[data-item="EMISSION"]`, "光吸收系数")
	p.waitJS(`document.querySelector('[data-role=process-chart] [data-series="k_m1"] polyline')`, "the k chart")
	p.shot("selftest-accel")

	p.click("[data-act=st-new]")
	p.do(chromedp.SetValue(chromedp.CSS("#st-method"), "free_acceleration"))
	p.eval(`(function(){document.querySelector("#st-method").dispatchEvent(new Event("change",{bubbles:true}));return ""})()`)
	// What the form holds survives the language switch.
	p.click("#lang")
	p.waitText("#st-form", "Free acceleration")
	if m := p.eval(`document.querySelector("#st-method").value`); m != "free_acceleration" {
		t.Fatalf("the method went back to %q after the language switch", m)
	}
	p.click("#lang")
	p.waitText("#st-form", "自由加速")
	// A test that cannot start (422): the runner's words, which say what to do, on the form.
	e.tests.mu.Lock()
	e.tests.refuse = errors.New("emission: the opacimeter is warming up: wait until it reports ready")
	e.tests.mu.Unlock()
	p.click("[data-act=st-start]")
	p.waitText("#st-form [data-role=errors]", "wait until it reports ready")
	e.tests.mu.Lock()
	e.tests.refuse, e.tests.starts = nil, nil
	e.tests.mu.Unlock()
	p.click("[data-act=st-start]")
	p.waitJS(`document.querySelector("[data-act=st-abort]")`, "the running view")
	starts, _ := e.tests.calls()
	if len(starts) != 1 || starts[0].Method != "free_acceleration" || starts[0].RatedRPM != 0 || starts[0].LimitSet != "" {
		t.Fatalf("start requests %+v, want one free_acceleration without rated speed or limit set", starts)
	}
	e.waitSelfTestWatchers(t)
	var acc emission.Progress
	for _, u := range run.updates {
		if u.Phase == "accelerate" && u.Acceleration == 2 && u.Reading != nil {
			acc = u
			break
		}
	}
	if acc.Phase == "" {
		t.Fatal("no update of the second measured acceleration")
	}
	e.tests.send(acc)
	p.waitText("[data-role=prompt]", acc.Prompt.ZH)
	p.waitText("[data-role=acceleration]", "2")
	p.waitText(`[data-gas="k_m1"]`, fmt.Sprintf("%.2f", *acc.Reading.KM1))

	// The gateway restarts mid-test and no longer knows the run: the page stops following it
	// and offers the form again instead of showing a test that will never end.
	e.tests.mu.Lock()
	e.tests.status = nil
	e.tests.mu.Unlock()
	e.srv.CloseClientConnections()
	p.waitJS(`document.querySelector("#st-form") && !document.querySelector("[data-act=st-abort]")`, "the form after the run vanished")
}
