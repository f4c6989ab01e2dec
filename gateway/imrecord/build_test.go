package imrecord_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/emission/emissiontest"
	"github.com/obdgw/obdgw/gateway/imrecord"
	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/obd"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

const imVIN = "LSVAU2180N2183294"

// imClock moves the synctest epoch (2000-01-01 UTC) to the morning after the repair started.
func imClock() func() time.Time {
	off := time.Date(2026, 11, 21, 9, 30, 0, 0, wire.IMZone).Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	return func() time.Time { return time.Now().Add(off) }
}

// imIdleResult runs a short two-speed idle self-test on a scripted analyzer.
func imIdleResult(t *testing.T) *emission.Result {
	var res *emission.Result
	synctest.Test(t, func(t *testing.T) {
		op := &emissiontest.Operator{Speeds: emissiontest.IdleSpeeds()}
		gas := map[bool]emissiontest.Gas{
			true:  {HC: 30, CO: 0.12, CO2: 14.6, O2: 0.5, Lambda: 1.01},
			false: {HC: 36, CO: 0.20, CO2: 14.4, O2: 0.6, Lambda: 1.01},
		}
		r := &emissiontest.Rig{Name: "/dev/ttyUSB1@9600 Nanhua NHA-506", Script: func(n int) (rig.Reading, error) {
			ph, _, _ := op.Phase()
			g := gas[!strings.HasPrefix(ph, "idle")]
			if n%2 == 1 {
				g.CO += 0.01
			}
			return g.Reading(op.RPM(), 88), nil
		}}
		l := emission.DefaultLimits()
		// Short windows keep the golden file readable; the procedure is the same.
		l.TwoSpeedIdle.Precondition, l.TwoSpeedIdle.Stabilise, l.TwoSpeedIdle.Sample = 3*time.Second, 2*time.Second, 4*time.Second
		var err error
		res, err = emission.RunTest(context.Background(), emission.Test{
			Method: emission.TwoSpeedIdle, Rig: r, Limits: l, OnProgress: op.OnProgress, Now: imClock(),
			Vehicle: emission.Vehicle{VIN: imVIN, RatedRPM: 6000},
		})
		if err != nil || res.Verdict != emission.Pass {
			t.Fatalf("self-test %v %v", res, err)
		}
	})
	return res
}

func imAccelResult(t *testing.T, period, idle, accel time.Duration, purge int) *emission.Result {
	var res *emission.Result
	synctest.Test(t, func(t *testing.T) {
		op := &emissiontest.Operator{Speeds: emissiontest.AccelSpeeds()}
		r := &emissiontest.Rig{Name: "/dev/ttyUSB2@9600 Foshan FTY-100", Script: func(n int) (rig.Reading, error) {
			ph, tick, acc := op.Phase()
			n100 := 2.0
			if ph == "accelerate" && tick == 0 {
				n100 = 25 + float64(acc)
			}
			return rig.Reading{OpacityPct: rig.F(n100), RPM: rig.F(op.RPM())}, nil
		}}
		l := emission.DefaultLimits()
		l.FreeAcceleration.SamplePeriod, l.FreeAcceleration.IdleBetween, l.FreeAcceleration.Accelerate = period, idle, accel
		l.FreeAcceleration.PurgeAccelerations = purge
		var err error
		res, err = emission.RunTest(context.Background(), emission.Test{
			Method: emission.FreeAcceleration, Rig: r, Limits: l, OnProgress: op.OnProgress, Now: imClock(),
			Vehicle: emission.Vehicle{VIN: "LGWEF4A59NF123456", RatedRPM: 3200},
		})
		if err != nil || !res.Verdict.Judged() {
			t.Fatalf("self-test %v %v", res, err)
		}
	})
	return res
}

func imInput(st *emission.Result) imrecord.Input {
	return imrecord.Input{
		WorkOrder: "WO-20261121-0007",
		TestNo:    "330106202611200123", StationCode: "3301060001",
		FailedEnd: time.Date(2026, 11, 20, 15, 42, 10, 0, wire.IMZone),
		Repair: wire.EHRRecord{
			Basic: wire.EHRBasicInfo{Plate: "浙A12345", Company: "杭州示例汽车维修有限公司", VIN: imVIN, RepairDate: "20261121",
				MileageKm: "86512", SettleDate: "20261121", Fault: "尾气治理：怠速CO超标，三元催化器失效 <P0420>", CostListNo: "JS20261121007"},
			Parts:    []wire.EHRPart{{Name: "三元催化器", Code: "06A131701", Quantity: "1"}, {Name: "前氧传感器", Code: "0258006537", Quantity: "1"}},
			Projects: []wire.EHRProject{{Name: "更换三元催化器", Hours: "1.5"}, {Name: "尾气检测", Hours: "0.5"}},
		},
		LicenseCode: "02", FuelType: "A",
		Diagnosis: emission.OBDInput{CommunicationOK: true, MIL: true, DTCs: []string{"P0420"}, DTCText: map[string]string{"P0420": "催化器效率低于阈值（第1排）"},
			Incomplete: []string{obd.MonCatalyst}, VINRead: imVIN, VINExpected: imVIN,
			Calibrations: []emission.Calibration{{ECU: "7E8", CALID: "10190196", CVN: "000087DE"}}},
		OBDCheck: emission.CheckOBD(emission.OBDInput{CommunicationOK: true, VINRead: imVIN, VINExpected: imVIN,
			Calibrations: []emission.Calibration{{ECU: "7E8", CALID: "10190196", CVN: "000087DE"}}, ModelRequirements: 29, OdometerKm: 86512}),
		SelfTest: st, RigModel: "NHA-506", RigSerial: "NH5060231",
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	if *updateGolden {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("%s differs from the encoding (run with -update after checking the change):\n%s", path, firstDiff(pretty.String(), string(want)))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return "line " + strconv.Itoa(i+1) + ":\n got  " + al[i] + "\n want " + bl[i]
		}
	}
	return "lengths differ"
}

func TestIMRecordGoldenTwoSpeedIdle(t *testing.T) {
	p, err := imrecord.Build(imInput(imIdleResult(t)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "im_dual_idle.golden.json", b)
	again, _ := p.Encode()
	if !bytes.Equal(b, again) {
		t.Error("two encodings of one payload differ")
	}
	// Spot checks that do not depend on the golden file being right.
	d := p.Record.SelfTest.DualIdle
	if p.Record.SelfTest.Method != "1" || d.HighIdleCOResult != "0.13" || d.HighIdleCOLimit != "0.30" || d.HighIdleCOIf != "1" ||
		d.IdleHCLimit != "80" || d.LambdaLower != "0.95" || d.LambdaSource != "analyzer" || p.Record.SelfTest.LimitType != "限值a" {
		t.Errorf("dual idle section %+v", *d)
	}
	if p.Record.SelfTest.TestDate != "2026-11-21 09:30:00" || p.Record.FailedEnd != "2026-11-20 15:42:10" {
		t.Errorf("dates %q %q", p.Record.SelfTest.TestDate, p.Record.FailedEnd)
	}
	if p.Record.Diagnosis.FaultLight != "1" || p.Record.Diagnosis.ErrorCodes[0].Info == "" || p.Record.OBDCheck.Result != "1" {
		t.Errorf("diagnosis %+v check %+v", p.Record.Diagnosis, p.Record.OBDCheck)
	}
	if !bytes.Contains(b, []byte(`"faultdescription":"尾气治理：怠速CO超标，三元催化器失效 <P0420>"`)) {
		t.Error("fault description escaped or changed")
	}
	// A receiver accepts it inside an envelope.
	env, err := wire.Marshal(wire.Envelope{ID: "gw-7-12", Kind: wire.KindIM, Schema: wire.SchemaIM, Gateway: "gw-7", CompanyCode: "330106000099901",
		CreatedAt: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), Payload: b})
	if err != nil {
		t.Fatal(err)
	}
	topic := wire.Topic{Province: "33", CompanyCode: "330106000099901", Gateway: "gw-7"}.Record(wire.KindIM)
	if _, _, err := wire.ValidateMessage(topic, env); err != nil {
		t.Fatalf("receiver rejects the record: %v", err)
	}
}

func TestIMRecordGoldenFreeAcceleration(t *testing.T) {
	in := imInput(imAccelResult(t, time.Second, 2*time.Second, 2*time.Second, 1))
	in.Repair.Basic.VIN, in.Diagnosis.VINRead, in.Diagnosis.VINExpected = "LGWEF4A59NF123456", "LGWEF4A59NF123456", "LGWEF4A59NF123456"
	in.OBDCheck = emission.CheckOBD(emission.OBDInput{NoOBD: true})
	in.FuelType, in.RigModel, in.RigSerial = "B", "FTY-100", "FTY1000877"
	p, err := imrecord.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.Encode()
	golden(t, "im_free_acceleration.golden.json", b)
	f := p.Record.SelfTest.FreeAccel
	if p.Record.SelfTest.Method != "5" || f.KFromN != "1" || f.One == "" || f.Three == "" || f.Limit != "1.20" || f.PathLength != "0.430" {
		t.Errorf("free acceleration section %+v", *f)
	}
	if p.Record.OBDCheck.Result != "3" {
		t.Errorf("no-OBD car: O_RESULT %q", p.Record.OBDCheck.Result)
	}
	if err := wire.CheckIMPayload(wire.SchemaIM, b); err != nil {
		t.Fatal(err)
	}
}

// A free-acceleration record at the default 200 ms sampling must fit the envelope limit.
func TestIMRecordFitsTheEnvelope(t *testing.T) {
	l := emission.DefaultLimits().FreeAcceleration
	p, err := imrecord.Build(imInput(imAccelResult(t, l.SamplePeriod, l.IdleBetween, l.Accelerate, l.PurgeAccelerations)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.Encode()
	t.Logf("free-acceleration record at %v sampling: %d bytes", l.SamplePeriod, len(b))
	if len(b) > wire.MaxEnvelopeBytes*3/4 {
		t.Errorf("%d bytes, more than three quarters of the %d-byte envelope limit", len(b), wire.MaxEnvelopeBytes)
	}
}

func TestBuildNamesTheField(t *testing.T) {
	st := imIdleResult(t)
	for _, c := range []struct {
		field string
		edit  func(*imrecord.Input)
	}{
		{"record.TEST_NO", func(in *imrecord.Input) { in.TestNo = " " }},
		{"record.VEHICLE.VIN", func(in *imrecord.Input) { in.Repair.Basic.VIN = "LSVAU2180N218329O" }},
		{"record.VEHICLE.LICENSE", func(in *imrecord.Input) { in.Repair.Basic.Plate = "" }},
		{"record.REPAIR.faultdescription", func(in *imrecord.Input) { in.Repair.Basic.Fault = "更换三元催化器" }},
		{"record.REPAIR.repairdate", func(in *imrecord.Input) { in.Repair.Basic.RepairDate = "2026-11-21" }},
		{"record.REPAIR.repairdate", func(in *imrecord.Input) { in.FailedEnd = time.Date(2026, 11, 22, 8, 0, 0, 0, wire.IMZone) }},
		{"record.REPAIR.settledate", func(in *imrecord.Input) { in.Repair.Basic.SettleDate = "20261120" }},
		{"record.REPAIR.repairprojectlist", func(in *imrecord.Input) { in.Repair.Projects = nil }},
		{"record.REPAIR.vehiclepartslist[1].partsquantity", func(in *imrecord.Input) { in.Repair.Parts[1].Quantity = "one" }},
		{"record.SELF_TEST.TEST_DATE", func(in *imrecord.Input) {
			in.Repair.Basic.RepairDate, in.Repair.Basic.SettleDate = "20261122", "20261122"
		}},
		{"record.SELF_TEST.RIG_SERIAL", func(in *imrecord.Input) { in.RigSerial = "" }},
		{"record.OBD_CHECK.VIN", func(in *imrecord.Input) {
			in.OBDCheck = emission.CheckOBD(emission.OBDInput{CommunicationOK: true, VINRead: "LSVAU2180N2183295", VINExpected: imVIN})
		}},
		{"meta.reason", func(in *imrecord.Input) { in.Revision = 2 }},
		{"meta.workorder", func(in *imrecord.Input) { in.WorkOrder = "" }},
	} {
		in := imInput(st)
		in.Repair.Parts = append([]wire.EHRPart(nil), in.Repair.Parts...)
		c.edit(&in)
		_, err := imrecord.Build(in)
		var fe *wire.FieldError
		if err == nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), "field "+c.field+":") {
			t.Errorf("%s: got %v", c.field, err)
		}
	}
}

func TestBuildNeedsAJudgedSelfTest(t *testing.T) {
	in := imInput(nil)
	if _, err := imrecord.Build(in); err == nil || !strings.Contains(err.Error(), "self_test: missing") {
		t.Errorf("no self-test: %v", err)
	}
	in.SelfTest = &emission.Result{Method: emission.TwoSpeedIdle, Verdict: emission.Refused,
		Reasons: []emission.Reason{{Code: "rig_busy", Text: emission.Text{EN: "the instrument stayed busy"}}}}
	if _, err := imrecord.Build(in); err == nil || !strings.Contains(err.Error(), "refused: the instrument stayed busy") {
		t.Errorf("refused self-test: %v", err)
	}
}

func TestCheckIMPayloadRejects(t *testing.T) {
	p, err := imrecord.Build(imInput(imIdleResult(t)))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := p.Encode()
	if err := wire.CheckIMPayload("im/2", good); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Errorf("schema im/2: %v", err)
	}
	for _, c := range []struct{ old, new, field string }{
		{`"TEST_NO":"330106202611200123"`, `"TEST_NO":330106202611200123`, "TEST_NO"},
		{`"INSPECTION_METHOD":"1"`, `"INSPECTION_METHOD":"2"`, "record.SELF_TEST.INSPECTION_METHOD"},
		{`"TS_NO"`, `"TS_NUM"`, "TS_NUM"},
		{`"RESULT":"1","LIMIT_TYPE"`, `"RESULT":"2","LIMIT_TYPE"`, "record.SELF_TEST.RESULT"},
		{`"ERROR_CODES":[]`, `"ERROR_CODES":null`, "record.OBD_CHECK"},
	} {
		bad := bytes.Replace(good, []byte(c.old), []byte(c.new), 1)
		if bytes.Equal(bad, good) {
			t.Fatalf("edit %q did not apply", c.old)
		}
		if err := wire.CheckIMPayload(wire.SchemaIM, bad); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v", c.field, err)
		}
	}
}

// TestBuildStatesNoValueThatWasNotRead: a diagnosis scan whose MIL, readiness and stored codes
// failed leaves those fields empty (never "0" or an empty list that reads as "none"), and an
// OBD check after the repair that cannot judge the car refuses the record.
func TestBuildStatesNoValueThatWasNotRead(t *testing.T) {
	st := imIdleResult(t)
	unread := []obd.Unread{
		{Item: obd.ItemMIL, Step: "readiness", Status: "failed", Reason: "CAN ERROR"},
		{Item: obd.ItemReadiness, Step: "readiness", Status: "failed", Reason: "CAN ERROR"},
		{Item: obd.ItemDTCsStored, Step: "dtcs_stored", Status: "failed", Reason: "CAN ERROR"},
	}
	in := imInput(st)
	in.Diagnosis = emission.OBDInput{CommunicationOK: true, VINRead: imVIN, VINExpected: imVIN, Unread: unread}
	p, err := imrecord.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Record.Diagnosis
	if d.FaultLight != "" || d.FaultCodeNum != "" || d.ReadyStateUndone != "" {
		t.Errorf("unread values stated: FAULT_LIGHT %q FAULT_CODE_NUM %q READY_STATE_UNDONE %q", d.FaultLight, d.FaultCodeNum, d.ReadyStateUndone)
	}
	if len(d.ErrorCodes) != 0 || len(d.Unready) != 0 {
		t.Errorf("unread lists filled: %+v %+v", d.ErrorCodes, d.Unready)
	}
	// The OBD check after the repair read everything: its values stay.
	if c := p.Record.OBDCheck; c.FaultLight != "0" || c.FaultCodeNum != "0" || c.ReadyStateUndone != "0" {
		t.Errorf("read values lost: %+v", c)
	}

	in = imInput(st)
	in.OBDCheck = emission.CheckOBD(emission.OBDInput{CommunicationOK: true, VINRead: imVIN, VINExpected: imVIN, Unread: unread})
	if in.OBDCheck.Verdict != emission.CannotJudge {
		t.Fatalf("check verdict %q, want %q", in.OBDCheck.Verdict, emission.CannotJudge)
	}
	var fe *wire.FieldError
	if _, err := imrecord.Build(in); err == nil || !errors.As(err, &fe) || !strings.Contains(err.Error(), "obd_check") || !strings.Contains(err.Error(), "scan the car again") {
		t.Errorf("a check that cannot judge: %v", err)
	}
}

// An emission repair settled without a self-test, with the reason stated, makes a record whose
// SELF_TEST is null and whose NO_SELF_TEST_REASON says why; the strict check takes it, and
// refuses a record with neither or with both.
func TestBuildWithoutSelfTestSaysWhy(t *testing.T) {
	in := imInput(nil)
	in.NoSelfTestReason = "  车主拒绝怠速检测，已告知复检风险 "
	p, err := imrecord.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if p.Record.SelfTest != nil || p.Record.NoSelfTestReason != "车主拒绝怠速检测，已告知复检风险" {
		t.Fatalf("self-test %+v reason %q", p.Record.SelfTest, p.Record.NoSelfTestReason)
	}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "im_no_selftest.golden.json", b)
	if !strings.Contains(string(b), `"SELF_TEST":null`) || !strings.Contains(string(b), `"NO_SELF_TEST_REASON":"车主拒绝怠速检测，已告知复检风险"`) {
		t.Errorf("encoded: %s", b)
	}
	if err := wire.CheckIMPayload(wire.SchemaIM, b); err != nil {
		t.Errorf("strict check: %v", err)
	}
	// A refused run with a reason is no self-test either.
	in.SelfTest = &emission.Result{Method: emission.TwoSpeedIdle, Verdict: emission.Refused}
	if p, err := imrecord.Build(in); err != nil || p.Record.SelfTest != nil {
		t.Errorf("refused run with a reason: %v %+v", err, p.Record.SelfTest)
	}
	// A judged self-test wins over a reason.
	in.SelfTest = imIdleResult(t)
	if p, err := imrecord.Build(in); err != nil || p.Record.SelfTest == nil || p.Record.NoSelfTestReason != "" {
		t.Errorf("judged self-test with a reason: %v %+v %q", err, p.Record.SelfTest, p.Record.NoSelfTestReason)
	}
	for _, c := range []struct {
		edit func(*wire.IMPayload)
		want string
	}{
		{func(p *wire.IMPayload) { p.Record.NoSelfTestReason = "" }, "record.SELF_TEST: null without NO_SELF_TEST_REASON"},
		{func(p *wire.IMPayload) { p.Record.SelfTest = &wire.IMSelfTest{} }, "record.NO_SELF_TEST_REASON: set beside a SELF_TEST"},
	} {
		in.SelfTest = nil
		p, _ := imrecord.Build(in)
		c.edit(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate = %v, want %q", err, c.want)
		}
	}
}
