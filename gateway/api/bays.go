package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/obdgw/obdgw/gateway/workorder"
	"github.com/obdgw/obdgw/obd"
)

// Bays is what the API needs from the daemon's bay supervisors (one per configured bay).
//
// Contract: methods are safe for concurrent use and return promptly (Scan starts the scan and
// returns; its result arrives as a "scan.done" event and in the bay's status). Unknown bay
// names wrap ErrNoBay. ClearDTCs sends service 04 at most once per call and never retries it;
// it must refuse (wrapping ErrVINMismatch) when the car on the bay does not report req.VIN, and
// keeps a scan before and after on the bay's work order. Live streams values until ctx ends,
// then closes the channel.
type Bays interface {
	List() []BayStatus
	Status(name string) (BayStatus, error)
	Scan(ctx context.Context, name string) error
	ClearDTCs(ctx context.Context, name string, req ClearRequest) (ClearResult, error)
	Live(ctx context.Context, name string) (<-chan LiveValues, error)
}

// BayStatus is one bay as the console shows it.
type BayStatus struct {
	Name string `json:"name"`
	// State: absent (no adapter), connecting, ignition_off, ready, scanning, clearing, fault.
	State   string   `json:"state"`
	Adapter string   `json:"adapter,omitempty"` // e.g. "/dev/ttyUSB0@38400 ELM327 v1.5"
	Vehicle *Vehicle `json:"vehicle,omitempty"`
	Order   string   `json:"order,omitempty"` // the open work order on the bay
	// VINConflict: the bay's last scan read another VIN than its order's; the scan is kept
	// unattached until a person decides (POST /workorders/{id}/scans).
	VINConflict *workorder.VINConflict `json:"vin_conflict,omitempty"`
	Error       string                 `json:"error,omitempty"` // the last fault, in words that say what to do
	// LastScan is the last obd.Report of the bay (JSON), absent before the first scan.
	LastScan json.RawMessage `json:"last_scan,omitempty"`
	Rig      string          `json:"rig,omitempty"`
}

// Vehicle is what the bay knows of the car connected to it.
type Vehicle struct {
	VIN string `json:"vin,omitempty"`
	MIL *bool  `json:"mil"` // null when the last scan could not read it
}

// ClearRequest is the body of POST /bays/{bay}/clear-dtcs.
type ClearRequest struct {
	Confirm   bool   `json:"confirm"`
	VIN       string `json:"vin"`
	RequestID string `json:"request_id"`
	Order     string `json:"order,omitempty"` // the work order the scans go to; default: the bay's
}

// ClearResult reports a clear.
type ClearResult struct {
	Bay        string `json:"bay"`
	VIN        string `json:"vin"`
	Cleared    bool   `json:"cleared"`
	ScanBefore string `json:"scan_before,omitempty"` // stored scan ids
	ScanAfter  string `json:"scan_after,omitempty"`
	Order      string `json:"order,omitempty"`
	MILAfter   *bool  `json:"mil_after"` // null when the scan after the clear could not read it
}

// LiveValues is one sample of live data, keyed by PID name with the unit in the name
// ("rpm", "coolant_c", "speed_kmh").
type LiveValues map[string]float64

// Errors a Bays implementation wraps so the API can answer with the right status.
var (
	ErrNoBay     = errors.New("api: no such bay")
	ErrBayBusy   = errors.New("api: the bay is busy (a scan or clear is running); try again when it is done")
	ErrNoVehicle = errors.New("api: no vehicle answers on this bay (is the ignition on and the adapter seated?)")
	// ErrNoAdapter: the bay has no adapter at its address; the ignition is not the problem.
	ErrNoAdapter   = errors.New("api: no OBD adapter on this bay (plug the adapter into the car and the gateway)")
	ErrVINMismatch = errors.New("api: the car on the bay reports another VIN")
)

// LivePicker is what a Bays implementation adds when it samples the Mode 01 PIDs a viewer
// picks (GET /bays/{bay}/live?pids=…). The values it streams are keyed by the PID's two
// upper-case hex digits ("0C"); a PID the car does not answer is left out of a sample. Same
// contract as Bays.Live otherwise.
type LivePicker interface {
	LivePIDs(ctx context.Context, name string, pids []byte) (<-chan LiveValues, error)
}

// MaxLivePIDs bounds one viewer's pick: two multi-PID requests per sampling round.
const MaxLivePIDs = 12

// notQuantities are Mode 01 PIDs of the obd table that are bit fields or enumerations, not
// values a chart can draw.
var notQuantities = map[byte]bool{0x01: true, 0x03: true, 0x13: true, 0x1C: true, 0x1D: true, 0x41: true, 0x51: true}

// ParseLivePIDs reads the pids parameter of the live stream: comma-separated Mode 01 PIDs as
// two hex digits ("0C,05,44"), each a quantity of the obd PID table, at most MaxLivePIDs,
// no repeats. Empty means none picked (nil).
func ParseLivePIDs(q string) ([]byte, error) {
	if strings.TrimSpace(q) == "" {
		return nil, nil
	}
	parts := strings.Split(q, ",")
	if len(parts) > MaxLivePIDs {
		return nil, fmt.Errorf("api: at most %d PIDs at once, got %d", MaxLivePIDs, len(parts))
	}
	out := make([]byte, 0, len(parts))
	seen := map[byte]bool{}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		n, err := strconv.ParseUint(p, 16, 8)
		if err != nil || len(p) != 2 {
			return nil, fmt.Errorf("api: PID %q is not two hex digits", p)
		}
		pid := byte(n)
		info, ok := obd.LookupPID(pid)
		if !ok || notQuantities[pid] {
			return nil, fmt.Errorf("api: PID %02X is not a live value the gateway can chart", pid)
		}
		if seen[pid] {
			return nil, fmt.Errorf("api: PID %02X (%s) picked twice", pid, info.Name)
		}
		seen[pid] = true
		out = append(out, pid)
	}
	return out, nil
}
