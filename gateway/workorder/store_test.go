package workorder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/ehr"
	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/obd"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(day string) {
	t, err := ehr.ParseDate(day)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	c.t = t.Add(10 * time.Hour)
	c.mu.Unlock()
}

// events records what the store publishes.
type events struct {
	mu  sync.Mutex
	all []string
}

func (e *events) Publish(typ, bay string, data any) {
	b, _ := json.Marshal(data)
	e.mu.Lock()
	e.all = append(e.all, typ+" "+bay+" "+string(b))
	e.mu.Unlock()
}

type fixture struct {
	db    *buffer.DB
	s     *Store
	clock *clock
	logs  *bytes.Buffer
	ev    *events
	path  string
}

const (
	company     = "杭州示例汽车维修有限公司"
	companyCode = "330106000099901"
	exampleVIN  = "LJ8ECM2B2R1063348"
	ownerName   = "王晓明"
	ownerPhone  = "13905710042"
)

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{}, logs: &bytes.Buffer{}, ev: &events{}}
	f.clock.set("20240311")
	f.path = filepath.Join(t.TempDir(), "obdgw.db")
	db, err := buffer.Open(f.path, buffer.Options{GatewayID: "gw-test", Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f.db = db
	opts := Options{Company: company, CompanyCode: companyCode, Province: "33", GatewayID: "gw-test",
		Now: f.clock.now, Events: f.ev, Logger: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		KnownBay: func(b string) bool { return b == "bay1" || b == "bay2" }}
	if mod != nil {
		mod(&opts)
	}
	f.s = New(db, opts)
	return f
}

func km(n int64) *int64 { return &n }

func exampleOrder() NewOrder {
	return NewOrder{Plate: "浙a7k2m9", PlateColor: "blue", MileageKm: km(86412), Fault: "双怠速检验CO超标", Bay: "bay1",
		EmissionRepair: true, TestNo: "440600202403110042", OwnerName: ownerName, OwnerPhone: ownerPhone}
}

func exampleScan(vin string) obd.Report {
	return obd.Report{
		Time: time.Date(2024, 3, 11, 3, 0, 0, 0, time.UTC), VIN: vin, VINValid: true, MIL: new(true),
		DTCs: obd.DTCLists{
			Stored: []obd.DTC{
				{Code: "P0420", ECU: "7E8", Description: "催化器效率低于阈值(第1排)"},
				{Code: "P0171", ECU: "7E8", Description: "系统过稀(第1排)"},
			},
			Permanent: []obd.DTC{{Code: "P0420", ECU: "7E8", Description: "催化器效率低于阈值(第1排)"}},
		},
	}
}

func addExampleWork(t *testing.T, s *Store, id string) {
	t.Helper()
	if _, err := s.AddItems(id, Item{Name: "排放故障诊断（OBD读码、尾气检测）", Hours: "1"}, Item{Name: "更换三元催化转化器", Hours: "2.5"}, Item{Name: "更换后氧传感器", Hours: "0.5"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddParts(id, Part{Name: "三元催化转化器总成", Code: "1205100-TW01", Quantity: "1"}, Part{Name: "后氧传感器", Code: "3612020-TW02", Quantity: "1"}, Part{Name: "排气管密封垫", Code: "1200013-TW03", Quantity: "2.00"}); err != nil {
		t.Fatal(err)
	}
}

func outbox(t *testing.T, db *buffer.DB) []buffer.Record {
	t.Helper()
	rs, err := db.Peek(100)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// decode frames a stored record like the uplink does and validates it like a receiver does.
func decode(t *testing.T, r buffer.Record) (wire.Envelope, wire.EHRPayload) {
	t.Helper()
	framed, err := wire.Frame(r.ID, r.Payload)
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := wire.ValidateMessage(r.Topic, framed)
	if err != nil {
		t.Fatalf("the receiver would reject %s: %v", framed, err)
	}
	var p wire.EHRPayload
	if env.Kind == wire.KindEHR {
		if err := wire.CheckEHRPayload(env.Schema, env.Payload); err != nil {
			t.Fatalf("payload check: %v", err)
		}
		if err := json.Unmarshal(env.Payload, &p); err != nil {
			t.Fatal(err)
		}
	}
	return env, p
}

func TestSettleProducesTheReferenceRecord(t *testing.T) {
	f := newFixture(t, nil)
	o, err := f.s.Create(exampleOrder())
	if err != nil {
		t.Fatal(err)
	}
	if o.ID != "WO000001" || o.Plate != "浙A7K2M9" || o.RepairDate != "20240311" || o.VINSource != "" {
		t.Fatalf("created %+v", o)
	}
	res, err := f.s.AddScan("bay1", "", exampleScan(exampleVIN))
	if err != nil || res.Order == nil || res.Order.ID != o.ID {
		t.Fatalf("AddScan = %+v, %v; want attached to %s by bay", res, err, o.ID)
	}
	if res.Order.VIN != exampleVIN || res.Order.VINSource != VINOBD {
		t.Fatalf("the VIN read from the car should fill the order: %+v", res.Order)
	}
	addExampleWork(t, f.s, o.ID)
	f.clock.set("20240313")
	st, err := f.s.Settle(o.ID, SettleRequest{CostListCode: "HS2024031300187"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Order.Status != Settled || st.Order.SettleDate != "20240313" || st.Order.Revision != 1 || len(st.Warnings) != 0 {
		t.Fatalf("settlement %+v", st)
	}

	rs := outbox(t, f.db)
	if len(rs) != 1 || rs[0].Kind != "ehr" || rs[0].Topic != "obdgw/v1/33/"+companyCode+"/gw-test/ehr" || rs[0].Seq != st.Seq {
		t.Fatalf("outbox = %+v", rs)
	}
	env, p := decode(t, rs[0])
	if env.Schema != "ehr/1" || env.Gateway != "gw-test" || env.CompanyCode != companyCode || len(env.Warnings) != 0 {
		t.Fatalf("envelope %+v", env)
	}
	if p.Meta != (wire.EHRMeta{WorkOrder: o.ID, CostListCode: "HS2024031300187", Revision: 1, VINSource: "obd", TestNo: "440600202403110042", CarVIN: exampleVIN}) {
		t.Fatalf("meta %+v", p.Meta)
	}
	// The record is the example of ehr-record.md §3.1 (without the token the last hop adds).
	golden, err := os.ReadFile("../ehr/testdata/example.json")
	if err != nil {
		t.Fatal(err)
	}
	var want wire.EHRRecord
	if err := json.Unmarshal(golden, &want); err != nil {
		t.Fatal(err)
	}
	want.Token = ""
	wb, _ := want.Encode()
	gb, _ := p.Record.Encode()
	if !bytes.Equal(wb, gb) {
		t.Fatalf("record\n got %s\nwant %s", gb, wb)
	}
	// The revision is kept for audit.
	recs, err := f.s.Records(o.ID)
	if err != nil || len(recs) != 1 || recs[0].Meta.Revision != 1 {
		t.Fatalf("Records = %+v, %v", recs, err)
	}
	// A settled order takes no more items and cannot be settled again.
	if _, err := f.s.AddItems(o.ID, Item{Name: "x", Hours: "1"}); !errors.Is(err, ErrSettled) {
		t.Fatalf("AddItems on a settled order: %v", err)
	}
	if _, err := f.s.Settle(o.ID, SettleRequest{CostListCode: "HS2"}); !errors.Is(err, ErrSettled) {
		t.Fatalf("second Settle: %v", err)
	}
}

func TestSettleCommitsNothingWhenTheTransactionFails(t *testing.T) {
	boom := errors.New("disk on fire")
	fail := true
	f := newFixture(t, func(o *Options) {
		o.afterPut = func() error {
			if fail {
				return boom
			}
			return nil
		}
	})
	o, err := f.s.Create(exampleOrder())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AddScan("bay1", "", exampleScan(exampleVIN)); err != nil {
		t.Fatal(err)
	}
	addExampleWork(t, f.s, o.ID)
	before := f.db.Stats()
	if _, err := f.s.Settle(o.ID, SettleRequest{CostListCode: "HS2024031300187"}); !errors.Is(err, boom) {
		t.Fatalf("Settle = %v, want the injected failure", err)
	}
	got, err := f.s.Get(o.ID)
	if err != nil || got.Status != Open || got.CostListCode != "" || len(got.Revisions) != 0 {
		t.Fatalf("order after a failed settlement: %+v, %v", got, err)
	}
	if rs := outbox(t, f.db); len(rs) != 0 {
		t.Fatalf("outbox after a failed settlement: %+v", rs)
	}
	if after := f.db.Stats(); after.Appended["ehr"] != before.Appended["ehr"] {
		t.Fatalf("appended counter moved: %v → %v", before.Appended, after.Appended)
	}
	if recs, _ := f.s.Records(o.ID); len(recs) != 0 {
		t.Fatalf("record snapshot left behind: %+v", recs)
	}
	// The same settlement number is still free: nothing of the failed attempt remains.
	fail = false
	st, err := f.s.Settle(o.ID, SettleRequest{CostListCode: "HS2024031300187"})
	if err != nil {
		t.Fatal(err)
	}
	if rs := outbox(t, f.db); len(rs) != 1 || rs[0].Seq != st.Seq {
		t.Fatalf("outbox = %+v", rs)
	}
}

func TestSettleBlockedByValidationStoresNothing(t *testing.T) {
	f := newFixture(t, nil)
	in := exampleOrder()
	in.MileageKm = nil
	o, err := f.s.Create(in) // no VIN, no scan, no mileage
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.s.Settle(o.ID, SettleRequest{CostListCode: "HS1"})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Settle = %v, want *ValidationError", err)
	}
	fields := map[string]bool{}
	for _, p := range ve.Problems {
		fields[p.Field] = true
	}
	if !fields["vin"] || !fields["mileage_km"] || len(ve.Problems) != 2 {
		t.Fatalf("problems %+v, want vin and mileage_km", ve.Problems)
	}
	got, _ := f.s.Get(o.ID)
	if got.Status != Open || got.CostListCode != "" {
		t.Fatalf("order changed by a refused settlement: %+v", got)
	}
	if rs := outbox(t, f.db); len(rs) != 0 {
		t.Fatalf("outbox = %+v", rs)
	}
	// Missing settlement number and a future date are refused before any work.
	if _, err := f.s.Settle(o.ID, SettleRequest{}); err == nil || !strings.Contains(err.Error(), "costlistcode") {
		t.Fatalf("empty costlistcode: %v", err)
	}
	_, err = f.s.Settle(o.ID, SettleRequest{CostListCode: "HS1", SettleDate: "2024-03-13"})
	var ie *InputError
	if !errors.As(err, &ie) || ie.Field != "settle_date" {
		t.Fatalf("bad settle date: %v", err)
	}
}

func settleSimple(t *testing.T, f *fixture, vin string, mileage int64, code string) (Settlement, error) {
	t.Helper()
	o, err := f.s.Create(NewOrder{Plate: "浙A12345", PlateColor: "blue", VIN: vin, MileageKm: km(mileage), Fault: "更换机油机滤保养"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AddItems(o.ID, Item{Name: "保养", Hours: "0.5"}); err != nil {
		t.Fatal(err)
	}
	return f.s.Settle(o.ID, SettleRequest{CostListCode: code})
}

func TestCostListCodeUniquePerCompany(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := settleSimple(t, f, exampleVIN, 1000, "HS-1"); err != nil {
		t.Fatal(err)
	}
	_, err := settleSimple(t, f, "LSVNV2187E2100001", 2000, "HS-1")
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Problems[0].Field != "costlistcode" || ve.Problems[0].Code != "duplicate" {
		t.Fatalf("duplicate costlistcode: %v", err)
	}
	// The number ignores case: hs-1 is the same settlement list as HS-1.
	_, err = settleSimple(t, f, "LSVNV2187E2100001", 2000, "hs-1")
	if !errors.As(err, &ve) || ve.Problems[0].Code != "duplicate" {
		t.Fatalf("duplicate costlistcode in other case: %v", err)
	}
	if n := len(outbox(t, f.db)); n != 1 {
		t.Fatalf("outbox has %d records, want 1", n)
	}
	if got, _, _ := f.s.List(Filter{CostListCode: "hs-1"}); len(got) != 1 {
		t.Fatalf("list by costlistcode ignoring case: %d orders", len(got))
	}
	// Another company on its own gateway may use the same number: the index is per company.
	g := newFixture(t, func(o *Options) { o.CompanyCode = "330106000099902" })
	if _, err := settleSimple(t, g, exampleVIN, 1000, "HS-1"); err != nil {
		t.Fatal(err)
	}
}

func TestWarningsTravelInTheEnvelope(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := settleSimple(t, f, exampleVIN, 90000, "HS-1"); err != nil {
		t.Fatal(err)
	}
	f.clock.set("20240312")
	st, err := settleSimple(t, f, exampleVIN, 86000, "HS-2")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Warnings) != 1 || st.Warnings[0].Code != "mileage_decreased" {
		t.Fatalf("warnings %+v", st.Warnings)
	}
	got, _ := f.s.Get(st.Order.ID)
	if len(got.Warnings) != 1 {
		t.Fatalf("warnings not kept on the order: %+v", got.Warnings)
	}
	rs := outbox(t, f.db)
	env, _ := decode(t, rs[1])
	if len(env.Warnings) != 1 || !strings.HasPrefix(env.Warnings[0], "mileage_decreased: mileage_km: ") {
		t.Fatalf("envelope warnings %q", env.Warnings)
	}
	// A VIN from outside China with a wrong check digit is a warning, not a refusal (some
	// markets do not use the check digit).
	st, err = settleSimple(t, f, "1M8GDM9A1KP042788", 1, "HS-3")
	if err != nil || len(st.Warnings) != 1 || st.Warnings[0].Code != "check_digit" {
		t.Fatalf("check digit: %+v, %v", st.Warnings, err)
	}
	// A Chinese VIN (L…) must carry a valid check digit: refused with the expected digit, kept
	// only when a person confirms it with a reason, which travels with the record.
	_, err = f.s.Create(NewOrder{Plate: "浙A12345", PlateColor: "blue", VIN: "LJ8ECM2B3R1063348"})
	var re *RuleError
	if !errors.As(err, &re) || re.Field != "vin" || re.Code != "check_digit" || re.Expected != "2" || !strings.Contains(re.Msg, "2 is expected") {
		t.Fatalf("Chinese VIN with a wrong check digit: %v", err)
	}
	var ie *InputError
	if _, err := f.s.Create(NewOrder{Plate: "浙A12345", PlateColor: "blue", VIN: "LJ8ECM2B3R1063348", ConfirmVINCheckDigit: &Confirmation{Reason: " "}}); !errors.As(err, &ie) || ie.Field != "confirm_vin_check_digit.reason" {
		t.Fatalf("confirmation without a reason: %v", err)
	}
	o, err := f.s.Create(NewOrder{Plate: "浙A12345", PlateColor: "blue", VIN: "LJ8ECM2B3R1063348", MileageKm: km(5), Fault: "更换机油机滤保养",
		ConfirmVINCheckDigit: &Confirmation{Reason: "行驶证上的VIN即如此"}})
	if err != nil || len(o.Warnings) != 1 || o.Warnings[0].Code != "check_digit" || o.VINCheckDigitReason != "行驶证上的VIN即如此" {
		t.Fatalf("confirmed check digit: %+v, %v", o, err)
	}
	f.s.AddItems(o.ID, Item{Name: "保养", Hours: "0.5"})
	st, err = f.s.Settle(o.ID, SettleRequest{CostListCode: "HS-4"})
	if err != nil || len(st.Warnings) != 1 || st.Warnings[0].Code != "check_digit" {
		t.Fatalf("settle confirmed check digit: %+v, %v", st.Warnings, err)
	}
	_, p := decode(t, outbox(t, f.db)[3])
	if p.Meta.VINCheckDigitReason != "行驶证上的VIN即如此" || p.Record.Basic.VIN != "LJ8ECM2B3R1063348" {
		t.Fatalf("meta %+v", p.Meta)
	}
}

func TestScanAttachment(t *testing.T) {
	f := newFixture(t, nil)
	typed, err := f.s.Create(NewOrder{Plate: "浙A10001", PlateColor: "blue", VIN: exampleVIN, Bay: "bay2"})
	if err != nil {
		t.Fatal(err)
	}
	if typed.VINSource != VINTyped {
		t.Fatalf("typed VIN source %q", typed.VINSource)
	}
	a, _ := f.s.Create(NewOrder{Plate: "浙A20002", PlateColor: "yellow", Bay: "bay1"})
	b, _ := f.s.Create(NewOrder{Plate: "浙A30003", PlateColor: "green", Bay: "bay1"})

	// By VIN, wherever the car stands: the typed VIN is confirmed by the car.
	res, err := f.s.AddScan("bay1", "", exampleScan(exampleVIN))
	if err != nil || res.Order == nil || res.Order.ID != typed.ID || res.Order.VINSource != VINOBD || res.Order.VINMismatch {
		t.Fatalf("attach by VIN: %+v, %v", res, err)
	}
	// No VIN match, two open orders on the bay: ambiguous, the scan is kept.
	_, err = f.s.AddScan("bay1", "", exampleScan("LSVNV2187E2100001"))
	var amb *AmbiguousError
	if !errors.As(err, &amb) || amb.Reason != "bay" || len(amb.Candidates) != 2 || amb.Candidates[0].ID != a.ID || amb.Candidates[1].ID != b.ID {
		t.Fatalf("ambiguous: %v", err)
	}
	if !strings.Contains(err.Error(), a.ID) || !strings.Contains(err.Error(), b.ID) {
		t.Fatalf("the message must list the candidates: %v", err)
	}
	if _, err := f.s.Scan(amb.ScanID); err != nil {
		t.Fatalf("ambiguous scan not kept: %v", err)
	}
	// The technician picks b.
	got, err := f.s.AttachStoredScan(b.ID, amb.ScanID, nil)
	if err != nil || got.VIN != "LSVNV2187E2100001" || got.VINSource != VINOBD || len(got.Scans) != 1 || len(got.Scans[0].DTCs) != 3 {
		t.Fatalf("AttachStoredScan: %+v, %v", got, err)
	}
	if _, err := f.s.AttachStoredScan(a.ID, amb.ScanID, nil); err == nil {
		t.Fatal("a scan attached to one order must not attach to another")
	}
	// Now a is the only open order on bay1 without that VIN; a scan with b's VIN goes to b.
	res, err = f.s.AddScan("bay1", "after clear", exampleScan("LSVNV2187E2100001"))
	if err != nil || res.Order == nil || res.Order.ID != b.ID {
		t.Fatalf("attach by VIN after choice: %+v, %v", res, err)
	}
	// A scan with another car's VIN on the bay: b's VIN was confirmed by its car, so only a
	// (typed VIN, maybe a typo) is a candidate — but its VIN differs: the scan is kept, not
	// attached, and the order shows the conflict with both VINs.
	if _, err := f.s.Update(a.ID, Patch{VIN: strptr("LFV2A21K0E3000001")}); err != nil {
		t.Fatal(err)
	}
	res, err = f.s.AddScan("bay1", "", exampleScan("LGBH52E08EY000001"))
	var mm *VINMismatchError
	if !errors.As(err, &mm) || res.Order != nil || res.ScanID == "" || mm.ScanID != res.ScanID || mm.OrderID != a.ID ||
		mm.OrderVIN != "LFV2A21K0E3000001" || mm.CarVIN != "LGBH52E08EY000001" {
		t.Fatalf("mismatch: %+v, %v", res, err)
	}
	got, _ = f.s.Get(a.ID)
	if c := got.VINConflict; c == nil || c.ScanID != res.ScanID || c.OrderVIN != "LFV2A21K0E3000001" || c.CarVIN != "LGBH52E08EY000001" || len(got.Scans) != 0 || got.VINRead != "" {
		t.Fatalf("conflict on the order: %+v", got)
	}
	f.ev.mu.Lock()
	notices := strings.Join(f.ev.all, "\n")
	f.ev.mu.Unlock()
	if !strings.Contains(notices, `workorder.vin_conflict bay1 {"car_vin":"LGBH52E08EY000001"`) {
		t.Fatalf("no vin_conflict notice: %s", notices)
	}
	conflictScan := res.ScanID
	if _, err := f.s.AttachStoredScan(a.ID, conflictScan, nil); !errors.As(err, &mm) {
		t.Fatalf("explicit attach without confirmation: %v", err)
	}
	var ie *InputError
	if _, err := f.s.AttachStoredScan(a.ID, conflictScan, &Confirmation{}); !errors.As(err, &ie) || ie.Field != "confirm_vin_mismatch.reason" {
		t.Fatalf("confirmation without a reason: %v", err)
	}
	// Correcting the VIN to what the car says, then attaching, clears the conflict.
	if _, err = f.s.Update(a.ID, Patch{VIN: strptr("LGBH52E08EY000001")}); err != nil {
		t.Fatal(err)
	}
	got, err = f.s.AttachStoredScan(a.ID, conflictScan, nil)
	if err != nil || got.VINMismatch || got.VINSource != VINOBD || got.VINConflict != nil || len(got.Scans) != 1 {
		t.Fatalf("corrected VIN: %+v, %v", got, err)
	}
	// Once the typed VIN is confirmed against a car, that car's next scans attach without
	// asking again, wherever it stands.
	c, err := f.s.Create(NewOrder{Plate: "浙A40004", PlateColor: "blue", VIN: "LFV2A21K0E3000001"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AttachScanTo(c.ID, "", "", exampleScan("LVSHCAMB1CE000009"), nil); !errors.As(err, &mm) || mm.ScanID != "" {
		t.Fatalf("report of the other car: %v", err)
	}
	if _, err := f.s.AttachScanTo(c.ID, "", "", exampleScan("LVSHCAMB1CE000009"), &Confirmation{Reason: "更换过发动机电脑"}); err != nil {
		t.Fatal(err)
	}
	r2, err := f.s.AddScan("", "", exampleScan("LVSHCAMB1CE000009"))
	if err != nil || r2.Order == nil || r2.Order.ID != c.ID || r2.Order.VINSource != VINTypedConfirmed || len(r2.Order.Scans) != 2 {
		t.Fatalf("second scan of the confirmed car: %+v, %v", r2.Order, err)
	}
	// Typing another VIN over the car's answer needs a confirmation too.
	if _, err := f.s.Update(a.ID, Patch{VIN: strptr("LFV2A21K0E3000001")}); !errors.As(err, &mm) || mm.CarVIN != "LGBH52E08EY000001" {
		t.Fatalf("VIN typed against the car's: %v", err)
	}
	// No open order on the bay and no VIN match: kept unattached.
	res, err = f.s.AddScan("bay2", "", exampleScan("LVSHCAMB1CE000001"))
	if err != nil || res.Order != nil || res.ScanID == "" {
		t.Fatalf("unattached: %+v, %v", res, err)
	}
	free, err := f.s.ListScans("", true, 0)
	if err != nil || len(free) != 1 || free[0].ID != res.ScanID || free[0].Bay != "bay2" || free[0].VIN != "LVSHCAMB1CE000001" {
		t.Fatalf("unattached scans: %+v, %v", free, err)
	}
	all, _ := f.s.ListScans("bay1", false, 2)
	if len(all) != 2 || all[0].ID != "SC000004" || all[0].Order != a.ID {
		t.Fatalf("bay1 scans, newest first: %+v", all)
	}
}

func strptr(s string) *string { return &s }

// imPayload is a valid M-station payload (gateway/imrecord's golden two-speed-idle record):
// these tests are about the transaction around it, not its content, which gateway/imrecord
// builds from the self-test.
func imPayload(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../imrecord/testdata/im_dual_idle.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestRevisionIsANewRecordUnderTheSameCostListCode(t *testing.T) {
	f := newFixture(t, nil)
	st, err := settleSimple(t, f, exampleVIN, 86412, "HS-9")
	if err != nil {
		t.Fatal(err)
	}
	id := st.Order.ID
	if _, err := f.s.Update(id, Patch{MileageKm: km(1)}); !errors.Is(err, ErrSettled) {
		t.Fatalf("silent edit of a settled order: %v", err)
	}
	if _, err := f.s.Revise(id, RevisionRequest{Patch: Patch{MileageKm: km(86421)}}); err == nil || !strings.Contains(err.Error(), "reason") {
		t.Fatalf("revision without a reason: %v", err)
	}
	if _, err := f.s.Revise(id, RevisionRequest{Reason: "nothing"}); err == nil {
		t.Fatal("a revision that changes nothing was accepted")
	}
	// An invalid revision is refused and changes nothing.
	var ve *ValidationError
	if _, err := f.s.Revise(id, RevisionRequest{Reason: "typo", Patch: Patch{Items: &[]Item{{Name: "保养", Hours: "30"}}, Fault: strptr("")}}); !errors.As(err, &ve) || ve.Problems[0].Field != "fault_description" {
		t.Fatalf("invalid revision: %v", err)
	}
	rv, err := f.s.Revise(id, RevisionRequest{Reason: "里程录入错误", Patch: Patch{MileageKm: km(86421)}})
	if err != nil {
		t.Fatal(err)
	}
	if rv.Order.Revision != 2 || len(rv.Order.Revisions) != 2 || rv.Order.Revisions[1].Reason != "里程录入错误" || rv.Order.Revisions[1].Changed[0] != "mileage_km" {
		t.Fatalf("revision %+v", rv.Order)
	}
	rs := outbox(t, f.db)
	if len(rs) != 2 {
		t.Fatalf("outbox %d records, want 2", len(rs))
	}
	_, p1 := decode(t, rs[0])
	_, p2 := decode(t, rs[1])
	if p1.Meta.Revision != 1 || p2.Meta.Revision != 2 || p2.Meta.CostListCode != "HS-9" || p2.Record.Basic.CostListNo != "HS-9" ||
		p1.Record.Basic.MileageKm != "86412" || p2.Record.Basic.MileageKm != "86421" || p2.Meta.Reason != "里程录入错误" {
		t.Fatalf("revisions:\n%+v\n%+v", p1, p2)
	}
	recs, err := f.s.Records(id)
	if err != nil || len(recs) != 2 || recs[0].Record.Basic.MileageKm != "86412" {
		t.Fatalf("history %+v, %v", recs, err)
	}
	open, _ := f.s.Create(NewOrder{Plate: "浙A10001", PlateColor: "blue"})
	if _, err := f.s.Revise(open.ID, RevisionRequest{Reason: "x", Patch: Patch{MileageKm: km(1)}}); !errors.Is(err, ErrNotSettled) {
		t.Fatalf("revise an open order: %v", err)
	}
}

func TestIMRecordAppendedInTheSameTransaction(t *testing.T) {
	var hookErr error
	calls := 0
	f := newFixture(t, func(o *Options) {
		o.IM = func(tx *buffer.Tx, ord *Order, rec *wire.EHRRecord, rev int, reason string) (string, []byte, error) {
			calls++
			if rev != 1 || reason != "" {
				return "", nil, fmt.Errorf("revision %d %q on a first settlement", rev, reason)
			}
			if hookErr != nil {
				return "", nil, hookErr
			}
			if ord.TestNo == "" || rec.Basic.VIN != exampleVIN {
				return "", nil, errors.New("the hook got the wrong order")
			}
			return wire.SchemaIM, imPayload(t), nil
		}
	})
	o, _ := f.s.Create(exampleOrder())
	if _, err := f.s.AddScan("bay1", "", exampleScan(exampleVIN)); err != nil {
		t.Fatal(err)
	}
	addExampleWork(t, f.s, o.ID)
	hookErr = errors.New("self-test unreadable")
	if _, err := f.s.Settle(o.ID, SettleRequest{CostListCode: "HS-1"}); !errors.Is(err, hookErr) {
		t.Fatalf("Settle with a failing IM hook: %v", err)
	}
	if rs := outbox(t, f.db); len(rs) != 0 {
		t.Fatalf("outbox after a failed IM hook: %+v", rs)
	}
	hookErr = nil
	st, err := f.s.Settle(o.ID, SettleRequest{CostListCode: "HS-1"})
	if err != nil {
		t.Fatal(err)
	}
	rs := outbox(t, f.db)
	if len(rs) != 2 || rs[0].Kind != "ehr" || rs[1].Kind != "im" || rs[1].Seq != st.IMSeq || !strings.HasSuffix(rs[1].Topic, "/im") {
		t.Fatalf("outbox %+v", rs)
	}
	env, _ := decode(t, rs[1])
	if env.Schema != "im/1" || !strings.Contains(string(env.Payload), "330106202611200123") {
		t.Fatalf("im envelope %+v", env)
	}
	// Orders that are not emission repairs never call the hook.
	n := calls
	if _, err := settleSimple(t, f, "LSVNV2187E2100001", 5, "HS-2"); err != nil {
		t.Fatal(err)
	}
	if calls != n {
		t.Fatal("IM hook called for an ordinary repair")
	}
}

func TestOwnerDataNeverLeavesTheStore(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.IM = func(tx *buffer.Tx, ord *Order, rec *wire.EHRRecord, rev int, reason string) (string, []byte, error) {
			return wire.SchemaIM, imPayload(t), nil
		}
	})
	o, err := f.s.Create(exampleOrder())
	if err != nil {
		t.Fatal(err)
	}
	if o.Owner == nil || o.Owner.Name != ownerName || o.Owner.Phone != ownerPhone {
		t.Fatalf("owner not stored: %+v", o.Owner)
	}
	if _, err := f.s.AddScan("bay1", "", exampleScan(exampleVIN)); err != nil {
		t.Fatal(err)
	}
	addExampleWork(t, f.s, o.ID)
	f.clock.set("20240313")
	if _, err := f.s.Settle(o.ID, SettleRequest{CostListCode: "HS-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Revise(o.ID, RevisionRequest{Reason: "更正", Patch: Patch{MileageKm: km(86500), OwnerPhone: strptr("13905710042")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Update(o.ID, Patch{OwnerName: strptr(ownerName), MileageKm: km(1)}); !errors.Is(err, ErrSettled) {
		t.Fatalf("a settled order took a record change through Update: %v", err)
	}
	// The owner's data is not in the record: the shop may still correct it, without a revision.
	upd, err := f.s.Update(o.ID, Patch{OwnerPhone: strptr("13905710043")})
	if err != nil || upd.Owner.Phone != "13905710043" || upd.Revision != 2 {
		t.Fatalf("owner-only update of a settled order: %+v, %v", upd, err)
	}
	if _, err := f.s.Update(o.ID, Patch{OwnerPhone: strptr(ownerPhone)}); err != nil {
		t.Fatal(err)
	}

	var published []string
	for _, r := range outbox(t, f.db) {
		published = append(published, r.Topic, string(r.Payload), r.ID)
	}
	if len(published) != 12 {
		t.Fatalf("expected 4 records (ehr and im, twice), got %d strings", len(published))
	}
	recs, _ := f.s.Records(o.ID)
	for _, r := range recs {
		b, _ := json.Marshal(r)
		published = append(published, string(b))
	}
	f.ev.mu.Lock()
	published = append(published, f.ev.all...)
	f.ev.mu.Unlock()
	if f.logs.Len() == 0 {
		t.Fatal("no log lines to check")
	}
	for _, line := range strings.Split(f.logs.String(), "\n") {
		published = append(published, line)
	}
	list, _, _ := f.s.List(Filter{})
	b, _ := json.Marshal(list)
	published = append(published, string(b))
	b, _ = json.Marshal(o.View(false))
	published = append(published, string(b))
	for _, s := range published {
		for _, secret := range []string{ownerName, ownerPhone} {
			if strings.Contains(s, secret) {
				t.Errorf("owner data %q leaked into %s", secret, s)
			}
		}
	}
	// The shop can still read it on the order itself.
	got, _ := f.s.Get(o.ID)
	if got.View(true).Owner == nil || got.View(true).Owner.Phone != ownerPhone {
		t.Fatal("owner lost from the stored order")
	}
}

func TestListFiltersAndPages(t *testing.T) {
	f := newFixture(t, nil)
	for i := 0; i < 5; i++ {
		bay := "bay1"
		if i%2 == 1 {
			bay = "bay2"
		}
		if _, err := f.s.Create(NewOrder{Plate: "浙A1234" + string(rune('1'+i)), PlateColor: "blue", Bay: bay}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := settleSimple(t, f, exampleVIN, 1, "HS-1"); err != nil {
		t.Fatal(err)
	}
	all, next, err := f.s.List(Filter{})
	if err != nil || len(all) != 6 || next != "" || all[0].ID != "WO000006" {
		t.Fatalf("List = %d orders, next %q, %v", len(all), next, err)
	}
	page, next, _ := f.s.List(Filter{Limit: 4})
	if len(page) != 4 || next != "WO000003" {
		t.Fatalf("page 1: %d, next %q", len(page), next)
	}
	page, next, _ = f.s.List(Filter{Limit: 4, After: next})
	if len(page) != 2 || page[0].ID != "WO000002" || next != "" {
		t.Fatalf("page 2: %+v next %q", page, next)
	}
	for name, tc := range map[string]struct {
		f    Filter
		want int
	}{
		"bay2":     {Filter{Bay: "bay2"}, 2},
		"settled":  {Filter{Status: Settled}, 1},
		"open":     {Filter{Status: Open}, 5},
		"vin":      {Filter{VIN: strings.ToLower(exampleVIN)}, 1},
		"plate":    {Filter{Plate: "浙a·12343"}, 1},
		"costlist": {Filter{CostListCode: "HS-1"}, 1},
		"until":    {Filter{Until: f.clock.now().Add(-time.Hour)}, 0},
	} {
		got, _, err := f.s.List(tc.f)
		if err != nil || len(got) != tc.want {
			t.Errorf("%s: %d orders, want %d (%v)", name, len(got), tc.want, err)
		}
	}
}

func TestInputErrorsNameTheField(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		in    NewOrder
		field string
	}{
		{NewOrder{PlateColor: "blue"}, "plate"},
		{NewOrder{Plate: "浙A10001"}, "plate_color"},
		{NewOrder{Plate: "浙A10001", PlateColor: "purple"}, "plate_color"},
		{NewOrder{Plate: "浙A10001", PlateColor: "blue", VIN: "LJ8ECM2B2R10633"}, "vin"},
		{NewOrder{Plate: "浙A10001", PlateColor: "blue", VIN: "LJ8ECM2B2R1O63348"}, "vin"},
		{NewOrder{Plate: "浙A10001", PlateColor: "blue", MileageKm: km(-5)}, "mileage_km"},
		{NewOrder{Plate: "浙A10001", PlateColor: "blue", Bay: "bay9"}, "bay"},
		{NewOrder{Plate: "浙A10001", PlateColor: "blue", RepairDate: "20990101"}, "repair_date"},
		{NewOrder{Plate: "浙A10001", PlateColor: "blue", RepairDate: "2024-03-11"}, "repair_date"},
		{NewOrder{Plate: "浙A10001", PlateColor: "blue", OwnerPhone: "call me"}, "owner_phone"},
		{NewOrder{Plate: "浙A10001", PlateColor: "blue", Items: []Item{{Name: "x", Hours: "1.25"}}}, "items[0].hours"},
		{NewOrder{Plate: "浙A10001", PlateColor: "blue", Parts: []Part{{Name: "x", Quantity: "0"}}}, "parts[0].quantity"},
		{NewOrder{Plate: "浙A10001", PlateColor: "blue", Parts: []Part{{Name: "", Quantity: "1"}}}, "parts[0].name"},
	} {
		_, err := f.s.Create(tc.in)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != tc.field {
			t.Errorf("Create(%+v) = %v, want an error on %s", tc.in, err, tc.field)
		}
	}
	if all, _, _ := f.s.List(Filter{}); len(all) != 0 {
		t.Fatalf("refused orders were stored: %+v", all)
	}
	if _, err := f.s.Get("WO999999"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
}

func TestClaimRequestRefusesReplays(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.s.ClaimRequest("clear-dtcs", "r-1"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.ClaimRequest("clear-dtcs", "r-1"); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("replay: %v", err)
	}
	if err := f.s.ClaimRequest("clear-dtcs", ""); err == nil {
		t.Fatal("empty request id accepted")
	}
	// Durable: a restart does not forget.
	f.db.Close()
	db, err := buffer.Open(f.path, buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := New(db, Options{}).ClaimRequest("clear-dtcs", "r-1"); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("replay after reopen: %v", err)
	}
}

func TestScanReportInTx(t *testing.T) {
	f := newFixture(t, nil)
	res, err := f.s.AddScan("bay1", "", exampleScan(exampleVIN))
	if err != nil {
		t.Fatal(err)
	}
	err = f.db.View(func(tx *buffer.Tx) error {
		rep, err := ScanReportInTx(tx, res.ScanID)
		if err != nil {
			return err
		}
		if rep.VIN != exampleVIN || len(rep.DTCs.Stored) != 2 || rep.DTCs.Stored[0].Description != "催化器效率低于阈值(第1排)" {
			t.Errorf("report %+v", rep)
		}
		if _, err := ScanReportInTx(tx, "SC999999"); !errors.Is(err, ErrScanMissing) {
			t.Errorf("missing scan: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// An order stored before plates and VINs were checked at entry — a plate "HELLO", a Chinese
// VIN with a wrong check digit, a scan of another car attached with only a warning — is not
// published as it is: settlement refuses it until the plate is corrected and a person confirms
// the VIN with a reason.
func TestOrderFromBeforeTheChecksIsRefusedAtSettlement(t *testing.T) {
	f := newFixture(t, nil)
	o, err := f.s.Create(NewOrder{Plate: "浙A12345", PlateColor: "blue", MileageKm: km(1000), Fault: "更换机油机滤保养",
		Items: []Item{{Name: "保养", Hours: "0.5"}}})
	if err != nil {
		t.Fatal(err)
	}
	err = f.db.Update(func(tx *buffer.Tx) error {
		old, err := getOrder(tx, o.ID)
		if err != nil {
			return err
		}
		old.Plate, old.VIN, old.VINSource, old.VINRead, old.VINMismatch = "HELLO", "LJ8ECM2B3R1063348", VINTyped, "LK6ADCE15PB405127", true
		return putOrder(tx, old)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.s.Settle(o.ID, SettleRequest{CostListCode: "HS-OLD-1"})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("settle = %v, want a validation error", err)
	}
	codes := problemCodes(ve.Problems)
	for _, want := range []string{"plate:plate_format", "vin:check_digit", "vin:vin_mismatch"} {
		if !slices.Contains(codes, want) {
			t.Errorf("problems %v lack %s", codes, want)
		}
	}
	if n := len(outbox(t, f.db)); n != 0 {
		t.Fatalf("outbox has %d records", n)
	}
	if _, err := f.s.Update(o.ID, Patch{Plate: strptr("浙A·12345"), VIN: strptr("LJ8ECM2B3R1063348"),
		ConfirmVINCheckDigit: &Confirmation{Reason: "与行驶证核对无误"}, ConfirmVINMismatch: &Confirmation{Reason: "更换过发动机电脑"}}); err != nil {
		t.Fatal(err)
	}
	st, err := f.s.Settle(o.ID, SettleRequest{CostListCode: "HS-OLD-1"})
	if err != nil {
		t.Fatal(err)
	}
	_, p := decode(t, outbox(t, f.db)[0])
	if p.Record.Basic.Plate != "浙A12345" || p.Meta.VINSource != VINTypedConfirmed || p.Meta.VINReason != "更换过发动机电脑" ||
		p.Meta.VINCheckDigitReason != "与行驶证核对无误" || p.Meta.CarVIN != "LK6ADCE15PB405127" || len(st.Warnings) != 2 {
		t.Fatalf("record %+v, warnings %+v", p, st.Warnings)
	}
}

// The failed inspection's end keeps its time when given, in the platforms' print form or
// compact; a bad value names the field.
func TestFailedTestEndKeepsItsTime(t *testing.T) {
	for in, want := range map[string]string{"2026-11-20 15:42:10": "20261120154210", "20261120154210": "20261120154210", "20261120": "20261120", " ": ""} {
		got, err := normEndTime("failed_test_end", in)
		if err != nil || got != want {
			t.Errorf("normEndTime(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"2026-11-20", "20261320154210", "2026-11-20T15:42:10"} {
		if _, err := normEndTime("failed_test_end", in); err == nil || !strings.Contains(err.Error(), "failed_test_end") {
			t.Errorf("normEndTime(%q) = %v, want an error naming failed_test_end", in, err)
		}
	}
	end, timed, err := FailedEnd("20261120154210", time.UTC)
	if err != nil || !timed || end.Hour() != 15 {
		t.Errorf("FailedEnd = %v %v %v", end, timed, err)
	}
}

// FuzzNormEndTime: any failed_test_end either normalises to a day or a moment that parses
// back, or is refused naming the field; it never panics.
func FuzzNormEndTime(f *testing.F) {
	for _, s := range []string{"20261120", "20261120154210", "2026-11-20 15:42:10", "", "2026-13-40 25:61:61", "２０２６１１２０"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := normEndTime("failed_test_end", s)
		if err != nil {
			if !strings.Contains(err.Error(), "failed_test_end") {
				t.Fatalf("error %q does not name the field", err)
			}
			return
		}
		if got == "" {
			return
		}
		if _, _, err := FailedEnd(got, time.UTC); err != nil {
			t.Fatalf("%q normalised to %q, which does not parse: %v", s, got, err)
		}
	})
}
