package opacity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/obdgw/obdgw/drivers/lograte"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/frame"
)

// Meter is one opacimeter on one port; models with a zero command come as *ZeroMeter.
// An opacimeter has no sampling pump the protocol can stop, so Halt does nothing.
type Meter struct {
	spec       Spec
	link       *frame.Link
	log        *slog.Logger
	now        func() time.Time
	poll       time.Duration
	warm       bool
	limit      lograte.Limiter
	unverified frame.Unverified // replies whose unconfirmed checksum did not match
}

// ZeroMeter is a Meter whose model can zero (calibrate) itself.
type ZeroMeter struct{ *Meter }

var (
	_ rig.Rig    = (*Meter)(nil)
	_ rig.Zeroer = (*ZeroMeter)(nil)
)

func init() {
	for _, s := range specs {
		model := s.Model
		rig.Register(rig.Model{
			Name: model, Title: s.Title, Kind: "opacimeter", Family: "opacity", Baud: s.Baud,
			Open: func(p rig.Port, o rig.Options) (rig.Rig, error) { return Open(p, model, o) },
		})
	}
}

// Open wraps p as the named model ("nht6", "nht1l", "mqy200", "fty100").
func Open(p rig.Port, model string, o rig.Options) (rig.Rig, error) {
	m, err := New(p, model, o)
	if err != nil {
		return nil, err
	}
	if m.spec.Zero != nil {
		return &ZeroMeter{m}, nil
	}
	return m, nil
}

// New wraps p as the named model; Open adds the optional interfaces.
func New(p rig.Port, model string, o rig.Options) (*Meter, error) {
	s, err := Lookup(rig.NormalizeModel(model))
	if err != nil {
		return nil, err
	}
	if o.Firmware != "" {
		return nil, fmt.Errorf("opacity: %s has no firmware variant %q", s.Title, o.Firmware)
	}
	if o.Timeout > 0 {
		s.Timeout = o.Timeout
	}
	return NewSpec(p, s, o), nil
}

// NewSpec wraps p with an explicit spec.
func NewSpec(p rig.Port, s Spec, o rig.Options) *Meter {
	log := frame.Logger(o.Log)
	poll := o.Poll
	if poll <= 0 {
		poll = time.Second
	}
	return &Meter{
		spec: s, log: log, now: frame.Now(o.Now), poll: poll,
		link: &frame.Link{Port: p, Pkg: "opacity", Model: s.Title, Baud: s.Baud, Log: log},
	}
}

// String names the instrument.
func (m *Meter) String() string {
	return frame.Describe(m.link.Port, m.spec.Baud, m.spec.Title)
}

// exchange sends req and reads an n-byte reply: the first byte alone (15 = NAK, then its code),
// then the rest.
func (m *Meter) exchange(ctx context.Context, req []byte, n int) ([]byte, error) {
	if err := m.link.Send(ctx, req); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(m.spec.Timeout)
	b, err := m.link.Read(ctx, nil, 1, deadline)
	if err != nil {
		return nil, err
	}
	if b[0] == NAK {
		b, err = m.link.Read(ctx, b, 1, deadline)
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("opacity: %w", nak(m.spec, b))
	}
	return m.link.Read(ctx, b, n-1, deadline)
}

// retry runs f, and once more after a garbled reply.
func (m *Meter) retry(f func() error) error {
	err := f()
	if err != nil && frame.Retryable(err) {
		m.limit.Warn(m.log, time.Now(), "garbled reply, retrying", "rig", m.spec.Title, "err", err)
		err = f()
	}
	return err
}

// Status asks for the instrument status.
func (m *Meter) Status(ctx context.Context) (Status, error) {
	if m.spec.Status == nil {
		return Status{}, fmt.Errorf("opacity: %s status: %w", m.spec.Title, rig.ErrUnsupported)
	}
	var st Status
	err := m.retry(func() error {
		b, err := m.exchange(ctx, m.spec.Status, m.spec.StatusLen)
		if err != nil {
			return err
		}
		st, err = DecodeStatus(m.spec, b)
		if err != nil {
			return fmt.Errorf("opacity: status: %w", err)
		}
		return nil
	})
	return st, err
}

// Read asks for real-time data (after a status query while the meter has not yet reported
// itself warm).
func (m *Meter) Read(ctx context.Context) (rig.Reading, error) {
	warming := false
	if m.spec.Status != nil && !m.warm {
		st, err := m.Status(ctx)
		var nak *rig.NAKError
		if errors.As(err, &nak) {
			// A unit without the status command: read on, without warm-up information.
			m.log.Warn("status command refused; warm-up will not be reported", "rig", m.spec.Title)
			m.spec.Status, err, st = nil, nil, Status{}
		}
		if err != nil {
			return rig.Reading{}, err
		}
		if st.Fault != "" {
			return rig.Reading{}, fmt.Errorf("opacity: %s: %s", m.spec.Title, st.Fault)
		}
		warming, m.warm = st.WarmingUp, !st.WarmingUp
	}
	read := func() (d Data, err error) {
		err = m.retry(func() error {
			b, err := m.exchange(ctx, m.spec.RealTime, m.spec.ReplyLen)
			if err != nil {
				return err
			}
			d, err = Decode(m.spec, b)
			if err != nil {
				return fmt.Errorf("opacity: read: %w", err)
			}
			return nil
		})
		return d, err
	}
	d, err := read()
	if err != nil {
		return rig.Reading{}, err
	}
	// Where the checksum rule is only assumed, a mismatch is asked for again once and kept
	// (see frame.Unverified).
	d, kept := frame.Keep(&m.unverified, d, func(d Data) bool { return d.ChecksumOK }, read)
	if kept {
		m.limit.Warn(m.log, time.Now(), "checksum mismatch kept (this model's checksum rule is unconfirmed)", "rig", m.spec.Title, "frame", fmt.Sprintf("% X", d.Raw))
	}
	r := d.Reading()
	r.Time = m.now()
	r.WarmingUp = warming
	return r, nil
}

// Maxima asks for the peak values since the last ClearMaxima.
func (m *Meter) Maxima(ctx context.Context) (Max, error) {
	if m.spec.Max == nil {
		return Max{}, fmt.Errorf("opacity: %s maxima: %w", m.spec.Title, rig.ErrUnsupported)
	}
	var mx Max
	err := m.retry(func() error {
		b, err := m.exchange(ctx, m.spec.Max, m.spec.MaxLen)
		if err != nil {
			return err
		}
		mx, err = DecodeMax(m.spec, b)
		if err != nil {
			return fmt.Errorf("opacity: maxima: %w", err)
		}
		return nil
	})
	return mx, err
}

// ClearMaxima resets the peak values.
func (m *Meter) ClearMaxima(ctx context.Context) error {
	if m.spec.ClearMax == nil {
		return fmt.Errorf("opacity: %s clear maxima: %w", m.spec.Title, rig.ErrUnsupported)
	}
	return m.short(ctx, "clear maxima", m.spec.ClearMax)
}

// short sends a command whose reply is 2 bytes (echo + 2C).
func (m *Meter) short(ctx context.Context, what string, req []byte) error {
	return m.retry(func() error {
		b, err := m.exchange(ctx, req, 2)
		if err != nil {
			return fmt.Errorf("opacity: %s: %w", what, err)
		}
		if _, err := check(m.spec, b, 2, m.spec.CheckSum); err != nil {
			return fmt.Errorf("opacity: %s: %w", what, err)
		}
		return nil
	})
}

// Halt does nothing: the protocol has no pump to stop.
func (m *Meter) Halt() error { return nil }

// Close closes the port.
func (m *Meter) Close() error {
	if err := m.link.Port.Close(); err != nil {
		return fmt.Errorf("opacity: close: %w", err)
	}
	return nil
}

// errStillCalibrating: the meter was still calibrating when ctx ended.
var errStillCalibrating = errors.New("opacity: still calibrating")

// Zero starts the zero calibration and waits (bounded by ctx) until the status no longer says
// calibrating.
func (z *ZeroMeter) Zero(ctx context.Context) error {
	if err := z.short(ctx, "zero", z.spec.Zero); err != nil {
		return err
	}
	for {
		st, err := z.Status(ctx)
		if err != nil {
			return fmt.Errorf("opacity: zero: %w", err)
		}
		if st.Fault != "" {
			return fmt.Errorf("opacity: zero: %s", st.Fault)
		}
		if len(st.Raw) > 1 && st.Raw[1] != NHTStateCalibrating {
			z.warm = false // re-read the status on the next Read
			return nil
		}
		if err := frame.Sleep(ctx, z.poll); err != nil {
			return fmt.Errorf("%w when the wait ended: %w", errStillCalibrating, err)
		}
	}
}
