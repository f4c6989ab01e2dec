package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/gateway/api"
	"github.com/obdgw/obdgw/gateway/console"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/events"
	"github.com/obdgw/obdgw/gateway/workorder"
	"github.com/obdgw/obdgw/hack/testenv"
	"github.com/obdgw/obdgw/obd"
)

// The console is tested end to end: real Chromium, the real API over a real work-order store in
// a bbolt file, the real event bus; only the bay supervisors are faked (there is no car).

const (
	token    = "tablet-token-0123456789"
	carVIN   = "LJ8ECM2B2R1063348"
	bayName  = "bay1"
	waitFor  = 10 * time.Second
	ownerNm  = "王晓明"
	ownerTel = "13905710042"
)

// fakeBays is one bay with a car whose last scan is a report the test builds.
type fakeBays struct {
	mu     sync.Mutex
	state  string
	rig    string // the bay's emission rig, "" when it has none
	report obd.Report
	scans  int
	clears []api.ClearRequest
	live   map[chan api.LiveValues]struct{}
}

func newFakeBays() *fakeBays {
	odo := 86412.0
	return &fakeBays{state: "ready", live: map[chan api.LiveValues]struct{}{}, report: obd.Report{
		Time: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC), VIN: carVIN, VINValid: true,
		Protocol: "ISO 15765-4 CAN (11 bit ID, 500 kbaud)", ElapsedMS: 4200, Lang: "zh", MIL: new(true),
		DTCs: obd.DTCLists{
			Stored:    []obd.DTC{{Code: "P0420", ECU: "7E8", Service: 0x03, Description: obd.DescribeDTC("P0420", "zh")}},
			Pending:   []obd.DTC{{Code: "P0171", ECU: "7E8", Service: 0x07, Description: obd.DescribeDTC("P0171", "zh")}},
			Permanent: []obd.DTC{},
		},
		Readiness:  &obd.Readiness{Supported: []string{obd.MonMisfire, obd.MonFuelSystem, obd.MonCatalyst, obd.MonOxygenSensor}, Incomplete: []string{obd.MonCatalyst}},
		OdometerKM: &odo,
		FreezeFrames: []obd.FreezeFrame{{ECU: "7E8", Frame: 0, DTC: "P0420", Values: []obd.Value{
			{PID: 0x0C, Name: "engine_rpm", Unit: "r/min", Value: 2150},
			{PID: 0x05, Name: "coolant_temp", Unit: "°C", Value: 91},
		}}},
	}}
}

func (f *fakeBays) status() api.BayStatus {
	rep, err := json.Marshal(f.report)
	if err != nil {
		panic(err)
	}
	return api.BayStatus{Name: bayName, State: f.state, Adapter: "/dev/pts/7@38400 ELM327 v1.5", Rig: f.rig,
		Vehicle: &api.Vehicle{VIN: f.report.VIN, MIL: f.report.MIL}, LastScan: rep}
}

func (f *fakeBays) List() []api.BayStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []api.BayStatus{f.status()}
}

func (f *fakeBays) Status(name string) (api.BayStatus, error) {
	if name != bayName {
		return api.BayStatus{}, fmt.Errorf("%w: %q", api.ErrNoBay, name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status(), nil
}

func (f *fakeBays) Scan(ctx context.Context, name string) error {
	if _, err := f.Status(name); err != nil {
		return err
	}
	f.mu.Lock()
	f.scans++
	f.mu.Unlock()
	return nil
}

func (f *fakeBays) ClearDTCs(ctx context.Context, name string, req api.ClearRequest) (api.ClearResult, error) {
	if _, err := f.Status(name); err != nil {
		return api.ClearResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clears = append(f.clears, req)
	if req.VIN != f.report.VIN {
		return api.ClearResult{}, fmt.Errorf("%w: the car reports %s", api.ErrVINMismatch, f.report.VIN)
	}
	return api.ClearResult{Bay: name, VIN: req.VIN, Cleared: true}, nil
}

func (f *fakeBays) Live(ctx context.Context, name string) (<-chan api.LiveValues, error) {
	if _, err := f.Status(name); err != nil {
		return nil, err
	}
	ch := make(chan api.LiveValues, 8)
	f.mu.Lock()
	f.live[ch] = struct{}{}
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		delete(f.live, ch)
		close(ch)
		f.mu.Unlock()
	}()
	return ch, nil
}

func (f *fakeBays) watchers() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.live) }

func (f *fakeBays) sendLive(v api.LiveValues) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.live {
		select {
		case ch <- v:
		default:
		}
	}
}

func (f *fakeBays) setState(s string) { f.mu.Lock(); f.state = s; f.mu.Unlock() }

func (f *fakeBays) calls() (scans int, clears []api.ClearRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.scans, append([]api.ClearRequest(nil), f.clears...)
}

// env is one gateway under test: console at /, the real API at /api/v1/.
type env struct {
	t     *testing.T
	url   string
	db    *buffer.DB
	store *workorder.Store
	bus   *events.Bus
	bays  *fakeBays
	tests *fakeSelfTests
	srv   *httptest.Server
}

func newEnv(t *testing.T) *env {
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
		Tokens: []api.Token{{Name: "tablet", Secret: token, Role: api.RoleManager}},
		Uplink: func() any { return map[string]any{"connected": true, "broker": "mqtts://127.0.0.1:8883"} }})
	mux := http.NewServeMux()
	mux.Handle(api.Prefix+"/", a.Handler())
	mux.Handle("/", console.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		// Event and live streams stay open until their client leaves: cut them so Close
		// does not wait on them.
		srv.CloseClientConnections()
		srv.Close()
	})
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want loopback", srv.URL)
	}
	return &env{t: t, url: srv.URL, db: db, store: store, bus: bus, bays: bays, tests: tests, srv: srv}
}

// page is one browser tab.
type page struct {
	t   *testing.T
	ctx context.Context
}

// browser is the package's one Chromium; each subtest opens its own tab.
func startBrowser(t *testing.T) context.Context {
	exe := testenv.Program(t, "chromium", "chromium", "/usr/bin/chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// Containers have a small /dev/shm, and tabs other than the first must keep their
		// timers running.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 768),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(func(f string, a ...any) { t.Logf("chromium: "+f, a...) }))
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	return bctx
}

// newPage opens a tab. Any uncaught script error or browser error log entry (a Content
// Security Policy violation, a failed asset) fails the test when it ends: the page must run
// clean, not just show the right text.
func newPage(t *testing.T, browser context.Context) *page {
	var (
		mu   sync.Mutex
		errs []string
	)
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithListener(func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "uncaught: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError && !expectedLogError(e.Entry) {
				msg = fmt.Sprintf("browser log: %s %s (%s)", e.Entry.Source, e.Entry.Text, e.Entry.URL)
			}
		}
		if msg != "" {
			mu.Lock()
			errs = append(errs, msg)
			mu.Unlock()
		}
	}))
	ctx, cancelT := context.WithTimeout(ctx, 45*time.Second)
	t.Cleanup(func() {
		cancelT()
		cancel()
		mu.Lock()
		defer mu.Unlock()
		for _, e := range errs {
			t.Errorf("page error: %s", e)
		}
	})
	p := &page{t: t, ctx: ctx}
	p.do(chromedp.EmulateViewport(1024, 768), chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, cdplog.Enable, cdp.Empty{})
		return err
	}))
	return p
}

// expectedLogError: the browser logs every 4xx answer of the API (the tests provoke refused
// tokens and invalid settlements, which the page shows), and a stream the test cuts; neither
// is a page fault. A missing asset is.
func expectedLogError(e *cdplog.Entry) bool {
	if e.Source != cdplog.EntrySourceNetwork {
		return false
	}
	return strings.Contains(e.URL, api.Prefix+"/") && strings.Contains(e.Text, "status of 4") || strings.Contains(e.Text, "ERR_")
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v\npage: %s", err, p.snapshot())
	}
}

func (p *page) eval(js string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

// snapshot is what the page shows, for failure messages.
func (p *page) snapshot() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash + " | flash: " + document.getElementById("flash").textContent + " | " + document.getElementById("view").innerText`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// text returns the text of the first element matching a CSS selector ("" when there is none).
func (p *page) text(sel string) string {
	p.t.Helper()
	q, _ := json.Marshal(sel)
	return p.eval(fmt.Sprintf(`(function(){const e=document.querySelector(%s);return e?e.textContent.replace(/\s+/g," ").trim():""})()`, q))
}

// waitText waits until the element's text contains want.
func (p *page) waitText(sel, want string) string {
	p.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		got := p.text(sel)
		if strings.Contains(got, want) {
			return got
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: text %q does not contain %q\npage: %s", sel, got, want, p.snapshot())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitJS waits until a JavaScript expression is true.
func (p *page) waitJS(js, what string) {
	p.t.Helper()
	deadline := time.Now().Add(waitFor)
	for p.eval(fmt.Sprintf(`String(!!(%s))`, js)) != "true" {
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s (%s)\npage: %s", what, js, p.snapshot())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *page) click(sel string) {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// set replaces an input's value as typing would (chromedp's SetValue cannot set "").
func (p *page) set(sel, v string) {
	p.t.Helper()
	p.do(chromedp.WaitVisible(chromedp.CSS(sel)))
	q, _ := json.Marshal(sel)
	val, _ := json.Marshal(v)
	got := p.eval(fmt.Sprintf(`(function(){const e=document.querySelector(%s);e.value=%s;e.dispatchEvent(new Event("input",{bubbles:true}));return e.value})()`, q, val))
	if got != v {
		p.t.Fatalf("%s: value %q after setting %q", sel, got, v)
	}
}

func (p *page) goTo(url string) {
	p.t.Helper()
	p.do(chromedp.Navigate(url))
}

// shot saves a PNG of the viewport (1024×768, the tablet the console is laid out for) into
// t.TempDir(), or into $OBDGW_CONSOLE_SHOTS to keep it for a look.
func (p *page) shot(name string) {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("OBDGW_CONSOLE_SHOTS")
	if dir == "" {
		dir = p.t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// login opens the console and logs in through the login form.
func (p *page) login(e *env) {
	p.t.Helper()
	p.goTo(e.url + "/#/bays")
	p.waitJS(`document.querySelector("#login #token")`, "the login form")
	p.do(chromedp.SendKeys(chromedp.CSS("#token"), token))
	p.click(`#login button[type=submit]`)
	p.waitJS(`document.querySelector('[data-bay="bay1"]')`, "the bays page after login")
}

func TestConsole(t *testing.T) {
	browser := startBrowser(t)

	t.Run("LoginAndLiveBayState", func(t *testing.T) {
		e := newEnv(t)
		p := newPage(t, browser)
		p.goTo(e.url + "/")
		p.waitJS(`document.querySelector("#login #token")`, "the login form")
		if got := p.text("#login h2"); got != "输入访问令牌" {
			t.Fatalf("login title %q, want the Chinese default", got)
		}
		// A wrong token is refused and the form stays.
		p.do(chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"))
		p.click(`#login button[type=submit]`)
		p.waitText("#flash", "令牌无效")
		if p.eval(`localStorage.getItem("obdgw.token") || ""`) != "" {
			t.Fatal("a refused token was stored")
		}
		p.set("#token", "")
		p.do(chromedp.SendKeys(chromedp.CSS("#token"), token))
		p.click(`#login button[type=submit]`)
		p.waitText(`[data-bay="bay1"] [data-role=state]`, "就绪")
		p.waitText(`[data-bay="bay1"] [data-role=vin]`, carVIN)
		p.waitText("#uplink", "平台已连接")

		// The stream is open: a published state change shows without a reload.
		p.waitJS(`document.body.dataset.events === "on"`, "the event stream")
		e.bays.setState("scanning")
		e.bus.Publish("bay.state", bayName, map[string]string{"state": "scanning", "vin": carVIN})
		p.waitText(`[data-bay="bay1"] [data-role=state]`, "读取中")
		e.bays.setState("fault")
		e.bus.Publish("bay.state", bayName, map[string]string{"state": "fault", "detail": "adapter stopped answering: is it seated?"})
		p.waitText(`[data-bay="bay1"] [data-role=state]`, "故障")
		p.waitText(`[data-bay="bay1"] [data-role=bay-error]`, "is it seated?")
		e.bus.Publish("scan.failed", bayName, map[string]string{"error": "obd: no vehicle answers: is the ignition on?"})
		p.waitText("#flash", "is the ignition on?")
		p.shot("bays")

		// The token survives a reload; scan now reaches the bay.
		p.do(chromedp.Reload())
		p.waitText(`[data-bay="bay1"] [data-role=state]`, "故障")
		p.click(`[data-bay="bay1"] button[data-act=scan]`)
		p.waitText("#flash", "已开始读取")
		if scans, _ := e.bays.calls(); scans != 1 {
			t.Fatalf("scans = %d, want 1", scans)
		}

		p.click("#logout")
		p.waitJS(`document.querySelector("#login #token")`, "the login form after logging out")
		if tok := p.eval(`localStorage.getItem("obdgw.token") || ""`); tok != "" {
			t.Fatalf("token %q kept after logging out", tok)
		}
	})

	t.Run("EventStreamDropReReads", func(t *testing.T) {
		e := newEnv(t)
		p := newPage(t, browser)
		p.login(e)
		p.waitJS(`document.body.dataset.events === "on"`, "the event stream")
		p.waitText(`[data-bay="bay1"] [data-role=state]`, "就绪")
		// The bay changes while the stream is down: the event is lost, the page must read the
		// bays again once it is back.
		p.eval(`document.body.dataset.events = "was-on"`)
		e.srv.CloseClientConnections()
		e.bays.setState("ignition_off")
		p.waitJS(`document.body.dataset.events === "on"`, "the event stream to come back")
		p.waitText(`[data-bay="bay1"] [data-role=state]`, "点火开关未打开")
	})

	t.Run("BayReportAndLanguage", func(t *testing.T) {
		e := newEnv(t)
		p := newPage(t, browser)
		p.login(e)
		p.goTo(e.url + "/#/bays/bay1")
		p.waitText("[data-role=scan-vin]", carVIN)
		p.waitText("[data-role=vin-valid]", "校验通过")
		p.waitText("[data-role=mil]", "亮")
		p.waitText("[data-role=odometer]", "86412 km")
		zh, en := obd.DescribeDTC("P0420", "zh"), obd.DescribeDTC("P0420", "en")
		if zh == en || zh == "" {
			t.Fatalf("catalogue texts zh %q en %q: want two different descriptions", zh, en)
		}
		row := p.waitText(`tr[data-code="P0420"]`, zh)
		if !strings.Contains(row, "7E8") || !strings.Contains(row, "已确认") {
			t.Fatalf("P0420 row %q: want ECU 7E8 and kind stored", row)
		}
		p.waitText(`tr[data-code="P0171"]`, "待定")
		p.waitText("[data-role=incomplete]", obd.MonitorLabel(obd.MonCatalyst, "zh"))
		rpm, ok := obd.LookupPID(0x0C)
		if !ok {
			t.Fatal("no PID 0C in the obd table")
		}
		p.waitText("[data-role=freeze]", rpm.Label("zh"))
		p.waitText("[data-role=freeze]", "2150")

		// Live values stream while the page is open.
		deadline := time.Now().Add(waitFor)
		for e.bays.watchers() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the bay page never opened the live stream")
			}
			time.Sleep(20 * time.Millisecond)
		}
		e.bays.sendLive(api.LiveValues{"rpm": 812, "coolant_c": 88.5, "speed_kmh": 0})
		p.waitText(`[data-pid="rpm"]`, "812")
		p.waitText(`[data-pid="coolant_c"]`, "88.5")
		p.shot("bay")

		p.click("#lang")
		p.waitText(`tr[data-code="P0420"]`, en)
		p.waitText(`tr[data-code="P0420"]`, "Stored")
		p.waitText("nav", "Work orders")
		p.waitText("[data-role=incomplete]", obd.MonitorLabel(obd.MonCatalyst, "en"))
		p.waitText("[data-role=freeze]", rpm.Label("en"))
		p.waitText(`[data-pid="rpm"]`, "812") // the last sample survives the re-render
		p.shot("bay-en")
		// The choice persists.
		p.do(chromedp.Reload())
		p.waitText(`tr[data-code="P0420"]`, en)
		if got := p.text("h1"); got != "Workshop gateway" {
			t.Fatalf("after reload the title is %q, want English", got)
		}
		p.click("#lang")
		p.waitText(`tr[data-code="P0420"]`, zh)

		// A finished scan replaces the report on the open page.
		p.waitJS(`document.body.dataset.events === "on"`, "the event stream")
		e.bays.mu.Lock()
		e.bays.report.DTCs.Stored = append(e.bays.report.DTCs.Stored, obd.DTC{Code: "P0301", ECU: "7E8", Service: 0x03, Description: obd.DescribeDTC("P0301", "zh")})
		e.bays.mu.Unlock()
		e.bus.Publish("scan.done", bayName, map[string]any{"vin": carVIN, "mil": true})
		p.waitText(`tr[data-code="P0301"]`, obd.DescribeDTC("P0301", "zh"))
	})

	t.Run("ClearDTCsNeedsTheCarsVIN", func(t *testing.T) {
		e := newEnv(t)
		p := newPage(t, browser)
		p.login(e)
		p.goTo(e.url + "/#/bays/bay1")
		p.waitText("[data-role=scan-vin]", carVIN)
		p.click("[data-act=clear]")
		p.waitJS(`document.getElementById("clear-dialog").open`, "the clear dialog")
		p.waitText("#clear-dialog [data-role=car-vin]", carVIN)
		p.shot("clear-dialog")

		wrong := "LJ8ECM2B2R1063349"
		p.do(chromedp.SendKeys(chromedp.CSS(`#clear-form input[name=vin]`), wrong))
		p.click("[data-act=confirm-clear]")
		p.waitText("#clear-dialog [data-role=clear-error]", "不符")
		// Empty also sends nothing.
		p.set(`#clear-form input[name=vin]`, "")
		p.click("[data-act=confirm-clear]")
		time.Sleep(300 * time.Millisecond) // give a wrongly sent request time to arrive
		if _, clears := e.bays.calls(); len(clears) != 0 {
			t.Fatalf("a wrong VIN sent %d clear requests: %+v", len(clears), clears)
		}

		p.set(`#clear-form input[name=vin]`, "")
		p.do(chromedp.SendKeys(chromedp.CSS(`#clear-form input[name=vin]`), strings.ToLower(carVIN)))
		p.click("[data-act=confirm-clear]")
		p.waitText("#flash", "故障码已清除")
		p.waitJS(`!document.getElementById("clear-dialog").open`, "the dialog to close")
		time.Sleep(300 * time.Millisecond) // a duplicate would arrive now
		_, clears := e.bays.calls()
		if len(clears) != 1 {
			t.Fatalf("%d clear requests, want exactly 1: %+v", len(clears), clears)
		}
		if c := clears[0]; !c.Confirm || c.VIN != carVIN || len(c.RequestID) < 16 {
			t.Fatalf("clear request %+v: want confirm, the car's VIN and a fresh request id", c)
		}
	})

	t.Run("WorkOrderSettleAndOutbox", func(t *testing.T) {
		e := newEnv(t)
		p := newPage(t, browser)
		p.login(e)
		p.click(`nav a[href="#/orders"]`)
		p.waitText("#view", "暂无工单")
		p.click("[data-act=new]")
		p.waitJS(`document.getElementById("order-form")`, "the order form")
		p.do(chromedp.SendKeys(chromedp.CSS(`#order-form [name=plate]`), "浙A7K2M9"))
		p.do(chromedp.SendKeys(chromedp.CSS(`#order-form [name=vin]`), carVIN))
		p.do(chromedp.SendKeys(chromedp.CSS(`#order-form [name=mileage_km]`), "86412"))
		p.do(chromedp.SendKeys(chromedp.CSS(`#order-form [name=fault_description]`), "发动机故障灯亮，怠速抖动"))
		p.do(chromedp.SendKeys(chromedp.CSS(`#order-form [name=owner_name]`), ownerNm))
		p.do(chromedp.SendKeys(chromedp.CSS(`#order-form [name=owner_phone]`), ownerTel))
		p.shot("order-form")
		p.click("[data-act=save]")
		p.waitText("[data-role=status]", "进行中")
		p.waitText("[data-role=order-vin]", carVIN)
		p.waitText("[data-role=owner]", ownerNm) // the order's own page may show the owner

		p.set(`#item-form [name=name]`, "更换三元催化器")
		p.set(`#item-form [name=hours]`, "1.5")
		p.click("[data-act=add-item]")
		p.waitText("[data-role=items]", "更换三元催化器")
		p.set(`#part-form [name=name]`, "三元催化器")
		p.set(`#part-form [name=code]`, "TWC-1063")
		p.set(`#part-form [name=quantity]`, "1")
		p.click("[data-act=add-part]")
		p.waitText("[data-role=parts]", "TWC-1063")
		p.shot("order-detail")

		p.set(`#settle-form [name=costlistcode]`, "HS2026112200187")
		p.click("[data-act=settle]")
		p.waitText("[data-role=status]", "已结算")
		p.waitText("[data-role=costlistcode]", "HS2026112200187")
		list, _, err := e.store.List(workorder.Filter{})
		if err != nil || len(list) != 1 || list[0].Status != workorder.Settled || len(list[0].Items) != 1 || len(list[0].Parts) != 1 {
			t.Fatalf("store after settling through the console: %+v, %v", list, err)
		}

		// A correction is a new revision of the record, with its reason.
		p.set(`#revise-form [name=mileage_km]`, "86421")
		p.click("[data-act=revise]")
		p.waitText("#revise-form [data-role=errors]", "reason")
		p.set(`#revise-form [name=reason]`, "里程录入错误")
		p.set(`#revise-form [name=mileage_km]`, "86421")
		p.click("[data-act=revise]")
		p.waitText("#flash", "已更正")
		p.waitText("[data-role=revisions]", "里程录入错误")
		p.waitText("[data-role=revisions]", "mileage_km")
		if got, _ := e.store.Get(list[0].ID); got.Revision != 2 || got.MileageKm == nil || *got.MileageKm != 86421 {
			t.Fatalf("after the correction: revision %d mileage %v", got.Revision, got.MileageKm)
		}

		// The list never shows owner data.
		p.click(`nav a[href="#/orders"]`)
		p.waitText("[data-role=orders]", "浙A7K2M9")
		if v := p.text("#view"); strings.Contains(v, ownerNm) || strings.Contains(v, ownerTel) {
			t.Fatalf("the order list shows owner data: %q", v)
		}

		p.click(`button[data-filter="open"]`)
		p.waitText("#view", "暂无工单")
		p.click(`button[data-filter="settled"]`)
		p.waitText("[data-role=orders]", "已结算")

		// The record was appended with the settlement: the outbox shows it.
		depth := e.db.Stats().Depth
		if depth != 2 {
			t.Fatalf("outbox depth %d after a settlement and a correction, want 2", depth)
		}
		p.click(`nav a[href="#/outbox"]`)
		p.waitText("[data-role=depth]", fmt.Sprint(depth))
		p.waitText("[data-role=waiting]", "ehr")
		p.shot("outbox")
	})

	t.Run("SettleErrorsNameTheField", func(t *testing.T) {
		e := newEnv(t)
		// An earlier record of the same car with a higher mileage: settling below it is
		// allowed but warned about.
		prev, err := e.store.Create(workorder.NewOrder{Plate: "浙A12345", PlateColor: "blue", VIN: carVIN, MileageKm: ptr(int64(130000)),
			Fault: "保养", Items: []workorder.Item{{Name: "更换机油", Hours: "0.5"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Settle(prev.ID, workorder.SettleRequest{CostListCode: "HS2026112200001"}); err != nil {
			t.Fatal(err)
		}
		o, err := e.store.Create(workorder.NewOrder{Plate: "浙A12345", PlateColor: "blue", Fault: "制动异响",
			Items: []workorder.Item{{Name: "更换刹车片", Hours: "1"}}})
		if err != nil {
			t.Fatal(err)
		}
		p := newPage(t, browser)
		p.login(e)
		p.goTo(e.url + "/#/orders/" + o.ID)
		p.waitText("[data-role=status]", "进行中")

		// Missing settlement number: refused before validation, naming costlistcode.
		p.click("[data-act=settle]")
		p.waitText("#settle-form [data-role=errors]", "costlistcode")
		p.waitJS(`document.querySelector('#settle-form [name=costlistcode]').getAttribute("aria-invalid") === "true"`, "the field marked")

		// No VIN and no mileage: the record validator names both fields.
		p.set(`#settle-form [name=costlistcode]`, "HS2026112200188")
		p.click("[data-act=settle]")
		errs := p.waitText("#settle-form [data-role=errors]", "mileage_km")
		if !strings.Contains(errs, "vin") || !strings.Contains(errs, "送修里程") || !strings.Contains(errs, "缺失，请填写") {
			t.Fatalf("settle errors %q: want vin and mileage_km named with their labels and the problem in Chinese", errs)
		}
		p.waitJS(`document.querySelector('#edit-form [name=mileage_km]').getAttribute("aria-invalid") === "true"`, "the mileage field marked")
		p.shot("settle-errors")
		got, err := e.store.Get(o.ID)
		if err != nil || got.Status != workorder.Open {
			t.Fatalf("order after refused settlements: %+v, %v", got, err)
		}
		if d := e.db.Stats().Depth; d != 1 {
			t.Fatalf("outbox depth %d after refused settlements, want 1 (the earlier order's)", d)
		}

		// Fixing the fields on the page lets it settle.
		p.set(`#edit-form [name=vin]`, carVIN)
		p.set(`#edit-form [name=mileage_km]`, "120345")
		p.click("[data-act=save-edit]")
		p.waitText("[data-role=order-mileage]", "120345")
		p.set(`#settle-form [name=costlistcode]`, "HS2026112200188")
		p.click("[data-act=settle]")
		p.waitText("[data-role=status]", "已结算")
		p.waitText("[data-role=warnings]", "mileage_km")
		p.waitText("[data-role=warnings]", "里程低于该车上一次记录")
		p.waitText("[data-role=warnings]", "130000") // the validator's own words stay as the detail
		p.shot("settled-warnings")
	})

	t.Run("AmbiguousScanAsksTheTechnician", func(t *testing.T) {
		e := newEnv(t)
		a, err := e.store.Create(workorder.NewOrder{Plate: "浙A11111", PlateColor: "blue", Bay: bayName})
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.store.Create(workorder.NewOrder{Plate: "浙B22222", PlateColor: "yellow", Bay: bayName})
		if err != nil {
			t.Fatal(err)
		}
		p := newPage(t, browser)
		p.login(e)
		p.waitJS(`document.body.dataset.events === "on"`, "the event stream")
		// What the daemon does with a finished scan (gateway/daemon onScan).
		_, err = e.store.AddScan(bayName, "automatic scan on connection", e.bays.report)
		var amb *workorder.AmbiguousError
		if !errors.As(err, &amb) || len(amb.Candidates) != 2 {
			t.Fatalf("AddScan with two open orders on the bay = %v, want an ambiguous match", err)
		}
		e.bus.Publish("scan.ambiguous", bayName, amb)
		p.waitText(`[data-bay="bay1"] [data-role=ambiguous]`, "浙B22222")
		p.shot("ambiguous")
		p.click(fmt.Sprintf(`button[data-act=attach][data-order="%s"]`, b.ID))
		p.waitText("#flash", "诊断记录已加入工单")
		p.waitText("[data-role=scans]", amb.ScanID)
		gotA, _ := e.store.Get(a.ID)
		gotB, _ := e.store.Get(b.ID)
		if len(gotA.Scans) != 0 || len(gotB.Scans) != 1 || gotB.Scans[0].ID != amb.ScanID {
			t.Fatalf("scan went to %v / %v, want only %s on %s", gotA.Scans, gotB.Scans, amb.ScanID, b.ID)
		}
		if gotB.VIN != carVIN {
			t.Fatalf("order VIN %q: the VIN read from the car should fill it", gotB.VIN)
		}
	})

	t.Run("SelfTestFollowedLive", func(t *testing.T) {
		e := newEnv(t)
		p := newPage(t, browser)
		p.login(e)
		p.goTo(e.url + "/#/bays/bay1")
		p.waitText("[data-role=scan-vin]", carVIN)
		p.waitJS(`document.body.dataset.events === "on"`, "the event stream")
		if p.eval(`String(document.querySelector("[data-role=selftest]").hidden)`) != "true" {
			t.Fatal("the self-test panel shows before any self-test")
		}
		// The daemon publishes these three (gateway/daemon/selftest.go) with these types.
		e.bus.Publish("selftest.started", bayName, map[string]string{"order": "WO000001", "method": "1"})
		prog := emission.Progress{Method: emission.TwoSpeedIdle, Phase: "high_idle_sample",
			Prompt: emission.Text{ZH: "保持高怠速 2500 转", EN: "Hold high idle at 2500 r/min"}, SecondsLeft: 17,
			RPM: rig.F(2480), Window: &emission.RPMWindow{Min: 2300, Max: 2700, State: "in"},
			Reading: &rig.Reading{HCppm: rig.F(85), COPct: rig.F(0.32), CO2Pct: rig.F(14.6), O2Pct: rig.F(0.4), Lambda: rig.F(1.012)}}
		e.bus.Publish("selftest.progress", bayName, prog)
		p.waitText("[data-role=selftest] h2", "双怠速")
		p.waitText("[data-role=prompt]", prog.Prompt.ZH)
		p.waitText("[data-role=seconds-left]", "17 s")
		p.waitText("[data-role=selftest-rpm]", "2480")
		p.waitText("[data-role=rpm-window]", "转速在范围内")
		p.waitText(`[data-gas="co_pct"]`, "0.32")
		p.waitText(`[data-gas="lambda"]`, "1.012")
		p.shot("selftest")
		e.bus.Publish("selftest.done", bayName, map[string]any{"order": "WO000001", "verdict": emission.Fail})
		p.waitText("[data-role=verdict]", "不合格")
		p.click("#lang")
		p.waitText("[data-role=verdict]", "Fail")
		p.waitText("[data-role=selftest] h2", "Two-speed idle")
	})

	t.Run("SelfTestStartAbortResult", func(t *testing.T) { testSelfTestStartAbortResult(t, browser) })
	t.Run("OBDCheckLines", func(t *testing.T) { testOBDCheck(t, browser) })
	t.Run("FreeAccelerationResult", func(t *testing.T) { testFreeAccelerationResult(t, browser) })
	t.Run("SelfTestVehicleFacts", func(t *testing.T) { testSelfTestVehicleFacts(t, browser) })
	t.Run("EmissionSettleNeedsSelfTest", func(t *testing.T) { testEmissionSettleNeedsSelfTest(t, browser) })
	t.Run("OBDReadinessCounted", func(t *testing.T) { testOBDReadinessCounted(t, browser) })

	t.Run("DeadLetterRequeue", func(t *testing.T) {
		e := newEnv(t)
		rec, err := e.db.Append(context.Background(), "ehr", "obdgw/v1/33/330106000099901/gw-test/ehr", []byte(`{"x":1}`))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.db.DeadLetter(rec.Seq, "receiver: schema ehr/1: basicInfo.vehicleplatenumber missing"); err != nil {
			t.Fatal(err)
		}
		p := newPage(t, browser)
		p.login(e)
		p.goTo(e.url + "/#/outbox")
		p.waitText("[data-role=dead]", "vehicleplatenumber missing")
		p.waitText("[data-role=depth]", "0")
		p.click(fmt.Sprintf(`button[data-act=requeue][data-seq="%d"]`, rec.Seq))
		p.waitText("#flash", "已重新排队")
		p.waitText("[data-role=depth]", "1")
		if dl, err := e.db.DeadLetters(); err != nil || len(dl) != 0 {
			t.Fatalf("dead letters after requeue: %+v, %v", dl, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestPageWeight(t *testing.T) {
	n, err := console.PageWeight()
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	files, err := os.ReadDir("assets")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		fi, err := f.Info()
		if err != nil {
			t.Fatal(err)
		}
		sum += fi.Size()
	}
	if n != sum || len(files) < 5 {
		t.Fatalf("PageWeight = %d, the %d assets weigh %d", n, len(files), sum)
	}
	t.Logf("console page weight: %d bytes (HTML+JS+CSS+translations+icon, uncompressed)", n)
}
