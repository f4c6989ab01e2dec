package emission

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// idleParams are the two-speed idle parameters resolved for one vehicle.
type idleParams struct {
	cfg        TwoSpeedIdleConfig
	limits     IdleLimits
	period     time.Duration
	pre, high  RPMWindow
	low        RPMWindow
	lmin, lmax float64
	fuel       Fuel
	judgeL     bool // λ is judged (closed loop with a three-way catalyst)
}

// lambdaJudged decides whether the car's λ is judged and says why: GB 18285-2018 judges λ on
// cars with closed-loop fuel control and a three-way catalyst (im-emission.md §6.1).
func lambdaJudged(v Vehicle, c TwoSpeedIdleConfig) (bool, string) {
	switch {
	case v.LambdaJudged != nil:
		return *v.LambdaJudged, "stated"
	case v.ClosedLoopSeen:
		return true, "obd_closed_loop"
	case v.FuelType == FuelLPG || v.FuelType == FuelCNG:
		return c.LambdaJudgedGas, "fuel_" + v.FuelType
	}
	return true, "fuel_petrol"
}

// fuelOf is the H/C and O/C of the car's fuel for the computed λ (im-emission.md §6.2, §6.3).
func fuelOf(fuel string, c TwoSpeedIdleConfig) Fuel {
	switch fuel {
	case FuelLPG:
		return Fuel{HC: c.LPGHC}
	case FuelCNG:
		return Fuel{HC: c.CNGHC}
	}
	return Fuel{HC: c.FuelHC, OC: c.FuelOC}
}

// idlePhase is one step of the method: a window the engine must hold and for how long.
type idlePhase struct {
	cond     int
	name     string
	win      RPMWindow
	hold     time.Duration
	sampling bool
	prompt   Text
	back     int // the phase a restart goes back to
}

func (p *proc) prepareIdle() error {
	c := p.t.Limits.TwoSpeedIdle
	v := p.t.Vehicle
	lim, err := p.t.Limits.Idle(p.t.LimitSet)
	if err != nil {
		return err
	}
	if !(v.RatedRPM > 0) || !isFinite(v.RatedRPM) {
		return errors.New("emission: rated engine speed unknown: enter 额定转速 from the registration certificate before a two-speed idle test")
	}
	judged, why := lambdaJudged(v, c)
	ip := idleParams{cfg: c, limits: lim, period: c.SamplePeriod, lmin: c.LambdaMin, lmax: c.LambdaMax,
		fuel: fuelOf(v.FuelType, c), judgeL: judged}
	target := c.PreconditionFraction * v.RatedRPM
	ip.pre = RPMWindow{Min: target * (1 - c.PreconditionTolerance), Max: target * (1 + c.PreconditionTolerance)}
	hi := c.HighIdleRPM
	if v.GrossMassKg > c.HeavyGrossMassKg {
		hi = c.HeavyHighIdleRPM
	}
	if v.HighIdleRPM > 0 {
		hi = v.HighIdleRPM
	}
	ip.high = RPMWindow{Min: hi - c.HighIdleToleranceRPM, Max: hi + c.HighIdleToleranceRPM}
	ip.low = RPMWindow{Min: c.IdleRPMMin, Max: c.IdleRPMMax}
	if v.IdleRPMMin > 0 && v.IdleRPMMax > v.IdleRPMMin {
		ip.low = RPMWindow{Min: v.IdleRPMMin, Max: v.IdleRPMMax}
	}
	if v.LambdaMin > 0 && v.LambdaMax > v.LambdaMin {
		ip.lmin, ip.lmax = v.LambdaMin, v.LambdaMax
	}
	if ip.low.Max >= ip.high.Min {
		return fmt.Errorf("emission: idle window %.0f–%.0f r/min overlaps the high-idle window %.0f–%.0f r/min", ip.low.Min, ip.low.Max, ip.high.Min, ip.high.Max)
	}
	p.idle = ip
	p.res.Idle = &IdleResult{
		RatedRPM: v.RatedRPM, HighIdleMin: ip.high.Min, HighIdleMax: ip.high.Max,
		IdleMin: ip.low.Min, IdleMax: ip.low.Max, LambdaMin: ip.lmin, LambdaMax: ip.lmax,
		Limits: lim, Process: []IdleProcess{}, LambdaJudged: judged, LambdaJudgedBy: why,
		FuelHC: ip.fuel.HC, FuelOC: ip.fuel.OC,
	}
	return nil
}

func (p *proc) idlePhases() []idlePhase {
	ip, c := p.idle, p.idle.cfg
	hold := func(w RPMWindow) string { return fmt.Sprintf("%.0f–%.0f r/min", w.Min, w.Max) }
	return []idlePhase{
		{cond: CondPrecondition, name: "precondition", win: ip.pre, hold: c.Precondition, back: 0,
			prompt: Text{ZH: "加速至 70% 额定转速（" + hold(ip.pre) + "）并保持", EN: "run the engine at 70 % of rated speed (" + hold(ip.pre) + ") and hold it"}},
		{cond: CondHighIdlePrep, name: "high_idle_prepare", win: ip.high, hold: c.Stabilise, back: 1,
			prompt: Text{ZH: "降至高怠速（" + hold(ip.high) + "），插入取样探头并保持", EN: "drop to high idle (" + hold(ip.high) + "), insert the probe and hold"}},
		{cond: CondHighIdleSample, name: "high_idle_sample", win: ip.high, hold: c.Sample, sampling: true, back: 1,
			prompt: Text{ZH: "高怠速检测中，保持转速 " + hold(ip.high), EN: "measuring at high idle: hold " + hold(ip.high)}},
		{cond: CondIdlePrep, name: "idle_prepare", win: ip.low, hold: c.Stabilise, back: 3,
			prompt: Text{ZH: "松开油门回到怠速（" + hold(ip.low) + "）", EN: "release the throttle to idle (" + hold(ip.low) + ")"}},
		{cond: CondIdleSample, name: "idle_sample", win: ip.low, hold: c.Sample, sampling: true, back: 3,
			prompt: Text{ZH: "怠速检测中，保持怠速", EN: "measuring at idle: keep the engine idling"}},
	}
}

// restart asks the sequence to go back to a phase's preparation.
type restart struct{ why Reason }

func (r *restart) Error() string { return "emission: phase restarted: " + r.why.EN }

func (p *proc) runIdle(ctx context.Context) error {
	phases := p.idlePhases()
	ir := p.res.Idle
	for i := 0; i < len(phases); {
		ph := phases[i]
		avg, err := p.idlePhase(ctx, ph)
		var rs *restart
		if errors.As(err, &rs) {
			if ir.Restarts >= p.idle.cfg.PhaseRestarts {
				return refuse(reason(rs.why.Code, fmt.Sprintf("%s；已重新开始 %d 次，无法判定", rs.why.ZH, ir.Restarts), fmt.Sprintf("%s; restarted %d times already, cannot judge", rs.why.EN, ir.Restarts)))
			}
			ir.Restarts++
			ev := reason("phase_restarted", fmt.Sprintf("%s，重新开始该工况", rs.why.ZH), fmt.Sprintf("%s: phase restarted", rs.why.EN))
			p.log.Info("emission: phase restarted", "phase", ph.name, "why", rs.why.EN)
			p.progress(Progress{Phase: ph.name, Condition: ph.cond, SecondsLeft: -1, Restarts: ir.Restarts, Event: &ev})
			i = ph.back
			continue
		}
		if err != nil {
			return err
		}
		switch ph.cond {
		case CondHighIdleSample:
			ir.HighIdle = avg
		case CondIdleSample:
			ir.Idle = avg
		}
		i++
	}
	return p.judgeIdle()
}

// idlePhase brings the engine into the phase's window, holds it there for the phase's time and
// averages the samples of a sampling phase. Engine speed may leave the window for up to
// RPMExcursion; longer restarts the phase. A sample the rig could not give (busy, bad reply)
// neither counts as in nor out of the window.
func (p *proc) idlePhase(ctx context.Context, ph idlePhase) (*PhaseAverages, error) {
	c := p.idle.cfg
	period := p.idle.period
	p.phase = ph.name
	waitStart := p.now()
	entered := false
	var phaseStart, outSince time.Time
	ticks := 0
	needed := int(math.Ceil(float64(ph.hold) / float64(period)))
	acc := &idleAcc{}
	rpmSeen := false
	for {
		if err := p.pace(ctx); err != nil {
			return nil, err
		}
		s, err := p.rd.next(ctx)
		if err != nil {
			return nil, err
		}
		now := s.at
		state := "unknown"
		if s.ok {
			state = ph.win.classify(s.rpm)
			rpmSeen = rpmSeen || s.rpm != nil
		}
		if !entered {
			if state == "in" {
				entered, phaseStart, outSince = true, now, time.Time{}
			} else if now.Sub(waitStart) >= c.ReachTimeout {
				if !rpmSeen {
					return nil, refuse(reason("no_rpm", "无法取得发动机转速：仪器没有转速信号，OBD 010C 也无应答；请连接转速计或 OBD 接头", "no engine speed: the rig has no tachometer and OBD 010C did not answer; connect a tachometer or the OBD adapter"))
				}
				return nil, refuse(reason("rpm_not_reached", fmt.Sprintf("%v 内发动机转速未达到 %.0f–%.0f r/min", c.ReachTimeout, ph.win.Min, ph.win.Max), fmt.Sprintf("engine speed did not reach %.0f–%.0f r/min within %v", ph.win.Min, ph.win.Max, c.ReachTimeout)))
			}
		} else if s.ok {
			if state != "in" {
				if outSince.IsZero() {
					outSince = now
				}
				if now.Sub(outSince) > c.RPMExcursion {
					return nil, &restart{why: reason("rpm_window", fmt.Sprintf("%s：发动机转速超出 %.0f–%.0f r/min 超过 %v", phaseZH(ph.cond), ph.win.Min, ph.win.Max, c.RPMExcursion), fmt.Sprintf("%s: engine speed outside %.0f–%.0f r/min for more than %v", ph.name, ph.win.Min, ph.win.Max, c.RPMExcursion))}
				}
			} else {
				outSince = time.Time{}
			}
		}
		averaged := false
		if entered && ph.sampling && s.ok && state == "in" && s.r.HCppm != nil && s.r.COPct != nil {
			averaged = true
		}
		if s.ok {
			rec := p.idleRecord(s, ph.cond, phaseStart, waitStart, averaged)
			if averaged {
				acc.add(rec)
			}
		}
		if entered {
			ticks++
		}
		left := -1
		if entered {
			left = int(math.Ceil(float64(needed-ticks) * period.Seconds()))
		}
		pr := Progress{Phase: ph.name, Condition: ph.cond, Prompt: ph.prompt, SecondsLeft: left,
			RPM: s.rpm, Window: &RPMWindow{Min: ph.win.Min, Max: ph.win.Max, State: state}, Restarts: p.res.Idle.Restarts, Event: s.problem}
		p.progress(pr)
		if entered && ticks >= needed {
			break
		}
	}
	if !ph.sampling {
		return nil, nil
	}
	return p.closeWindow(ph, acc, needed)
}

// closeWindow checks that a sampling window has enough valid samples and an undiluted sample
// gas, and averages it.
func (p *proc) closeWindow(ph idlePhase, acc *idleAcc, expected int) (*PhaseAverages, error) {
	c := p.idle.cfg
	min := int(math.Ceil(c.MinSampleFraction * float64(expected)))
	if acc.n < min {
		return nil, &restart{why: reason("samples_missing", fmt.Sprintf("%s：有效样本 %d 个，至少需要 %d 个", phaseZH(ph.cond), acc.n, min), fmt.Sprintf("%s: %d valid samples, at least %d needed", ph.name, acc.n, min))}
	}
	a := acc.averages(expected, min)
	if c.MinCOPlusCO2Pct > 0 {
		if a.CO2Pct == nil {
			p.warnOnce(reason("no_co2", "仪器无 CO2 数据，未做稀释检查", "the analyzer reports no CO2: the dilution check was skipped"))
		} else if sum := a.COPct + *a.CO2Pct; sum < c.MinCOPlusCO2Pct {
			return nil, &restart{why: reason("diluted", fmt.Sprintf("%s：CO+CO2 为 %.2f%%，低于 %.1f%%：取样探头是否插入排气管，管路是否泄漏？", phaseZH(ph.cond), sum, c.MinCOPlusCO2Pct), fmt.Sprintf("%s: CO+CO2 is %.2f %%, below %.1f %%: is the probe in the tailpipe, does the sample line leak?", ph.name, sum, c.MinCOPlusCO2Pct))}
		}
	}
	return a, nil
}

func (p *proc) warnOnce(r Reason) {
	for _, w := range p.res.Warnings {
		if w.Code == r.Code {
			return
		}
	}
	p.res.Warnings = append(p.res.Warnings, r)
}

func (p *proc) idleRecord(s sample, cond int, phaseStart, waitStart time.Time, averaged bool) IdleProcess {
	r := s.r
	from := phaseStart
	if from.IsZero() {
		from = waitStart
	}
	rec := IdleProcess{
		Time: s.at, FullSequence: int(s.at.Sub(p.start) / time.Second), Condition: cond,
		SamplingTiming: int(s.at.Sub(from) / time.Second),
		HCppm:          fin(r.HCppm), COPct: fin(r.COPct), O2Pct: fin(r.O2Pct), CO2Pct: fin(r.CO2Pct), NOppm: fin(r.NOppm),
		Lambda: fin(r.Lambda), RPM: s.rpm, OilC: fin(r.OilC), Averaged: averaged,
	}
	if rec.CO2Pct != nil && rec.COPct != nil && rec.O2Pct != nil && rec.HCppm != nil {
		no := 0.0
		if rec.NOppm != nil {
			no = *rec.NOppm
		}
		if l, ok := Brettschneider(*rec.CO2Pct, *rec.COPct, *rec.O2Pct, *rec.HCppm, no, p.idle.fuel); ok {
			rec.LambdaComputed = ptr(l)
		}
	}
	p.res.Idle.Process = append(p.res.Idle.Process, rec)
	return rec
}

func fin(v *float64) *float64 {
	if v == nil || !isFinite(*v) {
		return nil
	}
	return ptr(*v)
}

// idleAcc sums the averaged samples of a window; optional channels count separately.
type idleAcc struct {
	n                  int
	hc, co             float64
	co2, o2, no, l, lc sum
	rpm, oil           sum
}

type sum struct {
	n int
	v float64
}

func (s *sum) add(v *float64) {
	if v != nil {
		s.n++
		s.v += *v
	}
}

// mean is nil when fewer than min samples carried the channel: an average over a few seconds
// of a thirty-second window is not that window's average.
func (s sum) mean(min int) *float64 {
	if s.n == 0 || s.n < min {
		return nil
	}
	return ptr(s.v / float64(s.n))
}

func (a *idleAcc) add(r IdleProcess) {
	a.n++
	a.hc += *r.HCppm
	a.co += *r.COPct
	a.co2.add(r.CO2Pct)
	a.o2.add(r.O2Pct)
	a.no.add(r.NOppm)
	a.l.add(r.Lambda)
	a.lc.add(r.LambdaComputed)
	a.rpm.add(r.RPM)
	a.oil.add(r.OilC)
}

func (a *idleAcc) averages(expected, min int) *PhaseAverages {
	return &PhaseAverages{
		Samples: a.n, Expected: expected,
		HCppm: a.hc / float64(a.n), COPct: a.co / float64(a.n),
		CO2Pct: a.co2.mean(min), O2Pct: a.o2.mean(min), NOppm: a.no.mean(min),
		Lambda: a.l.mean(min), LambdaComputed: a.lc.mean(min),
		RPM: a.rpm.mean(1), OilC: a.oil.mean(1),
	}
}

// judgeIdle compares the rounded averages with the limits: CO to 0.01 %, HC to 1 ppm, λ to
// 0.01 (the resolutions of the result fields; judging the rounded value is inferred).
func (p *proc) judgeIdle() error {
	ir, ip := p.res.Idle, p.idle
	hi, lo := ir.HighIdle, ir.Idle
	lambda, src := hi.Lambda, "analyzer"
	switch {
	case !ip.judgeL:
		// Shown, not judged: the analyzer's λ, or the computed one when it reports none.
		src = "not_judged"
		if lambda == nil {
			lambda = hi.LambdaComputed
		}
	case lambda == nil:
		if !ip.cfg.JudgeComputedLambda || hi.LambdaComputed == nil {
			return refuse(reason("no_lambda", "仪器未报告过量空气系数 λ，无法判定（计算值仅用于核对）", "the analyzer reports no λ, so λ cannot be judged (the computed value is only a cross-check)"))
		}
		lambda, src = hi.LambdaComputed, "computed"
	}
	if hi.Lambda != nil && hi.LambdaComputed != nil && math.Abs(*hi.Lambda-*hi.LambdaComputed) > ip.cfg.LambdaPlausibility {
		p.res.Warnings = append(p.res.Warnings, reason("lambda_implausible", fmt.Sprintf("仪器 λ %.3f 与按气体计算的 λ %.3f 相差超过 %.2f：请检查仪器标定", *hi.Lambda, *hi.LambdaComputed, ip.cfg.LambdaPlausibility), fmt.Sprintf("analyzer λ %.3f and λ computed from the gases %.3f differ by more than %.2f: check the analyzer's calibration", *hi.Lambda, *hi.LambdaComputed, ip.cfg.LambdaPlausibility)))
	}
	ir.LambdaSource = src
	var items []Item
	if lambda != nil {
		items = append(items, Item{Name: "AIR_COEFFICIENT", Unit: "", Value: round(*lambda, 2), Lower: ip.lmin, Limit: ip.lmax, Decimals: 2, NotJudged: !ip.judgeL})
	}
	items = append(items, []Item{
		{Name: "HIGH_IDLE_CO", Unit: "%", Value: round(hi.COPct, 2), Limit: ip.limits.HighIdleCOPct, Decimals: 2},
		{Name: "HIGH_IDLE_HC", Unit: "ppm", Value: round(hi.HCppm, 0), Limit: ip.limits.HighIdleHCppm, Decimals: 0},
		{Name: "IDLE_CO", Unit: "%", Value: round(lo.COPct, 2), Limit: ip.limits.IdleCOPct, Decimals: 2},
		{Name: "IDLE_HC", Unit: "ppm", Value: round(lo.HCppm, 0), Limit: ip.limits.IdleHCppm, Decimals: 0},
	}...)
	p.res.Verdict = Pass
	for i := range items {
		it := &items[i]
		if it.NotJudged {
			it.Pass = true // shown, never a cause of a fail
			continue
		}
		if it.Name == "AIR_COEFFICIENT" {
			it.Pass = it.Value >= it.Lower && it.Value <= it.Limit
		} else {
			it.Pass = it.Value <= it.Limit
		}
		if !it.Pass {
			p.res.Verdict = Fail
			p.res.Reasons = append(p.res.Reasons, overLimit(*it))
		}
	}
	p.res.Items = items
	return nil
}

var itemZH = map[string]string{
	"AIR_COEFFICIENT": "过量空气系数 λ", "HIGH_IDLE_CO": "高怠速 CO", "HIGH_IDLE_HC": "高怠速 HC",
	"IDLE_CO": "怠速 CO", "IDLE_HC": "怠速 HC", "EMISSION": "光吸收系数 k",
}

var itemEN = map[string]string{
	"AIR_COEFFICIENT": "λ", "HIGH_IDLE_CO": "high-idle CO", "HIGH_IDLE_HC": "high-idle HC",
	"IDLE_CO": "idle CO", "IDLE_HC": "idle HC", "EMISSION": "light absorption coefficient k",
}

func overLimit(it Item) Reason {
	v := fmtVal(it.Value, it.Decimals)
	if it.Name == "AIR_COEFFICIENT" {
		return reason("over_limit", fmt.Sprintf("%s %s 超出 %s–%s", itemZH[it.Name], v, fmtVal(it.Lower, 2), fmtVal(it.Limit, 2)), fmt.Sprintf("%s %s is outside %s–%s", itemEN[it.Name], v, fmtVal(it.Lower, 2), fmtVal(it.Limit, 2)))
	}
	return reason("over_limit", fmt.Sprintf("%s %s %s 超过限值 %s %s", itemZH[it.Name], v, it.Unit, fmtVal(it.Limit, it.Decimals), it.Unit), fmt.Sprintf("%s %s %s is over the limit %s %s", itemEN[it.Name], v, it.Unit, fmtVal(it.Limit, it.Decimals), it.Unit))
}

func fmtVal(v float64, d int) string { return fmt.Sprintf("%.*f", d, v) }

func phaseZH(cond int) string {
	return [...]string{"70% 额定转速", "高怠速准备", "高怠速检测", "怠速准备", "怠速检测"}[cond]
}
