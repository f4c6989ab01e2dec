package waste

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
	"github.com/obdgw/obdgw/gateway/workorder"
)

// Buckets in the buffer file.
const (
	bucketGenerated = "waste.generated" // order id → Generated
	bucketHandovers = "waste.handovers" // 12-digit sequence → Handover
	bucketMeta      = "waste.meta"      // "seq" → the last hand-over sequence; "manifest/<no>" → its id
)

// DefaultDueDays is how long waste may be stored before the ledger shows it due for hand-over
// when the configuration does not say: a shop policy, not a rule of the catalogue.
const DefaultDueDays = 90

// Options configure a Ledger.
type Options struct {
	CompanyCode string // the record's company_code
	DueDays     int    // 0: DefaultDueDays
	// Codes sets the code of a category whose code the catalogue does not confirm (category
	// name → code, wire.WasteCodeWellFormed); the records still say code_confirmed false.
	Codes map[string]string
	Now   func() time.Time // nil: time.Now
}

// Ledger is the waste ledger of one buffer file. It is safe for concurrent use.
type Ledger struct {
	db   *buffer.DB
	opts Options
	now  func() time.Time
}

// New returns the ledger kept in db.
func New(db *buffer.DB, opts Options) *Ledger {
	if opts.DueDays <= 0 {
		opts.DueDays = DefaultDueDays
	}
	l := &Ledger{db: db, opts: opts, now: opts.Now}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

// Generated is what one settled order produced, as the ledger keeps it.
type Generated struct {
	Order        string    `json:"order"`
	CostListCode string    `json:"costlistcode"`
	SettleDate   string    `json:"settle_date"` // yyyyMMdd: the day the waste entered the store
	Revision     int       `json:"revision"`
	Lines        []Line    `json:"lines"`
	At           time.Time `json:"at"`
}

// Line is a quantity of one category, in one unit.
type Line struct {
	Category string `json:"category"`
	Quantity string `json:"quantity"`
	Unit     string `json:"unit"`
}

// Hook is the workorder.WasteHook: it writes the order's waste into the ledger and returns the
// waste record, inside the settlement transaction.
func (l *Ledger) Hook(tx *buffer.Tx, o *workorder.Order, revision int, reason string) (string, []byte, error) {
	var entries []wire.WasteEntry
	var lines []Line
	add := func(w *workorder.Waste, source, name string) {
		if w == nil {
			return
		}
		c := l.category(w.Category)
		entries = append(entries, wire.WasteEntry{Category: c.Name, Label: c.Label, Class: c.Class, Code: c.Code, CodeConfirmed: c.CodeConfirmed,
			Hazardous: c.Hazardous, Quantity: w.Quantity.String(), Unit: w.Unit, Source: source, SourceName: name})
		lines = append(lines, Line{Category: c.Name, Quantity: w.Quantity.String(), Unit: w.Unit})
	}
	for _, it := range o.Items {
		add(it.Waste, "item", it.Name)
	}
	for _, p := range o.Parts {
		add(p.Waste, "part", p.Name)
	}
	before := tx.Get(bucketGenerated, o.ID)
	if len(entries) == 0 && before == nil {
		return "", nil, nil // no waste now, none sent before: nothing to say
	}
	g := Generated{Order: o.ID, CostListCode: o.CostListCode, SettleDate: o.SettleDate, Revision: revision, Lines: lines, At: l.now().UTC()}
	if before != nil {
		// A revision keeps the day the waste entered the store.
		var old Generated
		if err := json.Unmarshal(before, &old); err == nil && old.SettleDate != "" {
			g.SettleDate = old.SettleDate
		}
	}
	b, err := json.Marshal(g)
	if err != nil {
		return "", nil, fmt.Errorf("waste: encode the ledger line: %w", err)
	}
	if err := tx.Put(bucketGenerated, o.ID, b); err != nil {
		return "", nil, err
	}
	p := wire.WastePayload{
		Record: wire.WasteRecord{CompanyCode: l.opts.CompanyCode, SettleDate: o.SettleDate, Entries: entries},
		Meta:   wire.WasteMeta{WorkOrder: o.ID, CostListCode: o.CostListCode, Revision: revision, Reason: reason},
	}
	if err := p.Validate(); err != nil {
		return "", nil, err
	}
	payload, err := p.Encode()
	if err != nil {
		return "", nil, err
	}
	return wire.SchemaWaste, payload, nil
}

// normHandover checks a hand-over request on its own (the stock is checked in the
// transaction) and returns the hand-over and the quantity asked per category and unit.
func normHandover(req HandoverRequest, now time.Time) (Handover, map[key]int64, error) {
	h := Handover{Date: strings.TrimSpace(req.Date), Collector: strings.TrimSpace(req.Collector), Licence: strings.TrimSpace(req.Licence),
		ManifestNo: strings.TrimSpace(req.ManifestNo), At: now.UTC()}
	if h.Date == "" {
		h.Date = ehr.FormatDate(now)
	} else if _, err := ehr.ParseDate(h.Date); err != nil {
		return Handover{}, nil, inputErr("date", "%q: want yyyyMMdd", clip(h.Date))
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"collector", h.Collector, 100}, {"licence", h.Licence, 50}, {"manifest_no", h.ManifestNo, 50}} {
		if err := checkText(f.name, f.v, f.max); err != nil {
			return Handover{}, nil, err
		}
	}
	if len(req.Lines) == 0 {
		return Handover{}, nil, inputErr("lines", "missing: what was handed over (category, quantity, unit)")
	}
	if len(req.Lines) > 50 {
		return Handover{}, nil, inputErr("lines", "%d lines, at most 50", len(req.Lines))
	}
	asked := map[key]int64{}
	for i, ln := range req.Lines {
		f := fmt.Sprintf("lines[%d]", i)
		c, ok := wire.WasteCategoryByName(ln.Category)
		if !ok {
			return Handover{}, nil, inputErr(f+".category", "%q: want one of %s", clip(ln.Category), strings.Join(wire.WasteCategoryNames(), ", "))
		}
		if !slices.Contains(c.Units, ln.Unit) {
			return Handover{}, nil, inputErr(f+".unit", "%q: %s is counted in %s", clip(ln.Unit), c.Name, strings.Join(c.Units, " or "))
		}
		q, err := workorder.NormWasteQuantity(ln.Quantity)
		if err != nil {
			return Handover{}, nil, inputErr(f+".quantity", "%q: %v", clip(ln.Quantity), err)
		}
		hq, _ := workorder.Hundredths(q)
		asked[key{c.Name, ln.Unit}] += hq
		h.Lines = append(h.Lines, Line{Category: c.Name, Quantity: q, Unit: ln.Unit})
	}
	return h, asked, nil
}

// HandoverRequest is the body of POST /waste/handovers: one transfer to a licensed collector.
type HandoverRequest struct {
	Date       string `json:"date"`        // yyyyMMdd, default today
	Collector  string `json:"collector"`   // the collector's name (接收单位)
	Licence    string `json:"licence"`     // its licence number (危险废物经营许可证编号)
	ManifestNo string `json:"manifest_no"` // the transfer manifest number (联单号)
	Lines      []Line `json:"lines"`
}

// Handover is a stored hand-over.
type Handover struct {
	ID         string    `json:"id"` // "HO000001"
	Date       string    `json:"date"`
	Collector  string    `json:"collector"`
	Licence    string    `json:"licence"`
	ManifestNo string    `json:"manifest_no"`
	Lines      []Line    `json:"lines"`
	At         time.Time `json:"at"`
	By         string    `json:"by"` // the token's name
}

// InputError is a bad value of a hand-over, naming the field (the API answers 400).
type InputError struct{ Field, Msg string }

func (e *InputError) Error() string { return "waste: " + e.Field + ": " + e.Msg }

// StockError: a hand-over of more than the ledger holds (the API answers 409).
type StockError struct {
	Field    string
	Category string
	Unit     string
	Stock    string
	Asked    string
}

func (e *StockError) Error() string {
	return fmt.Sprintf("waste: %s: %s %s of %s handed over, the ledger holds %s %s: settle the orders that produced it first, or correct the quantity",
		e.Field, e.Asked, e.Unit, e.Category, e.Stock, e.Unit)
}

// ErrManifestUsed: the manifest number was recorded already (the API answers 409).
var ErrManifestUsed = errors.New("waste: this transfer manifest number (联单号) was recorded already")

func inputErr(field, format string, a ...any) error {
	return &InputError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

func checkText(field, v string, max int) error {
	switch n := utf8.RuneCountInString(v); {
	case n == 0:
		return inputErr(field, "missing")
	case n > max:
		return inputErr(field, "%d characters, at most %d", n, max)
	case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 }):
		return inputErr(field, "contains control characters")
	}
	return nil
}

// Handover records a hand-over after checking it against the stock, all in one transaction.
// trail, when set, runs in that transaction with the stored hand-over (the API writes its
// audit entry there); its error refuses the hand-over.
func (l *Ledger) Handover(req HandoverRequest, by string, trail func(tx *buffer.Tx, h Handover) error) (Handover, error) {
	h, asked, err := normHandover(req, l.now())
	if err != nil {
		return Handover{}, err
	}
	h.By = by
	err = l.db.Update(func(tx *buffer.Tx) error {
		if tx.Get(bucketMeta, "manifest/"+h.ManifestNo) != nil {
			return ErrManifestUsed
		}
		st, err := l.stock(tx)
		if err != nil {
			return err
		}
		for i, ln := range h.Lines {
			k := key{ln.Category, ln.Unit}
			if have := st[k].stock(); asked[k] > have {
				return &StockError{Field: fmt.Sprintf("lines[%d].quantity", i), Category: ln.Category, Unit: ln.Unit,
					Stock: workorder.FormatHundredths(have), Asked: workorder.FormatHundredths(asked[k])}
			}
		}
		n := uint64(0)
		if b := tx.Get(bucketMeta, "seq"); b != nil {
			n, _ = strconv.ParseUint(string(b), 10, 64)
		}
		n++
		h.ID = fmt.Sprintf("HO%06d", n)
		b, err := json.Marshal(h)
		if err != nil {
			return err
		}
		if err := tx.Put(bucketMeta, "seq", []byte(strconv.FormatUint(n, 10))); err != nil {
			return err
		}
		if err := tx.Put(bucketMeta, "manifest/"+h.ManifestNo, []byte(h.ID)); err != nil {
			return err
		}
		if err := tx.Put(bucketHandovers, fmt.Sprintf("%012d", n), b); err != nil {
			return err
		}
		if trail != nil {
			return trail(tx, h)
		}
		return nil
	})
	if err != nil {
		return Handover{}, err
	}
	return h, nil
}

type key struct{ category, unit string }

// lot is waste that entered the store on one day.
type lot struct {
	date string // yyyyMMdd
	qty  int64  // hundredths
}

// account is one category and unit: its lots, oldest first, and what left.
type account struct {
	lots   []lot
	handed int64
}

func (a *account) generated() int64 {
	var n int64
	for _, l := range a.lots {
		n += l.qty
	}
	return n
}

func (a *account) stock() int64 {
	if a == nil {
		return 0
	}
	return a.generated() - a.handed
}

// stored returns the lots still in store: hand-overs consume the oldest first.
func (a *account) stored() []lot {
	left := a.handed
	var out []lot
	for _, l := range a.lots {
		switch {
		case left >= l.qty:
			left -= l.qty
		default:
			out = append(out, lot{l.date, l.qty - left})
			left = 0
		}
	}
	return out
}

func (l *Ledger) stock(tx *buffer.Tx) (map[key]*account, error) {
	acc := map[key]*account{}
	get := func(k key) *account {
		if acc[k] == nil {
			acc[k] = &account{}
		}
		return acc[k]
	}
	err := tx.ForEach(bucketGenerated, func(id string, v []byte) error {
		var g Generated
		if err := json.Unmarshal(v, &g); err != nil {
			return fmt.Errorf("waste: ledger line of %s unreadable: %w", id, err)
		}
		for _, ln := range g.Lines {
			q, err := workorder.Hundredths(ln.Quantity)
			if err != nil {
				return fmt.Errorf("waste: ledger line of %s: %w", id, err)
			}
			a := get(key{ln.Category, ln.Unit})
			a.lots = append(a.lots, lot{g.SettleDate, q})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.ForEach(bucketHandovers, func(k string, v []byte) error {
		var h Handover
		if err := json.Unmarshal(v, &h); err != nil {
			return fmt.Errorf("waste: hand-over %s unreadable: %w", k, err)
		}
		for _, ln := range h.Lines {
			q, _ := workorder.Hundredths(ln.Quantity)
			get(key{ln.Category, ln.Unit}).handed += q
		}
		return nil
	})
	for _, a := range acc {
		slices.SortStableFunc(a.lots, func(x, y lot) int { return strings.Compare(x.date, y.date) })
	}
	return acc, err
}

// Stock is one category and unit of the ledger.
type Stock struct {
	Category      string `json:"category"`
	Label         string `json:"label"`
	Class         string `json:"class"`
	Code          string `json:"code"`
	CodeConfirmed bool   `json:"code_confirmed"`
	Hazardous     bool   `json:"hazardous"`
	Unit          string `json:"unit"`
	Generated     string `json:"generated"`
	HandedOver    string `json:"handed_over"`
	Stock         string `json:"stock"`
	// OldestStored is the day the oldest waste still in store came in ("" when none).
	OldestStored string `json:"oldest_stored,omitempty"`
	// Due is the quantity stored longer than DueDays: hand it over.
	Due    string `json:"due"`
	DueNow bool   `json:"due_now"`
}

// View is the ledger as GET /waste/ledger shows it.
type View struct {
	DueDays   int        `json:"due_days"`
	Today     string     `json:"today"`
	Stock     []Stock    `json:"stock"`
	Handovers []Handover `json:"handovers"` // newest first
}

// View returns the stock per category and unit (catalogue order), what is due, and the
// hand-overs.
func (l *Ledger) View() (View, error) {
	now := l.now()
	v := View{DueDays: l.opts.DueDays, Today: ehr.FormatDate(now), Stock: []Stock{}, Handovers: []Handover{}}
	dueBefore := ehr.FormatDate(now.AddDate(0, 0, -l.opts.DueDays))
	err := l.db.View(func(tx *buffer.Tx) error {
		acc, err := l.stock(tx)
		if err != nil {
			return err
		}
		for _, c := range wire.WasteCategories {
			c = l.category(c.Name)
			for _, u := range c.Units {
				a := acc[key{c.Name, u}]
				if a == nil {
					continue
				}
				s := Stock{Category: c.Name, Label: c.Label, Class: c.Class, Code: c.Code, CodeConfirmed: c.CodeConfirmed, Hazardous: c.Hazardous, Unit: u,
					Generated: workorder.FormatHundredths(a.generated()), HandedOver: workorder.FormatHundredths(a.handed), Stock: workorder.FormatHundredths(a.stock())}
				var due int64
				for i, lt := range a.stored() {
					if i == 0 {
						s.OldestStored = lt.date
					}
					if lt.date <= dueBefore {
						due += lt.qty
					}
				}
				s.Due, s.DueNow = workorder.FormatHundredths(due), due > 0
				v.Stock = append(v.Stock, s)
			}
		}
		return tx.ForEach(bucketHandovers, func(_ string, b []byte) error {
			var h Handover
			if err := json.Unmarshal(b, &h); err != nil {
				return fmt.Errorf("waste: hand-over unreadable: %w", err)
			}
			v.Handovers = append(v.Handovers, h)
			return nil
		})
	})
	slices.Reverse(v.Handovers)
	return v, err
}

// category is the catalogue's category with the configured code of an unconfirmed one.
func (l *Ledger) category(name string) wire.WasteCategory {
	c, _ := wire.WasteCategoryByName(name)
	if code := l.opts.Codes[c.Name]; code != "" && !c.CodeConfirmed {
		c.Code = code
	}
	return c
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

var _ workorder.WasteHook = (*Ledger)(nil).Hook
