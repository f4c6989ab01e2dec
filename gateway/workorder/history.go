package workorder

import (
	"strings"

	"github.com/obdgw/obdgw/buffer"
)

// ScansOfVIN returns the stored scans that read vin, newest first, at most limit (default 200,
// at most 1000): the car's scan history across bays and orders, attached or not.
func (s *Store) ScansOfVIN(vin string, limit int) ([]ScanSummary, error) {
	if limit <= 0 {
		limit = 200
	}
	limit = min(limit, 1000)
	vin = strings.ToUpper(strings.TrimSpace(vin))
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
			if sc.ref.VIN == vin {
				out = append(out, ScanSummary{ScanRef: sc.ref, Order: sc.Order})
			}
		}
		return nil
	})
	return out, err
}
