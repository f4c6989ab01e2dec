package imrecord

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/obd"
)

// Input is what Build needs, all of it facts the gateway already holds.
type Input struct {
	WorkOrder string
	Revision  int    // 0 → 1
	Reason    string // required for a revision above 1

	TestNo      string    // 检验报告编号 of the failed test; required
	StationCode string    // I station of the failed test; optional
	FailedEnd   time.Time // end of the failed test (DetectEndTime); optional, checked against repairdate
	// RepairTime is when the repair began, on the day of the repair date (REPAIR_TIME); zero
	// when not known.
	RepairTime time.Time

	// Repair is the JT/T 1132 record of the same work order (as gateway/ehr built and validated
	// it): it gives the vehicle's VIN and plate and the repair section.
	Repair      wire.EHRRecord
	LicenseCode string  // 号牌种类 code; optional
	FuelType    string  // 燃料类型; optional
	OdometerKm  float64 // optional; 0 → the repair mileage

	Diagnosis emission.OBDInput // the OBD read-out when the car came in
	OBDCheck  emission.OBDCheck // CheckOBD over the read-out after the repair
	SelfTest  *emission.Result  // a judged post-repair self-test
	// NoSelfTestReason is why no self-test was made; with it, Build makes a record without
	// one (SELF_TEST null, NO_SELF_TEST_REASON set). Ignored when SelfTest is judged.
	NoSelfTestReason string

	RigModel  string // e.g. "NHA-506"; required
	RigSerial string // the rig's serial number (出厂编号); required
}

// Build makes the payload of an im record and validates it with wire.IMPayload.Validate.
// Errors name the field (*wire.FieldError): the input field for a missing or unjudged
// self-test, the record's JSON path otherwise.
func Build(in Input) (wire.IMPayload, error) {
	noTest := strings.TrimSpace(in.NoSelfTestReason)
	if in.SelfTest == nil && noTest == "" {
		return wire.IMPayload{}, fieldErr("self_test", "missing: run the post-repair self-test first, or state why none was made (no_selftest_reason)")
	}
	st := in.SelfTest
	if st != nil && !st.Verdict.Judged() && noTest != "" {
		st = nil // a refused or aborted run is no self-test; the reason says why there is none
	}
	if st != nil && !st.Verdict.Judged() {
		why := ""
		if len(st.Reasons) > 0 {
			why = ": " + st.Reasons[0].EN
		}
		return wire.IMPayload{}, fieldErr("self_test", "%s%s; only a judged self-test (pass or fail) goes into the record, run it again", st.Verdict, why)
	}
	if in.OBDCheck.Verdict == emission.CannotJudge {
		why := ""
		if len(in.OBDCheck.Unread) > 0 {
			u := in.OBDCheck.Unread[0]
			why = ": " + u.Item + " not read (" + u.Step + ")"
		}
		return wire.IMPayload{}, fieldErr("obd_check", "the last scan cannot judge the car%s; scan the car again before settling", why)
	}
	rev := in.Revision
	if rev == 0 {
		rev = 1
	}
	b := in.Repair.Basic
	odo := b.MileageKm
	if in.OdometerKm > 0 {
		odo = strconv.FormatFloat(math.Round(in.OdometerKm), 'f', 0, 64)
	}
	rec := wire.IMRecord{
		TestNo:      strings.TrimSpace(in.TestNo),
		StationCode: in.StationCode,
		Vehicle:     wire.IMVehicle{VIN: b.VIN, License: b.Plate, LicenseCode: in.LicenseCode, FuelType: in.FuelType, Odometer: odo},
		Repair: wire.IMRepair{Company: b.Company, CostListNo: b.CostListNo, RepairDate: b.RepairDate, MileageKm: b.MileageKm,
			SettleDate: b.SettleDate, Fault: b.Fault, Parts: nonNil(in.Repair.Parts), Projects: nonNil(in.Repair.Projects)},
		Diagnosis: obdSection(emission.CheckOBD(in.Diagnosis)),
		OBDCheck:  obdSection(in.OBDCheck),
	}
	if st != nil {
		s := selfTestSection(st, in.RigModel, in.RigSerial)
		rec.SelfTest = &s
	} else {
		rec.NoSelfTestReason = noTest
	}
	if !in.FailedEnd.IsZero() {
		rec.FailedEnd = in.FailedEnd.In(wire.IMZone).Format(wire.IMTimeLayout)
	}
	if !in.RepairTime.IsZero() {
		rec.RepairTime = in.RepairTime.In(wire.IMZone).Format(wire.IMTimeLayout)
	}
	p := wire.IMPayload{Record: rec, Meta: wire.IMMeta{WorkOrder: in.WorkOrder, CostListCode: b.CostListNo, Revision: rev, Reason: in.Reason}}
	if err := p.Validate(); err != nil {
		return wire.IMPayload{}, err
	}
	return p, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// obdSection maps a check to the record's OBD section. A value the scan did not read (the MIL,
// the stored codes, the readiness monitors; everything when no scan was made) is left empty:
// the record never states a reading that was not taken.
func obdSection(c emission.OBDCheck) wire.IMOBD {
	a := c.A7
	readOr := func(item string, v int) string {
		if !c.Read(item) {
			return ""
		}
		return strconv.Itoa(v)
	}
	o := wire.IMOBD{
		CommunicationNormal: strconv.Itoa(a.CommunicationNormal), FailureReason: a.FailureReason,
		FaultCodeNum: readOr(obd.ItemDTCsStored, a.FaultCodeNum), FaultIndicatorNormal: a.FaultIndicatorNormal,
		FaultLight: readOr(obd.ItemMIL, a.FaultLight), ModelRequirements: a.ModelRequirements,
		ReadyStateUndone: readOr(obd.ItemReadiness, a.ReadyStateUndone), Result: strconv.Itoa(a.Result), VIN: a.VIN, Odometer: a.TotalOdometer,
		ErrorCodes: []wire.IMErrorCode{}, Unready: []wire.IMUnready{}, Calibrations: []wire.IMCalibration{}, Lines: []wire.IMCheckLine{},
	}
	if !c.Read(obd.ItemDTCsStored) {
		c.DTCs = nil
	}
	if !c.Read(obd.ItemReadiness) {
		c.Incomplete = nil
	}
	for _, d := range c.DTCs {
		o.ErrorCodes = append(o.ErrorCodes, wire.IMErrorCode{Code: d, Info: c.DTCText[d]})
	}
	for _, u := range c.Incomplete {
		o.Unready = append(o.Unready, wire.IMUnready{Remark: obd.MonitorLabel(u, "zh")})
	}
	for _, cal := range c.Calibrations {
		o.Calibrations = append(o.Calibrations, wire.IMCalibration{ModelID: cal.ECU, CALID: cal.CALID, CVN: cal.CVN})
	}
	for _, l := range c.Lines {
		o.Lines = append(o.Lines, wire.IMCheckLine{Rule: l.Rule, Status: l.Status, TextZH: l.ZH, TextEN: l.EN})
	}
	return o
}

func selfTestSection(r *emission.Result, model, serial string) wire.IMSelfTest {
	s := wire.IMSelfTest{
		Method:    strconv.Itoa(int(r.Method)),
		TestDate:  r.Start.In(wire.IMZone).Format(wire.IMTimeLayout),
		TestEnd:   r.End.In(wire.IMZone).Format(wire.IMTimeLayout),
		Result:    judgement(r.Verdict == emission.Pass),
		LimitType: "限值" + r.LimitSet,
		RigModel:  model, RigSerial: serial, RigName: r.Rig, RPMSource: r.Speed,
		Reasons: reasons(r.Reasons), Warnings: reasons(r.Warnings),
	}
	item := func(name string) (emission.Item, bool) { return r.Item(name) }
	if ir := r.Idle; ir != nil {
		d := &wire.IMDualIdle{Result: s.Result, LambdaSource: ir.LambdaSource, Process: []wire.IMIdleProcess{}}
		if it, ok := item("AIR_COEFFICIENT"); ok && it.NotJudged {
			// λ of a car without closed-loop fuel control and a three-way catalyst: shown only.
			d.LambdaResult = num(it.Value, it.Decimals)
		} else if ok {
			d.LambdaLower, d.LambdaUpper = num(it.Lower, 2), num(it.Limit, 2)
			d.LambdaResult, d.LambdaIf = num(it.Value, it.Decimals), judgement(it.Pass)
		}
		set := func(name string, lim, res, ok *string) {
			if it, found := item(name); found {
				*lim, *res, *ok = num(it.Limit, it.Decimals), num(it.Value, it.Decimals), judgement(it.Pass)
			}
		}
		set("IDLE_CO", &d.IdleCOLimit, &d.IdleCOResult, &d.IdleCOIf)
		set("IDLE_HC", &d.IdleHCLimit, &d.IdleHCResult, &d.IdleHCIf)
		set("HIGH_IDLE_CO", &d.HighIdleCOLimit, &d.HighIdleCOResult, &d.HighIdleCOIf)
		set("HIGH_IDLE_HC", &d.HighIdleHCLimit, &d.HighIdleHCResult, &d.HighIdleHCIf)
		if h := ir.HighIdle; h != nil {
			d.HighIdleSpeed, d.LambdaCalc, d.OilTemperature = optNum(h.RPM, 0), optNum(h.LambdaComputed, 3), optNum(h.OilC, 0)
		}
		if l := ir.Idle; l != nil {
			d.IdleSpeed = optNum(l.RPM, 0)
		}
		for _, p := range ir.Process {
			d.Process = append(d.Process, wire.IMIdleProcess{
				FullSequence: strconv.Itoa(p.FullSequence), Condition: strconv.Itoa(p.Condition), Timing: strconv.Itoa(p.SamplingTiming),
				HC: optNum(p.HCppm, 0), CO: optNum(p.COPct, 2), O2: optNum(p.O2Pct, 2), CO2: optNum(p.CO2Pct, 2),
				Lambda: optNum(p.Lambda, 3), LambdaCalc: optNum(p.LambdaComputed, 3), RPM: optNum(p.RPM, 0), Oil: optNum(p.OilC, 0),
				InAverage: judgement(p.Averaged),
			})
		}
		s.DualIdle = d
	}
	if ar := r.Accel; ar != nil {
		f := &wire.IMFreeAccel{Limit: num(ar.Limit, 2), Avg: optNum(ar.AvgKM1, 2), IdleSpeed: optNum(ar.IdleRPM, 0),
			ActualSpeed: optNum(ar.MaxRPM, 0), KFromN: judgement(ar.KFromN), PathLength: num(ar.PathLengthM, 3), Process: []wire.IMAccelProcess{}}
		if it, ok := item("EMISSION"); ok {
			f.If = judgement(it.Pass)
		}
		for i, dst := range []*string{&f.One, &f.Two, &f.Three} {
			if i < len(ar.PeaksKM1) {
				*dst = num(ar.PeaksKM1[i], 2)
			}
		}
		for _, p := range ar.Process {
			f.Process = append(f.Process, wire.IMAccelProcess{
				FullSequence: num(float64(p.FullSequenceMS)/1000, 1), Condition: strconv.Itoa(p.Condition),
				Timing: num(float64(p.SamplingTiming)/1000, 1), K: optNum(p.KM1, 2), N: optNum(p.OpacityPct, 1),
				RPM: optNum(p.RPM, 0), Phase: p.Phase,
			})
		}
		s.FreeAccel = f
	}
	return s
}

func reasons(rs []emission.Reason) []wire.IMReason {
	out := []wire.IMReason{}
	for _, r := range rs {
		out = append(out, wire.IMReason{Code: r.Code, TextZH: r.ZH, TextEN: r.EN})
	}
	return out
}

func judgement(ok bool) string {
	if ok {
		return "1"
	}
	return "0"
}

func num(v float64, d int) string {
	s := strconv.FormatFloat(v, 'f', d, 64)
	if strings.TrimLeft(s, "-0.") == "" { // no "-0.00"
		s = strings.TrimPrefix(s, "-")
	}
	return s
}

func optNum(v *float64, d int) string {
	if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
		return ""
	}
	return num(*v, d)
}

func fieldErr(field, format string, a ...any) error {
	return &wire.FieldError{Field: field, Reason: fmt.Sprintf(format, a...)}
}
