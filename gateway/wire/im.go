package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind and schema of the I/M M-station record (汽车排放性能维护（维修）站 repair and self-test).
// Schema im/1 is an IMPayload: the record under "record", our metadata under "meta".
// docs/wire-im.md describes every field.
const (
	KindIM   = "im"
	SchemaIM = "im/1"
)

func init() { RegisterPayload(KindIM, CheckIMPayload) }

// IMPayload is the envelope payload of kind im.
type IMPayload struct {
	Record IMRecord `json:"record"`
	Meta   IMMeta   `json:"meta"`
}

// IMMeta travels beside the record, like EHRMeta.
type IMMeta struct {
	WorkOrder    string `json:"workorder"`        // the gateway's work-order id
	CostListCode string `json:"costlistcode"`     // the repair's 结算清单编号: links the ehr record
	Revision     int    `json:"revision"`         // 1 for the first submission, +1 per correction
	Reason       string `json:"reason,omitempty"` // why a revision was made
}

// IMRecord is the M-station record. Names follow the HJ 1238-style interface specifications
// (im-emission.md §4, typos such as ENGIN_SPEED and TOTAL_O_DOMETER kept); the repair section
// uses the JT/T 1132 names of the I/M back end's RepairInfo_M table (ehr-record.md §6). Every
// value is a string, as those interfaces send them; a value not measured is "".
type IMRecord struct {
	TestNo      string `json:"TEST_NO"`       // 检验报告编号 of the failed I-station test (test_no)
	StationCode string `json:"TS_NO"`         // the I station of the failed test, "" when unknown
	FailedEnd   string `json:"TEST_DATE_END"` // end of the failed test (DetectEndTime), "" when unknown
	// RepairTime is when the repair began (MaintenanceTime), yyyy-MM-dd HH:mm:ss on the day of
	// repairdate; platforms check it is not before TEST_DATE_END. "" when not known.
	RepairTime string    `json:"REPAIR_TIME,omitempty"`
	Vehicle    IMVehicle `json:"VEHICLE"`
	Repair     IMRepair  `json:"REPAIR"`
	Diagnosis  IMOBD     `json:"DIAGNOSIS"` // OBD read-out when the car came in
	OBDCheck   IMOBD     `json:"OBD_CHECK"` // OBD check after the repair
	// SelfTest is the judged post-repair self-test; null when none was made, and then
	// NoSelfTestReason says why (the settlement had to state it).
	SelfTest         *IMSelfTest `json:"SELF_TEST"`
	NoSelfTestReason string      `json:"NO_SELF_TEST_REASON,omitempty"`
}

// IMVehicle identifies the car (ODS_A4 names).
type IMVehicle struct {
	VIN         string `json:"VIN"`
	License     string `json:"LICENSE"`         // 号牌号码
	LicenseCode string `json:"LICENSE_CODE"`    // 号牌种类/颜色 code as the order has it
	FuelType    string `json:"FUEL_TYPE"`       // 燃料类型 as the order has it
	Odometer    string `json:"TOTAL_O_DOMETER"` // km at repair
}

// IMRepair is the repair, with the JT/T 1132 names.
type IMRepair struct {
	Company    string       `json:"companyname"`
	CostListNo string       `json:"costlistcode"`
	RepairDate string       `json:"repairdate"` // yyyyMMdd
	MileageKm  string       `json:"repairmileage"`
	SettleDate string       `json:"settledate"` // yyyyMMdd
	Fault      string       `json:"faultdescription"`
	Parts      []EHRPart    `json:"vehiclepartslist"`
	Projects   []EHRProject `json:"repairprojectlist"`
}

// IMOBD is an OBD read-out with its inspection-rule outcome: the ODS_A7 fields, the DTCs
// (ODS_A9), the incomplete monitors (ODS_A10/A11), CALID/CVN per ECU (ODS_A8) and the check's
// lines.
type IMOBD struct {
	CommunicationNormal  string          `json:"COMMUNICATION_NORMAL"`
	FailureReason        string          `json:"FAILURE_REASON"`
	FaultCodeNum         string          `json:"FAULT_CODE_NUM"`
	FaultIndicatorNormal string          `json:"FAULT_INDICATOR_NORMAL"`
	FaultLight           string          `json:"FAULT_LIGHT"`
	ModelRequirements    string          `json:"MODEL_REQUIREMENTS"`
	ReadyStateUndone     string          `json:"READY_STATE_UNDONE"`
	Result               string          `json:"RESULT"` // O_RESULT
	VIN                  string          `json:"VIN"`
	Odometer             string          `json:"TOTAL_O_DOMETER"`
	ErrorCodes           []IMErrorCode   `json:"ERROR_CODES"`
	Unready              []IMUnready     `json:"UNREADY"`
	Calibrations         []IMCalibration `json:"CALIBRATIONS"`
	Lines                []IMCheckLine   `json:"CHECK_LINES"`
}

// IMErrorCode is one DTC (ODS_A9; O_DOMETER and DRIVING_TIME are not read by the gateway).
type IMErrorCode struct {
	Code string `json:"CODE"`
	Info string `json:"INFO"`
}

// IMUnready is one incomplete readiness monitor (ODS_A10 / ODS_A11).
type IMUnready struct {
	Remark string `json:"ERROR_REMARK"`
}

// IMCalibration is one ECU's calibration (ODS_A8).
type IMCalibration struct {
	ModelID string `json:"MODEL_ID"`
	CALID   string `json:"CALID"`
	CVN     string `json:"CVN"`
}

// IMCheckLine is one rule of the OBD check.
type IMCheckLine struct {
	Rule   string `json:"RULE"`
	Status string `json:"STATUS"`
	TextZH string `json:"TEXT_ZH"`
	TextEN string `json:"TEXT_EN"`
}

// IMSelfTest is the post-repair self-test: the ODS_A4 header items that apply, the method's
// result section and its process data.
type IMSelfTest struct {
	Method    string       `json:"INSPECTION_METHOD"` // 1 双怠速, 5 自由加速不透光
	TestDate  string       `json:"TEST_DATE"`         // start, yyyy-MM-dd HH:mm:ss, UTC+8
	TestEnd   string       `json:"TEST_DATE_END"`
	Result    string       `json:"RESULT"`     // 1 合格, 0 不合格
	LimitType string       `json:"LIMIT_TYPE"` // 限值a / 限值b
	RigModel  string       `json:"RIG_MODEL"`
	RigSerial string       `json:"RIG_SERIAL"`
	RigName   string       `json:"RIG_NAME"`     // the driver's description (port, model)
	RPMSource string       `json:"SPEED_SOURCE"` // "rig" or "OBD 010C"
	Reasons   []IMReason   `json:"REASONS"`      // why it failed
	Warnings  []IMReason   `json:"WARNINGS"`
	DualIdle  *IMDualIdle  `json:"DUAL_IDLE,omitempty"`
	FreeAccel *IMFreeAccel `json:"FREE_ACCELERATION,omitempty"`
}

// IMReason is a reason or warning with its stable code.
type IMReason struct {
	Code   string `json:"CODE"`
	TextZH string `json:"TEXT_ZH"`
	TextEN string `json:"TEXT_EN"`
}

// IMDualIdle is the two-speed idle result (ODS_A15) with its process data (ODS_A16).
type IMDualIdle struct {
	LambdaLower      string          `json:"AIR_COEFFICIENT_LOWER"`
	LambdaUpper      string          `json:"AIR_COEFFICIENT_UPPER"`
	LambdaResult     string          `json:"AIR_COEFFICIENT_RESULT"`
	LambdaIf         string          `json:"AIR_COEFFICIENT_IF"`
	LambdaCalc       string          `json:"AIR_COEFFICIENT_CALC"`   // Brettschneider at high idle (ours)
	LambdaSource     string          `json:"AIR_COEFFICIENT_SOURCE"` // analyzer / computed (ours)
	IdleCOLimit      string          `json:"IDLE_CO_LIMIT"`
	IdleCOResult     string          `json:"IDLE_CO_RESULT"`
	IdleCOIf         string          `json:"IDLE_CO_IF"`
	IdleHCLimit      string          `json:"IDLE_HC_LIMIT"`
	IdleHCResult     string          `json:"IDLE_HC_RESULT"`
	IdleHCIf         string          `json:"IDLE_HC_IF"`
	HighIdleCOLimit  string          `json:"HIGH_IDLE_CO_LIMIT"`
	HighIdleCOResult string          `json:"HIGH_IDLE_CO_RESULT"`
	HighIdleCOIf     string          `json:"HIGH_IDLE_CO_IF"`
	HighIdleHCLimit  string          `json:"HIGH_IDLE_HC_LIMIT"`
	HighIdleHCResult string          `json:"HIGH_IDLE_HC_RESULT"`
	HighIdleHCIf     string          `json:"HIGH_IDLE_HC_IF"`
	IdleSpeed        string          `json:"IDLE_SPEED"`
	HighIdleSpeed    string          `json:"HIGH_IDLE_SPEED"`
	OilTemperature   string          `json:"ENGINE_OIL_TEMPERATURE"`
	Result           string          `json:"RESULT"`
	Process          []IMIdleProcess `json:"PROCESS_DATA"`
}

// IMIdleProcess is one second of ODS_A16.
type IMIdleProcess struct {
	FullSequence string `json:"FULL_SEQUENCE_TIME"`
	Condition    string `json:"CONDITION_TYPE"`
	Timing       string `json:"SAMPLING_TIMING"`
	HC           string `json:"HC"`
	CO           string `json:"CO"`
	O2           string `json:"O2"`
	CO2          string `json:"CO2"`
	Lambda       string `json:"AIR_COEFFICIENT"`
	LambdaCalc   string `json:"AIR_COEFFICIENT_CALC"`
	RPM          string `json:"ENGIN_SPEED"`
	Oil          string `json:"ENGINE_OIL_TEMPERATURE"`
	InAverage    string `json:"IN_AVERAGE"`
}

// IMFreeAccel is the free-acceleration result with its process data.
type IMFreeAccel struct {
	IdleSpeed   string           `json:"ENGIN_SPEED"`
	ActualSpeed string           `json:"ACTUAL_ENGINE_SPEED"`
	Limit       string           `json:"EMISSION_LIMIT"`
	One         string           `json:"EMISSION_ONE"`
	Two         string           `json:"EMISSION_TWO"`
	Three       string           `json:"EMISSION_THREE"`
	Avg         string           `json:"EMISSION_AVG"`
	If          string           `json:"EMISSION_IF"`
	KFromN      string           `json:"K_FROM_N"` // 1 when k was computed from N (L = PATH_LENGTH)
	PathLength  string           `json:"PATH_LENGTH"`
	Process     []IMAccelProcess `json:"PROCESS_DATA"`
}

// IMAccelProcess is one sample of free-acceleration process data.
type IMAccelProcess struct {
	FullSequence string `json:"FULL_SEQUENCE_TIME"`
	Condition    string `json:"CONDITION_TYPE"`
	Timing       string `json:"SAMPLING_TIMING"`
	K            string `json:"LIGHT_ABSORPTION_COEFFICIENT"`
	N            string `json:"OPACITY"`
	RPM          string `json:"ENGIN_SPEED"`
	Phase        string `json:"PHASE"`
}

// IMZone is UTC+8, the zone of every date in Chinese platform interfaces (fixed, so no tz
// database is needed on the box).
var IMZone = time.FixedZone("CST", 8*3600)

// IMTimeLayout is the layout of the record's date-times (TEST_DATE, TEST_DATE_END), in IMZone.
const IMTimeLayout = "2006-01-02 15:04:05"

// Encode returns the payload as compact JSON without HTML escaping, lists never null: the
// same input always gives the same bytes.
func (p IMPayload) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("wire: encode im payload: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

var (
	vinRe     = regexp.MustCompile(`^[A-HJ-NPR-Z0-9]{17}$`)
	dateRe    = regexp.MustCompile(`^\d{8}$`)
	decimalRe = regexp.MustCompile(`^\d+(\.\d+)?$`)
	intRe     = regexp.MustCompile(`^\d+$`)
	codeRe    = regexp.MustCompile(`^[0-3]$`)
)

// FaultPrefix must start the fault description of an emission repair: the I/M workflow asks the
// M station to say it is a 尾气治理 vehicle (ehr-record.md §6).
const FaultPrefix = "尾气治理"

// Validate checks the payload and names every wrong field by its JSON path (errors.Join of
// *FieldError).
func (p IMPayload) Validate() error {
	r := p.Record
	var errs []error
	bad := func(field, format string, a ...any) { errs = append(errs, fieldErr(field, format, a...)) }
	text := func(field, v string, min, max int) {
		n := utf8.RuneCountInString(v)
		switch {
		case !utf8.ValidString(v):
			bad(field, "not UTF-8")
		case n < min && min == 1:
			bad(field, "empty")
		case n < min || n > max:
			bad(field, "%d characters, want %d–%d", n, min, max)
		case strings.ContainsFunc(v, func(c rune) bool { return c < 0x20 || c == 0x7f }):
			bad(field, "control characters")
		}
	}
	text("record.TEST_NO", r.TestNo, 1, 64)
	text("record.TS_NO", r.StationCode, 0, 32)
	if !vinRe.MatchString(r.Vehicle.VIN) {
		bad("record.VEHICLE.VIN", "%q: want 17 characters, digits and capitals without I, O, Q", clip(r.Vehicle.VIN))
	}
	text("record.VEHICLE.LICENSE", r.Vehicle.License, 1, 8)
	text("record.VEHICLE.LICENSE_CODE", r.Vehicle.LicenseCode, 0, 8)
	text("record.VEHICLE.FUEL_TYPE", r.Vehicle.FuelType, 0, 16)
	if o := r.Vehicle.Odometer; o != "" && !intRe.MatchString(o) {
		bad("record.VEHICLE.TOTAL_O_DOMETER", "%q: want whole km", clip(o))
	}

	rp := r.Repair
	text("record.REPAIR.companyname", rp.Company, 1, 100)
	text("record.REPAIR.costlistcode", rp.CostListNo, 1, 50)
	rd, rdErr := parseDate(rp.RepairDate)
	if rdErr != nil {
		bad("record.REPAIR.repairdate", "%q: want yyyyMMdd", clip(rp.RepairDate))
	}
	sd, sdErr := parseDate(rp.SettleDate)
	if sdErr != nil {
		bad("record.REPAIR.settledate", "%q: want yyyyMMdd", clip(rp.SettleDate))
	}
	if rdErr == nil && sdErr == nil && sd.Before(rd) {
		bad("record.REPAIR.settledate", "%s is before repairdate %s", rp.SettleDate, rp.RepairDate)
	}
	if !intRe.MatchString(rp.MileageKm) {
		bad("record.REPAIR.repairmileage", "%q: want whole km", clip(rp.MileageKm))
	}
	text("record.REPAIR.faultdescription", rp.Fault, 1, 200)
	if !strings.HasPrefix(rp.Fault, FaultPrefix) {
		bad("record.REPAIR.faultdescription", "must start with %s for an emission repair (the I station looks for it)", FaultPrefix)
	}
	if rp.Parts == nil {
		bad("record.REPAIR.vehiclepartslist", "want a list ([] when empty)")
	}
	if rp.Projects == nil || len(rp.Projects) == 0 {
		bad("record.REPAIR.repairprojectlist", "an emission repair names at least one repair item")
	}
	for i, pt := range rp.Parts {
		f := fmt.Sprintf("record.REPAIR.vehiclepartslist[%d].", i)
		text(f+"partsname", pt.Name, 1, 50)
		text(f+"partscode", pt.Code, 0, 50)
		if !decimalRe.MatchString(pt.Quantity) {
			bad(f+"partsquantity", "%q: want a decimal number", clip(pt.Quantity))
		}
	}
	for i, pj := range rp.Projects {
		f := fmt.Sprintf("record.REPAIR.repairprojectlist[%d].", i)
		text(f+"repairproject", pj.Name, 1, 200)
		if !decimalRe.MatchString(pj.Hours) {
			bad(f+"workinghours", "%q: want a decimal number", clip(pj.Hours))
		}
	}
	if r.FailedEnd != "" {
		fe, err := time.ParseInLocation(IMTimeLayout, r.FailedEnd, IMZone)
		switch {
		case err != nil:
			bad("record.TEST_DATE_END", "%q: want yyyy-MM-dd HH:mm:ss", clip(r.FailedEnd))
		case rdErr == nil && rd.Before(truncDay(fe)):
			// The I station rejects a repair dated before the failed test (ehr-record.md §6).
			bad("record.REPAIR.repairdate", "%s is before the failed test ended (%s): the I station will not accept it", rp.RepairDate, r.FailedEnd)
		}
	}
	if r.RepairTime != "" {
		rt, err := time.ParseInLocation(IMTimeLayout, r.RepairTime, IMZone)
		switch {
		case err != nil:
			bad("record.REPAIR_TIME", "%q: want yyyy-MM-dd HH:mm:ss", clip(r.RepairTime))
		case rdErr == nil && !truncDay(rt).Equal(rd):
			bad("record.REPAIR_TIME", "%s is not on repairdate %s", r.RepairTime, rp.RepairDate)
		case r.FailedEnd != "":
			if fe, err := time.ParseInLocation(IMTimeLayout, r.FailedEnd, IMZone); err == nil && rt.Before(fe) {
				bad("record.REPAIR_TIME", "%s is before the failed test ended (%s): the I station will not accept it", r.RepairTime, r.FailedEnd)
			}
		}
	}

	for _, o := range []struct {
		name string
		v    IMOBD
	}{{"record.DIAGNOSIS", r.Diagnosis}, {"record.OBD_CHECK", r.OBDCheck}} {
		if !codeRe.MatchString(o.v.Result) {
			bad(o.name+".RESULT", "%q: want 0 不合格, 1 合格, 2 免检 or 3 无OBD", clip(o.v.Result))
		}
		if o.v.ErrorCodes == nil || o.v.Unready == nil || o.v.Calibrations == nil || o.v.Lines == nil {
			bad(o.name, "lists must be present ([] when empty)")
		}
	}
	if v := r.OBDCheck.VIN; v != "" && v != r.Vehicle.VIN {
		bad("record.OBD_CHECK.VIN", "%q differs from the vehicle's VIN %q", clip(v), r.Vehicle.VIN)
	}

	switch st := r.SelfTest; {
	case st == nil && strings.TrimSpace(r.NoSelfTestReason) == "":
		bad("record.SELF_TEST", "null without NO_SELF_TEST_REASON: an emission repair carries its post-repair self-test or says why none was made")
	case st == nil:
		text("record.NO_SELF_TEST_REASON", r.NoSelfTestReason, 1, 200)
	case r.NoSelfTestReason != "":
		bad("record.NO_SELF_TEST_REASON", "set beside a SELF_TEST: a record has one or the other")
	default:
		switch st.Method {
		case "1":
			if st.DualIdle == nil || st.FreeAccel != nil {
				bad("record.SELF_TEST.DUAL_IDLE", "method 1 (双怠速) carries DUAL_IDLE and nothing else")
			} else if len(st.DualIdle.Process) == 0 {
				bad("record.SELF_TEST.DUAL_IDLE.PROCESS_DATA", "empty: the self-test's second-by-second data are required")
			}
		case "5":
			if st.FreeAccel == nil || st.DualIdle != nil {
				bad("record.SELF_TEST.FREE_ACCELERATION", "method 5 (自由加速) carries FREE_ACCELERATION and nothing else")
			} else if len(st.FreeAccel.Process) == 0 {
				bad("record.SELF_TEST.FREE_ACCELERATION.PROCESS_DATA", "empty: the self-test's process data are required")
			}
		default:
			bad("record.SELF_TEST.INSPECTION_METHOD", "%q: want 1 (双怠速) or 5 (自由加速不透光)", clip(st.Method))
		}
		if st.Result != "0" && st.Result != "1" {
			bad("record.SELF_TEST.RESULT", "%q: want 1 合格 or 0 不合格", clip(st.Result))
		}
		if st.LimitType != "限值a" && st.LimitType != "限值b" {
			bad("record.SELF_TEST.LIMIT_TYPE", "%q: want 限值a or 限值b", clip(st.LimitType))
		}
		start, err := time.ParseInLocation(IMTimeLayout, st.TestDate, IMZone)
		if err != nil {
			bad("record.SELF_TEST.TEST_DATE", "%q: want yyyy-MM-dd HH:mm:ss", clip(st.TestDate))
		} else if rdErr == nil && truncDay(start).Before(rd) {
			bad("record.SELF_TEST.TEST_DATE", "%s is before repairdate %s: a post-repair self-test comes after the repair starts", st.TestDate, rp.RepairDate)
		}
		if end, err := time.ParseInLocation(IMTimeLayout, st.TestEnd, IMZone); err != nil {
			bad("record.SELF_TEST.TEST_DATE_END", "%q: want yyyy-MM-dd HH:mm:ss", clip(st.TestEnd))
		} else if end.Before(start) {
			bad("record.SELF_TEST.TEST_DATE_END", "%s is before TEST_DATE %s", st.TestEnd, st.TestDate)
		}
		text("record.SELF_TEST.RIG_MODEL", st.RigModel, 1, 32)
		text("record.SELF_TEST.RIG_SERIAL", st.RigSerial, 1, 32)
		if st.Reasons == nil || st.Warnings == nil {
			bad("record.SELF_TEST", "REASONS and WARNINGS must be lists ([] when empty)")
		}

	}

	m := p.Meta
	if m.Revision < 1 {
		bad("meta.revision", "%d: want 1 or more", m.Revision)
	}
	if m.Revision > 1 && strings.TrimSpace(m.Reason) == "" {
		bad("meta.reason", "a revision says why it was made")
	}
	if m.CostListCode != rp.CostListNo {
		bad("meta.costlistcode", "%q differs from record.REPAIR.costlistcode %q", clip(m.CostListCode), clip(rp.CostListNo))
	}
	text("meta.workorder", m.WorkOrder, 1, 64)
	return errors.Join(errs...)
}

func parseDate(s string) (time.Time, error) {
	if !dateRe.MatchString(s) {
		return time.Time{}, errors.New("not yyyyMMdd")
	}
	return time.ParseInLocation("20060102", s, IMZone)
}

func truncDay(t time.Time) time.Time {
	t = t.In(IMZone)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, IMZone)
}

// CheckIMPayload is the check a receiver runs on an im payload: schema im/1, strict decoding
// (every value a string, no unknown field) and Validate. It is registered for kind im.
func CheckIMPayload(schema string, payload json.RawMessage) error {
	if schema != SchemaIM {
		return fieldErr("schema", "%q: this gateway writes %s", clip(schema), SchemaIM)
	}
	var p IMPayload
	if err := decodeStrict(payload, &p, "payload"); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return err
		}
		return fmt.Errorf("wire: im payload: %w", err)
	}
	return p.Validate()
}
