package emission

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/obdgw/obdgw/obd"
)

// SpeedSource gives the engine speed when the rig has no tachometer.
//
// Contract: EngineSpeed returns r/min or an error; it honours ctx and returns within a second
// or so (a procedure asks once per sample). It is called from the test's goroutine only.
type SpeedSource interface {
	EngineSpeed(ctx context.Context) (float64, error)
	String() string
}

// OBDSpeed reads engine speed from OBD PID 010C through the bay's adapter.
type OBDSpeed struct {
	Adapter obd.Adapter
	// Timeout bounds one request (0 → 800 ms): a slow answer is a missing sample, not a stall.
	Timeout time.Duration
}

var _ SpeedSource = OBDSpeed{}

// EngineSpeed asks 010C and decodes the first ECU that answered it.
func (o OBDSpeed) EngineSpeed(ctx context.Context) (float64, error) {
	if o.Adapter == nil {
		return 0, errors.New("emission: engine speed: no OBD adapter on this bay")
	}
	to := o.Timeout
	if to <= 0 {
		to = 800 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	rs, err := o.Adapter.Query(ctx, obd.Req(0x01, 0x0C))
	if err != nil {
		return 0, fmt.Errorf("emission: engine speed over OBD (010C): %w", err)
	}
	var first error
	for _, r := range rs {
		rpm, err := DecodeRPM(r.Data)
		if err == nil {
			return rpm, nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = errors.New("emission: engine speed over OBD (010C): no ECU answered")
	}
	return 0, first
}

func (o OBDSpeed) String() string { return "OBD 010C" }

// RPMError is a 010C answer that does not decode; it keeps the bytes.
type RPMError struct {
	Data   []byte
	Reason string
}

func (e *RPMError) Error() string {
	return fmt.Sprintf("emission: engine speed answer % X: %s", e.Data, e.Reason)
}

// DecodeRPM decodes a positive response to 010C: 41 0C A B → (256·A + B)/4 r/min.
func DecodeRPM(data []byte) (float64, error) {
	keep := append([]byte(nil), data...)
	if nrc, ok := (obd.Response{Data: data}).Negative(); ok {
		return 0, &RPMError{Data: keep, Reason: fmt.Sprintf("negative response, NRC %02X", nrc)}
	}
	if len(data) < 4 {
		return 0, &RPMError{Data: keep, Reason: fmt.Sprintf("%d bytes, want 4 (41 0C A B)", len(data))}
	}
	if data[0] != 0x41 || data[1] != 0x0C {
		return 0, &RPMError{Data: keep, Reason: "not an answer to 010C"}
	}
	return float64(int(data[2])<<8|int(data[3])) / 4, nil
}

// ClosedLoopNow asks fuel system status (PID 0103) through the bay's adapter and reports
// whether any ECU runs in closed loop now (A or B = 02: closed loop using the oxygen sensor).
// The car then has closed-loop fuel control and its λ is judged (im-emission.md §6.1). Open
// loop, no answer or an error is "not seen", never "no closed loop": a cold engine runs open
// loop. timeout 0 → 800 ms.
func ClosedLoopNow(ctx context.Context, a obd.Adapter, timeout time.Duration) (bool, error) {
	if a == nil {
		return false, errors.New("emission: fuel system status: no OBD adapter on this bay")
	}
	if timeout <= 0 {
		timeout = 800 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rs, err := a.Query(ctx, obd.Req(0x01, 0x03))
	if err != nil {
		return false, fmt.Errorf("emission: fuel system status over OBD (0103): %w", err)
	}
	for _, r := range rs {
		if d := r.Data; len(d) >= 3 && d[0] == 0x41 && d[1] == 0x03 && (d[2] == 0x02 || len(d) >= 4 && d[3] == 0x02) {
			return true, nil
		}
	}
	return false, nil
}
