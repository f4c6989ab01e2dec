package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/chromedp/chromedp"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/gateway/api"
	"github.com/obdgw/obdgw/gateway/console"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/emission/emissiontest"
	"github.com/obdgw/obdgw/gateway/events"
	"github.com/obdgw/obdgw/gateway/imrecord"
	"github.com/obdgw/obdgw/gateway/workorder"
	"github.com/obdgw/obdgw/obd"
)

// warmRun is a real two-speed idle on the fake clock of a car stated to have no closed-loop
// fuel control with a three-way catalyst (λ 0.90 shown, not judged), whose engine starts cold
// and warms while the test shows it.
func warmRun(t *testing.T) (warmUp []emission.Progress, res *emission.Result) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		op := &emissiontest.Operator{Speeds: emissiontest.IdleSpeeds()}
		n := 0
		rg := &emissiontest.Rig{Name: "/dev/ttyUSB1@9600 NHA-506", Script: func(int) (rig.Reading, error) {
			n++
			g := emissiontest.Gas{HC: 28, CO: 0.12, CO2: 14.6, O2: 0.5, Lambda: 0.90}
			rpm := op.RPM()
			if rpm == 0 { // warming up: idling
				rpm = 800
			}
			return g.Reading(rpm, min(60+float64(n), 88)), nil
		}}
		no := false
		l := emission.DefaultLimits()
		l.TwoSpeedIdle.LambdaPlausibility = 1
		res, _ = emission.RunTest(context.Background(), emission.Test{
			Method: emission.TwoSpeedIdle, Rig: rg, Limits: l,
			Vehicle:    emission.Vehicle{VIN: carVIN, RatedRPM: 6000, FuelType: emission.FuelLPG, LambdaJudged: &no},
			OnProgress: op.OnProgress,
		})
		for _, u := range op.Updates() {
			if u.Phase == "warm_up" {
				warmUp = append(warmUp, u)
			}
		}
	})
	if res == nil || res.Verdict != emission.Pass || len(warmUp) < 2 {
		t.Fatalf("the warm run ended %v with %d warm-up updates", res, len(warmUp))
	}
	return warmUp, res
}

// testSelfTestVehicleFacts: the start form sends the car's fuel, gross mass and whether λ is
// judged; a method the runner refuses shows its reason; the warm-up (oil temperature, engine
// speed) shows before the first prompt; a λ not judged is shown as such in the result.
func testSelfTestVehicleFacts(t *testing.T, browser context.Context) {
	warmUp, res := warmRun(t)
	e := newEnv(t)
	e.bays.rig = "nha506 /dev/ttyUSB1@9600"
	p := newPage(t, browser)
	p.login(e)
	p.goTo(e.url + "/#/bays/bay1")
	p.waitJS(`document.querySelector("#st-form #st-fuel")`, "the self-test form with the vehicle's fuel")

	// The runner refuses a method that does not fit the instrument: its words are shown.
	e.tests.mu.Lock()
	e.tests.refuse = &emission.PreconditionError{Msg: "free acceleration needs an opacimeter, and this bay's instrument is a gas analyzer: run two_speed_idle here"}
	e.tests.mu.Unlock()
	p.do(chromedp.SetValue(chromedp.CSS("#st-method"), "free_acceleration"))
	p.click("[data-act=st-start]")
	p.waitText("#st-form [data-role=errors]", "needs an opacimeter")
	e.tests.mu.Lock()
	e.tests.refuse = nil
	e.tests.mu.Unlock()

	p.do(chromedp.SetValue(chromedp.CSS("#st-method"), "two_speed_idle"))
	p.set("#st-form [name=rated_rpm]", "6000")
	p.do(chromedp.SetValue(chromedp.CSS("#st-fuel"), "lpg"))
	p.set("#st-form [name=gross_mass_kg]", "4200")
	p.do(chromedp.SetValue(chromedp.CSS("#st-lambda"), "no"))
	p.click("[data-act=st-start]")
	p.waitJS(`document.querySelector("[data-act=st-abort]")`, "the running view")
	starts, _ := e.tests.calls()
	last := starts[len(starts)-1]
	if last.Fuel != "lpg" || last.GrossMassKg != 4200 || last.LambdaJudged == nil || *last.LambdaJudged {
		t.Fatalf("start request %+v, want fuel lpg, 4200 kg, lambda_judged false", last)
	}

	// Warm-up first: the oil temperature and the engine speed, with what to do.
	e.waitSelfTestWatchers(t)
	cold := warmUp[0]
	e.tests.send(cold)
	p.waitText("[data-role=phase]", "发动机预热")
	p.waitText("[data-role=prompt]", cold.Prompt.ZH)
	p.waitText(`[data-gas="oil_c"]`, fmt.Sprintf("%.0f", *cold.Reading.OilC))
	p.waitText("[data-role=selftest-rpm]", fmt.Sprintf("%.0f", *cold.RPM))
	if !strings.Contains(cold.Prompt.ZH, "油温") {
		t.Fatalf("warm-up prompt %q does not name the oil temperature", cold.Prompt.ZH)
	}
	p.shot("selftest-warm-up")
	e.tests.end(res, "")

	p.waitText("[data-role=verdict]", "合格")
	row := p.waitText(`[data-role=st-items] tr[data-item="AIR_COEFFICIENT"]`, "0.90")
	if !strings.Contains(row, "不判定") || p.eval(`document.querySelector('[data-role=st-items] tr[data-item="AIR_COEFFICIENT"]').dataset.judged`) != "false" {
		t.Fatalf("λ row %q: want it shown as not judged", row)
	}
	p.click("#lang")
	p.waitText(`[data-role=st-items] tr[data-item="AIR_COEFFICIENT"]`, "not judged")
}

// testEmissionSettleNeedsSelfTest: settling an emission repair without a self-test shows the
// API's refusal, naming the reason field; with a reason it settles and the M-station record
// says no self-test was made.
func testEmissionSettleNeedsSelfTest(t *testing.T, browser context.Context) {
	db, err := buffer.Open(filepath.Join(t.TempDir(), "obdgw.db"), buffer.Options{GatewayID: "gw-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bus := events.New(nil)
	ims := imrecord.NewStore(db, imrecord.Options{})
	store := workorder.New(db, workorder.Options{Company: "杭州示例汽车维修有限公司", CompanyCode: "330106000099901",
		Province: "33", GatewayID: "gw-test", Events: bus, IM: ims.Record})
	bays := newFakeBays()
	a := api.New(api.Options{Store: store, Bays: bays, SelfTests: &fakeSelfTests{bays: bays, subs: map[chan any]struct{}{}}, Outbox: db, Events: bus,
		Tokens: []api.Token{{Name: "tablet", Secret: token, Role: api.RoleManager}}, Uplink: func() any { return map[string]any{"connected": true} }})
	mux := http.NewServeMux()
	mux.Handle(api.Prefix+"/", a.Handler())
	mux.Handle("/", console.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	e := &env{t: t, url: srv.URL, db: db, store: store, bus: bus, bays: bays, srv: srv}

	o, err := store.Create(workorder.NewOrder{Plate: "浙A7K2M9", PlateColor: "blue", VIN: carVIN, MileageKm: ptr(int64(86412)),
		Fault: "双怠速检验CO超标", EmissionRepair: true, TestNo: "330100202403110001", Items: []workorder.Item{{Name: "更换三元催化器", Hours: "2"}}})
	if err != nil {
		t.Fatal(err)
	}
	p := newPage(t, browser)
	p.login(e)
	p.goTo(e.url + "/#/orders/" + o.ID)
	p.waitText("[data-role=status]", "进行中")
	p.set(`#settle-form [name=costlistcode]`, "HS2026112200190")
	p.click("[data-act=settle]")
	errs := p.waitText("#settle-form [data-role=errors]", "no_selftest_reason")
	if !strings.Contains(errs, "未做自检的原因") || !strings.Contains(errs, "selftest") {
		t.Fatalf("settle errors %q: want the reason field named and how to run a self-test", errs)
	}
	p.waitJS(`document.querySelector('#settle-form [name=no_selftest_reason]').getAttribute("aria-invalid") === "true"`, "the reason field marked")
	if d := db.Stats().Depth; d != 0 {
		t.Fatalf("outbox depth %d after a refused settlement", d)
	}
	p.shot("settle-needs-selftest")
	p.set(`#settle-form [name=no_selftest_reason]`, "分析仪送检定，车主不愿等待")
	p.set(`#settle-form [name=costlistcode]`, "HS2026112200190")
	p.click("[data-act=settle]")
	p.waitText("[data-role=status]", "已结算")
	recs, err := db.Peek(10)
	if err != nil || len(recs) != 2 {
		t.Fatalf("outbox %d records, %v; want the ehr and the im record", len(recs), err)
	}
	if !strings.Contains(string(recs[1].Payload), `"NO_SELF_TEST_REASON":"分析仪送检定，车主不愿等待"`) {
		t.Fatalf("im record %s", recs[1].Payload)
	}
}

// testOBDReadinessCounted: the OBD check's readiness line names the monitors inspection
// stations count and, apart, those they do not; three incomplete of which one counts pass.
func testOBDReadinessCounted(t *testing.T, browser context.Context) {
	e := newEnv(t)
	e.bays.mu.Lock()
	e.bays.report.Readiness.Supported = append(e.bays.report.Readiness.Supported, obd.MonEvap, obd.MonSecondaryAir)
	e.bays.report.Readiness.Incomplete = []string{obd.MonCatalyst, obd.MonEvap, obd.MonSecondaryAir}
	e.bays.mu.Unlock()
	p := newPage(t, browser)
	p.login(e)
	p.goTo(e.url + "/#/bays/bay1")
	line := p.waitText(`[data-role=obd-lines] tr[data-rule="readiness"]`, "不计入判定")
	for _, want := range []string{"催化器", "蒸发系统", "二次空气系统"} {
		if !strings.Contains(line, want) {
			t.Errorf("readiness line %q lacks %s", line, want)
		}
	}
	if st := p.eval(`document.querySelector('[data-role=obd-lines] tr[data-rule="readiness"]').dataset.status`); st != "pass" {
		t.Errorf("readiness %s with one counted monitor incomplete, want pass", st)
	}
	p.click("#lang")
	p.waitText(`[data-role=obd-lines] tr[data-rule="readiness"]`, "not counted by inspection stations: Evaporative system, Secondary air system")
}
