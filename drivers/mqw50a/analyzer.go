package mqw50a

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/obdgw/obdgw/drivers/lograte"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/frame"
)

// Baud is the link speed (8N1).
const Baud = 9600

// DefaultTimeout is the reply deadline. The public drivers do not state one; 2 s is generous
// for 28 bytes at 9600 baud (about 30 ms on the wire).
const DefaultTimeout = 2 * time.Second

// Analyzer is an MQW-50A on one port.
type Analyzer struct {
	link    *frame.Link
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
	poll    time.Duration
	warm    bool
	limit   lograte.Limiter
}

var (
	_ rig.Rig    = (*Analyzer)(nil)
	_ rig.Zeroer = (*Analyzer)(nil)
	_ rig.Pumper = (*Analyzer)(nil)
)

func init() {
	rig.Register(rig.Model{
		Name: "mqw50a", Title: Title, Kind: "analyzer", Family: "mqw50a", Baud: Baud,
		Open: func(p rig.Port, o rig.Options) (rig.Rig, error) { return New(p, o) },
	})
}

// New wraps p.
func New(p rig.Port, o rig.Options) (*Analyzer, error) {
	if o.Firmware != "" {
		return nil, fmt.Errorf("mqw50a: no firmware variant %q", o.Firmware)
	}
	log := frame.Logger(o.Log)
	a := &Analyzer{
		link: &frame.Link{Port: p, Pkg: "mqw50a", Model: Title, Baud: Baud, Log: log},
		log:  log, now: frame.Now(o.Now), timeout: DefaultTimeout, poll: time.Second,
	}
	if o.Timeout > 0 {
		a.timeout = o.Timeout
	}
	if o.Poll > 0 {
		a.poll = o.Poll
	}
	return a, nil
}

// String names the instrument.
func (a *Analyzer) String() string {
	return frame.Describe(a.link.Port, Baud, Title)
}

// exchange sends cmd and reads an n-byte reply, once more after a garbled one.
func (a *Analyzer) exchange(ctx context.Context, req []byte, n int, decode func([]byte) error) error {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		err = a.once(ctx, req, n, decode)
		if err == nil || !frame.Retryable(err) {
			return err
		}
		a.limit.Warn(a.log, time.Now(), "garbled reply, retrying", "rig", Title, "err", err)
	}
	return err
}

func (a *Analyzer) once(ctx context.Context, req []byte, n int, decode func([]byte) error) error {
	if err := a.link.Send(ctx, req); err != nil {
		return err
	}
	deadline := time.Now().Add(a.timeout)
	b, err := a.link.Read(ctx, nil, 1, deadline)
	if err != nil {
		return err
	}
	if b[0] != ACK {
		junk, _ := a.link.Drain()
		b = append(b, junk...)
		if b[0] == NAK {
			return fmt.Errorf("mqw50a: command %02X: %w", req[1], &rig.NAKError{Model: Title, Code: -1, Frame: b})
		}
		return fmt.Errorf("mqw50a: command %02X: %w", req[1], &rig.FrameError{Model: Title, Frame: b, Reason: "lead byte is not 06"})
	}
	if b, err = a.link.Read(ctx, b, n-1, deadline); err != nil {
		return err
	}
	if err := decode(b); err != nil {
		return fmt.Errorf("mqw50a: command %02X: %w", req[1], err)
	}
	return nil
}

// Status asks for the analyzer status.
func (a *Analyzer) Status(ctx context.Context) (Status, error) {
	var st Status
	err := a.exchange(ctx, Request(CmdStatus), StatusLen, func(b []byte) (err error) {
		st, err = DecodeStatus(b)
		return err
	})
	return st, err
}

// Read asks for the gas data, after a status query while the analyzer has not yet reported
// itself warm.
func (a *Analyzer) Read(ctx context.Context) (rig.Reading, error) {
	var st Status
	checked := false
	if !a.warm {
		var err error
		if st, err = a.Status(ctx); err != nil {
			return rig.Reading{}, err
		}
		checked = true
		a.warm = !st.WarmingUp()
	}
	var d Data
	err := a.exchange(ctx, Request(CmdData), DataLen, func(b []byte) (err error) {
		d, err = Decode(b)
		return err
	})
	if err != nil {
		return rig.Reading{}, err
	}
	r := d.Reading()
	r.Time = a.now()
	if checked {
		r.WarmingUp = st.WarmingUp()
		if st.Reason&StLowFlow != 0 {
			r.Flags = append(r.Flags, "low_gas_flow")
		}
	}
	return r, nil
}

func (a *Analyzer) control(ctx context.Context, what string, cmd byte, param ...byte) error {
	err := a.exchange(ctx, Request(cmd, param...), ControlLen, DecodeControl)
	if err != nil {
		return fmt.Errorf("mqw50a: %s: %w", what, err)
	}
	return nil
}

// PumpOn starts the pump on the probe sample.
func (a *Analyzer) PumpOn(ctx context.Context) error {
	return a.control(ctx, "pump on", CmdPumpSample)
}

// Halt stops the pump and any running action.
func (a *Analyzer) Halt() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout+time.Second)
	defer cancel()
	return a.control(ctx, "stop", CmdStop)
}

// Close stops the pump, best effort, and closes the port.
func (a *Analyzer) Close() error {
	if err := a.Halt(); err != nil {
		a.log.Debug("stop on close failed", "rig", Title, "err", err)
	}
	if err := a.link.Port.Close(); err != nil {
		return fmt.Errorf("mqw50a: close: %w", err)
	}
	return nil
}

// Zero zeroes the analyzer and waits (bounded by ctx) until the status is no longer busy.
func (a *Analyzer) Zero(ctx context.Context) error {
	if err := a.control(ctx, "zero", CmdZero); err != nil {
		return err
	}
	for {
		if err := frame.Sleep(ctx, a.poll); err != nil {
			return fmt.Errorf("mqw50a: zero: still zeroing when the wait ended: %w", err)
		}
		st, err := a.Status(ctx)
		if err != nil {
			return fmt.Errorf("mqw50a: zero: %w", err)
		}
		if !st.Busy {
			return nil
		}
	}
}
