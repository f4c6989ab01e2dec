package obd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Confirmation is the operator's explicit consent to clear fault codes on one named vehicle.
// It exists so that no code path can clear codes by accident: a retry loop, a replayed job or
// a queued request has no Confirmation to pass.
type Confirmation struct {
	// VIN names the vehicle the operator confirmed. Callers should compare it with the VIN the
	// car reports before calling ClearDTCs; ClearDTCs itself sends nothing but 04.
	VIN string
	// ConfirmedBy identifies who confirmed (a staff ID, not a customer's name).
	ConfirmedBy string
	// At is when the operator confirmed.
	At time.Time
	// WorkOrder optionally ties the clear to the repair it belongs to.
	WorkOrder string
}

// ClearResult lists the ECUs that acknowledged the clear (44).
type ClearResult struct {
	Cleared []string `json:"cleared"`
}

// ErrNotConfirmed is returned by ClearDTCs when the confirmation is incomplete; nothing was sent.
var ErrNotConfirmed = errors.New("obd: clearing fault codes needs a confirmation naming the vehicle (VIN) and who confirmed")

// ClearDTCs sends service 04 — exactly the single byte 04, once — which clears stored, pending
// codes, freeze frames and monitor results, and resets readiness: after it the car fails the
// I/M readiness check until it has been driven. It is never retried: if the adapter fails, the
// operator decides what to do next.
//
// Every ECU that answers 44 is listed in the result. An ECU refusing with 7F 04 22 yields a
// *NegativeResponseError whose text says "conditions not correct (engine running?)".
func ClearDTCs(ctx context.Context, a Adapter, c Confirmation) (ClearResult, error) {
	if strings.TrimSpace(c.VIN) == "" || strings.TrimSpace(c.ConfirmedBy) == "" {
		return ClearResult{}, ErrNotConfirmed
	}
	if _, err := CheckVIN(c.VIN); err != nil {
		return ClearResult{}, fmt.Errorf("obd: clear not sent: confirmation names no valid vehicle: %w", err)
	}
	resps, err := a.Query(ctx, Req(0x04))
	if errors.Is(err, ErrNoData) {
		return ClearResult{}, fmt.Errorf("obd: no ECU acknowledged the clear; read the codes again to see whether it took effect: %w", err)
	}
	if err != nil {
		return ClearResult{}, fmt.Errorf("obd: clear fault codes (not retried; read the codes again before deciding to repeat): %w", err)
	}
	res := ClearResult{Cleared: []string{}}
	var refusals []error
	for _, r := range resps {
		if ne := negative(r); ne != nil {
			if ne.NRC == 0x22 {
				refusals = append(refusals, fmt.Errorf("%w: switch the engine off, leave the ignition on, then confirm again", ne))
			} else {
				refusals = append(refusals, ne)
			}
			continue
		}
		if len(r.Data) >= 1 && r.Data[0] == 0x44 {
			res.Cleared = append(res.Cleared, r.ECU)
			continue
		}
		refusals = append(refusals, decodeErr("clear acknowledgement (44)", r.Data, "unexpected answer from ECU %s", r.ECU))
	}
	return res, errors.Join(refusals...)
}
