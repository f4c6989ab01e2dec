package workorder

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/ehr"
	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/obd"
)

// NewOrder opens a work order. JSON names are the API's.
type NewOrder struct {
	Plate          string `json:"plate"`
	PlateColor     string `json:"plate_color"`
	VIN            string `json:"vin,omitempty"`
	MileageKm      *int64 `json:"mileage_km,omitempty"`
	Fault          string `json:"fault_description,omitempty"`
	Bay            string `json:"bay,omitempty"`
	RepairDate     string `json:"repair_date,omitempty"` // yyyyMMdd; default today
	EmissionRepair bool   `json:"emission_repair,omitempty"`
	TestNo         string `json:"test_no,omitempty"`
	FailedTestEnd  string `json:"failed_test_end,omitempty"` // yyyyMMdd, or with its time: yyyyMMddHHmmss / yyyy-MM-dd HH:mm:ss
	OwnerName      string `json:"owner_name,omitempty"`
	OwnerPhone     string `json:"owner_phone,omitempty"`
	Items          []Item `json:"items,omitempty"`
	Parts          []Part `json:"parts,omitempty"`
	// ConfirmVINCheckDigit accepts a Chinese VIN (WMI starting with L) whose check digit is
	// wrong, with the reason; without it such a VIN is refused.
	ConfirmVINCheckDigit *Confirmation `json:"confirm_vin_check_digit,omitempty"`
}

// Patch changes fields of an open order, or (in a RevisionRequest) of a settled one. Nil
// fields stay as they are; an empty string clears an optional field.
type Patch struct {
	Plate          *string `json:"plate,omitempty"`
	PlateColor     *string `json:"plate_color,omitempty"`
	VIN            *string `json:"vin,omitempty"`
	MileageKm      *int64  `json:"mileage_km,omitempty"`
	Fault          *string `json:"fault_description,omitempty"`
	Bay            *string `json:"bay,omitempty"`
	RepairDate     *string `json:"repair_date,omitempty"`
	EmissionRepair *bool   `json:"emission_repair,omitempty"`
	TestNo         *string `json:"test_no,omitempty"`
	FailedTestEnd  *string `json:"failed_test_end,omitempty"`
	OwnerName      *string `json:"owner_name,omitempty"`
	OwnerPhone     *string `json:"owner_phone,omitempty"`
	Items          *[]Item `json:"items,omitempty"`
	Parts          *[]Part `json:"parts,omitempty"`
	// ConfirmVINCheckDigit: as in NewOrder. ConfirmVINMismatch keeps a VIN that differs from
	// the one read from the car by an attached scan, with the reason.
	ConfirmVINCheckDigit *Confirmation `json:"confirm_vin_check_digit,omitempty"`
	ConfirmVINMismatch   *Confirmation `json:"confirm_vin_mismatch,omitempty"`
}

// SettleRequest settles an order with the number of its JT/T 1133 settlement list.
type SettleRequest struct {
	CostListCode string `json:"costlistcode"`
	SettleDate   string `json:"settle_date,omitempty"` // yyyyMMdd; default today
	// NoSelfTestReason says why an emission repair settles without a judged post-repair
	// self-test; without it such a settlement is refused (ErrNoSelfTest). Ignored when the
	// order has a judged self-test.
	NoSelfTestReason string `json:"no_selftest_reason,omitempty"`
	// Trail, when set, runs in the settlement transaction once the records are queued.
	Trail Trail `json:"-"`
}

// Trail records who settled or corrected an order (the API writes its audit entry there): it
// runs inside the transaction with what was produced, so the entry commits with the
// settlement or not at all; an error aborts the settlement.
type Trail func(tx *buffer.Tx, st *Settlement) error

// RevisionRequest corrects a settled order: the changes and why. SettleDate may change too.
type RevisionRequest struct {
	Reason     string  `json:"reason"`
	SettleDate *string `json:"settle_date,omitempty"`
	// NoSelfTestReason, when set, states (or restates) why an emission repair has no judged
	// self-test, as SettleRequest.NoSelfTestReason.
	NoSelfTestReason *string `json:"no_selftest_reason,omitempty"`
	// Trail, when set, runs in the revision's transaction once the records are queued.
	Trail Trail `json:"-"`
	Patch
}

// Limits of input fields the record does not bound itself.
const (
	maxTestNo = 64
	maxPhone  = 20
	maxName   = 50
	maxReason = 200
	maxItems  = 200
)

// normPlate returns the plate in its stored form (ehr.NormPlate: no dot, no spaces, upper
// case) or refuses one that fits no Chinese plate form.
func normPlate(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", inputErr("plate", "the plate number is missing")
	}
	p, err := ehr.NormPlate(s)
	if err != nil {
		return "", &RuleError{Field: "plate", Code: "plate_format", Msg: err.Error()}
	}
	return p, nil
}

// chineseVIN reports whether a VIN was assigned in China (WMI starting with L), where GB 16735
// makes the check digit mandatory.
func chineseVIN(v string) bool { return strings.HasPrefix(v, "L") }

// checkDigitWarning is the warning an order carries for a VIN with a wrong check digit.
func checkDigitWarning(v string) ehr.Problem {
	return ehr.Problem{Field: "vin", Record: "basicInfo.vin", Code: "check_digit",
		Message: fmt.Sprintf("the VIN %s has check digit %c at position 9, %c was expected: check the VIN", v, v[8], expectedCheckDigit(v))}
}

// setVINWarnings replaces the order's VIN warnings (check digit, mismatch) with the current
// ones; settlement replaces all warnings with the validator's.
func setVINWarnings(o *Order) {
	ws := []ehr.Problem{}
	for _, w := range o.Warnings {
		if w.Field != "vin" {
			ws = append(ws, w)
		}
	}
	if o.VIN != "" && obd.VINWellFormed(o.VIN) && !obd.VINCheckDigitOK(o.VIN) {
		ws = append(ws, checkDigitWarning(o.VIN))
	}
	if o.VINMismatch {
		ws = append(ws, ehr.Problem{Field: "vin", Record: "basicInfo.vin", Code: "vin_mismatch",
			Message: fmt.Sprintf("the VIN read from the car (%s) differs from the typed VIN (%s)", o.VINRead, o.VIN)})
	}
	o.Warnings = ws
}

func normVIN(s string) (string, error) {
	v := strings.ToUpper(strings.TrimSpace(s))
	if v == "" {
		return "", nil
	}
	if len(v) != 17 {
		return "", inputErr("vin", "%q has %d characters, a VIN has 17", clip(v), utf8.RuneCountInString(v))
	}
	if !obd.VINWellFormed(v) {
		return "", inputErr("vin", "%q has characters outside 0-9 and A-Z without I, O, Q", v)
	}
	return v, nil
}

func normDate(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if _, err := ehr.ParseDate(s); err != nil || len(s) != 8 {
		return "", inputErr(field, "%q is not a date in the form yyyyMMdd", clip(s))
	}
	return s, nil
}

// normEndTime normalises the end of the failed inspection: a day (yyyyMMdd) or, better, the
// moment (yyyyMMddHHmmss, or yyyy-MM-dd HH:mm:ss as platforms print DetectEndTime), kept as
// yyyyMMdd or yyyyMMddHHmmss. The time matters when the repair starts the same day: platforms
// compare the repair time with it.
func normEndTime(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) == 19 {
		if t, err := time.Parse("2006-01-02 15:04:05", s); err == nil {
			return t.Format(FailedEndLayout), nil
		}
	}
	if len(s) == 14 {
		if _, err := time.Parse(FailedEndLayout, s); err == nil {
			return s, nil
		}
	}
	if len(s) == 8 || s == "" {
		if d, err := normDate(field, s); err == nil {
			return d, nil
		}
	}
	return "", inputErr(field, "%q is neither a day yyyyMMdd nor a moment yyyyMMddHHmmss or yyyy-MM-dd HH:mm:ss", clip(s))
}

// FailedEndLayout is Order.FailedTestEnd with its time of day.
const FailedEndLayout = "20060102150405"

// FailedEnd parses Order.FailedTestEnd in zone: the moment when it has one (hasTime), else the
// start of its day.
func FailedEnd(s string, zone *time.Location) (t time.Time, hasTime bool, err error) {
	if len(s) == len(FailedEndLayout) {
		t, err = time.ParseInLocation(FailedEndLayout, s, zone)
		return t, true, err
	}
	t, err = time.ParseInLocation("20060102", s, zone)
	return t, false, err
}

func checkMileage(km *int64) error {
	if km != nil && (*km < 0 || *km > ehr.MaxMileageKm) {
		return inputErr("mileage_km", "%d is not a mileage in km (0 to %d)", *km, ehr.MaxMileageKm)
	}
	return nil
}

func checkText(field, s string, max int) error {
	if n := utf8.RuneCountInString(s); n > max {
		return inputErr(field, "%d characters, at most %d", n, max)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' }) {
		return inputErr(field, "contains control characters")
	}
	return nil
}

func checkPhone(s string) error {
	if len(s) > maxPhone {
		return inputErr("owner_phone", "at most %d characters", maxPhone)
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == ' ') {
			return inputErr("owner_phone", "only digits, '+', '-' and spaces")
		}
	}
	return nil
}

func normItems(items []Item) ([]Item, error) {
	if len(items) > maxItems {
		return nil, inputErr("items", "%d items, at most %d", len(items), maxItems)
	}
	out := make([]Item, 0, len(items))
	for i, it := range items {
		f := fmt.Sprintf("items[%d]", i)
		it.Name = strings.TrimSpace(it.Name)
		if it.Name == "" {
			return nil, inputErr(f+".name", "the repair item has no name")
		}
		if err := checkText(f+".name", it.Name, ehr.MaxProject); err != nil {
			return nil, err
		}
		h, err := ehr.NormHours(it.Hours.String())
		if err != nil {
			return nil, inputErr(f+".hours", "%q: %v (hours ≥ 0 with at most one decimal)", clip(it.Hours.String()), err)
		}
		it.Hours = json.Number(h)
		if it.Waste, err = normWaste(f+".waste", it.Waste); err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, nil
}

func normParts(parts []Part) ([]Part, error) {
	if len(parts) > maxItems {
		return nil, inputErr("parts", "%d parts, at most %d", len(parts), maxItems)
	}
	out := make([]Part, 0, len(parts))
	for i, p := range parts {
		f := fmt.Sprintf("parts[%d]", i)
		p.Name, p.Code = strings.TrimSpace(p.Name), strings.TrimSpace(p.Code)
		if p.Name == "" {
			return nil, inputErr(f+".name", "the part has no name")
		}
		if err := checkText(f+".name", p.Name, ehr.MaxPartName); err != nil {
			return nil, err
		}
		if err := checkText(f+".code", p.Code, ehr.MaxPartCode); err != nil {
			return nil, err
		}
		q, err := ehr.NormQuantity(p.Quantity.String())
		if err != nil {
			return nil, inputErr(f+".quantity", "%q: %v (a quantity > 0 with at most two decimals)", clip(p.Quantity.String()), err)
		}
		p.Quantity = json.Number(q)
		if p.Waste, err = normWaste(f+".waste", p.Waste); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// normWaste checks a waste entry against the catalogue (wire.WasteCategories).
func normWaste(field string, w *Waste) (*Waste, error) {
	if w == nil {
		return nil, nil
	}
	c := *w
	cat, ok := wire.WasteCategoryByName(strings.TrimSpace(c.Category))
	if !ok {
		return nil, inputErr(field+".category", "%q: want one of %s", clip(c.Category), strings.Join(wire.WasteCategoryNames(), ", "))
	}
	c.Category = cat.Name
	if !slices.Contains(cat.Units, c.Unit) {
		return nil, inputErr(field+".unit", "%q: %s is counted in %s", clip(c.Unit), cat.Name, strings.Join(cat.Units, " or "))
	}
	q, err := NormWasteQuantity(c.Quantity.String())
	if err != nil {
		return nil, inputErr(field+".quantity", "%q: %v", clip(c.Quantity.String()), err)
	}
	c.Quantity = json.Number(q)
	return &c, nil
}

// NormWasteQuantity checks a waste quantity (above 0, at most two decimals, below a billion)
// and returns it without trailing zeros, as the waste record carries it.
func NormWasteQuantity(s string) (string, error) {
	h, err := Hundredths(s)
	if err != nil {
		return "", err
	}
	if h <= 0 {
		return "", errors.New("want a quantity above 0")
	}
	return FormatHundredths(h), nil
}

// Hundredths parses a decimal with at most two places into hundredths, so quantities add up
// exactly.
func Hundredths(s string) (int64, error) {
	s = strings.TrimSpace(s)
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || len(whole) > 9 || len(frac) > 2 || (dot && frac == "") {
		return 0, errors.New("want a number with at most two decimals")
	}
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return 0, errors.New("want a number with at most two decimals")
		}
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt((frac + "0")[:2], 10, 64)
	}
	return w*100 + f, nil
}

// FormatHundredths writes hundredths as a decimal without trailing zeros ("4.5", "2").
func FormatHundredths(h int64) string {
	sign := ""
	if h < 0 {
		sign, h = "-", -h
	}
	s := fmt.Sprintf("%s%d.%02d", sign, h/100, h%100)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// apply checks a patch and applies it to o. Fields that feed the record are checked here only
// for shape; the record validator has the last word at settlement.
func (p *Patch) apply(o *Order, knownBay func(string) bool) (changed []string, err error) {
	set := func(name string) { changed = append(changed, name) }
	if p.Plate != nil {
		v, err := normPlate(*p.Plate)
		if err != nil {
			return nil, err
		}
		if v != o.Plate {
			o.Plate = v
			set("plate")
		}
	}
	if p.PlateColor != nil {
		if !validPlateColor(*p.PlateColor) {
			return nil, inputErr("plate_color", "%q: want one of %s", clip(*p.PlateColor), strings.Join(PlateColors, ", "))
		}
		o.PlateColor = *p.PlateColor
		set("plate_color")
	}
	if p.VIN != nil {
		v, err := normVIN(*p.VIN)
		if err != nil {
			return nil, err
		}
		cdReason, cdOK, err := confirmReason("confirm_vin_check_digit", p.ConfirmVINCheckDigit)
		if err != nil {
			return nil, err
		}
		mmReason, mmOK, err := confirmReason("confirm_vin_mismatch", p.ConfirmVINMismatch)
		if err != nil {
			return nil, err
		}
		if v == o.VIN && v != "" && (mmOK && o.VINMismatch && o.VINReason == "" || cdOK && chineseVIN(v) && !obd.VINCheckDigitOK(v) && o.VINCheckDigitReason == "") {
			// A confirmation of the VIN the order already has: an order kept from before these
			// checks, which settlement refuses until a person decides.
			if mmOK && o.VINMismatch {
				o.VINSource, o.VINReason = VINTypedConfirmed, mmReason
			}
			if cdOK && chineseVIN(v) && !obd.VINCheckDigitOK(v) {
				o.VINCheckDigitReason = cdReason
			}
			set("vin")
		}
		if v != o.VIN {
			if v != "" && chineseVIN(v) && !obd.VINCheckDigitOK(v) {
				if !cdOK {
					d := expectedCheckDigit(v)
					return nil, &RuleError{Field: "vin", Code: "check_digit", Expected: string(d),
						Msg: fmt.Sprintf("%s has check digit %c at position 9 but %c is expected: Chinese VINs (starting with L) carry a valid check digit (GB 16735); check the VIN on the car, or send confirm_vin_check_digit with the reason to keep it", v, v[8], d)}
				}
				o.VINCheckDigitReason = cdReason
			} else {
				o.VINCheckDigitReason = ""
			}
			// A VIN typed against the car's own answer needs a person's confirmation.
			if v != "" && o.VINRead != "" && v != o.VINRead && !mmOK {
				return nil, &VINMismatchError{OrderID: o.ID, OrderVIN: v, CarVIN: o.VINRead}
			}
			o.VIN = v
			set("vin")
			// A person chose this VIN: it is typed unless it is what the car reported.
			o.VINSource = VINTyped
			o.VINMismatch = false
			o.VINReason = ""
			if v == "" {
				o.VINSource = ""
			} else if o.VINRead != "" {
				if v == o.VINRead {
					o.VINSource = VINOBD
				} else {
					o.VINSource, o.VINMismatch, o.VINReason = VINTypedConfirmed, true, mmReason
				}
			}
			setVINWarnings(o)
		}
	}
	if p.MileageKm != nil {
		if err := checkMileage(p.MileageKm); err != nil {
			return nil, err
		}
		km := *p.MileageKm
		o.MileageKm = &km
		set("mileage_km")
	}
	if p.Fault != nil {
		if err := checkText("fault_description", *p.Fault, ehr.MaxFault); err != nil {
			return nil, err
		}
		o.Fault = strings.TrimSpace(*p.Fault)
		set("fault_description")
	}
	if p.Bay != nil {
		if *p.Bay != "" && knownBay != nil && !knownBay(*p.Bay) {
			return nil, inputErr("bay", "%q is not a configured bay", clip(*p.Bay))
		}
		o.Bay = *p.Bay
		set("bay")
	}
	if p.RepairDate != nil {
		d, err := normDate("repair_date", *p.RepairDate)
		if err != nil {
			return nil, err
		}
		if d == "" {
			return nil, inputErr("repair_date", "the repair date cannot be cleared")
		}
		o.RepairDate = d
		set("repair_date")
	}
	if p.EmissionRepair != nil {
		o.EmissionRepair = *p.EmissionRepair
		set("emission_repair")
	}
	if p.TestNo != nil {
		if err := checkText("test_no", strings.TrimSpace(*p.TestNo), maxTestNo); err != nil {
			return nil, err
		}
		o.TestNo = strings.TrimSpace(*p.TestNo)
		set("test_no")
	}
	if p.FailedTestEnd != nil {
		d, err := normEndTime("failed_test_end", *p.FailedTestEnd)
		if err != nil {
			return nil, err
		}
		o.FailedTestEnd = d
		set("failed_test_end")
	}
	if p.OwnerName != nil || p.OwnerPhone != nil {
		ow := Owner{}
		if o.Owner != nil {
			ow = *o.Owner
		}
		if p.OwnerName != nil {
			if err := checkText("owner_name", *p.OwnerName, maxName); err != nil {
				return nil, err
			}
			ow.Name = strings.TrimSpace(*p.OwnerName)
		}
		if p.OwnerPhone != nil {
			if err := checkPhone(*p.OwnerPhone); err != nil {
				return nil, err
			}
			ow.Phone = strings.TrimSpace(*p.OwnerPhone)
		}
		o.Owner = &ow
		if ow == (Owner{}) {
			o.Owner = nil
		}
		// The owner is not part of the record: not listed as a change of it.
	}
	if p.Items != nil {
		items, err := normItems(*p.Items)
		if err != nil {
			return nil, err
		}
		o.Items = items
		set("items")
	}
	if p.Parts != nil {
		parts, err := normParts(*p.Parts)
		if err != nil {
			return nil, err
		}
		o.Parts = parts
		set("parts")
	}
	return changed, nil
}

// ownerOnly reports whether the patch touches nothing but the owner's data.
func (p *Patch) ownerOnly() bool {
	q := *p
	q.OwnerName, q.OwnerPhone = nil, nil
	return (p.OwnerName != nil || p.OwnerPhone != nil) && q == (Patch{})
}

// expectedCheckDigit is the check digit position 9 of a well-formed VIN should hold.
func expectedCheckDigit(vin string) byte {
	d, _ := obd.VINCheckDigit(vin)
	return d
}
