package workorder

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/obd"
)

// StoredScan is a scan as kept in the "scans" bucket: the full report and where it went.
type StoredScan struct {
	ID     string          `json:"id"`
	Bay    string          `json:"bay,omitempty"`
	Order  string          `json:"order,omitempty"` // the order it is attached to, "" while unattached
	Note   string          `json:"note,omitempty"`
	Report json.RawMessage `json:"report"` // the obd.Report as JSON
	ref    ScanRef
}

// AttachResult says what became of a scan.
type AttachResult struct {
	ScanID string `json:"scan_id"`
	// Order is the order it was attached to; nil when no open order matched (the scan is kept
	// and can be attached later).
	Order *Order `json:"order,omitempty"`
}

// maxReportBytes bounds a stored report (a full scan with its audit trail is tens of kB).
const maxReportBytes = 2 << 20

func scanRef(id, bay, note string, rep *obd.Report) ScanRef {
	r := ScanRef{ID: id, At: rep.Time, Bay: bay, MIL: rep.MIL, Note: note, DTCs: []ScanDTC{}}
	for _, u := range rep.Unread {
		r.Unread = append(r.Unread, u.Item)
	}
	if obd.VINWellFormed(strings.ToUpper(rep.VIN)) {
		r.VIN = strings.ToUpper(rep.VIN)
	}
	for _, l := range []struct {
		kind string
		list []obd.DTC
	}{{"stored", rep.DTCs.Stored}, {"permanent", rep.DTCs.Permanent}, {"pending", rep.DTCs.Pending}} {
		for _, d := range l.list {
			r.DTCs = append(r.DTCs, ScanDTC{Code: d.Code, ECU: d.ECU, Kind: l.kind, Description: d.Description})
		}
	}
	return r
}

func (s *Store) storeScan(tx *buffer.Tx, bay, note string, rep *obd.Report) (*StoredScan, error) {
	raw, err := json.Marshal(rep)
	if err != nil {
		return nil, fmt.Errorf("workorder: encode scan: %w", err)
	}
	if len(raw) > maxReportBytes {
		return nil, inputErr("scan", "the report has %d bytes, at most %d", len(raw), maxReportBytes)
	}
	id, err := nextID(tx, "scan.seq", "SC")
	if err != nil {
		return nil, err
	}
	if rep.Time.IsZero() {
		rep.Time = s.now()
	}
	sc := &StoredScan{ID: id, Bay: bay, Note: note, Report: raw}
	sc.ref = scanRef(id, bay, note, rep)
	return sc, putScan(tx, sc)
}

func putScan(tx *buffer.Tx, sc *StoredScan) error {
	b, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	return tx.Put(bucketScans, sc.ID, b)
}

func getScan(tx *buffer.Tx, id string) (*StoredScan, error) {
	b := tx.Get(bucketScans, id)
	if b == nil {
		return nil, fmt.Errorf("%w: %s", ErrScanMissing, clip(id))
	}
	var sc StoredScan
	if err := json.Unmarshal(b, &sc); err != nil {
		return nil, fmt.Errorf("workorder: stored scan %s unreadable: %w", id, err)
	}
	var rep obd.Report
	if err := json.Unmarshal(sc.Report, &rep); err != nil {
		return nil, fmt.Errorf("workorder: stored scan %s report unreadable: %w", id, err)
	}
	sc.ref = scanRef(sc.ID, sc.Bay, sc.Note, &rep)
	return &sc, nil
}

// attach links a stored scan to an open order and reconciles the VIN. A scan whose VIN
// differs from the order's is refused (*VINMismatchError) unless confirmed with a reason
// (confirm non-empty): the record would otherwise carry one car's VIN and another's codes.
func (s *Store) attach(tx *buffer.Tx, o *Order, sc *StoredScan, confirm string) error {
	if o.Status != Open {
		return ErrSettled
	}
	if sc.Order != "" && sc.Order != o.ID {
		return inputErr("scan_id", "scan %s is already attached to %s", sc.ID, sc.Order)
	}
	for _, r := range o.Scans {
		if r.ID == sc.ID {
			return nil // attaching twice changes nothing
		}
	}
	oldVIN := o.VIN
	if v := sc.ref.VIN; v != "" {
		switch {
		case o.VIN == "":
			o.VIN, o.VINSource, o.VINMismatch, o.VINReason = v, VINOBD, false, ""
		case o.VIN == v:
			o.VINSource, o.VINMismatch, o.VINReason = VINOBD, false, ""
		case o.VINSource == VINTypedConfirmed && o.VINRead == v:
			// The same car as the confirmed scan: the decision stands.
		case confirm == "":
			return &VINMismatchError{OrderID: o.ID, ScanID: sc.ID, OrderVIN: o.VIN, CarVIN: v}
		default:
			o.VINSource, o.VINMismatch, o.VINReason = VINTypedConfirmed, true, confirm
			s.log.Info("workorder: typed VIN kept against the car's, confirmed", "order", o.ID, "scan", sc.ID, "read", v, "order_vin", o.VIN)
		}
		o.VINRead = v
		setVINWarnings(o)
	}
	if o.VINConflict != nil && o.VINConflict.ScanID == sc.ID {
		o.VINConflict = nil
	}
	if o.Bay == "" {
		o.Bay = sc.Bay
	}
	o.Scans = append(o.Scans, sc.ref)
	o.Updated = s.now()
	sc.Order = o.ID
	if err := putScan(tx, sc); err != nil {
		return err
	}
	if err := putOrder(tx, o); err != nil {
		return err
	}
	return setVIN(tx, o.ID, oldVIN, o.VIN)
}

// openOrders returns the open orders.
func openOrders(tx *buffer.Tx) ([]*Order, error) {
	var ids []string
	if err := tx.ForEach(bucketOpen, func(k string, _ []byte) error { ids = append(ids, k); return nil }); err != nil {
		return nil, err
	}
	out := make([]*Order, 0, len(ids))
	for _, id := range ids {
		o, err := getOrder(tx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// AddScan stores a scan taken on a bay and attaches it: to the open order with the scan's VIN,
// else to the open order on the bay. With no match the scan is kept unattached (result.Order
// nil). With several matches the scan is kept and an *AmbiguousError lists the candidates.
// When the bay's one order has another VIN, the scan is kept unattached, the order shows the
// conflict (Order.VINConflict) and a *VINMismatchError names both VINs.
func (s *Store) AddScan(bay, note string, rep obd.Report) (AttachResult, error) {
	var res AttachResult
	var amb *AmbiguousError
	var mm *VINMismatchError
	err := s.db.Update(func(tx *buffer.Tx) error {
		sc, err := s.storeScan(tx, bay, note, &rep)
		if err != nil {
			return err
		}
		res.ScanID = sc.ID
		open, err := openOrders(tx)
		if err != nil {
			return err
		}
		var match []*Order
		reason := "vin"
		if v := sc.ref.VIN; v != "" {
			for _, o := range open {
				if o.VIN == v || o.VINSource == VINTypedConfirmed && o.VINRead == v {
					match = append(match, o)
				}
			}
		}
		if len(match) == 0 && bay != "" {
			reason = "bay"
			for _, o := range open {
				// An order whose VIN the car itself confirmed is another car: not a candidate.
				if o.Bay == bay && !(o.VINSource == VINOBD && sc.ref.VIN != "" && o.VIN != sc.ref.VIN) {
					match = append(match, o)
				}
			}
		}
		switch len(match) {
		case 0:
			return nil
		case 1:
			if err := s.attach(tx, match[0], sc, ""); err != nil {
				if !errors.As(err, &mm) {
					return err
				}
				// Keep the scan, and show the conflict on the order until a person decides.
				o := match[0]
				o.VINConflict = &VINConflict{ScanID: sc.ID, OrderVIN: mm.OrderVIN, CarVIN: mm.CarVIN, Bay: bay, At: s.now()}
				o.Updated = s.now()
				return putOrder(tx, o)
			}
			o := *match[0]
			res.Order = &o
			return nil
		}
		amb = &AmbiguousError{ScanID: sc.ID, Reason: reason}
		for _, o := range match {
			amb.Candidates = append(amb.Candidates, Candidate{ID: o.ID, Plate: o.Plate, VIN: o.VIN, Bay: o.Bay})
		}
		return nil // keep the scan; the technician chooses
	})
	if err != nil {
		return AttachResult{}, err
	}
	data := map[string]any{"scan": res.ScanID}
	if res.Order != nil {
		data["order"] = res.Order.ID
		s.log.Info("workorder: scan attached", "scan", res.ScanID, "order", res.Order.ID, "bay", bay)
	}
	s.publish("scan.stored", bay, data)
	if mm != nil {
		s.log.Info("workorder: scan kept, not attached: the car's VIN differs from the order's", "scan", res.ScanID, "order", mm.OrderID, "read", mm.CarVIN, "order_vin", mm.OrderVIN)
		s.publish("workorder.vin_conflict", bay, map[string]any{"id": mm.OrderID, "scan": mm.ScanID, "order_vin": mm.OrderVIN, "car_vin": mm.CarVIN})
		return res, mm
	}
	if amb != nil {
		s.log.Info("workorder: scan matches several orders", "scan", res.ScanID, "by", amb.Reason, "candidates", len(amb.Candidates))
		return res, amb
	}
	return res, nil
}

// AttachScanTo stores a scan and attaches it to the given open order (an explicit choice, so
// no matching is done). A scan of another VIN is refused — nothing is stored — unless confirm
// gives the reason (*VINMismatchError).
func (s *Store) AttachScanTo(orderID, bay, note string, rep obd.Report, confirm *Confirmation) (Order, error) {
	reason, _, err := confirmReason("confirm_vin_mismatch", confirm)
	if err != nil {
		return Order{}, err
	}
	var out Order
	err = s.db.Update(func(tx *buffer.Tx) error {
		o, err := getOrder(tx, orderID)
		if err != nil {
			return err
		}
		if o.Status != Open {
			return ErrSettled
		}
		sc, err := s.storeScan(tx, bay, note, &rep)
		if err != nil {
			return err
		}
		if err := s.attach(tx, o, sc, reason); err != nil {
			var mm *VINMismatchError
			if errors.As(err, &mm) {
				mm.ScanID = "" // rolled back with the refusal
			}
			return err
		}
		out = *o
		return nil
	})
	return out, err
}

// AttachStoredScan attaches a scan already stored (after an *AmbiguousError or a VIN
// conflict, the technician's choice) to an open order; confirm as in AttachScanTo (the scan
// stays stored when refused).
func (s *Store) AttachStoredScan(orderID, scanID string, confirm *Confirmation) (Order, error) {
	reason, _, err := confirmReason("confirm_vin_mismatch", confirm)
	if err != nil {
		return Order{}, err
	}
	var out Order
	err = s.db.Update(func(tx *buffer.Tx) error {
		o, err := getOrder(tx, orderID)
		if err != nil {
			return err
		}
		sc, err := getScan(tx, scanID)
		if err != nil {
			return err
		}
		if err := s.attach(tx, o, sc, reason); err != nil {
			return err
		}
		out = *o
		return nil
	})
	return out, err
}

// Scan returns a stored scan.
func (s *Store) Scan(id string) (StoredScan, error) {
	var out StoredScan
	err := s.db.View(func(tx *buffer.Tx) error {
		sc, err := getScan(tx, id)
		if err == nil {
			out = *sc
		}
		return err
	})
	return out, err
}

// ScanSummary is a stored scan without its report, for lists.
type ScanSummary struct {
	ScanRef
	Order string `json:"order,omitempty"` // "" while unattached
}

// ListScans returns stored scans, newest first: of one bay (or all when bay is ""), only the
// unattached ones when unattached is set (what the technician picks from after an ambiguous
// match), at most limit (default 50, at most 500).
func (s *Store) ListScans(bay string, unattached bool, limit int) ([]ScanSummary, error) {
	if limit <= 0 {
		limit = 50
	}
	if limit > 500 {
		limit = 500
	}
	return s.newestScans(limit, func(sc *StoredScan) bool {
		return (bay == "" || sc.Bay == bay) && (!unattached || sc.Order == "")
	})
}

// newestScans walks the stored scans newest first and summarises up to limit of those keep
// accepts; an unreadable scan is logged and skipped.
func (s *Store) newestScans(limit int, keep func(*StoredScan) bool) ([]ScanSummary, error) {
	var ids []string
	err := s.db.View(func(tx *buffer.Tx) error {
		return tx.ForEach(bucketScans, func(k string, _ []byte) error { ids = append(ids, k); return nil })
	})
	if err != nil {
		return nil, err
	}
	out := []ScanSummary{}
	err = s.db.View(func(tx *buffer.Tx) error {
		for i := len(ids) - 1; i >= 0 && len(out) < limit; i-- {
			sc, err := getScan(tx, ids[i])
			if err != nil {
				s.log.Warn("workorder: skipping unreadable scan", "id", ids[i], "err", err)
				continue
			}
			if keep(sc) {
				out = append(out, ScanSummary{ScanRef: sc.ref, Order: sc.Order})
			}
		}
		return nil
	})
	return out, err
}
