package workorder

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/ehr"
	"github.com/obdgw/obdgw/gateway/wire"
)

// Bucket names in the buffer file.
const (
	bucketOrders   = "workorders"
	bucketByVIN    = "workorders.vin"
	bucketCostList = "workorders.costlist"
	bucketOpen     = "workorders.open"
	bucketRecords  = "workorders.records"
	bucketScans    = "scans"
	bucketMeta     = "meta"
	bucketRequests = "requests"
)

// IMHook builds the I/M M-station record of an emission repair at settlement (gateway/imrecord
// provides it). It runs inside the settlement transaction — reading the post-repair self-test
// through tx — and returns the payload of kind "im" and its schema, or a nil payload when there
// is nothing to send (no self-test yet). An error aborts the settlement; nothing is stored.
//
// It is called only for emission repairs with a test_no, on settlement (revision 1, reason "")
// and on each revision (the revision number and reason of the ehr record being submitted, for
// imrecord.Input.Revision and Reason). rec is the validated ehr record of the same submission.
type IMHook func(tx *buffer.Tx, o *Order, rec *wire.EHRRecord, revision int, reason string) (schema string, payload []byte, err error)

// WasteHook records a settled order's waste (the items' and parts' Waste entries) at
// settlement (gateway/waste provides it: the shop's waste ledger). It runs inside the
// settlement transaction and returns the payload of kind "waste" and its schema, or a nil
// payload when there is nothing to send (no waste now, and none sent before). An error aborts
// the settlement; nothing is stored.
//
// It is called on settlement (revision 1, reason "") and on each revision, with the order as
// it is being stored.
type WasteHook func(tx *buffer.Tx, o *Order, revision int, reason string) (schema string, payload []byte, err error)

// Publisher receives notices for the console (events.Bus satisfies it). Data never carries
// owner data.
type Publisher interface {
	Publish(typ, bay string, data any)
}

// Options configure a Store.
type Options struct {
	Company     string // companyname in records
	CompanyCode string // company_code in envelopes; the costlistcode uniqueness scope
	Province    string // topic level
	GatewayID   string // envelope gateway
	// Topic returns the MQTT topic of a record kind; nil uses wire.Topic from the fields above.
	Topic func(kind string) string
	// KnownBay reports whether a bay name is configured; nil accepts any.
	KnownBay func(name string) bool
	IM       IMHook           // nil: no M-station record
	Waste    WasteHook        // nil: no waste record
	Events   Publisher        // nil: no notices
	Now      func() time.Time // nil: time.Now
	Logger   *slog.Logger     // nil: discard

	// afterPut is a test hook: called in the settlement transaction after the order was
	// written; an error aborts the transaction.
	afterPut func() error
}

// Store is the work-order store. It is safe for concurrent use (the buffer serialises writes).
type Store struct {
	db   *buffer.DB
	opts Options
	now  func() time.Time
	log  *slog.Logger
}

// New returns a store over an open buffer.
func New(db *buffer.DB, opts Options) *Store {
	s := &Store{db: db, opts: opts, now: opts.Now, log: opts.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.opts.Topic == nil {
		t := wire.Topic{Province: opts.Province, CompanyCode: opts.CompanyCode, Gateway: opts.GatewayID}
		s.opts.Topic = t.Record
	}
	return s
}

func (s *Store) publish(typ, bay string, data any) {
	if s.opts.Events != nil {
		s.opts.Events.Publish(typ, bay, data)
	}
}

func (s *Store) today() string { return ehr.FormatDate(s.now()) }

// nextID returns the next id of a sequence ("WO000001", "SC000001").
func nextID(tx *buffer.Tx, seq, prefix string) (string, error) {
	n := uint64(0)
	if b := tx.Get(bucketMeta, seq); b != nil {
		v, err := strconv.ParseUint(string(b), 10, 64)
		if err != nil {
			return "", fmt.Errorf("workorder: sequence %s corrupt: %w", seq, err)
		}
		n = v
	}
	n++
	if err := tx.Put(bucketMeta, seq, []byte(strconv.FormatUint(n, 10))); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s%06d", prefix, n), nil
}

func getOrder(tx *buffer.Tx, id string) (*Order, error) {
	b := tx.Get(bucketOrders, id)
	if b == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, clip(id))
	}
	var o Order
	if err := json.Unmarshal(b, &o); err != nil {
		return nil, fmt.Errorf("workorder: stored order %s unreadable: %w", id, err)
	}
	return &o, nil
}

func putOrder(tx *buffer.Tx, o *Order) error {
	// The fault text the record would carry, so the order shows what will be published.
	o.FaultRecord = ehr.FaultText(o.Fault, o.EmissionRepair, faultDTCs(o))
	b, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("workorder: encode %s: %w", o.ID, err)
	}
	return tx.Put(bucketOrders, o.ID, b)
}

// vinIndex returns the ids of orders with this VIN.
func vinIndex(tx *buffer.Tx, vin string) []string {
	var ids []string
	if b := tx.Get(bucketByVIN, vin); b != nil {
		_ = json.Unmarshal(b, &ids) // a damaged index entry is rebuilt by the next write
	}
	return ids
}

func setVIN(tx *buffer.Tx, id, old, vin string) error {
	if old == vin {
		return nil
	}
	if old != "" {
		ids := slices.DeleteFunc(vinIndex(tx, old), func(x string) bool { return x == id })
		if err := putIndex(tx, old, ids); err != nil {
			return err
		}
	}
	if vin != "" {
		ids := vinIndex(tx, vin)
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
		return putIndex(tx, vin, ids)
	}
	return nil
}

func putIndex(tx *buffer.Tx, vin string, ids []string) error {
	if len(ids) == 0 {
		return tx.Delete(bucketByVIN, vin)
	}
	b, _ := json.Marshal(ids)
	return tx.Put(bucketByVIN, vin, b)
}

// Create opens a work order.
func (s *Store) Create(in NewOrder) (Order, error) {
	now := s.now()
	o := &Order{Status: Open, Created: now, Updated: now, RepairDate: ehr.FormatDate(now),
		Items: []Item{}, Parts: []Part{}, Scans: []ScanRef{}, Revisions: []Revision{}, Warnings: []ehr.Problem{}}
	if in.PlateColor == "" {
		return Order{}, inputErr("plate_color", "missing: one of %s", strings.Join(PlateColors, ", "))
	}
	p := Patch{Plate: &in.Plate, PlateColor: &in.PlateColor, VIN: &in.VIN, MileageKm: in.MileageKm, Fault: &in.Fault,
		Bay: &in.Bay, EmissionRepair: &in.EmissionRepair, TestNo: &in.TestNo, FailedTestEnd: &in.FailedTestEnd,
		OwnerName: &in.OwnerName, OwnerPhone: &in.OwnerPhone, Items: &in.Items, Parts: &in.Parts,
		ConfirmVINCheckDigit: in.ConfirmVINCheckDigit}
	if in.RepairDate != "" {
		p.RepairDate = &in.RepairDate
	}
	if _, err := p.apply(o, s.opts.KnownBay); err != nil {
		return Order{}, err
	}
	if o.RepairDate > s.today() {
		return Order{}, inputErr("repair_date", "%s is in the future", o.RepairDate)
	}
	err := s.db.Update(func(tx *buffer.Tx) error {
		id, err := nextID(tx, "workorder.seq", "WO")
		if err != nil {
			return err
		}
		o.ID = id
		if err := putOrder(tx, o); err != nil {
			return err
		}
		if err := tx.Put(bucketOpen, id, nil); err != nil {
			return err
		}
		return setVIN(tx, id, "", o.VIN)
	})
	if err != nil {
		return Order{}, err
	}
	s.log.Info("workorder: opened", "id", o.ID, "bay", o.Bay, "emission", o.EmissionRepair)
	s.publish("workorder.opened", o.Bay, map[string]any{"id": o.ID})
	return *o, nil
}

// Get returns a stored order (owner included: use View before showing it).
func (s *Store) Get(id string) (Order, error) {
	var o *Order
	err := s.db.View(func(tx *buffer.Tx) error {
		var err error
		o, err = getOrder(tx, id)
		return err
	})
	if err != nil {
		return Order{}, err
	}
	return *o, nil
}

// Filter selects orders for List. Zero fields match everything.
type Filter struct {
	Status Status
	VIN    string
	Plate  string
	Bay    string
	// CostListCode finds a settled order by its settlement number.
	CostListCode string
	// Since and Until bound the creation time.
	Since, Until time.Time
	// Limit is the page size (default 100, at most 1000); After continues after that id
	// (lists are newest first).
	Limit int
	After string
}

// List returns matching orders, newest first, and the id to pass as After for the next page
// ("" when there is none). Owners are stripped: a list never shows personal data.
func (s *Store) List(f Filter) ([]Order, string, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	if f.Limit > 1000 {
		f.Limit = 1000
	}
	if f.Plate != "" {
		if p, err := ehr.NormPlate(f.Plate); err == nil {
			f.Plate = p
		}
	}
	var out []Order
	next := ""
	err := s.db.View(func(tx *buffer.Tx) error {
		var all []Order
		err := tx.ForEach(bucketOrders, func(key string, v []byte) error {
			if f.After != "" && key >= f.After {
				return nil
			}
			var o Order
			if err := json.Unmarshal(v, &o); err != nil {
				s.log.Warn("workorder: skipping unreadable order", "id", key, "err", err)
				return nil
			}
			if (f.Status != "" && o.Status != f.Status) || (f.VIN != "" && o.VIN != strings.ToUpper(f.VIN)) ||
				(f.Plate != "" && o.Plate != strings.ToUpper(f.Plate)) || (f.Bay != "" && o.Bay != f.Bay) ||
				(f.CostListCode != "" && !strings.EqualFold(o.CostListCode, f.CostListCode)) ||
				(!f.Since.IsZero() && o.Created.Before(f.Since)) || (!f.Until.IsZero() && !o.Created.Before(f.Until)) {
				return nil
			}
			all = append(all, o.View(false))
			return nil
		})
		if err != nil {
			return err
		}
		slices.Reverse(all)
		if len(all) > f.Limit {
			next = all[f.Limit-1].ID
			all = all[:f.Limit]
		}
		out = all
		return nil
	})
	if out == nil {
		out = []Order{}
	}
	return out, next, err
}

// Update changes an open order. On a settled order only the owner's name and phone may change
// (they are not part of the record); anything else is ErrSettled — send a revision.
func (s *Store) Update(id string, p Patch) (Order, error) {
	if p.ownerOnly() {
		var out Order
		err := s.db.Update(func(tx *buffer.Tx) error {
			o, err := getOrder(tx, id)
			if err != nil {
				return err
			}
			if _, err := p.apply(o, s.opts.KnownBay); err != nil {
				return err
			}
			o.Updated = s.now()
			out = *o
			return putOrder(tx, o)
		})
		return out, err
	}
	return s.mutateOpen(id, func(tx *buffer.Tx, o *Order) error {
		oldVIN := o.VIN
		if _, err := p.apply(o, s.opts.KnownBay); err != nil {
			return err
		}
		if o.RepairDate > s.today() {
			return inputErr("repair_date", "%s is in the future", o.RepairDate)
		}
		return setVIN(tx, o.ID, oldVIN, o.VIN)
	})
}

// AddItems appends repair items to an open order.
func (s *Store) AddItems(id string, items ...Item) (Order, error) {
	items, err := normItems(items)
	if err != nil {
		return Order{}, err
	}
	if len(items) == 0 {
		return Order{}, inputErr("items", "nothing to add")
	}
	return s.mutateOpen(id, func(tx *buffer.Tx, o *Order) error {
		if len(o.Items)+len(items) > maxItems {
			return inputErr("items", "at most %d items per order", maxItems)
		}
		o.Items = append(o.Items, items...)
		return nil
	})
}

// AddParts appends parts to an open order.
func (s *Store) AddParts(id string, parts ...Part) (Order, error) {
	parts, err := normParts(parts)
	if err != nil {
		return Order{}, err
	}
	if len(parts) == 0 {
		return Order{}, inputErr("parts", "nothing to add")
	}
	return s.mutateOpen(id, func(tx *buffer.Tx, o *Order) error {
		if len(o.Parts)+len(parts) > maxItems {
			return inputErr("parts", "at most %d parts per order", maxItems)
		}
		o.Parts = append(o.Parts, parts...)
		return nil
	})
}

func (s *Store) mutateOpen(id string, fn func(tx *buffer.Tx, o *Order) error) (Order, error) {
	var out Order
	err := s.db.Update(func(tx *buffer.Tx) error {
		o, err := getOrder(tx, id)
		if err != nil {
			return err
		}
		if o.Status != Open {
			return ErrSettled
		}
		if err := fn(tx, o); err != nil {
			return err
		}
		o.Updated = s.now()
		out = *o
		return putOrder(tx, o)
	})
	return out, err
}

// ClaimRequest records a request id of a given kind (e.g. "clear-dtcs") durably; a second
// claim of the same id fails with ErrDuplicate, so a retried or replayed request is refused
// rather than executed twice.
func (s *Store) ClaimRequest(kind, id string) error {
	if id == "" || len(id) > 128 {
		return inputErr("request_id", "want 1–128 characters")
	}
	key := kind + "/" + id
	return s.db.Update(func(tx *buffer.Tx) error {
		if tx.Get(bucketRequests, key) != nil {
			return fmt.Errorf("%w: %s", ErrDuplicate, clip(id))
		}
		return tx.Put(bucketRequests, key, []byte(s.now().UTC().Format(time.RFC3339)))
	})
}

// Check reads the store once: the daemon's watchdog pings systemd only while this succeeds, so
// a gateway whose state file stopped answering is restarted.
func (s *Store) Check() error { return s.db.View(func(*buffer.Tx) error { return nil }) }
