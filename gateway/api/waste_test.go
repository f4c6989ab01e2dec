package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/audit"
	"github.com/obdgw/obdgw/gateway/waste"
	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/gateway/workorder"
)

// clock is a settable clock for the waste ledger's days.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration)     { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *clock) set(t time.Time)         { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (f *fixture) kinds() map[string]int { return f.kindsFrom(0) }
func (f *fixture) kindsFrom(after uint64) map[string]int {
	f.t.Helper()
	recs, err := f.db.Peek(100)
	if err != nil {
		f.t.Fatal(err)
	}
	m := map[string]int{}
	for _, r := range recs {
		if r.Seq > after {
			m[r.Kind]++
		}
	}
	return m
}

// newWasteFixture is newFixture with the waste ledger wired as the daemon wires it: its hook in
// the work-order store's settlement, its routes in the API.
func newWasteFixture(t *testing.T) (*fixture, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2024, 3, 13, 2, 0, 0, 0, time.UTC)}
	db, err := buffer.Open(filepath.Join(t.TempDir(), "obdgw.db"), buffer.Options{GatewayID: "gw-test", Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ledger := waste.New(db, waste.Options{CompanyCode: "330106000099901", Now: clk.now})
	store := workorder.New(db, workorder.Options{Company: "杭州示例汽车维修有限公司", CompanyCode: "330106000099901", Province: "33",
		GatewayID: "gw-test", Now: clk.now, Waste: ledger.Hook})
	bays := &fakeBays{live: make(chan LiveValues, 4)}
	a := New(Options{Store: store, Bays: bays, Outbox: db, Tokens: append([]Token{{Name: "dms", Secret: dmsToken, Role: RoleManager}}, roleTokens()...),
		MaxBodyBytes: 4096, Logger: slog.New(slog.DiscardHandler), Audit: audit.New(db, audit.Options{Now: clk.now}), Waste: ledger})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &fixture{t: t, srv: srv, api: a, db: db, store: store, bays: bays}, clk
}

const wasteOrderBody = `{"plate":"浙A7K2M9","plate_color":"blue","vin":"` + carVIN + `","mileage_km":86412,"bay":"bay1","fault_description":"保养，更换蓄电池","owner_name":"王晓明","owner_phone":"13905710042",
 "items":[{"name":"更换机油机滤","hours":0.5,"waste":{"category":"waste_mineral_oil","quantity":4.5,"unit":"L"}}],
 "parts":[{"name":"蓄电池","code":"6-QW-60","quantity":1,"waste":{"category":"lead_acid_battery","quantity":"1","unit":"piece"}}]}`

func stockOf(t *testing.T, ledger map[string]any, category, unit string) map[string]any {
	t.Helper()
	for _, s := range ledger["stock"].([]any) {
		m := s.(map[string]any)
		if m["category"] == category && m["unit"] == unit {
			return m
		}
	}
	t.Fatalf("the ledger has no %s in %s: %v", category, unit, ledger)
	return nil
}

// TestWasteFromSettlementToHandover: an order's waste entries are checked when given, become a
// waste record appended with the settlement, enter the ledger as stock, fall due after the
// shop's days, and leave it by a hand-over to a licensed collector, which is audited.
func TestWasteFromSettlementToHandover(t *testing.T) {
	f, clk := newWasteFixture(t)
	for _, c := range []struct{ from, to, field string }{
		{`"category":"waste_mineral_oil"`, `"category":"oil"`, "items[0].waste.category"},
		{`"unit":"L"`, `"unit":"piece"`, "items[0].waste.unit"},
		{`"quantity":"1"`, `"quantity":"0"`, "parts[0].waste.quantity"},
		{`"quantity":4.5`, `"quantity":4.555`, "items[0].waste.quantity"},
	} {
		code, m := f.do("POST", "/workorders", dmsToken, strings.Replace(wasteOrderBody, c.from, c.to, 1))
		if code != 400 || m["field"] != c.field {
			t.Errorf("%s: %d %v, want 400 naming %s", c.to, code, m, c.field)
		}
	}
	code, m := f.do("POST", "/workorders", dmsToken, strings.Replace(wasteOrderBody, `"category":"waste_mineral_oil"`, `"category":"oil"`, 1))
	if !strings.Contains(fmt.Sprint(m["error"]), "waste_mineral_oil, lead_acid_battery, exhaust_catalyst, scrap_steel, scrap_tyre") {
		t.Errorf("a wrong category does not list the categories: %d %v", code, m)
	}
	o := f.mustDo(201, "POST", "/workorders", wasteOrderBody)
	id := o["id"].(string)
	if v := f.mustDo(200, "GET", "/waste/ledger", ""); len(v["stock"].([]any)) != 0 {
		t.Fatalf("an open order's waste is in the ledger: %v", v)
	}
	// A settlement refused by the record's rules stores no waste either.
	bad := f.mustDo(201, "POST", "/workorders", strings.Replace(wasteOrderBody, `"vin":"`+carVIN+`",`, "", 1))
	if code, _ := f.do("POST", "/workorders/"+bad["id"].(string)+"/settle", dmsToken, `{"costlistcode":"HS-W-0"}`); code != 422 {
		t.Fatalf("settling without a VIN = %d", code)
	}
	if v := f.mustDo(200, "GET", "/waste/ledger", ""); len(v["stock"].([]any)) != 0 || f.kinds()["waste"] != 0 {
		t.Fatalf("a refused settlement left waste: %v %v", v, f.kinds())
	}

	st := f.mustDo(200, "POST", "/workorders/"+id+"/settle", `{"costlistcode":"HS-W-1","settle_date":"20240313"}`)
	wseq, _ := st["waste_outbox_seq"].(float64)
	if wseq == 0 {
		t.Fatalf("settlement answer without waste_outbox_seq: %v", st)
	}
	recs, err := f.db.Peek(10)
	if err != nil {
		t.Fatal(err)
	}
	var env wire.Envelope
	for _, r := range recs {
		if r.Seq == uint64(wseq) {
			if r.Kind != "waste" || !strings.HasSuffix(r.Topic, "/gw-test/waste") {
				t.Fatalf("waste record %s on %s", r.Kind, r.Topic)
			}
			if err := json.Unmarshal(r.Payload, &env); err != nil {
				t.Fatal(err)
			}
		}
	}
	if env.Schema != wire.SchemaWaste {
		t.Fatalf("waste record schema %q", env.Schema)
	}
	if err := wire.CheckWastePayload(env.Schema, env.Payload); err != nil {
		t.Fatalf("the waste record fails its own check: %v", err)
	}
	for _, want := range []string{`"code":"900-214-08"`, `"class":"HW31"`, `"quantity":"4.5","unit":"L"`, `"costlistcode":"HS-W-1"`, `"source_name":"蓄电池"`} {
		if !strings.Contains(string(env.Payload), want) {
			t.Errorf("waste record lacks %s: %s", want, env.Payload)
		}
	}
	if strings.Contains(string(env.Payload), ownerName) || strings.Contains(string(env.Payload), ownerPhone) {
		t.Fatal("owner data in the waste record")
	}

	v := f.mustDo(200, "GET", "/waste/ledger", "")
	oil := stockOf(t, v, "waste_mineral_oil", "L")
	if oil["stock"] != "4.5" || oil["generated"] != "4.5" || oil["due_now"] != false || oil["oldest_stored"] != "20240313" || v["due_days"] != 90.0 {
		t.Fatalf("oil in the ledger: %v", v)
	}
	// A second order of oil, later: stock adds up exactly.
	clk.add(30 * 24 * time.Hour)
	o2 := f.mustDo(201, "POST", "/workorders", strings.Replace(strings.Replace(wasteOrderBody, `"quantity":4.5`, `"quantity":"3.75"`, 1), `,"waste":{"category":"lead_acid_battery","quantity":"1","unit":"piece"}`, "", 1))
	f.mustDo(200, "POST", "/workorders/"+o2["id"].(string)+"/settle", `{"costlistcode":"HS-W-2"}`)
	v = f.mustDo(200, "GET", "/waste/ledger", "")
	if oil = stockOf(t, v, "waste_mineral_oil", "L"); oil["stock"] != "8.25" {
		t.Fatalf("oil after two orders: %v", oil)
	}
	// 91 days after the first settlement, its oil is due; the second order's is not yet.
	clk.set(time.Date(2024, 6, 12, 2, 0, 0, 0, time.UTC))
	v = f.mustDo(200, "GET", "/waste/ledger", "")
	if oil = stockOf(t, v, "waste_mineral_oil", "L"); oil["due_now"] != true || oil["due"] != "4.5" {
		t.Fatalf("oil 91 days on: %v", oil)
	}

	handover := `{"date":"20240612","collector":"杭州立佳环境服务有限公司","licence":"浙危废经第3301000123号","manifest_no":"3301202406120001","lines":[{"category":"waste_mineral_oil","quantity":"9","unit":"L"}]}`
	code, m = f.do("POST", "/waste/handovers", roleToken(RoleFrontDesk), handover)
	if code != 409 || m["field"] != "lines[0].quantity" || m["stock"] != "8.25" {
		t.Fatalf("handing over more than the stock = %d %v", code, m)
	}
	for _, c := range []struct{ from, to, field string }{
		{`"licence":"浙危废经第3301000123号"`, `"licence":""`, "licence"},
		{`"manifest_no":"3301202406120001"`, `"manifest_no":" "`, "manifest_no"},
		{`"date":"20240612"`, `"date":"2024-06-12"`, "date"},
		{`"unit":"L"`, `"unit":"piece"`, "lines[0].unit"},
	} {
		if code, m := f.do("POST", "/waste/handovers", roleToken(RoleFrontDesk), strings.Replace(handover, c.from, c.to, 1)); code != 400 || m["field"] != c.field {
			t.Errorf("%s: %d %v, want 400 naming %s", c.to, code, m, c.field)
		}
	}
	if code, m := f.do("POST", "/waste/handovers", roleToken(RoleTechnician), handover); code != 403 {
		t.Fatalf("a technician recorded a hand-over: %d %v", code, m)
	}
	before := f.kinds()
	h := f.mustDo(201, "POST", "/waste/handovers", strings.Replace(handover, `"quantity":"9"`, `"quantity":"5"`, 1))
	if h["id"] != "HO000001" || h["by"] != "dms" {
		t.Fatalf("hand-over %v", h)
	}
	if code, m := f.do("POST", "/waste/handovers", dmsToken, strings.Replace(handover, `"quantity":"9"`, `"quantity":"1"`, 1)); code != 409 || m["field"] != "manifest_no" {
		t.Fatalf("the same manifest twice = %d %v", code, m)
	}
	v = f.mustDo(200, "GET", "/waste/ledger", "")
	oil = stockOf(t, v, "waste_mineral_oil", "L")
	// The oldest stock left first: the 4.5 L of March is gone, 3.25 L of April remain, not due.
	if oil["stock"] != "3.25" || oil["handed_over"] != "5" || oil["due_now"] != false || oil["oldest_stored"] != "20240412" {
		t.Fatalf("oil after the hand-over: %v", oil)
	}
	if hs := v["handovers"].([]any); len(hs) != 1 || hs[0].(map[string]any)["manifest_no"] != "3301202406120001" {
		t.Fatalf("hand-overs: %v", v["handovers"])
	}
	if got := f.kinds(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("a hand-over entered the outbox: %v → %v", before, got)
	}
	entries := f.auditItems("")
	last := entries[len(entries)-1]
	if last["action"] != "waste.handover" || !strings.Contains(fmt.Sprint(last["detail"]), "3301202406120001") {
		t.Fatalf("the hand-over is not audited: %v", last)
	}

	// A revision that drops the battery sends the waste record again and takes it out of stock.
	if bat := stockOf(t, v, "lead_acid_battery", "piece"); bat["stock"] != "1" {
		t.Fatalf("battery: %v", bat)
	}
	last1 := uint64(0)
	if recs, _ := f.db.Peek(100); len(recs) > 0 {
		last1 = recs[len(recs)-1].Seq
	}
	rv := f.mustDo(200, "POST", "/workorders/"+id+"/revisions", `{"reason":"蓄电池未更换","parts":[]}`)
	if rv["waste_outbox_seq"] == nil || f.kindsFrom(last1)["waste"] != 1 {
		t.Fatalf("revision: %v, new records %v", rv, f.kindsFrom(last1))
	}
	v = f.mustDo(200, "GET", "/waste/ledger", "")
	if strings.Contains(fmt.Sprint(v["stock"]), "lead_acid_battery") {
		t.Fatalf("battery after the revision: %v", v["stock"])
	}
}

// TestOrderWithoutWasteSendsNoWasteRecord: the waste kind appears only when there is waste.
func TestOrderWithoutWasteSendsNoWasteRecord(t *testing.T) {
	f, _ := newWasteFixture(t)
	o := f.mustDo(201, "POST", "/workorders", `{"plate":"浙A7K2M9","plate_color":"blue","vin":"`+carVIN+`","mileage_km":86412,"fault_description":"更换雨刮片","items":[{"name":"更换雨刮片","hours":0.2}]}`)
	st := f.mustDo(200, "POST", "/workorders/"+o["id"].(string)+"/settle", `{"costlistcode":"HS-N-1"}`)
	if st["waste_outbox_seq"] != nil || f.kinds()["waste"] != 0 || f.kinds()["ehr"] != 1 {
		t.Fatalf("an order without waste: %v %v", st, f.kinds())
	}
}
