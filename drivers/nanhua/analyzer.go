package nanhua

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

// Analyzer is one analyzer of the family on one port. It implements rig.Rig and rig.Pumper;
// models with zero and leak-check commands come as *ZeroAnalyzer, which adds rig.Zeroer and
// rig.LeakChecker.
type Analyzer struct {
	spec       Spec
	link       *frame.Link
	log        *slog.Logger
	now        func() time.Time
	poll       time.Duration
	warm       bool // the state command said "not warming up" once; warm-up does not come back
	limit      lograte.Limiter
	unverified frame.Unverified // replies whose unenforced checksum did not match
}

// ZeroAnalyzer is an Analyzer whose model can zero and check for leaks.
type ZeroAnalyzer struct{ *Analyzer }

var (
	_ rig.Rig         = (*Analyzer)(nil)
	_ rig.Pumper      = (*Analyzer)(nil)
	_ rig.Zeroer      = (*ZeroAnalyzer)(nil)
	_ rig.LeakChecker = (*ZeroAnalyzer)(nil)
)

func init() {
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s.Model] {
			continue
		}
		seen[s.Model] = true
		model := s.Model
		rig.Register(rig.Model{
			Name: model, Title: s.Title, Kind: "analyzer", Family: "nanhua", Baud: s.Baud,
			Open: func(p rig.Port, o rig.Options) (rig.Rig, error) { return Open(p, model, o) },
		})
	}
}

// Open wraps p as the named model ("nha503", "nha506", "fla502", "mqw511"), in the firmware
// variant o.Firmware. The result is a *ZeroAnalyzer when the model has zero and leak-check
// commands, else an *Analyzer.
func Open(p rig.Port, model string, o rig.Options) (rig.Rig, error) {
	a, err := New(p, model, o)
	if err != nil {
		return nil, err
	}
	if a.spec.ZeroCmd != 0 && a.spec.LeakCmd != 0 {
		return &ZeroAnalyzer{a}, nil
	}
	return a, nil
}

// New wraps p as the named model. Use Open to get the model's optional interfaces.
func New(p rig.Port, model string, o rig.Options) (*Analyzer, error) {
	s, err := Lookup(rig.NormalizeModel(model), o.Firmware)
	if err != nil {
		return nil, err
	}
	if o.Timeout > 0 {
		s.Timeout = o.Timeout
	}
	return NewSpec(p, s, o), nil
}

// NewSpec wraps p with an explicit spec (a firmware variant not in the table).
func NewSpec(p rig.Port, s Spec, o rig.Options) *Analyzer {
	log := frame.Logger(o.Log)
	poll := o.Poll
	if poll <= 0 {
		poll = time.Second
	}
	return &Analyzer{
		spec: s,
		link: &frame.Link{Port: p, Pkg: "nanhua", Model: s.Title, Baud: s.Baud, Log: log},
		log:  log, now: frame.Now(o.Now), poll: poll,
	}
}

// Spec returns the frame spec in use.
func (a *Analyzer) Spec() Spec { return a.spec }

// String names the instrument: "/dev/ttyUSB1@9600 Nanhua NHA-506(I)".
func (a *Analyzer) String() string {
	t := a.spec.Title
	if a.spec.Firmware != "" {
		t += " (" + a.spec.Firmware + ")"
	}
	return frame.Describe(a.link.Port, a.spec.Baud, t)
}

// Read asks for main data. While the instrument has not yet reported itself warm, it first
// asks for the instrument state so the reading can say WarmingUp. A garbled reply (bad
// checksum, wrong lead byte, cut short) is retried once after draining the line.
func (a *Analyzer) Read(ctx context.Context) (rig.Reading, error) {
	warming := false
	if a.spec.StatusCmd != 0 && !a.warm {
		st, err := a.State(ctx)
		var nak *rig.NAKError
		if errors.As(err, &nak) {
			// Firmware without the state command: read on, without warm-up information.
			a.log.Warn("state command refused; warm-up will not be reported", "rig", a.spec.Title, "cmd", fmt.Sprintf("%02X", a.spec.StatusCmd))
			a.spec.StatusCmd, err, st = 0, nil, StateReady
		}
		if err != nil {
			return rig.Reading{}, err
		}
		warming = st == StateWarmingUp
		a.warm = !warming
	}
	read := func() (d Data, err error) {
		for attempt := 0; attempt < 2; attempt++ {
			d, err = a.readData(ctx)
			if err == nil || !frame.Retryable(err) {
				break
			}
			a.logLimited("garbled reply, retrying", err)
		}
		return d, err
	}
	d, err := read()
	if err != nil {
		return rig.Reading{}, err
	}
	// Where the checksum is not enforced (MQW-511), a mismatch is asked for again once and
	// kept (see frame.Unverified).
	d, kept := frame.Keep(&a.unverified, d, func(d Data) bool { return d.ChecksumOK }, read)
	if kept {
		a.logLimited("checksum mismatch kept (this model's checksum rule is unconfirmed)", fmt.Errorf("frame % X", d.Raw))
	}
	r := d.Reading(a.spec)
	r.Time = a.now()
	r.WarmingUp = r.WarmingUp || warming
	return r, nil
}

func (a *Analyzer) logLimited(msg string, err error) {
	a.limit.Warn(a.log, time.Now(), msg, "rig", a.spec.Title, "err", err)
}

func (a *Analyzer) readData(ctx context.Context) (Data, error) {
	if err := a.link.Send(ctx, []byte{a.spec.DataCmd}); err != nil {
		return Data{}, err
	}
	deadline := time.Now().Add(a.spec.Timeout)
	b, err := a.link.Read(ctx, nil, 1, deadline)
	if err != nil {
		return Data{}, err
	}
	if b[0] != ACK {
		// Busy, NAK or garbage: whatever follows is not a data frame.
		junk, _ := a.link.Drain()
		b = append(b, junk...)
		_, err := Decode(a.spec, b)
		return Data{}, fmt.Errorf("nanhua: read: %w", err)
	}
	b, err = a.link.Read(ctx, b, a.spec.ReplyLen-1, deadline)
	if err != nil {
		return Data{}, err
	}
	d, err := Decode(a.spec, b)
	if err != nil {
		return Data{}, fmt.Errorf("nanhua: read: %w", err)
	}
	return d, nil
}

// Instrument states of the status command (26 hex on Nanhua).
const (
	StateReady     = 0x00 // pump off
	StateMeasuring = 0x01 // pump on
	StateWarmingUp = 0x02
	StateLeakCheck = 0x03
)

// State asks for the instrument state (one byte, see the State constants).
func (a *Analyzer) State(ctx context.Context) (byte, error) {
	if a.spec.StatusCmd == 0 {
		return 0, fmt.Errorf("nanhua: %s state: %w", a.spec.Title, rig.ErrUnsupported)
	}
	b, err := a.command(ctx, a.spec.StatusCmd, 1)
	if err != nil {
		return 0, err
	}
	if b[0] == NAK {
		return 0, fmt.Errorf("nanhua: state: %w", &rig.NAKError{Model: a.spec.Title, Code: -1, Frame: b})
	}
	return b[0], nil
}

// WarmupLeft asks how long the warm-up still runs.
func (a *Analyzer) WarmupLeft(ctx context.Context) (time.Duration, error) {
	if a.spec.WarmupCmd == 0 {
		return 0, fmt.Errorf("nanhua: %s warm-up time: %w", a.spec.Title, rig.ErrUnsupported)
	}
	b, err := a.command(ctx, a.spec.WarmupCmd, 2)
	if err != nil {
		return 0, err
	}
	return time.Duration(frame.U16(b, 0)) * time.Second, nil
}

// Env asks for ambient temperature, pressure and humidity.
func (a *Analyzer) Env(ctx context.Context) (Env, error) {
	if a.spec.EnvCmd == 0 {
		return Env{}, fmt.Errorf("nanhua: %s environment data: %w", a.spec.Title, rig.ErrUnsupported)
	}
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var b []byte
		b, err = a.command(ctx, a.spec.EnvCmd, EnvLen)
		if err == nil {
			var e Env
			if e, err = DecodeEnv(a.spec.Title, b); err == nil {
				return e, nil
			}
			err = fmt.Errorf("nanhua: environment: %w", err)
		}
		if !frame.Retryable(err) {
			break
		}
	}
	return Env{}, err
}

// command sends one command byte and reads n reply bytes (n counts from the first byte).
// A NAK as the first byte ends the read early.
func (a *Analyzer) command(ctx context.Context, cmd byte, n int) ([]byte, error) {
	if err := a.link.Send(ctx, []byte{cmd}); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(a.spec.Timeout)
	b, err := a.link.Read(ctx, nil, 1, deadline)
	if err != nil || n == 1 || b[0] == NAK {
		return b, err
	}
	return a.link.Read(ctx, b, n-1, deadline)
}

// ack sends cmd and expects 06.
func (a *Analyzer) ack(ctx context.Context, what string, cmd byte) error {
	if cmd == 0 {
		return fmt.Errorf("nanhua: %s %s: %w", a.spec.Title, what, rig.ErrUnsupported)
	}
	b, err := a.command(ctx, cmd, 1)
	if err != nil {
		return fmt.Errorf("nanhua: %s: %w", what, err)
	}
	switch b[0] {
	case ACK:
		return nil
	case Busy:
		return fmt.Errorf("nanhua: %s: %w", what, &rig.BusyError{Model: a.spec.Title, Frame: b})
	case NAK:
		return fmt.Errorf("nanhua: %s: %w", what, &rig.NAKError{Model: a.spec.Title, Code: -1, Frame: b})
	}
	return fmt.Errorf("nanhua: %s: %w", what, &rig.FrameError{Model: a.spec.Title, Frame: b, Reason: "want 06"})
}

// PumpOn starts the pump drawing sample gas from the probe.
func (a *Analyzer) PumpOn(ctx context.Context) error { return a.ack(ctx, "pump on", a.spec.PumpCmd) }

// Halt stops the pump (and a running back-flush).
func (a *Analyzer) Halt() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.spec.Timeout+time.Second)
	defer cancel()
	return a.ack(ctx, "stop pump", a.spec.StopCmd)
}

// Close stops the pump, best effort, and closes the port.
func (a *Analyzer) Close() error {
	herr := a.Halt()
	if err := a.link.Port.Close(); err != nil {
		return fmt.Errorf("nanhua: close: %w", err)
	}
	if herr != nil && !errors.Is(herr, rig.ErrUnsupported) {
		a.log.Debug("stop pump on close failed", "rig", a.spec.Title, "err", herr)
	}
	return nil
}

// ErrZeroFailed is what Zero returns when the analyzer answers 01 (zeroing failed).
var ErrZeroFailed = errors.New("nanhua: zeroing failed (is the probe in clean ambient air?)")

// pollResult sends cmd until the instrument answers 00 or 01. 05 (still running) and 06 (accepted,
// as some firmware answers) mean ask again after the poll interval.
func (a *Analyzer) pollResult(ctx context.Context, what string, cmd byte) (byte, error) {
	for {
		b, err := a.command(ctx, cmd, 1)
		if err != nil {
			return 0, fmt.Errorf("nanhua: %s: %w", what, err)
		}
		switch b[0] {
		case 0x00, 0x01:
			return b[0], nil
		case Busy, ACK:
		case NAK:
			return 0, fmt.Errorf("nanhua: %s: %w", what, &rig.NAKError{Model: a.spec.Title, Code: -1, Frame: b})
		default:
			return 0, fmt.Errorf("nanhua: %s: %w", what, &rig.FrameError{Model: a.spec.Title, Frame: b, Reason: "want 00, 01, 05 or 06"})
		}
		if err := frame.Sleep(ctx, a.poll); err != nil {
			return 0, fmt.Errorf("nanhua: %s: still running when the wait ended: %w", what, err)
		}
	}
}

// Zero zeroes the analyzer on ambient air and waits for the result (bounded by ctx).
func (z *ZeroAnalyzer) Zero(ctx context.Context) error {
	r, err := z.pollResult(ctx, "zero", z.spec.ZeroCmd)
	if err != nil {
		return err
	}
	if r == 0x01 {
		return ErrZeroFailed
	}
	z.log.Info("zeroed", "rig", z.spec.Title)
	return nil
}

// LeakCheck runs the leak check and waits for its result (bounded by ctx).
func (z *ZeroAnalyzer) LeakCheck(ctx context.Context) (bool, error) {
	r, err := z.pollResult(ctx, "leak check", z.spec.LeakCmd)
	if err != nil {
		return false, err
	}
	return r == 0x01, nil
}
