package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"unicode/utf8"
)

// Kind and schema of the waste record: the hazardous waste and general solid waste a settled
// work order produced, so the province can hand them to its solid-waste system. Schema waste/1
// is a WastePayload; docs/wire-format.md ("Payload: waste") describes every field.
const (
	KindWaste   = "waste"
	SchemaWaste = "waste/1"
)

func init() { RegisterPayload(KindWaste, CheckWastePayload) }

// WasteCategory is one kind of waste a repair shop produces, with its national code.
type WasteCategory struct {
	Name  string // the API's and the record's category name
	Label string // the Chinese name on the manifest
	// Class is the 废物类别 of the 国家危险废物名录 (HW08, HW31, HW50) for hazardous waste,
	// or the class of general industrial solid waste (SW17, recyclable) for the rest.
	Class string
	// Code is the 废物代码 (900-214-08); "" when not confirmed.
	Code string
	// CodeConfirmed: the class and code are confirmed from the published catalogue. The
	// general solid-waste codes are not: the records say so, and a shop whose province names
	// them sets them in its configuration (waste.codes), still marked unconfirmed.
	CodeConfirmed bool
	Hazardous     bool     // handed over only to a licensed collector, with a transfer manifest (联单)
	Units         []string // the units a quantity may be given in
}

// WasteCategories is the catalogue, in the order the console lists it.
var WasteCategories = []WasteCategory{
	{Name: "waste_mineral_oil", Label: "废矿物油", Class: "HW08", Code: "900-214-08", CodeConfirmed: true, Hazardous: true, Units: []string{"kg", "L"}},
	{Name: "lead_acid_battery", Label: "废铅蓄电池", Class: "HW31", Code: "900-052-31", CodeConfirmed: true, Hazardous: true, Units: []string{"kg", "piece"}},
	{Name: "exhaust_catalyst", Label: "废汽车尾气净化催化剂", Class: "HW50", Code: "900-049-50", CodeConfirmed: true, Hazardous: true, Units: []string{"kg", "piece"}},
	{Name: "scrap_steel", Label: "废钢铁", Class: "SW17", Units: []string{"kg", "piece"}},
	{Name: "scrap_tyre", Label: "废轮胎", Class: "SW17", Units: []string{"kg", "piece"}},
}

// WasteCategoryByName finds a category of the catalogue.
func WasteCategoryByName(name string) (WasteCategory, bool) {
	for _, c := range WasteCategories {
		if c.Name == name {
			return c, true
		}
	}
	return WasteCategory{}, false
}

// WasteCategoryNames lists the catalogue's names, for error messages.
func WasteCategoryNames() []string {
	out := make([]string, len(WasteCategories))
	for i, c := range WasteCategories {
		out[i] = c.Name
	}
	return out
}

// WastePayload is the envelope payload of kind waste.
type WastePayload struct {
	Record WasteRecord `json:"record"`
	Meta   WasteMeta   `json:"meta"`
}

// WasteMeta travels beside the record, like EHRMeta.
type WasteMeta struct {
	WorkOrder    string `json:"workorder"`
	CostListCode string `json:"costlistcode"`     // links the ehr record of the same repair
	Revision     int    `json:"revision"`         // of the ehr record this one goes with
	Reason       string `json:"reason,omitempty"` // why a revision was made
}

// WasteRecord is what one settled repair produced. A revision replaces the earlier record of
// the same costlistcode as a whole; an empty list says the repair produced none after all.
type WasteRecord struct {
	CompanyCode string       `json:"company_code"`
	SettleDate  string       `json:"settle_date"` // yyyyMMdd, the repair's settledate
	Entries     []WasteEntry `json:"entries"`
}

// WasteEntry is one waste of one repair item or part. Quantity is a decimal string with at
// most two places.
type WasteEntry struct {
	Category      string `json:"category"`
	Label         string `json:"label"`
	Class         string `json:"class"`
	Code          string `json:"code"` // "" when not confirmed
	CodeConfirmed bool   `json:"code_confirmed"`
	Hazardous     bool   `json:"hazardous"`
	Quantity      string `json:"quantity"`
	Unit          string `json:"unit"`
	Source        string `json:"source"`      // "item" or "part"
	SourceName    string `json:"source_name"` // the item's or part's name
}

// Encode returns the payload as compact JSON without HTML escaping, the entries never null.
func (p WastePayload) Encode() ([]byte, error) {
	if p.Record.Entries == nil {
		p.Record.Entries = []WasteEntry{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("wire: encode waste payload: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// wasteQuantityRe: a quantity as the record carries it, more than zero checked apart.
var wasteQuantityRe = regexp.MustCompile(`^(0|[1-9][0-9]{0,8})(\.[0-9]{1,2})?$`)

// Validate checks the payload and names every wrong field by its JSON path (errors.Join of
// *FieldError).
func (p WastePayload) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) { errs = append(errs, fieldErr(field, format, a...)) }
	text := func(field, v string, max int) {
		switch n := utf8.RuneCountInString(v); {
		case !utf8.ValidString(v):
			bad(field, "not valid UTF-8")
		case n == 0:
			bad(field, "empty")
		case n > max:
			bad(field, "%d characters, at most %d", n, max)
		}
	}
	text("meta.workorder", p.Meta.WorkOrder, 64)
	text("meta.costlistcode", p.Meta.CostListCode, 50)
	if p.Meta.Revision < 1 {
		bad("meta.revision", "%d: the first submission is 1", p.Meta.Revision)
	}
	if utf8.RuneCountInString(p.Meta.Reason) > 200 || !utf8.ValidString(p.Meta.Reason) {
		bad("meta.reason", "at most 200 characters of UTF-8")
	}
	if err := checkCompanyCode(p.Record.CompanyCode); err != nil {
		bad("record.company_code", "%v", err)
	}
	if !dateRe.MatchString(p.Record.SettleDate) {
		bad("record.settle_date", "%q: want yyyyMMdd", clip(p.Record.SettleDate))
	} else if _, err := parseDate(p.Record.SettleDate); err != nil {
		bad("record.settle_date", "%q: not a date", p.Record.SettleDate)
	}
	if p.Record.Entries == nil {
		bad("record.entries", "null: send [] when the repair produced no waste")
	}
	if len(p.Record.Entries) > 200 {
		bad("record.entries", "%d entries, at most 200", len(p.Record.Entries))
	}
	for i, e := range p.Record.Entries {
		f := fmt.Sprintf("record.entries[%d]", i)
		c, ok := WasteCategoryByName(e.Category)
		if !ok {
			bad(f+".category", "%q: not a category of this schema", clip(e.Category))
			continue
		}
		codeOK := e.Code == c.Code || (!c.CodeConfirmed && WasteCodeWellFormed(e.Code))
		if e.Label != c.Label || e.Class != c.Class || !codeOK || e.CodeConfirmed != c.CodeConfirmed || e.Hazardous != c.Hazardous {
			bad(f+".code", "%s is %s %s %s (confirmed %v, hazardous %v)", c.Name, c.Label, c.Class, c.Code, c.CodeConfirmed, c.Hazardous)
		}
		if !wasteQuantityRe.MatchString(e.Quantity) || isZeroDecimal(e.Quantity) {
			bad(f+".quantity", "%q: want a quantity above 0 with at most two decimals", clip(e.Quantity))
		}
		if !slices.Contains(c.Units, e.Unit) {
			bad(f+".unit", "%q: %s is counted in %v", clip(e.Unit), c.Name, c.Units)
		}
		if e.Source != "item" && e.Source != "part" {
			bad(f+".source", "%q: want item or part", clip(e.Source))
		}
		text(f+".source_name", e.SourceName, 200)
	}
	return errors.Join(errs...)
}

// wasteCodeRe is the shape of a configured code of an unconfirmed category: the catalogues'
// forms (900-001-S17, 900-214-08) and nothing that could carry text.
var wasteCodeRe = regexp.MustCompile(`^[0-9A-Z]{1,8}(-[0-9A-Z]{1,8}){0,3}$`)

// WasteCodeWellFormed reports whether code may stand for an unconfirmed category's code.
func WasteCodeWellFormed(code string) bool { return wasteCodeRe.MatchString(code) }

func isZeroDecimal(s string) bool {
	for _, c := range s {
		if c != '0' && c != '.' {
			return false
		}
	}
	return true
}

// CheckWastePayload is the check a receiver runs on a waste payload: schema waste/1, strict
// decoding (no unknown field, the right types) and Validate. It is registered for kind waste.
func CheckWastePayload(schema string, payload json.RawMessage) error {
	if schema != SchemaWaste {
		return fieldErr("schema", "%q: this gateway writes %s", clip(schema), SchemaWaste)
	}
	var p WastePayload
	if err := decodeStrict(payload, &p, "payload"); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return err
		}
		return fmt.Errorf("wire: waste payload: %w", err)
	}
	return p.Validate()
}
