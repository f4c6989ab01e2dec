package console_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/api"
	"github.com/obdgw/obdgw/gateway/audit"
	"github.com/obdgw/obdgw/gateway/console"
	"github.com/obdgw/obdgw/gateway/events"
	"github.com/obdgw/obdgw/gateway/waste"
	"github.com/obdgw/obdgw/gateway/workorder"
)

// roleToken is the token of the test's holder of role r.
func roleToken(r api.Role) string { return "token-of-" + string(r) + "-0123456789" }

// newRoleEnv is newEnv with one token per role, the audit log and the waste ledger wired as
// the daemon wires them.
func newRoleEnv(t *testing.T) *env {
	t.Helper()
	db, err := buffer.Open(filepath.Join(t.TempDir(), "obdgw.db"), buffer.Options{GatewayID: "gw-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bus := events.New(nil)
	ledger := waste.New(db, waste.Options{CompanyCode: "330106000099901"})
	store := workorder.New(db, workorder.Options{Company: "杭州示例汽车维修有限公司", CompanyCode: "330106000099901",
		Province: "33", GatewayID: "gw-test", Events: bus, Waste: ledger.Hook})
	bays := newFakeBays()
	tests := &fakeSelfTests{bays: bays, subs: map[chan any]struct{}{}}
	var tokens []api.Token
	for _, r := range api.Roles {
		tokens = append(tokens, api.Token{Name: "the-" + string(r), Secret: roleToken(r), Role: r})
	}
	a := api.New(api.Options{Store: store, Bays: bays, SelfTests: tests, Outbox: db, Events: bus, Tokens: tokens,
		Audit: audit.New(db, audit.Options{}), Waste: ledger,
		Uplink: func() any { return map[string]any{"connected": true, "broker": "mqtts://127.0.0.1:8883"} }})
	mux := http.NewServeMux()
	mux.Handle(api.Prefix+"/", a.Handler())
	mux.Handle("/", console.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want loopback", srv.URL)
	}
	return &env{t: t, url: srv.URL, db: db, store: store, bus: bus, bays: bays, tests: tests, srv: srv}
}

// loginAs logs in with the token of role r and waits for the console to know its role.
func (p *page) loginAs(e *env, r api.Role) {
	p.t.Helper()
	p.goTo(e.url + "/#/bays")
	p.waitJS(`document.querySelector("#login #token")`, "the login form")
	p.do(chromedp.SendKeys(chromedp.CSS("#token"), roleToken(r)))
	p.click(`#login button[type=submit]`)
	p.waitJS(`document.querySelector('[data-bay="bay1"]')`, "the bays page after login")
	p.waitJS(`document.body.dataset.userRole === "`+string(r)+`"`, "the console to learn its role")
}

// shown reports whether the first element matching sel is on the page and not hidden by its
// role (an element that is not there at all is not shown either).
func (p *page) shown(sel string) bool {
	p.t.Helper()
	q, _ := json.Marshal(sel)
	return p.eval(`(function(){const e=document.querySelector(`+string(q)+`);return String(!!e && e.offsetParent !== null)})()`) == "true"
}

// openOrderWithOwner is an open order on bay1 with the owner's name and phone.
func openOrderWithOwner(t *testing.T, e *env) workorder.Order {
	t.Helper()
	o, err := e.store.Create(workorder.NewOrder{Plate: "浙A7K2M9", PlateColor: "blue", VIN: carVIN, Bay: bayName, Fault: "更换蓄电池",
		OwnerName: ownerNm, OwnerPhone: ownerTel})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestConsoleRoles(t *testing.T) {
	browser := startBrowser(t)

	// For each role: which of the page's actions it sees. The API refuses the others anyway;
	// the console does not offer them.
	for _, c := range []struct {
		role                                   api.Role
		scan, clear, newOrder, addItem, settle bool
		owner, audit, handover                 bool
	}{
		{api.RoleTechnician, true, true, false, true, false, false, false, false},
		{api.RoleFrontDesk, false, false, true, true, true, true, false, true},
		{api.RoleManager, true, true, true, true, true, true, true, true},
		{api.RoleShopSoftware, true, false, true, true, true, false, false, false},
		{api.RoleMonitor, false, false, false, false, false, false, false, false},
	} {
		t.Run(string(c.role), func(t *testing.T) {
			e := newRoleEnv(t)
			o := openOrderWithOwner(t, e)
			p := newPage(t, browser)
			p.loginAs(e, c.role)
			p.waitText("[data-role=whoami]", "the-"+string(c.role))
			if got := p.shown(`[data-bay="bay1"] [data-act=scan]`); got != c.scan {
				t.Errorf("bays page: scan shown %v, want %v", got, c.scan)
			}
			if got := p.shown(`nav a[href="#/audit"]`); got != c.audit {
				t.Errorf("audit link shown %v, want %v", got, c.audit)
			}
			p.click(`nav a[href="#/orders"]`)
			p.waitJS(`document.querySelector('[data-role=status]')`, "the order list")
			if got := p.shown(`[data-act=new]`); got != c.newOrder {
				t.Errorf("orders page: new order shown %v, want %v", got, c.newOrder)
			}
			p.goTo(e.url + "/#/orders/" + o.ID)
			p.waitText("[data-role=order-vin]", carVIN)
			if got := p.shown("#item-form"); got != c.addItem {
				t.Errorf("order page: item form shown %v, want %v", got, c.addItem)
			}
			if got := p.shown("#settle-form"); got != c.settle {
				t.Errorf("order page: settle form shown %v, want %v", got, c.settle)
			}
			// Owner data only for the roles that may read it; the others never ask for it.
			if c.owner {
				p.waitText("[data-role=owner]", ownerNm)
			} else if v := p.text("#view"); strings.Contains(v, ownerNm) || strings.Contains(v, ownerTel) || strings.Contains(p.snapshot(), "403") {
				t.Errorf("order page as %s shows owner data or a refusal: %q", c.role, v)
			}
			p.goTo(e.url + "/#/bays/bay1")
			p.waitJS(`document.querySelector('[data-act=scan]')`, "the bay page")
			if got := p.shown(`[data-act=clear]`); got != c.clear {
				t.Errorf("bay page: clear shown %v, want %v", got, c.clear)
			}
			p.goTo(e.url + "/#/waste")
			p.waitJS(`document.getElementById("handover-form")`, "the waste page")
			if got := p.shown("#handover-form"); got != c.handover {
				t.Errorf("waste page: hand-over form shown %v, want %v", got, c.handover)
			}
			if c.role == api.RoleManager {
				// The manager's own read of the owner is in the audit log, without the owner data.
				p.click(`nav a[href="#/audit"]`)
				p.waitText(`[data-role=audit] tr[data-action="owner.read"]`, o.ID)
				row := p.text(`[data-role=audit] tr[data-action="owner.read"]`)
				if !strings.Contains(row, "the-manager") || !strings.Contains(row, "查看车主信息") || strings.Contains(p.text("#view"), ownerTel) {
					t.Fatalf("audit row %q", row)
				}
				p.shot("audit-log")
			}
		})
	}

	t.Run("WasteOnAnItemAndAPart", func(t *testing.T) {
		e := newRoleEnv(t)
		o := openOrderWithOwner(t, e)
		p := newPage(t, browser)
		p.loginAs(e, api.RoleTechnician)
		p.goTo(e.url + "/#/orders/" + o.ID)
		p.waitJS(`document.getElementById("item-form")`, "the item form")
		p.set(`#item-form [name=name]`, "更换机油机滤")
		p.set(`#item-form [name=hours]`, "0.5")
		p.eval(`(function(){const f=document.getElementById("item-form");f.waste_category.value="waste_mineral_oil";f.waste_unit.value="L";return ""})()`)
		p.set(`#item-form [name=waste_quantity]`, "4.5")
		p.click(`#item-form [data-act=add-item]`)
		p.waitText(`[data-role=items]`, "废矿物油 4.5 升")
		// A part without waste stays without.
		p.set(`#part-form [name=name]`, "机滤")
		p.set(`#part-form [name=quantity]`, "1")
		p.click(`#part-form [data-act=add-part]`)
		p.waitText(`[data-role=parts]`, "机滤")
		got, err := e.store.Get(o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Items) != 1 || got.Items[0].Waste == nil || got.Items[0].Waste.Category != "waste_mineral_oil" || got.Items[0].Waste.Quantity != "4.5" ||
			len(got.Parts) != 1 || got.Parts[0].Waste != nil {
			t.Fatalf("stored items %+v parts %+v", got.Items, got.Parts)
		}
		// A unit the category is not counted in is refused, and said.
		p.set(`#part-form [name=name]`, "蓄电池")
		p.set(`#part-form [name=quantity]`, "1")
		p.eval(`(function(){const f=document.getElementById("part-form");f.waste_category.value="lead_acid_battery";f.waste_unit.value="L";return ""})()`)
		p.set(`#part-form [name=waste_quantity]`, "1")
		p.click(`#part-form [data-act=add-part]`)
		p.waitText(`#part-form + [data-role=errors]`, "piece")
	})

	t.Run("WasteLedgerAndHandover", func(t *testing.T) {
		e := newRoleEnv(t)
		km := int64(86412)
		o, err := e.store.Create(workorder.NewOrder{Plate: "浙A7K2M9", PlateColor: "blue", VIN: carVIN, MileageKm: &km, Fault: "保养",
			Items: []workorder.Item{{Name: "更换机油机滤", Hours: "0.5", Waste: &workorder.Waste{Category: "waste_mineral_oil", Quantity: "4.5", Unit: "L"}}},
			Parts: []workorder.Part{{Name: "蓄电池", Quantity: "1", Waste: &workorder.Waste{Category: "lead_acid_battery", Quantity: "1", Unit: "piece"}}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Settle(o.ID, workorder.SettleRequest{CostListCode: "HS-W-1"}); err != nil {
			t.Fatal(err)
		}
		p := newPage(t, browser)
		p.loginAs(e, api.RoleFrontDesk)
		p.click(`nav a[href="#/waste"]`)
		p.waitText(`[data-role=waste-stock] tr[data-category=waste_mineral_oil] [data-role=stock]`, "4.5 升")
		if row := p.text(`[data-role=waste-stock] tr[data-category=lead_acid_battery]`); !strings.Contains(row, "HW31 900-052-31") || !strings.Contains(row, "1 件") {
			t.Fatalf("battery row %q", row)
		}
		// More than the stock: refused, said in the form.
		p.set(`#handover-form [name=collector]`, "杭州立佳环境服务有限公司")
		p.set(`#handover-form [name=licence]`, "浙危废经第3301000123号")
		p.set(`#handover-form [name=manifest_no]`, "3301202406120001")
		p.set(`#handover-form [name=quantity]`, "9")
		p.click(`#handover-form [data-act=handover]`)
		p.waitText(`#handover-form [data-role=errors]`, "4.5")
		p.set(`#handover-form [name=quantity]`, "4")
		p.shot("waste-ledger")
		p.click(`#handover-form [data-act=handover]`)
		p.waitText(`[data-role=handovers] tr[data-id]`, "3301202406120001")
		p.waitText(`[data-role=waste-stock] tr[data-category=waste_mineral_oil] [data-role=stock]`, "0.5 升")
		// The battery's units: a piece or kg, never litres.
		p.eval(`(function(){const s=document.querySelector("#handover-form [name=category]");s.value="lead_acid_battery";s.dispatchEvent(new Event("change"));return ""})()`)
		if got := p.eval(`document.querySelector('#handover-form [name=unit] option[value=L]').disabled ? "disabled" : "enabled"`); got != "disabled" {
			t.Fatalf("litres offered for batteries: %s", got)
		}
	})
}
