package emission

import (
	"fmt"
	"slices"
	"strings"

	"github.com/obdgw/obdgw/obd"
)

// OBDInput is what the OBD check needs from a scan of the car. The daemon fills it from the
// obd scan report; every field is plain data so the check stays a pure function.
type OBDInput struct {
	// CommunicationOK is false when the adapter could not talk to the car; FailureReason then
	// carries the HJ 1238 / Changsha code: 1 接口损坏 (socket damaged), 2 找不到接口 (no socket
	// found), 3 连接后不能通讯 (connected, no communication).
	CommunicationOK bool
	FailureReason   int
	// Unread is what the scan could not read (obd.Report.Unread): the MIL, the readiness
	// monitors or a DTC service. MIL, DTCs and Incomplete then hold no reading, and the check
	// cannot judge the car, whatever CommunicationOK says.
	Unread []obd.Unread
	// NoOBD: the vehicle has no OBD (older than the OBD requirement); O_RESULT becomes 3.
	NoOBD bool

	MIL  bool     // malfunction indicator lamp commanded on (PID 0101 A7)
	DTCs []string // stored (confirmed) emission DTCs, "P0420", every ECU, duplicates allowed
	// DTCText describes codes for the record (code → text from the catalogue); optional.
	DTCText map[string]string
	// Incomplete lists the supported readiness monitors that are not complete, by key
	// (obd.MonCatalyst, obd.MonEvap); the rule counts those of Rules' list for the engine type.
	Incomplete []string
	// Compression is the engine type the ECUs reported with their readiness (PID 01 byte B
	// bit 3): true compression ignition (diesel), false spark; nil when not known, then the
	// monitors of both lists count.
	Compression *bool
	// Rules are the configured rules (Limits.OBD); the zero value means DefaultOBDRules.
	Rules OBDRules

	VINRead     string // VIN read over OBD (service 09 PID 02); empty when the car gave none
	VINExpected string // VIN on the work order

	// CALIDs and CVNs as the ECUs reported them (service 09 PIDs 04 and 06), per ECU.
	Calibrations []Calibration

	// ModelRequirements is the OBD requirement at type approval (HJ 1238 MODEL_REQUIREMENTS:
	// 1 OBDⅡ, 5 NO OBD, 6 EOBD, 29 CN-OBD-6); 0 = unknown.
	ModelRequirements int
	// OdometerKm when the car reports it (0 = unknown).
	OdometerKm float64
}

// Calibration is one ECU's CALID and CVN (HJ 1238 ODS_A8).
type Calibration struct {
	ECU   string `json:"ecu"` // MODEL_ID: the responder ("7E8") or the module's name
	CALID string `json:"calid"`
	CVN   string `json:"cvn"`
}

// CheckLine is one rule of the check.
type CheckLine struct {
	Rule   string `json:"rule"`   // "communication", "mil", "dtc", "readiness", "vin", "calid_cvn"
	Status string `json:"status"` // "pass", "fail", "warning", "not_checked"
	Text
}

// OBD result codes (HJ 1238 O_RESULT, confirmed).
const (
	OResultFail   = 0 // 不合格
	OResultPass   = 1 // 合格
	OResultExempt = 2 // 免检
	OResultNoOBD  = 3 // 无OBD
)

// OBDCheck is the outcome of CheckOBD: one line per rule, the overall result and the
// HJ 1238 ODS_A7 fields an inspection record carries.
//
// Verdict is Pass, Fail, or CannotJudge when there was no communication or the MIL, the DTCs or
// the readiness monitors were not read (Unread): the car was neither passed nor failed, the
// bay must scan again. Pass is true only for Pass (and a car without OBD).
type OBDCheck struct {
	Verdict Verdict     `json:"verdict"`
	Pass    bool        `json:"pass"`
	OResult int         `json:"o_result"`
	Lines   []CheckLine `json:"lines"`
	// A7 are the record's fields. For an item in Unread its A7 value (FAULT_LIGHT,
	// FAULT_CODE_NUM, READY_STATE_UNDONE) is a zero placeholder, not a reading: a record
	// leaves it empty.
	A7 OBDA7 `json:"ods_a7"`
	// Inputs kept for the record's diagnosis section. DTCs is nil (JSON null) when the stored
	// codes were not read, Incomplete when the readiness monitors were not. Incomplete lists
	// every incomplete monitor; IncompleteCounted those the readiness rule counts.
	DTCs              []string          `json:"dtcs"`
	DTCText           map[string]string `json:"dtc_text,omitempty"`
	Incomplete        []string          `json:"incomplete"`
	IncompleteCounted []string          `json:"incomplete_counted"`
	Calibrations      []Calibration     `json:"calibrations"`
	// Unread is what the scan could not read, with the step and its error.
	Unread []obd.Unread `json:"unread,omitempty"`
}

// Read reports whether item (obd.ItemMIL, obd.ItemReadiness, obd.ItemDTCsStored, …) was
// read, so its value in the check is a reading.
func (c OBDCheck) Read(item string) bool {
	if c.Verdict == "" || c.Verdict == CannotJudge && len(c.Unread) == 0 {
		return false // not a check, or no communication at all: nothing was read
	}
	for _, u := range c.Unread {
		if u.Item == item {
			return false
		}
	}
	return true
}

// OBDA7 are the ODS_A7_OBD_INSPECTION_INFO fields (names confirmed, im-emission.md §8.2; the
// value conventions marked inferred in docs/wire-im.md).
type OBDA7 struct {
	CommunicationNormal  int    `json:"COMMUNICATION_NORMAL"`   // 1 yes, 0 no
	FailureReason        string `json:"FAILURE_REASON"`         // "1"/"2"/"3" when no communication, else ""
	FaultCodeNum         int    `json:"FAULT_CODE_NUM"`         // distinct DTCs
	FaultIndicatorNormal string `json:"FAULT_INDICATOR_NORMAL"` // lamp self-test seen by the operator: not checkable over OBD, ""
	FaultLight           int    `json:"FAULT_LIGHT"`            // 1 MIL on, 0 off
	ModelRequirements    string `json:"MODEL_REQUIREMENTS"`     // "1", "5", "6", "29" or ""
	ReadyStateUndone     int    `json:"READY_STATE_UNDONE"`     // number of incomplete monitors the rule counts
	Result               int    `json:"RESULT"`                 // O_RESULT
	VIN                  string `json:"VIN"`                    // read over OBD
	TotalOdometer        string `json:"TOTAL_O_DOMETER"`        // km, "" when unknown
}

// MaxIncompleteMonitors is the inspection-station rule: more than two incomplete → fail
// (im-emission.md §8.1, confirmed from I-station code).
const MaxIncompleteMonitors = 2

// CheckOBD applies the inspection-station OBD rules (im-emission.md §8.1): MIL on, any DTC and
// more than two incomplete readiness monitors of those the stations count (in.Rules, §8.3;
// others are shown, never failed) fail; a VIN read over OBD that differs from the
// work order's fails; CALID and CVN both empty is a warning. No communication, or a MIL, DTC
// or readiness read that failed, cannot be judged (CannotJudge): a value that was not read is
// never taken as off, none or complete.
func CheckOBD(in OBDInput) OBDCheck {
	dtcs := uniqueUpper(in.DTCs)
	out := OBDCheck{DTCs: dtcs, DTCText: in.DTCText, Incomplete: append([]string{}, in.Incomplete...), Calibrations: append([]Calibration{}, in.Calibrations...),
		Unread: append([]obd.Unread(nil), in.Unread...)}
	add := func(rule, status, zh, en string) {
		out.Lines = append(out.Lines, CheckLine{Rule: rule, Status: status, Text: Text{ZH: zh, EN: en}})
	}
	rules := in.Rules
	if rules.ReadinessSpark == nil && rules.ReadinessCompression == nil && rules.MaxIncomplete == 0 {
		rules = DefaultOBDRules()
	}
	counted := rules.Counted(in.Compression)
	var other []string
	out.IncompleteCounted = []string{}
	for _, m := range in.Incomplete {
		if slices.Contains(counted, m) {
			out.IncompleteCounted = append(out.IncompleteCounted, m)
		} else {
			other = append(other, m)
		}
	}
	vinRead := normVIN(in.VINRead)
	out.A7 = OBDA7{FaultCodeNum: len(dtcs), ReadyStateUndone: len(out.IncompleteCounted), VIN: vinRead}
	if in.ModelRequirements > 0 {
		out.A7.ModelRequirements = fmt.Sprint(in.ModelRequirements)
	}
	if in.OdometerKm > 0 {
		out.A7.TotalOdometer = fmt.Sprintf("%.0f", in.OdometerKm)
	}
	if in.MIL {
		out.A7.FaultLight = 1
	}

	if in.NoOBD {
		add("communication", "not_checked", "车辆无 OBD", "the vehicle has no OBD")
		out.OResult, out.Pass, out.Verdict = OResultNoOBD, true, Pass
		out.A7.Result = out.OResult
		out.Unread = nil
		return out
	}
	if !in.CommunicationOK || len(in.Unread) > 0 {
		cannotJudge(in, &out)
		return out
	}
	out.A7.CommunicationNormal = 1
	add("communication", "pass", "OBD 通讯正常", "OBD communication works")
	fail := false

	if in.MIL {
		fail = true
		add("mil", "fail", "故障指示灯（MIL）点亮", "the malfunction indicator lamp (MIL) is on")
	} else {
		add("mil", "pass", "故障指示灯未点亮", "the MIL is off")
	}

	if len(dtcs) > 0 {
		fail = true
		add("dtc", "fail", fmt.Sprintf("存在 %d 个故障码：%s", len(dtcs), strings.Join(dtcs, ", ")),
			fmt.Sprintf("%d trouble code(s) stored: %s", len(dtcs), strings.Join(dtcs, ", ")))
	} else {
		add("dtc", "pass", "无故障码", "no trouble codes")
	}

	zhMon, enMon := monitorNames(out.IncompleteCounted)
	zhOther, enOther := "", ""
	if len(other) > 0 {
		z, e := monitorNames(other)
		zhOther = "；不计入判定的未完成项：" + z
		enOther = "; incomplete but not counted by inspection stations: " + e
	}
	maxInc := rules.MaxIncomplete
	switch n := len(out.IncompleteCounted); {
	case n > maxInc:
		fail = true
		add("readiness", "fail", fmt.Sprintf("就绪状态未完成项 %d 项，超过 %d 项：%s%s", n, maxInc, zhMon, zhOther),
			fmt.Sprintf("%d counted readiness monitors incomplete, more than %d: %s (drive the car until they complete)%s", n, maxInc, enMon, enOther))
	case n > 0:
		add("readiness", "pass", fmt.Sprintf("就绪状态未完成 %d 项（不超过 %d 项）：%s%s", n, maxInc, zhMon, zhOther),
			fmt.Sprintf("%d counted readiness monitor(s) incomplete (at most %d allowed): %s%s", n, maxInc, enMon, enOther))
	case len(other) > 0:
		add("readiness", "pass", "计入判定的就绪状态全部完成"+zhOther, "all counted readiness monitors complete"+enOther)
	default:
		add("readiness", "pass", "就绪状态全部完成", "all readiness monitors complete")
	}

	want := normVIN(in.VINExpected)
	switch {
	case vinRead == "":
		add("vin", "warning", "未能通过 OBD 读取 VIN，请人工核对", "the car gave no VIN over OBD: check it by eye")
	case want == "":
		add("vin", "warning", "工单没有 VIN，无法核对 OBD 读取的 VIN "+vinRead, "the work order has no VIN to compare with the one read over OBD ("+vinRead+")")
	case vinRead != want:
		fail = true
		add("vin", "fail", "VIN 号不匹配：OBD 读取 "+vinRead+"，工单 "+want, "VIN mismatch: the car says "+vinRead+", the work order says "+want)
	default:
		add("vin", "pass", "VIN 与工单一致", "the VIN matches the work order")
	}

	anyCal := false
	for _, c := range in.Calibrations {
		if strings.TrimSpace(c.CALID) != "" || strings.TrimSpace(c.CVN) != "" {
			anyCal = true
		}
	}
	if anyCal {
		add("calid_cvn", "pass", "已读取 CALID/CVN", "CALID/CVN read")
	} else {
		add("calid_cvn", "warning", "CALID 和 CVN 均为空", "CALID and CVN are both empty")
	}

	out.Pass = !fail
	out.OResult, out.Verdict = OResultPass, Pass
	if fail {
		out.OResult, out.Verdict = OResultFail, Fail
	}
	out.A7.Result = out.OResult
	return out
}

// cannotJudge ends a check whose car could not be read: no communication at all, or the MIL,
// DTCs or readiness not read (in.Unread). The communication line fails and says why; the
// rules over values that were not read are not checked. HJ 1238 records this as communication
// 0 with a failure reason (3 连接后不能通讯 when the adapter connected) and O_RESULT 0; the
// verdict says the car itself was not judged.
func cannotJudge(in OBDInput, out *OBDCheck) {
	add := func(rule, status, zh, en string) {
		out.Lines = append(out.Lines, CheckLine{Rule: rule, Status: status, Text: Text{ZH: zh, EN: en}})
	}
	out.Verdict, out.Pass, out.OResult = CannotJudge, false, OResultFail
	out.A7.CommunicationNormal, out.A7.Result = 0, OResultFail
	out.A7.FailureReason = fmt.Sprint(in.FailureReason)
	if in.FailureReason < 1 || in.FailureReason > 3 {
		out.A7.FailureReason = "3"
	}
	unread := map[string]obd.Unread{}
	var why []string
	for _, u := range in.Unread {
		if _, seen := unread[u.Item]; !seen {
			why = append(why, unreadText(u))
		}
		unread[u.Item] = u
	}
	if len(in.Unread) > 0 {
		reasons := strings.Join(slices.Compact(why), "; ")
		add("communication", "fail", "无法判定（通讯）：未能读取 "+strings.Join(unreadItems(in.Unread, "zh"), "、")+"："+reasons+"。请重新插好诊断接头后再扫描",
			"cannot judge (communication): the car's "+strings.Join(unreadItems(in.Unread, "en"), ", ")+" could not be read: "+reasons+"; reseat the adapter and scan again")
	} else {
		zh := map[string]string{"1": "接口损坏", "2": "找不到接口", "3": "连接后不能通讯"}[out.A7.FailureReason]
		en := map[string]string{"1": "the diagnostic socket is damaged", "2": "the diagnostic socket was not found", "3": "connected, but the car does not answer"}[out.A7.FailureReason]
		add("communication", "fail", "无法判定（通讯）：OBD 通讯失败："+zh, "cannot judge (communication): OBD communication failed: "+en+" (is the ignition on?)")
	}
	// What was not read has no value: unknown, not off or none (the A7 zeros are placeholders).
	if _, ok := unread[obd.ItemMIL]; ok || len(in.Unread) == 0 {
		out.A7.FaultLight = 0
	}
	if _, ok := unread[obd.ItemDTCsStored]; ok || len(in.Unread) == 0 {
		out.DTCs, out.DTCText, out.A7.FaultCodeNum = nil, nil, 0
	}
	if _, ok := unread[obd.ItemReadiness]; ok || len(in.Unread) == 0 {
		out.Incomplete, out.IncompleteCounted, out.A7.ReadyStateUndone = nil, nil, 0
	}
	for _, r := range []string{"mil", "dtc", "readiness", "vin", "calid_cvn"} {
		add(r, "not_checked", "无法判定，未检查", "not checked: cannot judge (communication)")
	}
}

// unreadText is one unread item's step and error, on one line.
func unreadText(u obd.Unread) string {
	return strings.Join(strings.Fields(u.Step+" "+u.Status+": "+u.Reason), " ")
}

// unreadItems names the unread items for people, each once.
func unreadItems(us []obd.Unread, lang string) []string {
	names := map[string][2]string{
		obd.ItemMIL: {"MIL", "故障指示灯"}, obd.ItemReadiness: {"readiness monitors", "就绪状态"},
		obd.ItemDTCsStored: {"stored trouble codes", "已确认故障码"}, obd.ItemDTCsPending: {"pending trouble codes", "待定故障码"},
		obd.ItemDTCsPermanent: {"permanent trouble codes", "永久故障码"},
	}
	var out []string
	for _, u := range us {
		n, ok := names[u.Item]
		if !ok {
			n = [2]string{u.Item, u.Item}
		}
		s := n[0]
		if lang == "zh" {
			s = n[1]
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Failures returns the lines that failed.
func (c OBDCheck) Failures() []CheckLine {
	var out []CheckLine
	for _, l := range c.Lines {
		if l.Status == "fail" {
			out = append(out, l)
		}
	}
	return out
}

// monitorNames renders monitor keys (obd.Mon…) for people, in both languages.
func monitorNames(keys []string) (zh, en string) {
	var z, e []string
	for _, k := range keys {
		z = append(z, obd.MonitorLabel(k, "zh"))
		e = append(e, obd.MonitorLabel(k, "en"))
	}
	return strings.Join(z, "、"), strings.Join(e, ", ")
}

func normVIN(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

func uniqueUpper(in []string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, s := range in {
		s = strings.ToUpper(strings.TrimSpace(s))
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	return out
}

// OBDInputFromScan fills the check's input from a full scan (obd.Scan). A nil report (the car
// did not answer the first request) is a communication failure, reason 3 (连接后不能通讯); so is
// a report whose MIL, readiness or DTC reads did not succeed (rep.Unread, carried along):
// communication is OK only when all of them were read. DTCs are the stored (confirmed,
// service 03) codes, the ones the inspection rule counts.
func OBDInputFromScan(rep *obd.Report, vinExpected string) OBDInput {
	in := OBDInput{VINExpected: vinExpected}
	if rep == nil {
		in.FailureReason = 3
		return in
	}
	in.Unread = append([]obd.Unread(nil), rep.Unread...)
	// A report that lacks a value without saying why (built by hand, or cut short) has not
	// read it all the same.
	for _, m := range []struct {
		item    string
		missing bool
	}{{obd.ItemMIL, rep.MIL == nil}, {obd.ItemReadiness, rep.Readiness == nil}, {obd.ItemDTCsStored, rep.DTCs.Stored == nil}} {
		if m.missing && !rep.IsUnread(m.item) {
			in.Unread = append(in.Unread, obd.Unread{Item: m.item, Status: obd.StepNotRun, Reason: "not in the scan report"})
		}
	}
	in.CommunicationOK = len(in.Unread) == 0
	if !in.CommunicationOK {
		in.FailureReason = 3
	}
	in.MIL = rep.MIL != nil && *rep.MIL
	for _, d := range rep.DTCs.Stored {
		in.DTCs = append(in.DTCs, d.Code)
		if d.Description != "" {
			if in.DTCText == nil {
				in.DTCText = map[string]string{}
			}
			in.DTCText[strings.ToUpper(d.Code)] = d.Description
		}
	}
	if rep.Readiness != nil {
		in.Incomplete = append([]string{}, rep.Readiness.Incomplete...)
	}
	for _, e := range rep.ECUs {
		if e.Readiness != nil && (in.Compression == nil || e.Readiness.Compression) {
			c := e.Readiness.Compression
			in.Compression = &c
		}
	}
	in.VINRead = rep.VIN
	for _, e := range rep.ECUs {
		n := max(len(e.CALIDs), len(e.CVNs))
		for i := range n {
			c := Calibration{ECU: e.ID}
			if i < len(e.CALIDs) {
				c.CALID = e.CALIDs[i]
			}
			if i < len(e.CVNs) {
				c.CVN = e.CVNs[i]
			}
			in.Calibrations = append(in.Calibrations, c)
		}
	}
	if rep.OdometerKM != nil {
		in.OdometerKm = *rep.OdometerKM
	}
	return in
}

// ClosedLoopSeen reports whether a scan read fuel system status "closed loop" (PID 03, first
// system, value 02) from any ECU: the car has closed-loop fuel control, so GB 18285-2018
// judges its λ (im-emission.md §6.1). An open-loop answer proves nothing (a cold engine runs
// open loop), so false means "not seen", never "no closed loop".
func ClosedLoopSeen(rep *obd.Report) bool {
	if rep == nil {
		return false
	}
	for _, v := range rep.Live {
		if v.PID == 0x03 && v.Value == 0x02 {
			return true
		}
	}
	return false
}

// CompressionOf is the engine type the scan's readiness answers reported (PID 01 byte B bit 3):
// true compression ignition, false spark; nil when no ECU answered it.
func CompressionOf(rep *obd.Report) *bool {
	if rep == nil {
		return nil
	}
	return OBDInputFromScan(rep, "").Compression
}
