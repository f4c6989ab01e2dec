package ehr

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/obd"
)

// Length limits of the wire fields (characters). Proxies from platform database columns
// (ehr-record.md §3, §9 rules 7–17); unconfirmed against JT/T 1132.3.
const (
	MaxPlate        = 8
	MaxCompany      = 100
	MaxFault        = 200
	MaxCostListCode = 50
	MaxPartName     = 50
	MaxPartCode     = 50
	MaxProject      = 200
	MaxMileageKm    = 99_999_999 // double(8,0)
)

// Thresholds for warnings (recommended rules, ours).
const (
	// AbsurdItemHours: one repair item taking more labour than this is probably a typo
	// (minutes entered as hours).
	AbsurdItemHours = 24.0
	// AbsurdTotalHours: the whole order.
	AbsurdTotalHours = 100.0
)

// Problem is one finding of Validate. Record is the path in the national form
// ("basicInfo.vin", "vehiclepartslist[1].partscode"); Field is the work-order field the user
// changes to fix it ("vin", "parts[1].code").
type Problem struct {
	Field   string `json:"field"`
	Record  string `json:"record,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Field + ": " + p.Message }

// Checks are the facts beyond the record that validation needs.
type Checks struct {
	Now func() time.Time // today's date (China) bounds settledate; nil = time.Now
	// LastMileageKm is the mileage of this VIN's latest earlier record; nil when none.
	LastMileageKm *int64
	// CostListCodeUsed: another settled order of this company already has this costlistcode.
	CostListCodeUsed bool
	// Emission repairs: the failed inspection's report number and, when known, its end time.
	Emission      bool
	TestNo        string
	FailedTestEnd time.Time
	// VINMismatch: the VIN read from the car differs from the typed one; an error unless
	// VINMismatchConfirmed (a person kept the typed VIN with a reason), then a warning.
	VINMismatch          bool
	VINMismatchConfirmed bool
	VINTyped             string
	VINRead              string
	// VINCheckDigitConfirmed: a Chinese VIN with a wrong check digit is known to be right (a
	// person confirmed it with a reason, or the car itself reported it): a warning, not an
	// error.
	VINCheckDigitConfirmed bool
}

// Result holds what Validate found. The record may be sent only when Errors is empty.
type Result struct {
	Errors   []Problem `json:"errors"`
	Warnings []Problem `json:"warnings"`
}

// OK reports whether the record may be sent.
func (r Result) OK() bool { return len(r.Errors) == 0 }

func (r *Result) errf(field, record, code, format string, a ...any) {
	r.Errors = append(r.Errors, Problem{Field: field, Record: record, Code: code, Message: fmt.Sprintf(format, a...)})
}

func (r *Result) warnf(field, record, code, format string, a ...any) {
	r.Warnings = append(r.Warnings, Problem{Field: field, Record: record, Code: code, Message: fmt.Sprintf(format, a...)})
}

// Validate checks the record exactly as it will be sent (rules of ehr-record.md §9). Errors and
// warnings never nil, so they encode as [].
func Validate(rec wire.EHRRecord, c Checks) Result {
	r := Result{Errors: []Problem{}, Warnings: []Problem{}}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	b := rec.Basic
	runes := utf8.RuneCountInString

	switch n := runes(b.Plate); {
	case n == 0:
		r.errf("plate", "basicInfo.vehicleplatenumber", "required", "the plate number is missing")
	case n > MaxPlate:
		r.errf("plate", "basicInfo.vehicleplatenumber", "too_long", "the plate %q has %d characters, at most %d are allowed", b.Plate, n, MaxPlate)
	case hasControl(b.Plate, false) || !utf8.ValidString(b.Plate):
		// reported below as control_char
	default:
		if p, err := NormPlate(b.Plate); err != nil {
			r.errf("plate", "basicInfo.vehicleplatenumber", "plate_format", "%v", err)
		} else if p != b.Plate {
			r.errf("plate", "basicInfo.vehicleplatenumber", "plate_format", "the plate %q is not in its normalised form %q", b.Plate, p)
		}
	}
	switch n := runes(b.Company); {
	case n == 0:
		r.errf("company", "basicInfo.companyname", "required", "the company name is missing (set company.name in the config)")
	case n > MaxCompany:
		r.errf("company", "basicInfo.companyname", "too_long", "the company name has %d characters, at most %d are allowed", n, MaxCompany)
	}

	switch {
	case b.VIN == "":
		r.errf("vin", "basicInfo.vin", "required", "the VIN is missing: type it or scan the car (a VIN is never invented)")
	case len(b.VIN) != 17:
		r.errf("vin", "basicInfo.vin", "length", "the VIN %q has %d characters, it must have 17", b.VIN, runes(b.VIN))
	case !obd.VINWellFormed(b.VIN):
		r.errf("vin", "basicInfo.vin", "charset", "the VIN %q has characters outside 0-9 and A-Z without I, O, Q", b.VIN)
	case !obd.VINCheckDigitOK(b.VIN) && strings.HasPrefix(b.VIN, "L") && !c.VINCheckDigitConfirmed:
		// Assigned in China: GB 16735 makes the check digit mandatory.
		want, _ := obd.VINCheckDigit(b.VIN)
		r.errf("vin", "basicInfo.vin", "check_digit", "the VIN %q has check digit %c at position 9, %c is expected for a Chinese VIN: correct the VIN, or confirm it with a reason", b.VIN, b.VIN[8], want)
	case !obd.VINCheckDigitOK(b.VIN):
		// Some markets do not use the check digit: a warning, never a rejection.
		want, _ := obd.VINCheckDigit(b.VIN)
		r.warnf("vin", "basicInfo.vin", "check_digit", "the VIN %q has check digit %c at position 9, %c was expected: check the VIN", b.VIN, b.VIN[8], want)
	}
	switch {
	case c.VINMismatch && !c.VINMismatchConfirmed:
		r.errf("vin", "basicInfo.vin", "vin_mismatch", "the VIN read from the car (%s) differs from the typed VIN (%s): correct the VIN, or confirm the typed one with a reason", c.VINRead, c.VINTyped)
	case c.VINMismatch:
		r.warnf("vin", "basicInfo.vin", "vin_mismatch", "the VIN read from the car (%s) differs from the typed VIN (%s)", c.VINRead, c.VINTyped)
	}

	today := now().In(Shanghai).Format(DateLayout)
	repair, rerr := checkDate(&r, "repair_date", "basicInfo.repairdate", b.RepairDate, "repair date")
	settle, serr := checkDate(&r, "settle_date", "basicInfo.settledate", b.SettleDate, "settlement date")
	if rerr == nil && serr == nil && repair > settle {
		r.errf("settle_date", "basicInfo.settledate", "before_repair", "the settlement date %s is before the repair date %s", settle, repair)
	}
	if serr == nil && settle > today {
		r.errf("settle_date", "basicInfo.settledate", "future", "the settlement date %s is in the future (today is %s)", settle, today)
	}
	if rerr == nil && repair > today {
		r.errf("repair_date", "basicInfo.repairdate", "future", "the repair date %s is in the future (today is %s)", repair, today)
	}

	if b.MileageKm == "" {
		r.errf("mileage_km", "basicInfo.repairmileage", "required", "the mileage is missing: enter the odometer reading in km")
	} else if km, err := strconv.ParseInt(b.MileageKm, 10, 64); err != nil || km < 0 || strings.HasPrefix(b.MileageKm, "+") {
		r.errf("mileage_km", "basicInfo.repairmileage", "format", "the mileage %q is not a non-negative whole number of km", b.MileageKm)
	} else if km > MaxMileageKm {
		r.errf("mileage_km", "basicInfo.repairmileage", "too_large", "the mileage %d km is larger than %d", km, MaxMileageKm)
	} else if c.LastMileageKm != nil && km < *c.LastMileageKm {
		r.warnf("mileage_km", "basicInfo.repairmileage", "mileage_decreased", "the mileage %d km is below the %d km of this VIN's last record: check the odometer reading", km, *c.LastMileageKm)
	}

	switch n := runes(b.Fault); {
	case strings.TrimSpace(b.Fault) == "" || b.Fault == EmissionPrefix+"：":
		r.errf("fault_description", "basicInfo.faultdescription", "required", "the fault description is missing: describe the fault or attach a scan")
	case n > MaxFault:
		r.errf("fault_description", "basicInfo.faultdescription", "too_long", "the fault description has %d characters, at most %d are allowed", n, MaxFault)
	}
	if c.Emission {
		if strings.TrimSpace(b.Fault) != "" && !strings.HasPrefix(b.Fault, EmissionPrefix) {
			r.errf("fault_description", "basicInfo.faultdescription", "emission_prefix", "an emission repair's fault description must start with %s", EmissionPrefix)
		}
		if strings.TrimSpace(c.TestNo) == "" {
			r.warnf("test_no", "", "test_no_missing", "an emission repair without the failed inspection's report number (test_no) cannot be matched by the I station")
		}
		if !c.FailedTestEnd.IsZero() && rerr == nil && repair < c.FailedTestEnd.In(Shanghai).Format(DateLayout) {
			r.errf("repair_date", "basicInfo.repairdate", "before_failed_test", "the repair date %s is before the failed inspection ended (%s); the I station will not accept it", repair, c.FailedTestEnd.In(Shanghai).Format(DateLayout))
		}
	}

	switch n := runes(b.CostListNo); {
	case strings.TrimSpace(b.CostListNo) == "":
		r.errf("costlistcode", "basicInfo.costlistcode", "required", "the settlement number (costlistcode) is missing")
	case n > MaxCostListCode:
		r.errf("costlistcode", "basicInfo.costlistcode", "too_long", "the settlement number has %d characters, at most %d are allowed", n, MaxCostListCode)
	case c.CostListCodeUsed:
		r.errf("costlistcode", "basicInfo.costlistcode", "duplicate", "the settlement number %q is already used by another settled order; use a new number or revise that order", b.CostListNo)
	}

	// Control characters (a pasted NUL, an escape from a barcode scanner) have no place in a
	// record the platform stores and prints; line breaks are allowed in the fault text only.
	texts := []struct{ field, record, v string }{
		{"plate", "basicInfo.vehicleplatenumber", b.Plate}, {"company", "basicInfo.companyname", b.Company},
		{"costlistcode", "basicInfo.costlistcode", b.CostListNo},
	}
	for i, p := range rec.Parts {
		texts = append(texts, struct{ field, record, v string }{fmt.Sprintf("parts[%d].name", i), fmt.Sprintf("vehiclepartslist[%d].partsname", i), p.Name},
			struct{ field, record, v string }{fmt.Sprintf("parts[%d].code", i), fmt.Sprintf("vehiclepartslist[%d].partscode", i), p.Code})
	}
	for i, it := range rec.Projects {
		texts = append(texts, struct{ field, record, v string }{fmt.Sprintf("items[%d].name", i), fmt.Sprintf("repairprojectlist[%d].repairproject", i), it.Name})
	}
	for _, x := range texts {
		if hasControl(x.v, false) || !utf8.ValidString(x.v) {
			r.errf(x.field, x.record, "control_char", "contains control characters or invalid UTF-8: retype it")
		}
	}
	if hasControl(b.Fault, true) || !utf8.ValidString(b.Fault) {
		r.errf("fault_description", "basicInfo.faultdescription", "control_char", "contains control characters or invalid UTF-8: retype it")
	}

	if rec.Parts == nil || rec.Projects == nil {
		r.errf("items", "", "null_list", "internal: a record list is null")
	}
	for i, p := range rec.Parts {
		f := fmt.Sprintf("parts[%d]", i)
		w := fmt.Sprintf("vehiclepartslist[%d]", i)
		switch n := runes(p.Name); {
		case strings.TrimSpace(p.Name) == "":
			r.errf(f+".name", w+".partsname", "required", "part %d has no name", i+1)
		case n > MaxPartName:
			r.errf(f+".name", w+".partsname", "too_long", "part %d's name has %d characters, at most %d are allowed", i+1, n, MaxPartName)
		}
		if n := runes(p.Code); n > MaxPartCode {
			r.errf(f+".code", w+".partscode", "too_long", "part %d's code has %d characters, at most %d are allowed", i+1, n, MaxPartCode)
		}
		if _, err := NormQuantity(p.Quantity); err != nil {
			r.errf(f+".quantity", w+".partsquantity", "format", "part %d's quantity %q: %v (a number > 0 with at most 2 decimals)", i+1, p.Quantity, err)
		}
	}
	total := 0.0
	for i, it := range rec.Projects {
		f := fmt.Sprintf("items[%d]", i)
		w := fmt.Sprintf("repairprojectlist[%d]", i)
		switch n := runes(it.Name); {
		case strings.TrimSpace(it.Name) == "":
			r.errf(f+".name", w+".repairproject", "required", "repair item %d has no name", i+1)
		case n > MaxProject:
			r.errf(f+".name", w+".repairproject", "too_long", "repair item %d's name has %d characters, at most %d are allowed", i+1, n, MaxProject)
		}
		if _, err := NormHours(it.Hours); err != nil {
			r.errf(f+".hours", w+".workinghours", "format", "repair item %d's hours %q: %v (a number ≥ 0 with at most 1 decimal)", i+1, it.Hours, err)
			continue
		}
		h, _ := strconv.ParseFloat(it.Hours, 64)
		total += h
		if h > AbsurdItemHours {
			r.warnf(f+".hours", w+".workinghours", "absurd_hours", "repair item %d takes %s hours: were minutes entered as hours?", i+1, it.Hours)
		}
	}
	if total > AbsurdTotalHours {
		r.warnf("items", "repairprojectlist", "absurd_hours", "the order totals %.1f labour hours", total)
	}
	return r
}

// checkDate validates a yyyyMMdd field and returns it for string comparison (yyyyMMdd sorts
// like the calendar).
func checkDate(r *Result, field, record, v, what string) (string, error) {
	if v == "" {
		r.errf(field, record, "required", "the %s is missing", what)
		return "", errDecimal
	}
	if _, err := ParseDate(v); err != nil || len(v) != 8 {
		r.errf(field, record, "format", "the %s %q is not a date in the form yyyyMMdd", what, v)
		return "", errDecimal
	}
	return v, nil
}

func hasControl(s string, lineBreaks bool) bool {
	for _, c := range s {
		if (c < 0x20 || c == 0x7f) && !(lineBreaks && (c == '\n' || c == '\t')) {
			return true
		}
	}
	return false
}
