package mexa

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/obdgw/obdgw/drivers/lograte"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/frame"
)

// Baud is the link speed (8N1, no flow control, DTR and RTS low).
const Baud = 9600

// subsystemEvery: the subsystem (leak, hang-up, filter, measuring flags) is asked again every
// this many readings, so those flags stay current at the cost of one extra 240 ms exchange.
const subsystemEvery = 10

// DefaultTimeout is how long to wait for a reply after the per-command pause.
const DefaultTimeout = time.Second

// Analyzer is a MEXA-584L on one port.
type Analyzer struct {
	link    *frame.Link
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
	opts    Options
	sub     Subsystem
	known   bool // subsystem read once: options known
	reads   int  // readings so far, for the periodic subsystem refresh
	warm    bool
	limit   lograte.Limiter
	// delayScale shortens the per-command pauses (tests against the simulator); 1 on hardware.
	delayScale float64
}

var (
	_ rig.Rig    = (*Analyzer)(nil)
	_ rig.Pumper = (*Analyzer)(nil)
)

func init() {
	rig.Register(rig.Model{
		Name: "mexa584l", Title: Title, Kind: "analyzer", Family: "mexa", Baud: Baud,
		Open: func(p rig.Port, o rig.Options) (rig.Rig, error) { return New(p, o) },
	})
}

// New wraps p.
func New(p rig.Port, o rig.Options) (*Analyzer, error) {
	if o.Firmware != "" {
		return nil, fmt.Errorf("mexa: no firmware variant %q", o.Firmware)
	}
	log := frame.Logger(o.Log)
	a := &Analyzer{
		link: &frame.Link{Port: p, Pkg: "mexa", Model: Title, Baud: Baud, Log: log},
		log:  log, now: frame.Now(o.Now), timeout: DefaultTimeout, delayScale: 1,
	}
	if o.Timeout > 0 {
		a.timeout = o.Timeout
	}
	return a, nil
}

// SetDelayScale multiplies the per-command pauses by f (0 ≤ f ≤ 1): a simulator answers at
// once, a real MEXA does not.
func (a *Analyzer) SetDelayScale(f float64) {
	if f >= 0 && f <= 1 {
		a.delayScale = f
	}
}

// String names the instrument.
func (a *Analyzer) String() string {
	return frame.Describe(a.link.Port, Baud, Title)
}

// query sends q, waits its pause, reads its reply (a 5-byte NAK ends early) and checks it;
// a garbled reply is retried once.
func (a *Analyzer) query(ctx context.Context, q Query) ([]byte, error) {
	var b []byte
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		b, err = a.once(ctx, q)
		if err == nil || !frame.Retryable(err) {
			break
		}
		a.limit.Warn(a.log, time.Now(), "garbled reply, retrying", "rig", Title, "err", err)
	}
	return b, err
}

func (a *Analyzer) once(ctx context.Context, q Query) ([]byte, error) {
	if err := a.link.Send(ctx, q.Frame()); err != nil {
		return nil, err
	}
	if err := frame.Sleep(ctx, time.Duration(float64(q.Delay)*a.delayScale)); err != nil {
		return nil, fmt.Errorf("mexa: %w", err)
	}
	deadline := time.Now().Add(a.timeout)
	b, err := a.link.Read(ctx, nil, 1, deadline)
	if err != nil {
		return nil, err
	}
	n := q.Len
	if b[0] == NAK {
		n = NAKLen
	} else if b[0] != ACK {
		junk, _ := a.link.Drain()
		return nil, fmt.Errorf("mexa: command %02X: %w", q.Cmd, &rig.FrameError{Model: Title, Frame: append(b, junk...), Reason: "lead byte is not 06"})
	}
	if b, err = a.link.Read(ctx, b, n-1, deadline); err != nil {
		return nil, err
	}
	if err := CheckReply(b, q.Cmd, q.Len); err != nil {
		return nil, fmt.Errorf("mexa: command %02X: %w", q.Cmd, err)
	}
	return b, nil
}

// Subsystem asks for options and state.
func (a *Analyzer) Subsystem(ctx context.Context) (Subsystem, error) {
	b, err := a.query(ctx, QSubsystem)
	if err != nil {
		return Subsystem{}, err
	}
	s, err := DecodeSubsystem(b)
	if err != nil {
		return Subsystem{}, fmt.Errorf("mexa: subsystem: %w", err)
	}
	a.sub, a.opts, a.known = s, s.Options, true
	return s, nil
}

// Status asks for warm-up and calibration state.
func (a *Analyzer) Status(ctx context.Context) (Status, error) {
	b, err := a.query(ctx, QStatus)
	if err != nil {
		return Status{}, err
	}
	s, err := DecodeStatus(b, a.opts)
	if err != nil {
		return Status{}, fmt.Errorf("mexa: status: %w", err)
	}
	return s, nil
}

// PEF asks for the propane equivalence factor.
func (a *Analyzer) PEF(ctx context.Context) (float64, error) {
	b, err := a.query(ctx, QPEF)
	if err != nil {
		return 0, err
	}
	return DecodePEF(b)
}

// Read asks for the channels. Every tenth Read (the first included) also asks for the
// subsystem (fitted options, leak / hang-up / filter flags) and, until the analyzer reports
// itself warm, the status.
func (a *Analyzer) Read(ctx context.Context) (rig.Reading, error) {
	if !a.known || a.reads%subsystemEvery == 0 {
		if _, err := a.Subsystem(ctx); err != nil {
			return rig.Reading{}, err
		}
	}
	a.reads++
	flags := subFlags(a.sub)
	warming := false
	if !a.warm {
		st, err := a.Status(ctx)
		if err != nil {
			return rig.Reading{}, err
		}
		warming, a.warm = st.WarmingUp, !st.WarmingUp
		if st.CalError {
			flags = append(flags, "calibration_error")
		}
	}
	b, err := a.query(ctx, QChannels)
	if err != nil {
		return rig.Reading{}, err
	}
	c, err := DecodeChannels(b)
	if err != nil {
		return rig.Reading{}, fmt.Errorf("mexa: channels: %w", err)
	}
	r := c.Reading(a.opts)
	r.Time = a.now()
	r.WarmingUp = warming
	r.Flags = append(r.Flags, flags...)
	if a.sub.Measuring && c.CO2Pct < 1 {
		r.Flags = append(r.Flags, "probe_warning")
	}
	return r, nil
}

func subFlags(s Subsystem) []string {
	var f []string
	if s.Leak {
		f = append(f, "leak")
	}
	if s.HangUp {
		f = append(f, "hang_up")
	}
	if s.Filter {
		f = append(f, "filter")
	}
	return f
}

func (a *Analyzer) mode(ctx context.Context, what string, q Query) error {
	if _, err := a.query(ctx, q); err != nil {
		return fmt.Errorf("mexa: %s: %w", what, err)
	}
	a.known = false // re-read the subsystem (measuring flag) on the next Read
	return nil
}

// PumpOn switches to MEAS mode (sampling).
func (a *Analyzer) PumpOn(ctx context.Context) error { return a.mode(ctx, "measure mode", QMeasure) }

// Halt switches to STANDBY mode.
func (a *Analyzer) Halt() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.timeout+time.Second)
	defer cancel()
	return a.mode(ctx, "standby mode", QStandby)
}

// Close switches to standby, best effort, and closes the port.
func (a *Analyzer) Close() error {
	if err := a.Halt(); err != nil {
		a.log.Debug("standby on close failed", "rig", Title, "err", err)
	}
	if err := a.link.Port.Close(); err != nil {
		return fmt.Errorf("mexa: close: %w", err)
	}
	return nil
}
