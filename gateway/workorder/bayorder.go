package workorder

import (
	"errors"
	"fmt"

	"github.com/obdgw/obdgw/obd"
)

// ErrNoEmissionOrder: a self-test has no open emission-repair order to belong to.
var ErrNoEmissionOrder = errors.New("workorder: no open emission-repair order for the self-test")

// BayOrder returns the one open order on the bay; ok is false when there is none or more than
// one, since then no order can be picked for the bay without asking.
func (s *Store) BayOrder(bay string) (Order, bool, error) {
	orders, _, err := s.List(Filter{Bay: bay, Status: Open})
	if err != nil {
		return Order{}, false, err
	}
	if len(orders) != 1 {
		return Order{}, false, nil
	}
	return orders[0], true, nil
}

// SelfTestOrder returns the order a self-test on the bay belongs to: the order named by id, or
// without an id the bay's one open order. It must be open and marked as an emission repair
// (ErrNoEmissionOrder otherwise).
func (s *Store) SelfTestOrder(bay, id string) (Order, error) {
	if id == "" {
		o, ok, err := s.BayOrder(bay)
		if err != nil {
			return Order{}, err
		}
		if !ok {
			return Order{}, ErrNoEmissionOrder
		}
		id = o.ID
	}
	o, err := s.Get(id)
	if err != nil {
		return Order{}, err
	}
	if o.Status != Open || !o.EmissionRepair {
		return Order{}, fmt.Errorf("%w (order %s)", ErrNoEmissionOrder, o.ID)
	}
	return o, nil
}

// KeepScan stores a scan taken around a fault-code clear: on the order named (when it can be
// attached there), else on the bay's matching order, else unattached. It returns the stored
// scan's id; a scan is never dropped because no order matched. The error says what went wrong
// even when the scan was stored (the id is then not empty): an order that refused it.
func (s *Store) KeepScan(order, bay, note string, r obd.Report) (string, error) {
	var attachErr error
	if order != "" {
		o, err := s.AttachScanTo(order, bay, note, r, nil)
		if err == nil && len(o.Scans) > 0 {
			return o.Scans[len(o.Scans)-1].ID, nil
		}
		attachErr = fmt.Errorf("workorder: scan not attached to order %s: %w", order, err)
	}
	res, err := s.AddScan(bay, note, r)
	if res.ScanID != "" {
		return res.ScanID, attachErr
	}
	return "", errors.Join(attachErr, err)
}
