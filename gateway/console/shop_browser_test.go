package console_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/gateway/api"
	"github.com/obdgw/obdgw/gateway/console"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/events"
	"github.com/obdgw/obdgw/gateway/workorder"
	"github.com/obdgw/obdgw/obd"
)

// shopUplink is the uplink status the shop tests show; a test changes it.
type shopUplink struct {
	mu sync.Mutex
	v  map[string]any
}

func (u *shopUplink) get() any { u.mu.Lock(); defer u.mu.Unlock(); return u.v }

// newShopEnv is newEnv with an uplink status the test sets.
func newShopEnv(t *testing.T, up *shopUplink) *env {
	t.Helper()
	db, err := buffer.Open(filepath.Join(t.TempDir(), "obdgw.db"), buffer.Options{GatewayID: "gw-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bus := events.New(nil)
	store := workorder.New(db, workorder.Options{Company: "杭州示例汽车维修有限公司", CompanyCode: "330106000099901",
		Province: "33", GatewayID: "gw-test", Events: bus})
	bays := newFakeBays()
	tests := &fakeSelfTests{bays: bays, subs: map[chan any]struct{}{}}
	a := api.New(api.Options{Store: store, Bays: bays, SelfTests: tests, Outbox: db, Events: bus,
		Tokens: []api.Token{{Name: "tablet", Secret: token}}, Uplink: up.get})
	mux := http.NewServeMux()
	mux.Handle(api.Prefix+"/", a.Handler())
	mux.Handle("/", console.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return &env{t: t, url: srv.URL, db: db, store: store, bus: bus, bays: bays, tests: tests, srv: srv}
}

func TestShopConsole(t *testing.T) {
	browser := startBrowser(t)
	t.Run("NoAdapterDisablesScanAndClear", func(t *testing.T) { testNoAdapter(t, browser) })
	t.Run("ChineseEverywhere", func(t *testing.T) { testChineseEverywhere(t, browser) })
	t.Run("UplinkReasonInline", func(t *testing.T) { testUplinkReasonInline(t, browser) })
	t.Run("Widths", func(t *testing.T) { testWidths(t, browser) })
	t.Run("LiveCharts", func(t *testing.T) { testLiveCharts(t, browser) })
	t.Run("SelfTestCurves", func(t *testing.T) { testSelfTestCurves(t, browser) })
	t.Run("HistoryAndReports", func(t *testing.T) { testHistoryAndReports(t, browser) })
	t.Run("ScanProgress", func(t *testing.T) { testScanProgress(t, browser) })
}

// A bay with nothing plugged in cannot scan or clear: both buttons are off and the page says
// the adapter is missing; when it is plugged in, they come back without a reload.
func testNoAdapter(t *testing.T, browser context.Context) {
	e := newShopEnv(t, &shopUplink{v: map[string]any{"connected": true}})
	e.bays.setState("absent")
	p := newPage(t, browser)
	p.login(e)
	p.waitText(`[data-bay="bay1"] [data-role=no-adapter]`, "未检测到诊断头")
	if got := p.eval(`String(document.querySelector('[data-bay="bay1"] button[data-act=scan]').disabled)`); got != "true" {
		t.Fatalf("bays page: scan enabled on a bay without adapter")
	}
	p.goTo(e.url + "/#/bays/bay1")
	p.waitJS(`document.querySelector("[data-role=obd-check]")`, "the bay page")
	p.waitText(`[data-role=no-adapter]`, "未检测到诊断头")
	for _, act := range []string{"scan", "clear"} {
		if got := p.eval(fmt.Sprintf(`String(document.querySelector('section[data-bay] button[data-act=%s]').disabled)`, act)); got != "true" {
			t.Fatalf("bay page: %s enabled on a bay without adapter", act)
		}
	}
	// The adapter is plugged in: the bay's state event turns the buttons back on.
	e.bays.setState("ready")
	e.bus.Publish("bay.state", bayName, map[string]any{"state": "ready"})
	p.waitJS(`!document.querySelector('section[data-bay] button[data-act=clear]').disabled && !document.querySelector('[data-role=no-adapter]')`, "scan and clear enabled once the adapter is there")
	if scans, clears := e.bays.calls(); scans != 0 || len(clears) != 0 {
		t.Fatalf("the console asked %d scans, %d clears of a bay without adapter", scans, len(clears))
	}
}

// In Chinese, the OBD check's result code is explained and the gateway's own scan notes are
// translated.
func testChineseEverywhere(t *testing.T, browser context.Context) {
	e := newShopEnv(t, &shopUplink{v: map[string]any{"connected": true}})
	p := newPage(t, browser)
	p.login(e)
	p.goTo(e.url + "/#/bays/bay1")
	got := p.waitText("[data-role=o-result]", "上报结果")
	if strings.Contains(got, "O_RESULT") || !strings.Contains(got, "不合格") {
		t.Fatalf("OBD check result code shown as %q, want it named and explained in Chinese", got)
	}
	o, err := e.store.Create(workorder.NewOrder{Plate: "浙A12345", PlateColor: "blue", VIN: carVIN, Bay: bayName})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.AddScan(bayName, "automatic scan on connection", e.bays.report); err != nil {
		t.Fatal(err)
	}
	p.goTo(e.url + "/#/orders/" + o.ID)
	if got := p.waitText("[data-role=scan-note]", "连接后自动读取"); strings.Contains(got, "automatic") {
		t.Fatalf("scan note %q stays in English", got)
	}
	p.click("#lang")
	p.waitText("[data-role=scan-note]", "automatic scan on connection")
}

// Why the platform is down is written in the page (a tablet has no hover), in both languages.
func testUplinkReasonInline(t *testing.T, browser context.Context) {
	up := &shopUplink{v: map[string]any{"connected": false, "broker": "mqtts://127.0.0.1:8883", "last_error": "dial tcp 127.0.0.1:8883: connection refused"}}
	e := newShopEnv(t, up)
	p := newPage(t, browser)
	p.login(e)
	p.waitText("#uplink-why", "平台未连接的原因: dial tcp 127.0.0.1:8883: connection refused")
	if p.eval(`String(document.getElementById("uplink-why").getBoundingClientRect().height > 0)`) != "true" {
		t.Fatal("the reason is in the page but not shown")
	}
	p.click("#lang")
	p.waitText("#uplink-why", "Why the platform is not connected: dial tcp")
}

// The console fits a phone (360 px), a tablet (800 px) and a desktop (1280 px) in both
// languages: nothing scrolls sideways, and from 800 px up the header keeps to one line.
func testWidths(t *testing.T, browser context.Context) {
	e := newShopEnv(t, &shopUplink{v: map[string]any{"connected": false, "last_error": "dial tcp 127.0.0.1:8883: connection refused"}})
	o, err := e.store.Create(workorder.NewOrder{Plate: "浙A12345", PlateColor: "blue", VIN: carVIN, Bay: bayName})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := e.store.AddScan(bayName, "automatic scan on connection", e.bays.report)
	if err != nil {
		t.Fatal(err)
	}
	p := newPage(t, browser)
	p.login(e)
	for _, lang := range []string{"zh", "en"} {
		if lang == "en" {
			p.click("#lang")
			p.waitText("#lang", "中文")
		}
		for _, w := range []int64{360, 800, 1280} {
			p.do(chromedp.EmulateViewport(w, 900))
			for _, view := range []struct{ hash, ready string }{
				{"#/bays", `[data-bay="bay1"]`}, {"#/bays/bay1", `[data-role=obd-result]`},
				{"#/orders", `[data-order]`}, {"#/orders/" + o.ID, `[data-role=items]`}, {"#/outbox", `[data-role=depth]`},
				{"#/vehicles/" + carVIN, `[data-role=history-items]`}, {"#/report/scan/" + sc.ScanID, `[data-role=report-dtcs] tr[data-code=P0420]`},
			} {
				p.goTo(e.url + "/" + view.hash)
				p.waitJS(fmt.Sprintf(`document.querySelector(%q)`, view.ready), view.hash)
				if w != 1280 && os.Getenv("OBDGW_CONSOLE_SHOTS") != "" { // for a look at each width
					p.shot(fmt.Sprintf("width-%s-%d-%s", lang, w, strings.NewReplacer("#/", "", "/", "-").Replace(view.hash)))
				}
				if over := p.eval(`String(document.documentElement.scrollWidth - window.innerWidth)`); over != "0" {
					t.Errorf("%s %d px %s: the page is %s px wider than the screen (widest: %s)", lang, w, view.hash, over,
						p.eval(`(function(){let m="",mw=0;for(const el of document.querySelectorAll("body *")){const r=el.getBoundingClientRect();if(r.right>mw){mw=r.right;m=el.tagName+"."+el.className+" "+(el.dataset.role||"")}}return m+" "+mw})()`))
				}
				if w >= 800 {
					// One line: no visible item of the header starts below the bottom of another.
					if wrapped := p.eval(`(function(){const r=Array.from(document.querySelectorAll("header > *")).map(e=>e.getBoundingClientRect()).filter(r=>r.height>0);const b=Math.min(...r.map(x=>x.bottom));return String(r.some(x=>x.top>=b))})()`); wrapped != "false" {
						t.Errorf("%s %d px %s: the header wraps", lang, w, view.hash)
					}
				}
			}
		}
	}
}

// LivePIDs makes the fake bay a picker (api.LivePicker): the picks are recorded, samples come
// from sendLive like the default stream's.
func (f *fakeBays) LivePIDs(ctx context.Context, name string, pids []byte) (<-chan api.LiveValues, error) {
	ch, err := f.Live(ctx, name)
	if err == nil {
		pickMu.Lock()
		picks = append(picks, slices.Clone(pids))
		pickMu.Unlock()
	}
	return ch, err
}

var (
	pickMu sync.Mutex
	picks  [][]byte
)

func lastPick() []byte {
	pickMu.Lock()
	defer pickMu.Unlock()
	if len(picks) == 0 {
		return nil
	}
	return picks[len(picks)-1]
}

// requests records every URL the page asks for.
func (p *page) requests() func() []string {
	var mu sync.Mutex
	var urls []string
	if err := chromedp.Listen(p.ctx, func(ev any) {
		if e, ok := ev.(*network.EventRequestWillBeSent); ok {
			mu.Lock()
			urls = append(urls, e.Request.URL)
			mu.Unlock()
		}
	}); err != nil {
		p.t.Fatal(err)
	}
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{})
		return err
	}))
	return func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(urls) }
}

// The technician's picked PIDs are charted with uPlot from the bay's live stream; pause holds
// the charts while samples keep being recorded, and the CSV export has every sample. The page
// and its chart library load nothing from outside the gateway.
func testLiveCharts(t *testing.T, browser context.Context) {
	e := newShopEnv(t, &shopUplink{v: map[string]any{"connected": true}})
	p := newPage(t, browser)
	urls := p.requests()
	p.login(e)
	p.goTo(e.url + "/#/bays/bay1")
	p.waitJS(`document.querySelectorAll("[data-role=charts] .uplot canvas").length === 6`, "six uPlot charts of the default pick")
	p.waitJS(`document.querySelector('[data-chart="0C"]').textContent.includes("发动机转速")`, "the PID named in Chinese")
	for lastPick() == nil || e.bays.watchers() < 2 {
		p.waitJS(`true`, "")
	}
	if got := lastPick(); !slices.Equal(got, []byte{0x0C, 0x05, 0x06, 0x07, 0x14, 0x44}) {
		t.Fatalf("the page picked %X, want 0C 05 06 07 14 44", got)
	}
	sample := func(i int) {
		e.bays.sendLive(api.LiveValues{"0C": 800 + float64(i), "05": 83, "06": -1.56, "07": 3.9, "14": 0.45, "44": 1.002})
	}
	for i := 1; i <= 3; i++ {
		sample(i)
		p.waitJS(fmt.Sprintf(`ShopCharts.shown("0C") === %d`, i), fmt.Sprintf("sample %d charted", i))
	}
	p.waitText(`[data-chart="0C"] [data-role=chart-value]`, "803")
	p.waitText(`[data-chart="44"] [data-role=chart-value]`, "1")

	p.shot("live-charts")
	p.click("[data-act=charts-pause]")
	p.waitText("[data-act=charts-pause]", "继续")
	sample(4)
	sample(5)
	p.waitJS(`ShopCharts.csv().trim().split("\r\n").length === 6`, "paused samples recorded")
	if got := p.eval(`String(ShopCharts.shown("0C"))`); got != "3" {
		t.Fatalf("a paused chart shows %s samples, want the 3 from before the pause", got)
	}
	p.click("[data-act=charts-pause]")
	p.waitJS(`ShopCharts.shown("0C") === 5`, "the charts catch up on resume")
	csv := p.eval(`ShopCharts.csv()`)
	lines := strings.Split(strings.TrimSpace(csv), "\r\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "time,发动机转速 (r/min) [01 0C],冷却液温度 (°C) [01 05]") || !strings.HasSuffix(lines[5], ",805,83,-1.56,3.9,0.45,1.002") {
		t.Fatalf("CSV export:\n%s", csv)
	}

	// Picking MAF adds it to the stream the bay samples.
	p.click("[data-role=pid-picker] summary")
	p.click(`input[data-pick="10"]`)
	p.waitJS(`document.querySelectorAll("[data-role=charts] .uplot").length === 7`, "a seventh chart")
	for !slices.Contains(lastPick(), 0x10) {
		p.waitJS(`true`, "")
	}
	if got := lastPick(); !slices.Equal(got, []byte{0x0C, 0x05, 0x06, 0x07, 0x10, 0x14, 0x44}) {
		t.Fatalf("after picking MAF the page asks %X", got)
	}
	for _, u := range urls() {
		if !strings.HasPrefix(u, e.url+"/") && !strings.HasPrefix(u, "blob:") && !strings.HasPrefix(u, "data:") {
			t.Errorf("the console loaded %s, outside the gateway", u)
		}
	}
	if n := len(urls()); n < 5 {
		t.Fatalf("only %d requests seen: the recorder is off", n)
	}
}

// A running two-speed idle draws its gases, λ and engine speed as curves, with its phase and
// the time left; the warm-up before the first prompt draws oil temperature and engine speed.
func testSelfTestCurves(t *testing.T, browser context.Context) {
	e := newShopEnv(t, &shopUplink{v: map[string]any{"connected": true}})
	p := newPage(t, browser)
	p.login(e)
	p.goTo(e.url + "/#/bays/bay1")
	p.waitJS(`document.querySelector("[data-role=charts] .uplot")`, "the bay page")
	p.waitJS(`document.body.dataset.events === "on"`, "the event stream")
	e.bus.Publish("selftest.started", bayName, map[string]any{"method": "two_speed_idle", "order": "WO000001"})
	f := func(v float64) *float64 { return &v }
	warm := emission.Progress{Method: emission.TwoSpeedIdle, Phase: "warm_up", SecondsLeft: -1, Elapsed: 1e9,
		Reading: &rig.Reading{OilC: f(62), RPM: f(820), WarmingUp: true}, RPM: f(820)}
	e.bus.Publish("selftest.progress", bayName, warm)
	p.waitJS(`!document.querySelector("[data-role=selftest-curves]").hidden && document.querySelector('[data-curve="oil_c"]')`, "the warm-up curves")
	p.waitText(`[data-curve="oil_c"] [data-role=chart-value]`, "62")
	p.waitText(`[data-role=curves-phase-name]`, "发动机预热")
	for i, hc := range []float64{120, 118, 121} {
		e.bus.Publish("selftest.progress", bayName, emission.Progress{Method: emission.TwoSpeedIdle, Phase: "high_idle_sample", SecondsLeft: 30 - i,
			Elapsed: time.Duration(60+i) * time.Second, RPM: f(2510),
			Reading: &rig.Reading{HCppm: f(hc), COPct: f(0.3), CO2Pct: f(14.6), O2Pct: f(0.4), NOppm: f(210), Lambda: f(1.01), OilC: f(85)}})
	}
	p.waitText(`[data-curve="hc_ppm"] [data-role=chart-value]`, "121")
	for _, k := range []string{"hc_ppm", "co_pct", "co2_pct", "o2_pct", "no_ppm", "lambda", "rpm"} {
		if p.eval(fmt.Sprintf(`String(!!document.querySelector('[data-curve="%s"] .uplot canvas'))`, k)) != "true" {
			t.Errorf("no curve of %s", k)
		}
	}
	p.waitText(`[data-role=curves-phase-name]`, "高怠速检测")
	p.waitText(`[data-role=curves-left]`, "28 s")
	p.shot("selftest-curves")
}

// kept is the judged self-test the fake keeps per order (api.SelfTestKeeper).
var (
	keptMu sync.Mutex
	kept   = map[*fakeSelfTests]map[string]api.KeptSelfTest{}
)

func (f *fakeSelfTests) Kept(order string) (api.KeptSelfTest, bool, error) {
	keptMu.Lock()
	defer keptMu.Unlock()
	st, ok := kept[f][order]
	return st, ok, nil
}

// printPDF prints the page as the browser's "Save as PDF" does and returns the PDF.
func (p *page) printPDF() []byte {
	p.t.Helper()
	var out []byte
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, cdppage.PrintToPDF, cdppage.PrintToPDFParams{PreferCSSPageSize: ptr(true)})
		out = res.Data
		return err
	}))
	return out
}

// pdfPages returns the MediaBox of every page of a PDF (width and height in points).
func pdfPages(t *testing.T, pdf []byte) [][2]float64 {
	t.Helper()
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("not a PDF: %q", pdf[:min(len(pdf), 16)])
	}
	var out [][2]float64
	for _, m := range regexp.MustCompile(`/MediaBox\s*\[\s*0 0 ([0-9.]+) ([0-9.]+)\s*\]`).FindAllSubmatch(pdf, -1) {
		w, _ := strconv.ParseFloat(string(m[1]), 64)
		h, _ := strconv.ParseFloat(string(m[2]), 64)
		out = append(out, [2]float64{w, h})
	}
	return out
}

// A car's history lists its scans, order and self-test newest first; the customer's report of
// a scan shows the VIN read from the car, each code with its Chinese and English description,
// readiness, the freeze frame and the codes before and after clearing; the I/M report shows
// the readings against their limits, the judgement and the instrument. Both print on A4 with
// the console's header and buttons left out.
func testHistoryAndReports(t *testing.T, browser context.Context) {
	_, failed := idleRuns(t)
	e := newShopEnv(t, &shopUplink{v: map[string]any{"connected": true}})
	o, err := e.store.Create(workorder.NewOrder{Plate: "浙A12345", PlateColor: "blue", VIN: carVIN, Bay: bayName,
		OwnerName: ownerNm, OwnerPhone: ownerTel, MileageKm: ptr(int64(86412))})
	if err != nil {
		t.Fatal(err)
	}
	before := e.bays.report
	before.Time = time.Date(2026, 11, 22, 3, 5, 0, 0, time.UTC)
	after := before
	after.Time, after.MIL = before.Time.Add(time.Minute), ptr(false)
	after.DTCs = obd.DTCLists{Stored: []obd.DTC{}, Pending: []obd.DTC{}, Permanent: []obd.DTC{}}
	after.FreezeFrames = nil
	var ids []string
	for _, sc := range []struct {
		note string
		r    obd.Report
	}{{"automatic scan on connection", e.bays.report}, {"before clearing fault codes", before}, {"after clearing fault codes", after}} {
		res, err := e.store.AddScan(bayName, sc.note, sc.r)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ScanID)
	}
	keptMu.Lock()
	kept[e.tests] = map[string]api.KeptSelfTest{o.ID: {Order: o.ID, Bay: bayName, Method: "two_speed_idle", Verdict: string(failed.res.Verdict),
		Start: failed.res.Start, End: time.Date(2026, 11, 22, 3, 30, 0, 0, time.UTC), Rig: failed.res.Rig, RigModel: "NHA-506", RigSerial: "A1-0042", Result: failed.res}}
	keptMu.Unlock()

	p := newPage(t, browser)
	p.login(e)
	p.goTo(e.url + "/#/orders/" + o.ID)
	p.click("a[data-act=history]")
	p.waitText("[data-role=history-vin]", carVIN)
	kinds := p.eval(`Array.from(document.querySelectorAll("[data-role=history-items] tr[data-kind]")).map(r => r.dataset.kind + ":" + r.dataset.id).join(" ")`)
	// The order was opened today, after the scans and the self-test of November.
	want := fmt.Sprintf("order:%s selftest:%s scan:%s scan:%s scan:%s", o.ID, o.ID, ids[2], ids[1], ids[0])
	if kinds != want {
		t.Fatalf("history rows %q, want newest first %q", kinds, want)
	}
	if v := p.text("#view"); strings.Contains(v, ownerNm) || strings.Contains(v, ownerTel) {
		t.Fatalf("the history shows the owner: %s", v)
	}

	// The customer's report of the scan before clearing.
	p.click(fmt.Sprintf(`tr[data-id="%s"] a[data-act=scan-report]`, ids[1]))
	p.waitText("[data-role=report-vin]", carVIN)
	p.waitText(`[data-role=report-dtcs] tr[data-code=P0420]`, obd.DescribeDTC("P0420", "en"))
	if got := p.text(`[data-role=report-dtcs] tr[data-code=P0420]`); !strings.Contains(got, obd.DescribeDTC("P0420", "zh")) {
		t.Fatalf("P0420 row %q lacks the Chinese description", got)
	}
	p.waitText(`[data-role=report-dtcs] tr[data-code=P0171]`, obd.DescribeDTC("P0171", "en"))
	p.waitText("[data-role=report-readiness]", "未完成")
	p.waitText("[data-role=report-freeze]", "2150")
	clearing := p.waitText("[data-role=report-clearing]", "P0420 P0171")
	if !strings.Contains(clearing, "亮") || !strings.Contains(clearing, "灭") {
		t.Fatalf("before/after clearing %q, want the MIL on before and off after", clearing)
	}
	html := p.eval(`document.querySelector("[data-role=report]").outerHTML`)
	for _, want := range []string{carVIN, "P0420", "P0171", "浙A12345"} {
		if !strings.Contains(html, want) {
			t.Errorf("the report lacks %s", want)
		}
	}
	// In print: no console header, no buttons; the page is A4.
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
		return err
	}))
	if got := p.eval(`[getComputedStyle(document.querySelector("body > header")).display, getComputedStyle(document.querySelector("[data-act=print]").parentElement).display].join(" ")`); got != "none none" {
		t.Fatalf("in print the header and buttons show: %q", got)
	}
	p.shot("report-print")
	p.do(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: ""})
		return err
	}))
	checkA4(t, "diagnostic report", p.printPDF())

	// The I/M self-test report.
	p.goTo(e.url + "/#/vehicles/" + carVIN)
	p.click(fmt.Sprintf(`tr[data-id="%s"] a[data-act=selftest-report]`, o.ID))
	p.waitText("[data-role=report-instrument]", "NHA-506 · A1-0042")
	p.waitText("[data-role=report] [data-role=verdict]", "不合格")
	items := p.text("[data-role=report] [data-role=st-items]")
	for _, want := range []string{"CO", "≤"} {
		if !strings.Contains(items, want) {
			t.Errorf("self-test items %q lack %q", items, want)
		}
	}
	checkA4(t, "self-test report", p.printPDF())
}

func checkA4(t *testing.T, what string, pdf []byte) {
	t.Helper()
	pages := pdfPages(t, pdf)
	if len(pages) == 0 {
		t.Fatalf("%s: no pages in the PDF", what)
	}
	for i, pg := range pages {
		// A4 is 210 × 297 mm: 595.3 × 841.9 points.
		if pg[0] < 593 || pg[0] > 598 || pg[1] < 839 || pg[1] > 845 {
			t.Errorf("%s: page %d is %.1f × %.1f pt, want A4 (595.3 × 841.9)", what, i+1, pg[0], pg[1])
		}
	}
	t.Logf("%s: %d A4 pages, %d bytes", what, len(pages), len(pdf))
}

// A running scan shows which step it is at and how many are left, on the bays page and the
// bay's page, in the page's language, and the display goes when the scan ends.
func testScanProgress(t *testing.T, browser context.Context) {
	e := newShopEnv(t, &shopUplink{v: map[string]any{"connected": true}})
	p := newPage(t, browser)
	p.login(e)
	p.waitJS(`document.body.dataset.events === "on"`, "the event stream")
	e.bus.Publish("scan.step", bayName, obd.StepProgress{Step: "vin", Index: 4, Total: 15})
	p.waitText(`[data-bay="bay1"] [data-role=scan-progress]`, "4/15")
	if got := p.text(`[data-bay="bay1"] [data-role=scan-left]`); got != "11" {
		t.Fatalf("steps left %q, want 11", got)
	}
	p.goTo(e.url + "/#/bays/bay1")
	p.waitJS(`document.querySelector("[data-role=obd-check]")`, "the bay page")
	p.waitText(`section[data-bay] [data-role=scan-step]`, "VIN")
	e.bus.Publish("scan.step", bayName, obd.StepProgress{Step: "dtcs_stored", Index: 6, Total: 15})
	p.waitText(`section[data-bay] [data-role=scan-step]`, "已确认故障码")
	p.click("#lang")
	p.waitText(`section[data-bay] [data-role=scan-step]`, "stored codes")
	p.waitText(`section[data-bay] [data-role=scan-progress]`, "steps left 9")
	e.bus.Publish("scan.done", bayName, map[string]any{"vin": carVIN, "mil": true})
	p.waitJS(`!document.querySelector("[data-role=scan-progress]")`, "the progress gone after the scan")
}
