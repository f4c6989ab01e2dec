package workorder

import (
	"strings"
)

// ScansOfVIN returns the stored scans that read vin, newest first, at most limit (default 200,
// at most 1000): the car's scan history across bays and orders, attached or not.
func (s *Store) ScansOfVIN(vin string, limit int) ([]ScanSummary, error) {
	if limit <= 0 {
		limit = 200
	}
	limit = min(limit, 1000)
	vin = strings.ToUpper(strings.TrimSpace(vin))
	return s.newestScans(limit, func(sc *StoredScan) bool { return sc.ref.VIN == vin })
}
