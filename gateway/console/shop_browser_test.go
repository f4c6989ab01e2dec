package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/api"
	"github.com/obdgw/obdgw/gateway/console"
	"github.com/obdgw/obdgw/gateway/events"
	"github.com/obdgw/obdgw/gateway/workorder"
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
			} {
				p.goTo(e.url + "/" + view.hash)
				p.waitJS(fmt.Sprintf(`document.querySelector(%q)`, view.ready), view.hash)
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
