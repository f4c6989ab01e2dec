package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/obdgw/obdgw/gateway/workorder"
	"github.com/obdgw/obdgw/obd"
)

// SelfTestKeeper is what a SelfTests implementation adds when it keeps the judged self-test
// of each work order: the vehicle history lists them. ok is false when the order has none.
type SelfTestKeeper interface {
	Kept(order string) (st KeptSelfTest, ok bool, err error)
}

// KeptSelfTest is the judged self-test of a work order, as the history lists it.
type KeptSelfTest struct {
	Order   string    `json:"order"`
	Bay     string    `json:"bay,omitempty"`
	Method  string    `json:"method"`  // "two_speed_idle" or "free_acceleration"
	Verdict string    `json:"verdict"` // "pass" or "fail"
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Rig     string    `json:"rig,omitempty"`
	// RigModel and RigSerial name the instrument as the M-station record does.
	RigModel  string `json:"rig_model,omitempty"`
	RigSerial string `json:"rig_serial,omitempty"`
	// Result is the judged result (items with values, limits and judgement; reasons; process
	// data) in GET /workorders/{id}/selftest; the history leaves it out.
	Result any `json:"result,omitempty"`
}

// HistoryItem is one event in a car's history: a scan, a work order or a self-test. Exactly
// one of Scan, Order and SelfTest is set, as Kind says.
type HistoryItem struct {
	Kind     string                 `json:"kind"` // "scan", "order", "selftest"
	At       time.Time              `json:"at"`   // scan time, order creation, self-test end
	Scan     *workorder.ScanSummary `json:"scan,omitempty"`
	Order    *HistoryOrder          `json:"order,omitempty"`
	SelfTest *KeptSelfTest          `json:"selftest,omitempty"`
}

// HistoryOrder is a work order as the history lists it (never the owner).
type HistoryOrder struct {
	ID             string `json:"id"`
	Status         string `json:"status"`
	Plate          string `json:"plate"`
	MileageKm      *int64 `json:"mileage_km,omitempty"`
	Fault          string `json:"fault_description,omitempty"`
	RepairDate     string `json:"repair_date"`
	SettleDate     string `json:"settle_date,omitempty"`
	EmissionRepair bool   `json:"emission_repair,omitempty"`
	Items          int    `json:"items"`
}

// maxHistory bounds one history answer per kind.
const maxHistory = 500

// vehicleHistory answers GET /vehicles/{vin}/history: every scan, work order and judged
// self-test of the car, newest first.
func (s *Server) vehicleHistory(w http.ResponseWriter, r *http.Request, c *caller) {
	vin := strings.ToUpper(strings.TrimSpace(r.PathValue("vin")))
	if !obd.VINWellFormed(vin) {
		writeError(w, &apiError{status: http.StatusBadRequest, field: "vin",
			msg: fmt.Sprintf("api: %q is not a VIN (17 characters, 0-9 and A-Z without I, O, Q)", clip(vin))})
		return
	}
	orders, _, err := s.opts.Store.List(workorder.Filter{VIN: vin, Limit: maxHistory})
	if err != nil {
		writeError(w, storeError(err))
		return
	}
	scans, err := s.opts.Store.ScansOfVIN(vin, maxHistory)
	if err != nil {
		writeError(w, storeError(err))
		return
	}
	items := []HistoryItem{}
	for i := range scans {
		items = append(items, HistoryItem{Kind: "scan", At: scans[i].At, Scan: &scans[i]})
	}
	keeper, _ := s.opts.SelfTests.(SelfTestKeeper)
	for _, o := range orders {
		items = append(items, HistoryItem{Kind: "order", At: o.Created, Order: &HistoryOrder{ID: o.ID, Status: string(o.Status),
			Plate: o.Plate, MileageKm: o.MileageKm, Fault: o.Fault, RepairDate: o.RepairDate, SettleDate: o.SettleDate,
			EmissionRepair: o.EmissionRepair, Items: len(o.Items)}})
		if keeper == nil {
			continue
		}
		st, ok, err := keeper.Kept(o.ID)
		if err != nil {
			writeError(w, &apiError{status: http.StatusInternalServerError, msg: "self-test of " + o.ID + ": " + err.Error()})
			return
		}
		if ok {
			st.Result = nil
			items = append(items, HistoryItem{Kind: "selftest", At: st.End, SelfTest: &st})
		}
	}
	slices.SortStableFunc(items, func(a, b HistoryItem) int { return b.At.Compare(a.At) })
	writeJSON(w, http.StatusOK, map[string]any{"vin": vin, "items": items})
}

// orderSelfTest answers GET /workorders/{id}/selftest: the judged self-test kept for the
// order, with its full result, for the printed I/M self-test report.
func (s *Server) orderSelfTest(w http.ResponseWriter, r *http.Request, c *caller) {
	id := r.PathValue("id")
	if _, err := s.opts.Store.Get(id); err != nil {
		writeError(w, storeError(err))
		return
	}
	keeper, _ := s.opts.SelfTests.(SelfTestKeeper)
	if keeper == nil {
		writeError(w, &apiError{status: http.StatusNotFound, msg: "api: this gateway keeps no self-tests (no emission rig)"})
		return
	}
	st, ok, err := keeper.Kept(id)
	if err != nil {
		writeError(w, &apiError{status: http.StatusInternalServerError, msg: "self-test of " + id + ": " + err.Error()})
		return
	}
	if !ok {
		writeError(w, &apiError{status: http.StatusNotFound, msg: "api: work order " + id + " has no judged self-test"})
		return
	}
	writeJSON(w, http.StatusOK, st)
}
