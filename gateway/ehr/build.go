package ehr

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/obdgw/obdgw/gateway/wire"
)

// China keeps one time zone without daylight saving; a fixed zone avoids depending on the
// tzdata of the box (a minimal image may have none).
var Shanghai = time.FixedZone("CST", 8*60*60)

// DateLayout is the wire format of repairdate and settledate.
const DateLayout = "20060102"

// EmissionPrefix starts faultdescription of an emission repair (尾气治理), the mark I stations
// and regulators look for (ehr-record.md §6).
const EmissionPrefix = "尾气治理"

// ShortFault is the length (in characters) under which the technician's fault text is considered
// too thin and the scan's fault codes are added to it.
const ShortFault = 20

// Input is what a settled work order knows, before it becomes a record.
type Input struct {
	Company      string    // 维修企业名称, from the config
	Plate        string    // 车牌号码
	VIN          string    // 车辆识别代码, as typed or read from the car
	RepairDate   time.Time // 送修日期: the day the vehicle came in
	MileageKm    *int64    // 送修里程; nil when nobody entered it
	SettleDate   time.Time // 结算日期
	Fault        string    // the technician's 故障描述
	CostListCode string    // 结算清单编号
	Emission     bool      // an emission repair (M station)
	DTCs         []DTC     // fault codes of the scans attached to the order
	Items        []Item    // 维修项目
	Parts        []Part    // 维修配件
}

// DTC is a fault code read from the car with its Chinese description.
type DTC struct {
	Code        string // "P0420"
	Description string // "催化器效率低于阈值(第1排)"
	// Pending: a code the ECU has seen once but not confirmed (Mode 07); the fault text marks
	// it (待定) so nobody reads it as a confirmed fault.
	Pending bool
}

// PendingMark follows a pending code in the fault text.
const PendingMark = "(待定)"

// Item is a repair item with its labour hours as decimal text ("2.5").
type Item struct {
	Name  string
	Hours string
}

// Part is a part used, its code and its quantity as decimal text ("1", "2.5").
type Part struct {
	Name     string
	Code     string
	Quantity string
}

// Build turns the work order's facts into the national record. It does not validate: call
// Validate on the result, which checks exactly the bytes that will be sent.
func Build(in Input) wire.EHRRecord {
	rec := wire.EHRRecord{
		Basic: wire.EHRBasicInfo{
			Plate:      strings.TrimSpace(in.Plate),
			Company:    strings.TrimSpace(in.Company),
			VIN:        strings.ToUpper(strings.TrimSpace(in.VIN)),
			RepairDate: FormatDate(in.RepairDate),
			SettleDate: FormatDate(in.SettleDate),
			Fault:      FaultText(in.Fault, in.Emission, in.DTCs),
			CostListNo: strings.TrimSpace(in.CostListCode),
		},
		Parts:    make([]wire.EHRPart, 0, len(in.Parts)),
		Projects: make([]wire.EHRProject, 0, len(in.Items)),
	}
	if in.MileageKm != nil {
		rec.Basic.MileageKm = strconv.FormatInt(*in.MileageKm, 10)
	}
	for _, p := range in.Parts {
		q := p.Quantity
		if n, err := NormQuantity(q); err == nil {
			q = n
		}
		rec.Parts = append(rec.Parts, wire.EHRPart{Name: strings.TrimSpace(p.Name), Code: strings.TrimSpace(p.Code), Quantity: q})
	}
	for _, it := range in.Items {
		h := it.Hours
		if n, err := NormHours(h); err == nil {
			h = n
		}
		rec.Projects = append(rec.Projects, wire.EHRProject{Name: strings.TrimSpace(it.Name), Hours: h})
	}
	return rec
}

// FormatDate renders the calendar day of t in China as yyyyMMdd; the zero time gives "".
func FormatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(Shanghai).Format(DateLayout)
}

// ParseDate reads a yyyyMMdd date as midnight in China.
func ParseDate(s string) (time.Time, error) {
	return time.ParseInLocation(DateLayout, s, Shanghai)
}

// FaultText composes faultdescription: the technician's text, the scan's fault codes when that
// text is short (and does not already name them; a code listed twice keeps its first kind, so
// list confirmed codes before pending ones), and the 尾气治理 prefix for emission repairs.
// Codes are added only while the whole stays within the 200-character limit; the technician's
// own words are never cut (an over-long text fails validation instead).
func FaultText(tech string, emission bool, dtcs []DTC) string {
	text := strings.TrimSpace(tech)
	if emission {
		text = strings.TrimSpace(strings.TrimLeft(strings.TrimPrefix(text, EmissionPrefix), "：:，, "))
	}
	head := ""
	if emission {
		head = EmissionPrefix + "："
	}
	if utf8.RuneCountInString(text) < ShortFault && len(dtcs) > 0 {
		var codes []string
		seen := map[string]bool{}
		for _, d := range dtcs {
			code := strings.ToUpper(strings.TrimSpace(d.Code))
			if code == "" || seen[code] || strings.Contains(strings.ToUpper(text), code) {
				continue
			}
			seen[code] = true
			c := code
			if d.Pending {
				c += PendingMark
			}
			if desc := strings.TrimSpace(d.Description); desc != "" {
				c += " " + desc
			}
			codes = append(codes, c)
		}
		if len(codes) > 0 {
			sep := ""
			if text != "" {
				sep = "；"
			}
			added := 0
			for i := range codes {
				cand := head + text + sep + "读码" + strings.Join(codes[:i+1], "、")
				if utf8.RuneCountInString(cand) > MaxFault {
					break
				}
				added = i + 1
			}
			if added > 0 {
				text += sep + "读码" + strings.Join(codes[:added], "、")
			}
		}
	}
	if text == "" {
		return "" // nothing to say is a validation error, not a prefix alone
	}
	return head + text
}

// NormQuantity checks a part quantity (decimal text, > 0, at most two decimals) and returns it
// in its shortest form: "1.00" → "1", "2.50" → "2.5".
func NormQuantity(s string) (string, error) {
	ip, fp, err := splitDecimal(s, 2)
	if err != nil {
		return "", err
	}
	fp = strings.TrimRight(fp, "0")
	if strings.Trim(ip, "0") == "" && fp == "" {
		return "", errZero
	}
	if fp == "" {
		return ip, nil
	}
	return ip + "." + fp, nil
}

// NormHours checks labour hours (decimal text, ≥ 0, at most one decimal) and returns them with
// exactly one decimal, as the national clients send them: "1" → "1.0".
func NormHours(s string) (string, error) {
	ip, fp, err := splitDecimal(s, 1)
	if err != nil {
		return "", err
	}
	if fp == "" {
		fp = "0"
	}
	return ip + "." + fp, nil
}

type decimalError string

func (e decimalError) Error() string { return string(e) }

const (
	errDecimal decimalError = "not a decimal number"
	errZero    decimalError = "must be greater than zero"
)

// splitDecimal parses unsigned decimal text with at most places decimals, returning the integer
// part without leading zeros ("0" at least) and the fraction digits.
func splitDecimal(s string, places int) (ip, fp string, err error) {
	ip, fp, dot := strings.Cut(strings.TrimSpace(s), ".")
	if ip == "" || (dot && fp == "") {
		return "", "", errDecimal
	}
	for _, c := range ip + fp {
		if c < '0' || c > '9' {
			return "", "", errDecimal
		}
	}
	if len(fp) > places {
		return "", "", decimalError("more than " + strconv.Itoa(places) + " decimal places")
	}
	ip = strings.TrimLeft(ip, "0")
	if ip == "" {
		ip = "0"
	}
	if len(ip) > 10 {
		return "", "", decimalError("too large")
	}
	return ip, fp, nil
}
