package emission

import (
	"context"
	"fmt"
	"math"
	"time"
)

// accelParams are the free-acceleration parameters resolved for one vehicle.
type accelParams struct {
	cfg    FreeAccelConfig
	limit  float64
	period time.Duration
	rated  float64
}

func (p *proc) prepareAccel() error {
	c := p.t.Limits.FreeAcceleration
	lim, err := p.t.Limits.Opacity(p.t.LimitSet)
	if err != nil {
		return err
	}
	p.accel = accelParams{cfg: c, limit: lim.KM1, period: c.SamplePeriod, rated: p.t.Vehicle.RatedRPM}
	p.res.Accel = &AccelResult{RatedRPM: p.t.Vehicle.RatedRPM, Limit: lim.KM1, PathLengthM: c.PathLengthM,
		PeaksKM1: []float64{}, Process: []AccelProcess{}}
	return nil
}

// cycle is what one acceleration produced.
type cycle struct {
	peakK   *float64
	peakRPM *float64
	idleRPM *float64 // the last engine speed of the idle before the acceleration: settled
}

// runAccel blows the exhaust out with the purge accelerations, then measures the prescribed
// number of accelerations, repeating an invalid one (engine did not reach its speed, no
// opacity reading) up to AccelerationRetries times, and judges their mean.
func (p *proc) runAccel(ctx context.Context) error {
	c := p.accel.cfg
	ar := p.res.Accel
	var idle sum
	for i := 1; i <= c.PurgeAccelerations; i++ {
		if _, err := p.accelCycle(ctx, 0, i); err != nil {
			return err
		}
	}
	for n := 1; n <= c.MeasuredAccelerations; {
		cy, err := p.accelCycle(ctx, n, 0)
		if err != nil {
			return err
		}
		idle.add(cy.idleRPM)
		if bad := p.invalidAccel(n, cy); bad != nil {
			if ar.Repeated >= c.AccelerationRetries {
				return refuse(reason(bad.Code, fmt.Sprintf("%s；已重做 %d 次，无法判定", bad.ZH, ar.Repeated), fmt.Sprintf("%s; repeated %d times already, cannot judge", bad.EN, ar.Repeated)))
			}
			ar.Repeated++
			ev := reason("acceleration_repeated", bad.ZH+"，请重做该次加速", bad.EN+": do that acceleration again")
			p.progress(Progress{Phase: "idle", Acceleration: n, Condition: n, SecondsLeft: -1, Restarts: ar.Repeated, Event: &ev})
			continue
		}
		// The peak as the instrument gave it: rounding happens once, on the mean (a peak rounded
		// first can move the mean across the limit).
		ar.PeaksKM1 = append(ar.PeaksKM1, *cy.peakK)
		if cy.peakRPM != nil {
			ar.PeakRPM = append(ar.PeakRPM, *cy.peakRPM)
			if ar.MaxRPM == nil || *cy.peakRPM > *ar.MaxRPM {
				ar.MaxRPM = ptr(*cy.peakRPM)
			}
		}
		n++
	}
	ar.IdleRPM = idle.mean(1)
	if ar.PeakRPM != nil && len(ar.PeakRPM) != len(ar.PeaksKM1) {
		ar.PeakRPM = nil // some accelerations had no engine speed: a partial list would mislead
	}
	var total, lo, hi float64
	lo = math.Inf(1)
	for _, k := range ar.PeaksKM1 {
		total += k
		lo, hi = min(lo, k), max(hi, k)
	}
	avg := round(total/float64(len(ar.PeaksKM1)), 2)
	ar.AvgKM1 = ptr(avg)
	if c.MaxSpreadKM1 > 0 && hi-lo > c.MaxSpreadKM1 {
		return refuse(reason("spread", fmt.Sprintf("各次加速 k 值相差 %.2f m⁻¹，超过 %.2f m⁻¹：测量不稳定", hi-lo, c.MaxSpreadKM1),
			fmt.Sprintf("the peaks differ by %.2f m⁻¹, more than %.2f m⁻¹: the measurement is not stable", hi-lo, c.MaxSpreadKM1)))
	}
	it := Item{Name: "EMISSION", Unit: "m⁻¹", Value: avg, Limit: p.accel.limit, Decimals: 2, Pass: avg <= p.accel.limit}
	p.res.Items = []Item{it}
	p.res.Verdict = Pass
	if !it.Pass {
		p.res.Verdict = Fail
		p.res.Reasons = append(p.res.Reasons, overLimit(it))
	}
	return nil
}

// invalidAccel says why a measured acceleration cannot count, or nil.
func (p *proc) invalidAccel(n int, cy cycle) *Reason {
	c := p.accel.cfg
	if cy.peakK == nil {
		r := reason("no_opacity", fmt.Sprintf("第 %d 次加速没有取得烟度数据", n), fmt.Sprintf("acceleration %d: no opacity reading", n))
		return &r
	}
	if c.MinPeakRPMFraction > 0 && !(p.accel.rated > 0) {
		p.warnOnce(reason("rated_rpm_unknown", "额定转速未知，未核对加速是否到达额定转速", "rated engine speed unknown: whether each acceleration reached it was not checked"))
	}
	if c.MinPeakRPMFraction > 0 && p.accel.rated > 0 {
		need := c.MinPeakRPMFraction * p.accel.rated
		switch {
		case cy.peakRPM == nil:
			p.warnOnce(reason("rpm_unknown", "无发动机转速，未核对加速是否到达额定转速", "engine speed unknown: whether each acceleration reached rated speed was not checked"))
		case *cy.peakRPM < need:
			r := reason("acceleration_weak", fmt.Sprintf("第 %d 次加速转速只到 %.0f r/min，应至少 %.0f r/min：油门要迅速踩到底", n, *cy.peakRPM, need),
				fmt.Sprintf("acceleration %d reached only %.0f r/min, needs %.0f r/min: press the throttle fully and quickly", n, *cy.peakRPM, need))
			return &r
		}
	}
	return nil
}

// accelCycle lets the engine idle, then captures one acceleration. n is the measured
// acceleration (0 while purging, purge then counts the purge accelerations).
func (p *proc) accelCycle(ctx context.Context, n, purge int) (cycle, error) {
	c := p.accel.cfg
	var cy cycle
	label := fmt.Sprintf("第 %d 次测量", n)
	labelEN := fmt.Sprintf("measured acceleration %d of %d", n, c.MeasuredAccelerations)
	if n == 0 {
		label = fmt.Sprintf("第 %d 次吹拂", purge)
		labelEN = fmt.Sprintf("purge acceleration %d of %d", purge, c.PurgeAccelerations)
	}
	// Idle: at least IdleBetween, then until engine speed (when known) is back at idle.
	idleWin := RPMWindow{Min: 0, Max: c.IdleRPMMax}
	prompt := Text{ZH: label + "：松开油门，保持怠速", EN: labelEN + ": release the throttle and let the engine idle"}
	err := p.accelSpan(ctx, "idle", n, c.IdleBetween, c.ReachTimeout, idleWin, prompt, func(s sample) {
		if s.ok {
			cy.idleRPM = s.rpm
		}
	})
	if err != nil {
		return cy, err
	}
	prompt = Text{ZH: label + "：迅速将油门踩到底，保持至最高转速后松开", EN: labelEN + ": press the throttle fully and quickly, hold until the engine reaches its top speed, then release"}
	err = p.accelSpan(ctx, "accelerate", n, c.Accelerate, 0, RPMWindow{Min: 0, Max: math.Inf(1)}, prompt, func(s sample) {
		if k, ok := p.kOf(s); ok && (cy.peakK == nil || k > *cy.peakK) {
			cy.peakK = ptr(k)
		}
		if s.rpm != nil && (cy.peakRPM == nil || *s.rpm > *cy.peakRPM) {
			cy.peakRPM = ptr(*s.rpm)
		}
	})
	return cy, err
}

// accelSpan samples for d; with a positive extra it then keeps sampling until engine speed is
// inside win, for at most extra, and refuses after that.
func (p *proc) accelSpan(ctx context.Context, phase string, n int, d, extra time.Duration, win RPMWindow, prompt Text, each func(sample)) error {
	p.phase = phase
	period := p.accel.period
	var start time.Time // the span's first sample
	for {
		if err := p.pace(ctx); err != nil {
			return err
		}
		s, err := p.rd.next(ctx)
		if err != nil {
			return err
		}
		if start.IsZero() {
			start = s.at
		}
		state := "unknown"
		if s.ok {
			state = win.classify(s.rpm)
			p.accelRecord(s, n, phase, start)
			each(s)
		}
		el := s.at.Sub(start)
		left := int(math.Ceil((d - el - period).Seconds()))
		if left < 0 {
			left = 0
		}
		pr := Progress{Phase: phase, Condition: n, Acceleration: n, Prompt: prompt, SecondsLeft: left, RPM: s.rpm, Restarts: p.res.Accel.Repeated, Event: s.problem}
		if !math.IsInf(win.Max, 1) {
			pr.Window = &RPMWindow{Min: win.Min, Max: win.Max, State: state}
		}
		p.progress(pr)
		if el+period >= d {
			if extra <= 0 || state != "above" {
				return nil
			}
			if el+period >= d+extra {
				return refuse(reason("not_idle", fmt.Sprintf("发动机转速 %v 内未回到怠速（≤ %.0f r/min）", d+extra, win.Max),
					fmt.Sprintf("the engine did not return to idle (≤ %.0f r/min) within %v", win.Max, d+extra)))
			}
		}
	}
}

// kOf is the light absorption coefficient of a sample: the opacimeter's own k — its real-time
// value, which the instrument has already filtered (GB 3847-2018 puts the filter in the
// opacimeter; rig-protocols.md §6) — or k from N with the configured path length when it
// reports N only (im-emission.md §7). Each acceleration's peak is the largest of these values.
func (p *proc) kOf(s sample) (float64, bool) {
	if !s.ok {
		return 0, false
	}
	if v := fin(s.r.KM1); v != nil {
		return max(*v, 0), true
	}
	if v := fin(s.r.OpacityPct); v != nil {
		k, clamped := KFromN(*v, p.accel.cfg.PathLengthM)
		p.res.Accel.KFromN = true
		if clamped {
			p.warnOnce(reason("opacity_saturated", fmt.Sprintf("不透光度达到 %.1f%% 以上，k 值按 %.1f%% 截取", MaxOpacityPct, MaxOpacityPct),
				fmt.Sprintf("opacity reached %.1f %% or more: k was clamped at N = %.1f %%", MaxOpacityPct, MaxOpacityPct)))
		}
		return k, isFinite(k)
	}
	return 0, false
}

func (p *proc) accelRecord(s sample, n int, phase string, spanStart time.Time) {
	rec := AccelProcess{
		Time: s.at, FullSequenceMS: s.at.Sub(p.start).Milliseconds(), Condition: n, Phase: phase,
		SamplingTiming: s.at.Sub(spanStart).Milliseconds(),
		OpacityPct:     fin(s.r.OpacityPct), RPM: s.rpm, OilC: fin(s.r.OilC),
	}
	if k, ok := p.kOf(s); ok {
		rec.KM1 = ptr(k)
	}
	p.res.Accel.Process = append(p.res.Accel.Process, rec)
}
