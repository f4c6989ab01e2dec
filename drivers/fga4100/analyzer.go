package fga4100

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
const Baud = 19200

// DefaultTimeout is the reply deadline (not published; generous for 51 bytes).
const DefaultTimeout = 2 * time.Second

// Analyzer is an FGA-4100 on one port.
type Analyzer struct {
	link    *frame.Link
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
	limit   lograte.Limiter
}

var (
	_ rig.Rig    = (*Analyzer)(nil)
	_ rig.Zeroer = (*Analyzer)(nil)
	_ rig.Pumper = (*Analyzer)(nil)
)

func init() {
	rig.Register(rig.Model{
		Name: "fga4100", Title: Title, Kind: "analyzer", Family: "fga4100", Baud: Baud,
		Open: func(p rig.Port, o rig.Options) (rig.Rig, error) { return New(p, o) },
	})
}

// New wraps p.
func New(p rig.Port, o rig.Options) (*Analyzer, error) {
	if o.Firmware != "" {
		return nil, fmt.Errorf("fga4100: no firmware variant %q", o.Firmware)
	}
	log := frame.Logger(o.Log)
	a := &Analyzer{
		link: &frame.Link{Port: p, Pkg: "fga4100", Model: Title, Baud: Baud, Log: log},
		log:  log, now: frame.Now(o.Now), timeout: DefaultTimeout,
	}
	if o.Timeout > 0 {
		a.timeout = o.Timeout
	}
	return a, nil
}

// String names the instrument.
func (a *Analyzer) String() string {
	return frame.Describe(a.link.Port, Baud, Title)
}

func (a *Analyzer) retry(f func() error) error {
	err := f()
	if err != nil && frame.Retryable(err) {
		a.limit.Warn(a.log, time.Now(), "garbled reply, retrying", "rig", Title, "err", err)
		err = f()
	}
	return err
}

// Read asks for the gas data.
func (a *Analyzer) Read(ctx context.Context) (rig.Reading, error) {
	var d Data
	err := a.retry(func() error {
		if err := a.link.Send(ctx, Request(PayloadData)); err != nil {
			return err
		}
		b, err := a.link.Read(ctx, nil, DataLen, time.Now().Add(a.timeout))
		if err != nil {
			return err
		}
		if d, err = Decode(b); err != nil {
			return fmt.Errorf("fga4100: read: %w", err)
		}
		return nil
	})
	if err != nil {
		return rig.Reading{}, err
	}
	r := d.Reading()
	r.Time = a.now()
	return r, nil
}

// control sends a control request and reads its three-frame reply.
func (a *Analyzer) control(ctx context.Context, what string, payload []byte) error {
	err := a.retry(func() error {
		if err := a.link.Send(ctx, Request(payload)); err != nil {
			return err
		}
		deadline := time.Now().Add(a.timeout)
		b, err := a.link.Read(ctx, nil, len(ControlPreamble), deadline)
		if err != nil {
			return err
		}
		if b, err = a.link.Read(ctx, b, 2, deadline); err != nil {
			return err
		}
		if b, err = a.link.Read(ctx, b, int(b[len(b)-1])+1, deadline); err != nil {
			return err
		}
		frames, err := SplitFrames(b)
		if err != nil {
			return err
		}
		if len(frames) != 3 {
			return &rig.FrameError{Model: Title, Frame: b, Reason: fmt.Sprintf("%d frames, want 3", len(frames))}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fga4100: %s: %w", what, err)
	}
	return nil
}

// PumpOn starts the sampling pump.
func (a *Analyzer) PumpOn(ctx context.Context) error { return a.control(ctx, "pump on", PayloadPumpOn) }

// Zero zeroes the analyzer. The protocol publishes no completion status, so Zero returns once
// the instrument acknowledged the command.
func (a *Analyzer) Zero(ctx context.Context) error { return a.control(ctx, "zero", PayloadZero) }

// Halt stops the pump.
func (a *Analyzer) Halt() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout+time.Second)
	defer cancel()
	return a.control(ctx, "pump off", PayloadPumpOff)
}

// Close stops the pump, best effort, and closes the port.
func (a *Analyzer) Close() error {
	if err := a.Halt(); err != nil {
		a.log.Debug("pump off on close failed", "rig", Title, "err", err)
	}
	if err := a.link.Port.Close(); err != nil {
		return fmt.Errorf("fga4100: close: %w", err)
	}
	return nil
}
