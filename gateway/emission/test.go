package emission

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/obdgw/obdgw/drivers/rig"
)

// Vehicle holds the facts of the car under test that the procedures need. Zero values mean
// "not known": the configuration's values apply.
type Vehicle struct {
	VIN string
	// RatedRPM is the rated engine speed (额定转速) from the registration certificate or the
	// type approval; two-speed idle preconditions at a share of it and free acceleration checks
	// that each acceleration reached it. Required for two-speed idle.
	RatedRPM float64
	// HighIdleRPM overrides the configured high-idle speed (heavy-duty vehicles, manufacturer
	// values).
	HighIdleRPM float64
	// IdleRPMMin/Max override the idle window with the manufacturer's idle speed range.
	IdleRPMMin, IdleRPMMax float64
	// LambdaMin/Max are the manufacturer's λ range when it has one (GB 18285 allows it).
	LambdaMin, LambdaMax float64

	// FuelType is the car's fuel (FuelPetrol, FuelDiesel, FuelLPG, FuelCNG; "" not known). It
	// decides whether the method fits the car (two-speed idle is for spark-ignition cars,
	// GB 18285-2018; free acceleration for diesels, GB 3847-2018), the H/C ratio of the
	// computed λ and whether λ is judged.
	FuelType string
	// Compression is the engine type the OBD scan reported (true: compression ignition); nil
	// when not scanned. It stands in for FuelType when the fuel is not known.
	Compression *bool
	// GrossMassKg is the gross vehicle mass (总质量); above Limits' heavy_gross_mass_kg the
	// heavy high-idle speed applies. 0: not known, a light vehicle.
	GrossMassKg float64
	// LambdaJudged says whether the car has closed-loop fuel control and a three-way catalyst,
	// so its λ is judged; nil: yes when OBD showed closed loop (ClosedLoopSeen), else by fuel
	// (petrol yes, LPG/CNG as configured). A car whose λ is not judged has it shown only.
	LambdaJudged *bool
	// ClosedLoopSeen: the car reported fuel system status "closed loop" (PID 03), in a scan or
	// asked at the start of the test (ClosedLoopNow).
	ClosedLoopSeen bool
}

// Fuel types of Vehicle.FuelType.
const (
	FuelPetrol = "petrol"
	FuelDiesel = "diesel"
	FuelLPG    = "lpg"
	FuelCNG    = "cng"
)

// ParseFuel accepts the fuel names ("petrol", "diesel", "lpg", "cng", also "gasoline" and
// the Chinese 汽油, 柴油, 液化石油气, 天然气) and "" (not known).
func ParseFuel(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return "", nil
	case "petrol", "gasoline", "汽油":
		return FuelPetrol, nil
	case "diesel", "柴油":
		return FuelDiesel, nil
	case "lpg", "液化石油气":
		return FuelLPG, nil
	case "cng", "天然气", "压缩天然气":
		return FuelCNG, nil
	}
	return "", fmt.Errorf("emission: fuel %q: want petrol, diesel, lpg or cng", clip(s))
}

// Instrument kinds of Test.Instrument (the rig registry's Model.Kind).
const (
	GasAnalyzer = "analyzer"
	Opacimeter  = "opacimeter"
)

// PreconditionError is a test that must not start: the method does not fit the instrument or
// the car. The API answers 422 with its message.
type PreconditionError struct{ Msg string }

func (e *PreconditionError) Error() string { return "emission: " + e.Msg }

// checkFit refuses a method that does not fit the bay's instrument or the car's fuel, before
// anything is measured.
func checkFit(t Test) error {
	diesel := t.Vehicle.FuelType == FuelDiesel
	spark := t.Vehicle.FuelType == FuelPetrol || t.Vehicle.FuelType == FuelLPG || t.Vehicle.FuelType == FuelCNG
	fuel := t.Vehicle.FuelType
	if t.Vehicle.FuelType == "" && t.Vehicle.Compression != nil {
		diesel, spark = *t.Vehicle.Compression, !*t.Vehicle.Compression
		fuel = map[bool]string{true: "compression ignition (diesel), as its OBD readiness says", false: "spark ignition, as its OBD readiness says"}[diesel]
	}
	switch t.Method {
	case TwoSpeedIdle:
		if t.Instrument != "" && t.Instrument != GasAnalyzer {
			return &PreconditionError{fmt.Sprintf("two-speed idle needs a gas analyzer, and this bay's instrument is an %s: run free_acceleration here, or two-speed idle on a bay with an analyzer", t.Instrument)}
		}
		if diesel {
			return &PreconditionError{fmt.Sprintf("two-speed idle is the method for spark-ignition cars (GB 18285-2018), and this car is %s: run free_acceleration (GB 3847-2018)", fuel)}
		}
	case FreeAcceleration:
		if t.Instrument != "" && t.Instrument != Opacimeter {
			return &PreconditionError{fmt.Sprintf("free acceleration needs an opacimeter, and this bay's instrument is a gas %s: run two_speed_idle here, or free acceleration on a bay with an opacimeter", t.Instrument)}
		}
		if spark {
			return &PreconditionError{fmt.Sprintf("free acceleration is the method for diesel cars (GB 3847-2018), and this car is %s: run two_speed_idle (GB 18285-2018)", fuel)}
		}
	}
	return nil
}

// Test is one self-test on one bay.
type Test struct {
	Method  Method
	Rig     rig.Rig
	Speed   SpeedSource // engine speed when the rig has no tachometer; nil when the bay has no adapter
	Vehicle Vehicle
	Limits  Limits // validated by RunTest
	// Instrument is the rig's kind (GasAnalyzer, Opacimeter; "" not known, not checked).
	Instrument string
	// LimitSet overrides Limits.LimitSet for this vehicle ("a" or "b").
	LimitSet string

	// OnProgress is called from the test's goroutine after every sample; it must not block
	// for long (Runs fans it out to subscribers without blocking).
	OnProgress func(Progress)
	Logger     *slog.Logger     // nil → discard
	Now        func() time.Time // nil → time.Now; timestamps of the result and process data
	// IsBusy says whether a Read error means "instrument busy, ask again later". nil → errors
	// wrapping rig.ErrBusy, or with something in their chain whose Busy() bool returns true.
	IsBusy func(error) bool
	// IsUnplugged says whether a Read error means the instrument is gone. nil → rig.ErrLinkLost
	// (what the rig drivers wrap every port failure in), and for a Rig that talks to its port
	// directly: EOF, a closed port, ENODEV/ENXIO/EIO.
	IsUnplugged func(error) bool
}

// RunTest runs t to its end on the calling goroutine and returns its Result.
//
// The error is nil for pass, fail and refused (a refusal is an outcome: Result.Reasons say
// why). It is non-nil for aborted (wrapping ctx.Err()) and error (the rig was unplugged or kept
// answering garbage); the Result is still returned then, with the process data measured so far.
// A Test that cannot start (no rig, invalid limits, unknown rated speed) returns a nil Result.
//
// RunTest owns t.Rig while it runs and halts it (pump off) when it ends; it never closes it.
func RunTest(ctx context.Context, t Test) (*Result, error) {
	if t.Rig == nil {
		return nil, errors.New("emission: no rig on this bay")
	}
	if err := t.Limits.Validate(); err != nil {
		return nil, err
	}
	set := t.Limits.set(t.LimitSet)
	if set != SetA && set != SetB {
		return nil, fmt.Errorf("emission: limit set %q: want \"a\" (限值a) or \"b\" (限值b)", clip(set))
	}
	p := &proc{t: t, now: t.Now, log: t.Logger}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.rd = &reader{p: p}
	p.start = p.now()
	p.res = &Result{Method: t.Method, LimitSet: set, Start: p.start, Rig: t.Rig.String()}
	if err := checkFit(t); err != nil {
		return nil, err
	}

	var run func(context.Context) error
	switch t.Method {
	case TwoSpeedIdle:
		if err := p.prepareIdle(); err != nil {
			return nil, err
		}
		run = p.runIdle
	case FreeAcceleration:
		if err := p.prepareAccel(); err != nil {
			return nil, err
		}
		run = p.runAccel
	default:
		return nil, fmt.Errorf("emission: method %v: not supported", t.Method)
	}
	p.log.Info("emission: self-test started", "method", t.Method, "rig", p.res.Rig, "limit_set", set)

	err := p.precheck(ctx)
	if err == nil {
		err = run(ctx)
	}
	if herr := t.Rig.Halt(); herr != nil {
		p.log.Warn("emission: halting the rig after the test", "rig", p.res.Rig, "err", herr)
	}
	p.res.End = p.now()
	var st *stop
	switch {
	case err == nil:
	case errors.As(err, &st):
		p.res.Verdict = st.verdict
		p.res.Reasons = append(p.res.Reasons, st.reason)
		err = st.err
	case ctx.Err() != nil:
		p.res.Verdict = Aborted
		p.res.Reasons = append(p.res.Reasons, reason("aborted", "检测已中止", "test aborted"))
		err = fmt.Errorf("emission: test aborted: %w", err)
	default:
		p.res.Verdict = Error
		p.res.Reasons = append(p.res.Reasons, reason("error", fmt.Sprintf("检测出错：%v", err), fmt.Sprintf("test failed: %v", err)))
	}
	if p.speedSeen != "" {
		p.res.Speed = p.speedSeen
	}
	p.log.Info("emission: self-test ended", "method", t.Method, "verdict", p.res.Verdict, "reasons", len(p.res.Reasons))
	p.progress(Progress{Phase: "done", SecondsLeft: 0})
	return p.res, err
}

// stop ends a test early with a verdict; err is what RunTest returns (nil for a refusal).
type stop struct {
	verdict Verdict
	reason  Reason
	err     error
}

func (s *stop) Error() string {
	if s.err != nil {
		return s.err.Error()
	}
	return "emission: " + s.reason.EN
}

func (s *stop) Unwrap() error { return s.err }

func refuse(r Reason) error { return &stop{verdict: Refused, reason: r} }

// proc is the state shared by both procedures.
type proc struct {
	t         Test
	res       *Result
	rd        *reader
	start     time.Time
	now       func() time.Time
	log       *slog.Logger
	speedSeen string
	last      *rig.Reading
	phase     string    // for error messages
	nextAt    time.Time // next sample slot

	idle  idleParams
	accel accelParams
}

func (p *proc) progress(pr Progress) {
	if p.t.OnProgress == nil {
		return
	}
	pr.Method = p.t.Method
	pr.Elapsed = p.now().Sub(p.start)
	if pr.Reading == nil && p.last != nil {
		r := *p.last
		pr.Reading = &r
	}
	p.t.OnProgress(pr)
}

// precheck zeroes the rig when asked and it can, and refuses to start on a rig that is
// warming up or not zeroed, or an engine that is cold.
func (p *proc) precheck(ctx context.Context) error {
	if err := p.zero(ctx); err != nil {
		return err
	}
	for {
		if err := p.pace(ctx); err != nil {
			return err
		}
		s, err := p.rd.next(ctx)
		if err != nil {
			return err
		}
		if s.ok {
			if err := p.checkState(s.r); err != nil {
				return err
			}
			oilMin := p.t.Limits.TwoSpeedIdle.OilMinC
			if p.t.Method == FreeAcceleration {
				oilMin = p.t.Limits.FreeAcceleration.OilMinC
			}
			if p.t.Method == TwoSpeedIdle && s.rpm == nil && p.t.Speed == nil {
				// The method is defined by engine speed windows: without a source, say so now
				// rather than after the first reach timeout.
				return refuse(reason("no_rpm", "无法取得发动机转速：仪器没有转速信号，工位也没有 OBD 接头；请连接转速计或 OBD 接头", "no engine speed: the rig has no tachometer and the bay has no OBD adapter; connect one"))
			}
			// Warm-up, shown before the first prompt: oil temperature and engine speed. A cold
			// engine is given up to engine_warm_up_max to warm, running at idle.
			warm := s.r.OilC == nil || oilMin <= 0 || *s.r.OilC >= oilMin
			p.warmUp(s, oilMin, warm)
			switch {
			case !warm && (p.t.Limits.Rig.EngineWarmUpMax <= 0 || s.at.Sub(p.start) >= p.t.Limits.Rig.EngineWarmUpMax):
				waited, waitedZH := "", ""
				if m := p.t.Limits.Rig.EngineWarmUpMax; m > 0 {
					waited, waitedZH = fmt.Sprintf(" after %v", m), fmt.Sprintf("（已等待 %v）", m)
				}
				return refuse(reason("engine_cold", fmt.Sprintf("发动机未热车%s：油温 %.0f ℃，应不低于 %.0f ℃", waitedZH, *s.r.OilC, oilMin), fmt.Sprintf("engine not warm%s: oil at %.0f °C, needs at least %.0f °C", waited, *s.r.OilC, oilMin)))
			case !warm:
				continue
			case s.r.OilC == nil && oilMin > 0:
				p.res.Warnings = append(p.res.Warnings, reason("oil_unknown", "未测量油温，请确认发动机已充分预热", "oil temperature not measured: make sure the engine is at working temperature"))
			}
			return nil
		}
	}
}

// warmUp reports the engine's warm-up (phase "warm_up"): oil temperature against the minimum
// and engine speed, with what to do while it is cold.
func (p *proc) warmUp(s sample, oilMin float64, warm bool) {
	pr := Progress{Phase: "warm_up", SecondsLeft: -1, RPM: s.rpm}
	switch {
	case s.r.OilC == nil:
		pr.Prompt = Text{ZH: "仪器未测量油温：确认发动机已充分预热", EN: "the instrument does not measure oil temperature: make sure the engine is at working temperature"}
	case warm:
		pr.Prompt = Text{ZH: fmt.Sprintf("发动机已热车：油温 %.0f ℃", *s.r.OilC), EN: fmt.Sprintf("engine warm: oil at %.0f °C", *s.r.OilC)}
	default:
		pr.Prompt = Text{ZH: fmt.Sprintf("发动机预热中：油温 %.0f ℃，需达到 %.0f ℃，保持怠速运转", *s.r.OilC, oilMin),
			EN: fmt.Sprintf("warming up: oil at %.0f °C, needs %.0f °C; keep the engine idling", *s.r.OilC, oilMin)}
	}
	p.progress(pr)
}

// zero zeroes the rig when the configuration asks for it and the rig can.
func (p *proc) zero(ctx context.Context) error {
	z, ok := p.t.Rig.(rig.Zeroer)
	if !ok || !p.t.Limits.Rig.ZeroBeforeTest {
		return nil
	}
	p.progress(Progress{Phase: "zero", SecondsLeft: -1, Prompt: Text{ZH: "仪器调零中，请勿插入取样探头", EN: "zeroing the instrument: keep the probe out of the exhaust"}})
	err := z.Zero(ctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return err
	case p.rd.unplugged(err):
		return p.rd.unpluggedStop(err, "zero")
	case errors.Is(err, rig.ErrUnsupported):
		p.warnOnce(reason("zero_unsupported", "仪器不支持远程调零，请确认已在仪器上调零", "the instrument cannot be zeroed remotely: make sure it was zeroed on its panel"))
		return nil
	}
	return refuse(reason("not_zeroed", fmt.Sprintf("仪器调零失败（%v），请检查仪器后重新开始", err), fmt.Sprintf("the instrument did not zero (%v); check it and start again", err)))
}

// checkState refuses readings from an instrument that says it cannot measure yet.
func (p *proc) checkState(r rig.Reading) error {
	if r.WarmingUp {
		return refuse(reason("rig_warming_up", "仪器预热中，预热完成后再开始检测", "the instrument is warming up: start again when it is ready"))
	}
	for _, f := range r.Flags {
		if f == "not_zeroed" || f == "zero_required" {
			return refuse(reason("not_zeroed", "仪器未调零，请调零后重新开始", "the instrument is not zeroed: zero it and start again"))
		}
	}
	return nil
}

// pace waits for the next sample slot. Slots are one sample period apart over the whole test,
// across phase changes, so process data stay second by second; a slow read that overran its
// slot starts the next one at once rather than bunching samples to catch up.
func (p *proc) pace(ctx context.Context) error {
	period := p.idle.period
	if p.t.Method == FreeAcceleration {
		period = p.accel.period
	}
	now := p.now()
	if p.nextAt.IsZero() {
		p.nextAt = now.Add(period)
		return ctx.Err()
	}
	if d := p.nextAt.Sub(now); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		p.nextAt = p.nextAt.Add(period)
		return nil
	}
	p.nextAt = now.Add(period)
	return ctx.Err()
}

// sample is one attempt to read the rig and the engine speed.
type sample struct {
	ok      bool // the rig answered with a reading
	r       rig.Reading
	rpm     *float64
	rpmSrc  string
	at      time.Time
	problem *Reason // why there is no reading this time (busy, bad reply)
}

// reader reads the rig once per sample, tolerating busy answers for Limits.Rig.BusyMax and up
// to Limits.Rig.ErrorBurstMax bad replies in a row.
type reader struct {
	p         *proc
	busySince time.Time
	errRun    int
	speedErr  bool // the last OBD speed request failed (logged once per run of failures)
}

func (rd *reader) busy(err error) bool {
	if rd.p.t.IsBusy != nil {
		return rd.p.t.IsBusy(err)
	}
	if errors.Is(err, rig.ErrBusy) {
		return true
	}
	var b interface{ Busy() bool }
	return errors.As(err, &b) && b.Busy()
}

func (rd *reader) unplugged(err error) bool {
	if rd.p.t.IsUnplugged != nil {
		return rd.p.t.IsUnplugged(err)
	}
	for _, target := range []error{rig.ErrLinkLost, io.EOF, io.ErrClosedPipe, os.ErrClosed, net.ErrClosed, syscall.ENODEV, syscall.ENXIO, syscall.EIO} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func (rd *reader) unpluggedStop(err error, during string) error {
	return &stop{
		verdict: Error,
		reason:  reason("rig_unplugged", fmt.Sprintf("检测中仪器断开（%s）：请检查仪器电源和数据线，然后重新检测", during), fmt.Sprintf("the instrument went away during %s: check its power and cable, then test again", during)),
		err:     fmt.Errorf("emission: %s: rig unplugged during %s (is its cable plugged in?): %w", rd.p.res.Rig, during, err),
	}
}

// next reads one sample. It returns an error only when the test must end: the context ended,
// the rig is gone, it was busy too long or answered garbage too often.
func (rd *reader) next(ctx context.Context) (sample, error) {
	p := rd.p
	r, err := p.t.Rig.Read(ctx)
	now := p.now()
	s := sample{at: now}
	if err != nil {
		if ctx.Err() != nil {
			return s, ctx.Err()
		}
		if rd.unplugged(err) {
			return s, rd.unpluggedStop(err, rd.phaseName())
		}
		if rd.busy(err) {
			if rd.busySince.IsZero() {
				rd.busySince = now
			}
			if d := now.Sub(rd.busySince); d > p.t.Limits.Rig.BusyMax {
				return s, refuse(reason("rig_busy", fmt.Sprintf("仪器忙超过 %v，无法取得数据：等仪器就绪后重新检测", p.t.Limits.Rig.BusyMax), fmt.Sprintf("the instrument stayed busy for more than %v and gave no data: test again when it is ready", p.t.Limits.Rig.BusyMax)))
			}
			why := reason("rig_busy", "仪器忙，稍后重试", "instrument busy, asking again")
			s.problem = &why
			return s, nil
		}
		rd.errRun++
		p.log.Debug("emission: bad reading", "rig", p.res.Rig, "run", rd.errRun, "err", err)
		if rd.errRun > p.t.Limits.Rig.ErrorBurstMax {
			return s, &stop{
				verdict: Error,
				reason:  reason("rig_errors", fmt.Sprintf("仪器连续 %d 次应答错误：请检查数据线和仪器", rd.errRun), fmt.Sprintf("%d bad replies in a row from the instrument: check the cable and the instrument", rd.errRun)),
				err:     fmt.Errorf("emission: %s: %d bad replies in a row (check the cable and the instrument): %w", p.res.Rig, rd.errRun, err),
			}
		}
		why := reason("rig_error", fmt.Sprintf("仪器应答错误，已忽略（%v）", err), fmt.Sprintf("bad reply ignored (%v)", err))
		s.problem = &why
		return s, nil
	}
	rd.busySince, rd.errRun = time.Time{}, 0
	if r.Time.IsZero() {
		r.Time = now
	}
	s.ok, s.r = true, r
	p.last = &r
	if err := p.checkState(r); err != nil {
		return s, err
	}
	switch {
	case r.RPM != nil && isFinite(*r.RPM):
		s.rpm, s.rpmSrc = ptr(*r.RPM), "rig"
	case p.t.Speed != nil:
		v, err := p.t.Speed.EngineSpeed(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return s, ctx.Err()
			}
			if !rd.speedErr {
				p.log.Warn("emission: engine speed unavailable", "source", p.t.Speed.String(), "err", err)
			}
			rd.speedErr = true
			break
		}
		rd.speedErr = false
		s.rpm, s.rpmSrc = ptr(v), p.t.Speed.String()
	}
	if s.rpmSrc != "" && p.speedSeen == "" {
		p.speedSeen = s.rpmSrc
	}
	return s, nil
}

func (rd *reader) phaseName() string {
	if rd.p.phase == "" {
		return "the start of the test"
	}
	return rd.p.phase
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func hasFlag(r rig.Reading, f string) bool { return slices.Contains(r.Flags, f) }
