package workorder

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/obdgw/obdgw/gateway/ehr"
)

// Status of an order.
type Status string

const (
	Open    Status = "open"
	Settled Status = "settled"
)

// VIN sources.
const (
	VINTyped = "typed" // entered by a person
	VINOBD   = "obd"   // read from the car (Mode 09), or typed and confirmed by the car
	// VINTypedConfirmed: typed, the car reported another VIN, and a person confirmed the typed
	// one with a reason (VINReason), e.g. a replaced engine ECU that reports its donor's VIN.
	VINTypedConfirmed = "typed_confirmed"
)

// Order is one work order as stored. Lists are never nil in JSON.
type Order struct {
	ID         string `json:"id"`
	Status     Status `json:"status"`
	Plate      string `json:"plate"`
	PlateColor string `json:"plate_color"`
	VIN        string `json:"vin,omitempty"`
	VINSource  string `json:"vin_source,omitempty"`
	// VINMismatch: the VIN read from the car (VINRead) differs from the typed VIN. Settling is
	// still possible (a replaced ECU can report another VIN) but the record carries a warning.
	VINMismatch bool   `json:"vin_mismatch,omitempty"`
	VINRead     string `json:"vin_read,omitempty"`
	// VINReason is why the typed VIN was kept against the car's (VINTypedConfirmed).
	VINReason string `json:"vin_reason,omitempty"`
	// VINCheckDigitReason is why a Chinese VIN with a wrong check digit was accepted.
	VINCheckDigitReason string `json:"vin_check_digit_reason,omitempty"`
	// VINConflict is a bay scan of another car that was kept but not attached; nil when none.
	VINConflict *VINConflict `json:"vin_conflict,omitempty"`

	MileageKm *int64 `json:"mileage_km,omitempty"`
	Fault     string `json:"fault_description,omitempty"`
	// FaultRecord is the faultdescription the record carries if settled now: the technician's
	// text, with the attached scans' codes when that text is short (pending ones marked 待定).
	FaultRecord string `json:"fault_record"`
	Bay         string `json:"bay,omitempty"`
	RepairDate  string `json:"repair_date"` // 送修日期 yyyyMMdd: the day the car came in

	EmissionRepair bool   `json:"emission_repair,omitempty"`
	TestNo         string `json:"test_no,omitempty"` // 检验报告编号 of the failed I-station test
	// FailedTestEnd is when the failed inspection ended (yyyyMMdd, or yyyyMMddHHmmss with its
	// time; FailedEnd parses it), when known: the repair date may not be earlier.
	FailedTestEnd string `json:"failed_test_end,omitempty"`
	// NoSelfTestReason is why an emission repair was settled without a judged post-repair
	// self-test (SettleRequest.NoSelfTestReason); the M-station record carries it.
	NoSelfTestReason string `json:"no_selftest_reason,omitempty"`

	// Owner is personal data for the shop only (never in a record, topic, event or log).
	Owner *Owner `json:"owner,omitempty"`

	Items []Item    `json:"items"`
	Parts []Part    `json:"parts"`
	Scans []ScanRef `json:"scans"`

	CostListCode string        `json:"costlistcode,omitempty"`
	SettleDate   string        `json:"settle_date,omitempty"`
	Revision     int           `json:"revision,omitempty"` // of the record; 0 while open
	Revisions    []Revision    `json:"revisions"`
	Warnings     []ehr.Problem `json:"warnings"`

	Created   time.Time  `json:"created"`
	Updated   time.Time  `json:"updated"`
	SettledAt *time.Time `json:"settled_at,omitempty"`
}

// VINConflict is a scan taken on the order's bay whose VIN differs from the order's: the scan
// is kept unattached until a person either corrects the order's VIN or confirms the typed one
// (POST /workorders/{id}/scans with the scan id and confirm_vin_mismatch).
type VINConflict struct {
	ScanID   string    `json:"scan_id"`
	OrderVIN string    `json:"order_vin"`
	CarVIN   string    `json:"car_vin"`
	Bay      string    `json:"bay,omitempty"`
	At       time.Time `json:"at"`
}

// Confirmation is a person's explicit decision to go on against a refusal, with the reason,
// which is kept on the order and travels with the record.
type Confirmation struct {
	Reason string `json:"reason"`
}

// Owner is the vehicle's owner or the person who brought it in.
type Owner struct {
	Name  string `json:"name,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// Item is a repair item (维修项目) with its labour hours, a decimal with at most one place.
type Item struct {
	Name  string      `json:"name"`
	Hours json.Number `json:"hours"`
	// Waste is what the item produced (the oil of an oil change), nil when nothing worth a
	// ledger line.
	Waste *Waste `json:"waste,omitempty"`
}

// Part is a part used (维修配件): name, code and quantity (decimal, at most two places).
type Part struct {
	Name     string      `json:"name"`
	Code     string      `json:"code"`
	Quantity json.Number `json:"quantity"`
	// Waste is what the replaced part leaves (the old battery), nil when nothing.
	Waste *Waste `json:"waste,omitempty"`
}

// Waste is the waste one item or part produced: a category of wire.WasteCategories, a
// quantity (decimal, at most two places, above 0) and its unit (kg, piece, L as the category
// allows). Settlement sends it in the waste record and the shop's waste ledger keeps it.
type Waste struct {
	Category string      `json:"category"`
	Quantity json.Number `json:"quantity"`
	Unit     string      `json:"unit"`
}

// ScanRef is a scan attached to an order: enough to write the fault text without reading the
// stored report again.
type ScanRef struct {
	ID   string    `json:"id"`
	At   time.Time `json:"at"`
	Bay  string    `json:"bay,omitempty"`
	VIN  string    `json:"vin,omitempty"`
	MIL  *bool     `json:"mil"` // nil (null) when the scan could not read it
	DTCs []ScanDTC `json:"dtcs"`
	// Unread names what the scan could not read (obd.Report.Unread items: "mil", "readiness",
	// "dtcs_stored", …): DTCs then lists only the codes that were read.
	Unread []string `json:"unread,omitempty"`
	// Note says why the scan was taken when it matters ("before clear", "after clear").
	Note string `json:"note,omitempty"`
}

// ScanDTC is a fault code of an attached scan.
type ScanDTC struct {
	Code        string `json:"code"`
	ECU         string `json:"ecu,omitempty"`
	Kind        string `json:"kind"` // stored, pending, permanent
	Description string `json:"description,omitempty"`
}

// Revision is one submission of the order's record.
type Revision struct {
	N        int       `json:"n"`
	At       time.Time `json:"at"`
	Reason   string    `json:"reason,omitempty"`
	Changed  []string  `json:"changed,omitempty"` // fields changed from the previous revision
	RecordID uint64    `json:"outbox_seq"`        // the outbox sequence of the record
}

// View returns a copy fit to show: without the owner unless withOwner. Lists are non-nil.
func (o Order) View(withOwner bool) Order {
	if !withOwner {
		o.Owner = nil
	} else if o.Owner != nil {
		c := *o.Owner
		o.Owner = &c
	}
	o.Items = append([]Item{}, o.Items...)
	o.Parts = append([]Part{}, o.Parts...)
	o.Scans = append([]ScanRef{}, o.Scans...)
	o.Revisions = append([]Revision{}, o.Revisions...)
	o.Warnings = append([]ehr.Problem{}, o.Warnings...)
	if o.Status == Open {
		// Orders stored before fault_record existed show it too.
		o.FaultRecord = ehr.FaultText(o.Fault, o.EmissionRepair, faultDTCs(&o))
	}
	return o
}

// Errors callers decide on.
var (
	ErrNotFound    = errors.New("workorder: no such work order")
	ErrScanMissing = errors.New("workorder: no such scan")
	ErrSettled     = errors.New("workorder: the order is settled; send a revision instead")
	ErrNotSettled  = errors.New("workorder: the order is not settled yet; settle it first")
	ErrDuplicate   = errors.New("workorder: request id already used")
	// ErrNoSelfTest: an emission repair settles only with a judged post-repair self-test, or
	// with a reason why none was made (SettleRequest.NoSelfTestReason).
	ErrNoSelfTest = errors.New("workorder: an emission repair (尾气治理) needs a judged post-repair self-test before it settles: " +
		"run one on the bay's rig (POST /api/v1/bays/{bay}/selftest, two_speed_idle for a petrol car, free_acceleration for a diesel) " +
		"or settle with no_selftest_reason saying why none was made")
)

// InputError is a bad value in a request, naming the field.
type InputError struct {
	Field string
	Msg   string
}

func (e *InputError) Error() string { return "workorder: " + e.Field + ": " + e.Msg }

// RuleError is a value of the right shape that breaks a rule of the record: a plate that fits
// no Chinese form, a Chinese VIN with a wrong check digit. Code names the rule; Expected is
// the check digit the VIN should carry (check_digit only). The API answers 422.
type RuleError struct {
	Field    string
	Code     string
	Msg      string
	Expected string
}

func (e *RuleError) Error() string { return "workorder: " + e.Field + ": " + e.Msg }

// VINMismatchError: the VIN read from the car (CarVIN) differs from the order's (OrderVIN).
// Nothing was attached. ScanID is the scan kept unattached (a bay scan), "" when nothing was
// kept. The API answers 409.
type VINMismatchError struct {
	OrderID  string
	ScanID   string
	OrderVIN string
	CarVIN   string
}

func (e *VINMismatchError) Error() string {
	return fmt.Sprintf("workorder: the car reports VIN %s but order %s has %s: correct the order's VIN if it was mistyped, "+
		"or check that the right car is on the bay; to keep the typed VIN (e.g. a replaced ECU) send confirm_vin_mismatch with the reason", e.CarVIN, e.OrderID, e.OrderVIN)
}

// confirmReason checks a confirmation: nil is no confirmation; a confirmation needs a reason.
func confirmReason(field string, c *Confirmation) (string, bool, error) {
	if c == nil {
		return "", false, nil
	}
	r := strings.TrimSpace(c.Reason)
	if r == "" {
		return "", false, inputErr(field+".reason", "missing: say why (it is kept with the record)")
	}
	if err := checkText(field+".reason", r, maxReason); err != nil {
		return "", false, err
	}
	return r, true, nil
}

func inputErr(field, format string, a ...any) error {
	return &InputError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// ValidationError is a settlement or revision blocked by the record validator. Problems name
// the work-order fields to fix; Warnings are what would have been carried along.
type ValidationError struct {
	Problems []ehr.Problem
	Warnings []ehr.Problem
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.String()
	}
	return "workorder: the record cannot be sent: " + strings.Join(msgs, "; ")
}

// Candidate is an open order a scan could belong to.
type Candidate struct {
	ID    string `json:"id"`
	Plate string `json:"plate"`
	VIN   string `json:"vin,omitempty"`
	Bay   string `json:"bay,omitempty"`
}

// AmbiguousError: a scan matched more than one open order. The scan is stored (ScanID); the
// technician picks one of Candidates and calls AttachStoredScan.
type AmbiguousError struct {
	ScanID     string      `json:"scan_id"`
	Reason     string      `json:"reason"` // "vin" or "bay"
	Candidates []Candidate `json:"candidates"`
}

func (e *AmbiguousError) Error() string {
	ids := make([]string, len(e.Candidates))
	for i, c := range e.Candidates {
		ids[i] = c.ID + " (" + c.Plate + ")"
	}
	return fmt.Sprintf("workorder: scan %s matches %d open orders by %s: %s; choose one", e.ScanID, len(e.Candidates), e.Reason, strings.Join(ids, ", "))
}

// Plate colours accepted (the national record has no plate colour; provinces map these to
// their own codes).
var PlateColors = []string{"blue", "yellow", "green", "yellow_green", "black", "white", "other"}

func validPlateColor(c string) bool {
	for _, p := range PlateColors {
		if p == c {
			return true
		}
	}
	return false
}
