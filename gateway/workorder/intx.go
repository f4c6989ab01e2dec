package workorder

import (
	"encoding/json"
	"fmt"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/obd"
)

// ScanReportInTx reads a stored scan's report inside a running transaction, for code that
// runs within settlement (the IMHook building the M-station record from the scans of the
// order it is settling).
func ScanReportInTx(tx *buffer.Tx, id string) (*obd.Report, error) {
	sc, err := getScan(tx, id)
	if err != nil {
		return nil, err
	}
	var rep obd.Report
	if err := json.Unmarshal(sc.Report, &rep); err != nil {
		return nil, fmt.Errorf("workorder: stored scan %s report unreadable: %w", id, err)
	}
	return &rep, nil
}
