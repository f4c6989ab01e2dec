package emission_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/emission/emissiontest"
	"github.com/obdgw/obdgw/obd"
)

// Gases of a repaired car: within 限值a and 限值b at both speeds.
var (
	highGas = emissiontest.Gas{HC: 30, CO: 0.12, CO2: 14.6, O2: 0.5, NO: 0, Lambda: 1.01}
	idleGas = emissiontest.Gas{HC: 36, CO: 0.20, CO2: 14.4, O2: 0.6, NO: 0, Lambda: 1.01}
)

// bench is one two-speed idle setup: an operator following the prompts and a rig whose gas
// depends on the phase. Each read alternates ±wobble around the gas so the averages are
// exercised (an even number of samples averages back to the gas).
type bench struct {
	op      *emissiontest.Operator
	rig     *emissiontest.Rig
	high    emissiontest.Gas
	low     emissiontest.Gas
	wobble  float64
	oilC    float64 // < 0: no oil sensor
	noTach  bool
	inject  func(n int, phase string, tick int) (rig.Reading, error, bool)
	reading func(r *rig.Reading) // last edit of every reading
}

func newBench() *bench {
	b := &bench{op: &emissiontest.Operator{Speeds: emissiontest.IdleSpeeds()}, high: highGas, low: idleGas, wobble: 0.02, oilC: 90}
	b.rig = &emissiontest.Rig{Name: "/dev/ttyUSB1@9600 test analyzer", Script: b.script}
	return b
}

func (b *bench) script(n int) (rig.Reading, error) {
	phase, tick, _ := b.op.Phase()
	if b.inject != nil {
		if r, err, ok := b.inject(n, phase, tick); ok {
			return r, err
		}
	}
	g := b.high
	if strings.HasPrefix(phase, "idle") {
		g = b.low
	}
	s := 1.0
	if n%2 == 1 {
		s = -1
	}
	g.CO += s * b.wobble
	g.HC += s * 100 * b.wobble
	rpm := b.op.RPM()
	if b.noTach {
		rpm = -1
	}
	r := g.Reading(rpm, b.oilC)
	if b.reading != nil {
		b.reading(&r)
	}
	return r, nil
}

func (b *bench) test() emission.Test {
	return emission.Test{
		Method:     emission.TwoSpeedIdle,
		Rig:        b.rig,
		Vehicle:    emission.Vehicle{VIN: "LSVAU2180N2183294", RatedRPM: 6000},
		Limits:     emission.DefaultLimits(),
		OnProgress: b.op.OnProgress,
	}
}

func run(t *testing.T, tt emission.Test) (*emission.Result, error) {
	t.Helper()
	res, err := emission.RunTest(context.Background(), tt)
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	return res, err
}

func item(t *testing.T, r *emission.Result, name string) emission.Item {
	t.Helper()
	it, ok := r.Item(name)
	if !ok {
		t.Fatalf("no item %s in %+v", name, r.Items)
	}
	return it
}

func hasReason(rs []emission.Reason, code string) bool {
	for _, r := range rs {
		if r.Code == code && r.ZH != "" && r.EN != "" {
			return true
		}
	}
	return false
}

func countCond(p []emission.IdleProcess, cond int, averaged bool) int {
	n := 0
	for _, r := range p {
		if r.Condition == cond && (!averaged || r.Averaged) {
			n++
		}
	}
	return n
}

func TestTwoSpeedIdleCleanPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		start := time.Now()
		res, err := run(t, b.test())
		if err != nil || res.Verdict != emission.Pass {
			t.Fatalf("verdict %s, err %v, reasons %+v", res.Verdict, err, res.Reasons)
		}
		lim := emission.DefaultLimits().TwoSpeedIdle.A
		for _, c := range []struct {
			name       string
			value, lim float64
		}{
			{"HIGH_IDLE_CO", b.high.CO, lim.HighIdleCOPct}, {"HIGH_IDLE_HC", b.high.HC, lim.HighIdleHCppm},
			{"IDLE_CO", b.low.CO, lim.IdleCOPct}, {"IDLE_HC", b.low.HC, lim.IdleHCppm},
			{"AIR_COEFFICIENT", b.high.Lambda, 1.05},
		} {
			it := item(t, res, c.name)
			if math.Abs(it.Value-c.value) > 1e-9 || it.Limit != c.lim || !it.Pass {
				t.Errorf("%s: %+v, want value %v limit %v pass", c.name, it, c.value, c.lim)
			}
		}
		ir := res.Idle
		if ir.HighIdle.Samples != 30 || ir.Idle.Samples != 30 || ir.HighIdle.Expected != 30 {
			t.Errorf("samples: high %d/%d idle %d", ir.HighIdle.Samples, ir.HighIdle.Expected, ir.Idle.Samples)
		}
		want, _ := emission.Brettschneider(b.high.CO2, b.high.CO, b.high.O2, b.high.HC, 0, emission.Petrol)
		if ir.HighIdle.LambdaComputed == nil || math.Abs(*ir.HighIdle.LambdaComputed-want) > 0.002 {
			t.Errorf("computed λ %v, want about %v", ir.HighIdle.LambdaComputed, want)
		}
		if ir.LambdaSource != "analyzer" || math.Abs(*ir.HighIdle.Lambda-b.high.Lambda) > 1e-9 {
			t.Errorf("λ source %q value %v", ir.LambdaSource, *ir.HighIdle.Lambda)
		}
		// Process data: every condition in order, second by second, λ both ways.
		last, lastSeq := -1, -1
		for _, p := range ir.Process {
			if p.Condition < last {
				t.Fatalf("condition went back from %d to %d without a restart", last, p.Condition)
			}
			if p.FullSequence <= lastSeq {
				t.Fatalf("FULL_SEQUENCE_TIME not increasing: %d after %d", p.FullSequence, lastSeq)
			}
			last, lastSeq = p.Condition, p.FullSequence
			if p.Lambda == nil || p.LambdaComputed == nil || p.RPM == nil || p.OilC == nil {
				t.Fatalf("incomplete record %+v", p)
			}
		}
		for cond, n := range map[int]int{0: 30, 1: 15, 2: 30, 3: 15, 4: 30} {
			if got := countCond(ir.Process, cond, false); got < n {
				t.Errorf("condition %d: %d records, want at least %d", cond, got, n)
			}
		}
		if countCond(ir.Process, 2, true) != 30 || countCond(ir.Process, 4, true) != 30 || countCond(ir.Process, 1, true) != 0 {
			t.Error("only the sampling windows are averaged")
		}
		// 30 + 15 + 30 + 15 + 30 s of holds plus a second of reaction per phase, on the fake clock.
		if d := time.Since(start); d < 120*time.Second || d > 130*time.Second {
			t.Errorf("test took %v of fake time", d)
		}
		if !res.End.After(res.Start) || res.Rig != b.rig.String() || res.LimitSet != "a" || res.Speed != "rig" {
			t.Errorf("header %+v", res)
		}
		if b.rig.Halts() != 1 {
			t.Errorf("rig halted %d times, want once at the end", b.rig.Halts())
		}
		// Progress told the operator each phase in order with a countdown.
		var phases []string
		for _, u := range b.op.Updates() {
			if len(phases) == 0 || phases[len(phases)-1] != u.Phase {
				phases = append(phases, u.Phase)
			}
		}
		if got := strings.Join(phases, ","); got != "warm_up,precondition,high_idle_prepare,high_idle_sample,idle_prepare,idle_sample,done" {
			t.Errorf("phases %s", got)
		}
	})
}

func TestTwoSpeedIdleFailsOnIdleCO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.low.CO = 0.85
		res, err := run(t, b.test())
		if err != nil || res.Verdict != emission.Fail {
			t.Fatalf("verdict %s err %v", res.Verdict, err)
		}
		if it := item(t, res, "IDLE_CO"); it.Pass || it.Value != 0.85 || it.Limit != 0.6 {
			t.Errorf("IDLE_CO %+v", it)
		}
		if it := item(t, res, "HIGH_IDLE_CO"); !it.Pass {
			t.Errorf("HIGH_IDLE_CO %+v", it)
		}
		if len(res.Reasons) != 1 || !strings.Contains(res.Reasons[0].EN, "idle CO 0.85 % is over the limit 0.60 %") || !strings.Contains(res.Reasons[0].ZH, "怠速 CO") {
			t.Errorf("reasons %+v", res.Reasons)
		}
	})
}

func TestTwoSpeedIdleLimitSetB(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.low.CO = 0.5 // under 限值a 0.6, over 限值b 0.4
		tt := b.test()
		tt.LimitSet = "b"
		res, _ := run(t, tt)
		if res.Verdict != emission.Fail || res.LimitSet != "b" || item(t, res, "IDLE_CO").Limit != 0.4 {
			t.Errorf("set b: %s %+v", res.Verdict, res.Items)
		}
	})
}

func TestTwoSpeedIdleLambdaOutOfRangeFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.high.Lambda = 1.08
		b.high.O2 = 1.9 // lean gas, so the computed λ agrees and no warning muddles the case
		res, _ := run(t, b.test())
		it := item(t, res, "AIR_COEFFICIENT")
		if res.Verdict != emission.Fail || it.Pass || it.Lower != 0.95 || it.Limit != 1.05 {
			t.Errorf("%s %+v", res.Verdict, it)
		}
		if !strings.Contains(res.Reasons[0].EN, "outside 0.95–1.05") {
			t.Errorf("reasons %+v", res.Reasons)
		}
	})
}

func TestTwoSpeedIdleShortRPMExcursionTolerated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.op.Override = func(phase string, visit, tick, _ int) (float64, bool) {
			if phase == "high_idle_sample" && tick >= 10 && tick < 12 {
				return 2200, true // two seconds below 2300
			}
			return 0, false
		}
		res, err := run(t, b.test())
		if err != nil || res.Verdict != emission.Pass || res.Idle.Restarts != 0 {
			t.Fatalf("verdict %s restarts %d err %v %+v", res.Verdict, res.Idle.Restarts, err, res.Reasons)
		}
		if res.Idle.HighIdle.Samples != 28 {
			t.Errorf("high idle averaged %d samples, want 28 (the two outside the window left out)", res.Idle.HighIdle.Samples)
		}
	})
}

func TestTwoSpeedIdleRPMDriftRestartsPhase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.op.Override = func(phase string, visit, tick, _ int) (float64, bool) {
			if phase == "high_idle_sample" && visit == 1 && tick >= 10 {
				return 2000, true // the operator lets the engine sag and keeps it there
			}
			return 0, false
		}
		res, err := run(t, b.test())
		if err != nil || res.Verdict != emission.Pass || res.Idle.Restarts != 1 {
			t.Fatalf("verdict %s restarts %d err %v %+v", res.Verdict, res.Idle.Restarts, err, res.Reasons)
		}
		var ev *emission.Reason
		for _, u := range b.op.Events() {
			if u.Event.Code == "phase_restarted" {
				ev = u.Event
			}
		}
		if ev == nil || !strings.Contains(ev.EN, "high_idle_sample: engine speed outside 2300–2700 r/min for more than 3s") {
			t.Fatalf("restart event %+v", ev)
		}
		// The first, abandoned window stays in the process data, not in the average.
		if n := countCond(res.Idle.Process, 2, false); n < 30+10 {
			t.Errorf("condition 2 records %d, want the abandoned window kept too", n)
		}
		if res.Idle.HighIdle.Samples != 30 {
			t.Errorf("averaged %d", res.Idle.HighIdle.Samples)
		}
	})
}

func TestTwoSpeedIdleRPMDriftRefusesAfterRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.op.Override = func(phase string, visit, tick, _ int) (float64, bool) {
			if phase == "idle_sample" && tick >= 5 {
				return 1300, true // idle hunting above the window every time
			}
			return 0, false
		}
		res, err := run(t, b.test())
		if err != nil || res.Verdict != emission.Refused {
			t.Fatalf("verdict %s err %v", res.Verdict, err)
		}
		if res.Idle.Restarts != 2 || !hasReason(res.Reasons, "rpm_window") || !strings.Contains(res.Reasons[0].EN, "restarted 2 times") {
			t.Errorf("restarts %d reasons %+v", res.Idle.Restarts, res.Reasons)
		}
		if len(res.Items) != 0 {
			t.Errorf("a refused test has no judged items: %+v", res.Items)
		}
		if res.Idle.HighIdle == nil {
			t.Error("the high-idle averages measured before the refusal are kept")
		}
	})
}

func TestTwoSpeedIdleEngineNeverReachesSpeed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.op.Speeds["precondition"] = 3000 // the operator does not rev high enough
		res, err := run(t, b.test())
		if err != nil || res.Verdict != emission.Refused || !hasReason(res.Reasons, "rpm_not_reached") {
			t.Fatalf("verdict %s err %v reasons %+v", res.Verdict, err, res.Reasons)
		}
		if !strings.Contains(res.Reasons[0].EN, "3780–4620 r/min within 1m0s") {
			t.Errorf("reason %q", res.Reasons[0].EN)
		}
	})
}

func TestTwoSpeedIdleAnalyzerBusyForAWhile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.inject = func(n int, phase string, tick int) (rig.Reading, error, bool) {
			if phase == "high_idle_prepare" && tick >= 3 && tick < 9 {
				return rig.Reading{}, fmt.Errorf("nha: reply 15: %w", emissiontest.BusyError{}), true
			}
			return rig.Reading{}, nil, false
		}
		res, err := run(t, b.test())
		if err != nil || res.Verdict != emission.Pass {
			t.Fatalf("verdict %s err %v %+v", res.Verdict, err, res.Reasons)
		}
		busy := 0
		for _, u := range b.op.Events() {
			if u.Event.Code == "rig_busy" {
				busy++
			}
		}
		if busy != 6 {
			t.Errorf("%d busy updates, want 6", busy)
		}
	})
}

func TestTwoSpeedIdleAnalyzerBusyTooLongRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.inject = func(n int, phase string, tick int) (rig.Reading, error, bool) {
			if phase == "high_idle_sample" && tick >= 5 {
				return rig.Reading{}, fmt.Errorf("nha: %w", emissiontest.BusyError{}), true
			}
			return rig.Reading{}, nil, false
		}
		res, err := run(t, b.test())
		if err != nil || res.Verdict != emission.Refused || !hasReason(res.Reasons, "rig_busy") {
			t.Fatalf("verdict %s err %v reasons %+v", res.Verdict, err, res.Reasons)
		}
		if !strings.Contains(res.Reasons[0].EN, "busy for more than 10s") {
			t.Errorf("reason %q", res.Reasons[0].EN)
		}
	})
}

func TestTwoSpeedIdleRigUnpluggedKeepsProcessData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.inject = func(n int, phase string, tick int) (rig.Reading, error, bool) {
			if phase == "idle_prepare" && tick >= 4 {
				return rig.Reading{}, emissiontest.ErrUnplugged, true
			}
			return rig.Reading{}, nil, false
		}
		res, err := run(t, b.test())
		if err == nil || !errors.Is(err, rig.ErrLinkLost) || res.Verdict != emission.Error {
			t.Fatalf("verdict %s err %v", res.Verdict, err)
		}
		for _, want := range []string{"emission: ", "unplugged during idle_prepare", "cable"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		if !hasReason(res.Reasons, "rig_unplugged") || len(res.Items) != 0 {
			t.Errorf("reasons %+v items %+v", res.Reasons, res.Items)
		}
		if countCond(res.Idle.Process, 2, true) != 30 || countCond(res.Idle.Process, 3, false) == 0 || res.Idle.HighIdle == nil {
			t.Errorf("process data so far not kept: %d records", len(res.Idle.Process))
		}
		if b.rig.Halts() != 1 {
			t.Errorf("halts %d", b.rig.Halts())
		}
	})
}

func TestTwoSpeedIdleChecksumBurstTolerated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		bad := &emissiontest.ChecksumError{Raw: []byte{0x06, 0x00, 0x12, 0x9A}}
		b.inject = func(n int, phase string, tick int) (rig.Reading, error, bool) {
			if phase == "high_idle_sample" && tick >= 5 && tick < 8 { // three in a row inside the window
				return rig.Reading{}, fmt.Errorf("nha: %w", bad), true
			}
			return rig.Reading{}, nil, false
		}
		res, err := run(t, b.test())
		if err != nil || res.Verdict != emission.Pass {
			t.Fatalf("verdict %s err %v %+v", res.Verdict, err, res.Reasons)
		}
		if res.Idle.HighIdle.Samples != 27 || res.Idle.Restarts != 0 {
			t.Errorf("high idle: %d samples, %d restarts; want 27 and none", res.Idle.HighIdle.Samples, res.Idle.Restarts)
		}
	})
}

func TestTwoSpeedIdleChecksumBurstTooLongIsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		bad := &emissiontest.ChecksumError{Raw: []byte{0x06, 0x00, 0x12, 0x9A}}
		b.inject = func(n int, phase string, tick int) (rig.Reading, error, bool) {
			if phase == "idle_sample" && tick >= 2 {
				return rig.Reading{}, fmt.Errorf("nha: %w", bad), true
			}
			return rig.Reading{}, nil, false
		}
		res, err := run(t, b.test())
		var ce *emissiontest.ChecksumError
		if res.Verdict != emission.Error || !errors.As(err, &ce) || !hasReason(res.Reasons, "rig_errors") {
			t.Fatalf("verdict %s err %v", res.Verdict, err)
		}
		if !strings.Contains(err.Error(), "6 bad replies in a row") {
			t.Errorf("error %q", err)
		}
	})
}

func TestTwoSpeedIdleMissingSamplesRestartThenRefuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.reading = func(r *rig.Reading) {
			if ph, tick, _ := b.op.Phase(); ph == "idle_sample" && tick%4 == 0 {
				r.HCppm = nil // the HC channel drops out every fourth second
			}
		}
		res, err := run(t, b.test())
		if err != nil || res.Verdict != emission.Refused || !hasReason(res.Reasons, "samples_missing") || res.Idle.Restarts != 2 {
			t.Fatalf("verdict %s restarts %d err %v reasons %+v", res.Verdict, res.Idle.Restarts, err, res.Reasons)
		}
		if !strings.Contains(res.Reasons[0].EN, "valid samples, at least 27 needed") {
			t.Errorf("reason %q", res.Reasons[0].EN)
		}
	})
}

func TestTwoSpeedIdleRefusesToStart(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*bench, *emission.Test)
		code string
	}{
		{"warming up", func(b *bench, _ *emission.Test) { b.reading = func(r *rig.Reading) { r.WarmingUp = true } }, "rig_warming_up"},
		{"not zeroed flag", func(b *bench, _ *emission.Test) {
			b.reading = func(r *rig.Reading) { r.Flags = append(r.Flags, "zero_required") }
		}, "not_zeroed"},
		{"zero fails", func(b *bench, tt *emission.Test) {
			tt.Rig = &emissiontest.ZeroRig{Rig: b.rig, ZeroErr: errors.New("nha: zero: NAK 15")}
		}, "not_zeroed"},
		{"engine cold", func(b *bench, _ *emission.Test) { b.oilC = 41 }, "engine_cold"},
		{"no engine speed source", func(b *bench, _ *emission.Test) { b.noTach = true }, "no_rpm"},
		{"OBD engine speed never answers", func(b *bench, tt *emission.Test) {
			b.noTach = true
			tt.Speed = emission.OBDSpeed{Adapter: obdNoData{}}
		}, "no_rpm"},
		{"no analyzer lambda", func(b *bench, _ *emission.Test) { b.high.Lambda, b.low.Lambda = 0, 0 }, "no_lambda"},
		{"diluted sample", func(b *bench, _ *emission.Test) { b.high.CO2 = 4 }, "diluted"},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBench()
				tt := b.test()
				c.edit(b, &tt)
				res, err := run(t, tt)
				if err != nil || res.Verdict != emission.Refused || !hasReason(res.Reasons, c.code) {
					t.Fatalf("verdict %s err %v reasons %+v", res.Verdict, err, res.Reasons)
				}
				if len(res.Items) != 0 {
					t.Errorf("items %+v", res.Items)
				}
			})
		})
	}
}

func TestTwoSpeedIdleZeroesFirstAndWarnsWithoutOilSensor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.oilC = -1
		tt := b.test()
		z := &emissiontest.ZeroRig{Rig: b.rig, ZeroTime: 20 * time.Second}
		tt.Rig = z
		res, err := run(t, tt)
		if err != nil || res.Verdict != emission.Pass || z.Zeros() != 1 || !hasReason(res.Warnings, "oil_unknown") {
			t.Fatalf("verdict %s zeros %d warnings %+v err %v", res.Verdict, z.Zeros(), res.Warnings, err)
		}
		if res.Idle.Process[0].FullSequence < 20 {
			t.Errorf("first record at %d s: zeroing time should come before it", res.Idle.Process[0].FullSequence)
		}
	})
}

func TestTwoSpeedIdleComputedLambdaWhenConfigured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.high.Lambda, b.low.Lambda = 0, 0
		tt := b.test()
		tt.Limits.TwoSpeedIdle.JudgeComputedLambda = true
		res, err := run(t, tt)
		want, _ := emission.Brettschneider(b.high.CO2, b.high.CO, b.high.O2, b.high.HC, 0, emission.Petrol)
		if err != nil || res.Verdict != emission.Pass || res.Idle.LambdaSource != "computed" ||
			item(t, res, "AIR_COEFFICIENT").Value != math.Round(want*100)/100 {
			t.Fatalf("verdict %s source %q items %+v", res.Verdict, res.Idle.LambdaSource, res.Items)
		}
	})
}

func TestTwoSpeedIdleWarnsWhenLambdasDisagree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.high.Lambda = 0.97 // the gas says about 1.02
		res, _ := run(t, b.test())
		if res.Verdict != emission.Pass || !hasReason(res.Warnings, "lambda_implausible") {
			t.Fatalf("verdict %s warnings %+v", res.Verdict, res.Warnings)
		}
	})
}

// obdRPM answers 010C with the operator's engine speed, like a car would.
type obdRPM struct{ op *emissiontest.Operator }

func (a obdRPM) Query(ctx context.Context, req obd.Request) ([]obd.Response, error) {
	if req.String() != "010C" {
		return nil, fmt.Errorf("unexpected %s", req)
	}
	v := int(a.op.RPM() * 4)
	return []obd.Response{{ECU: "7E8", Data: []byte{0x41, 0x0C, byte(v >> 8), byte(v)}}}, nil
}

// obdNoData is a car that does not support PID 0C.
type obdNoData struct{}

func (obdNoData) Query(context.Context, obd.Request) ([]obd.Response, error) {
	return nil, obd.ErrNoData
}

func TestTwoSpeedIdleEngineSpeedOverOBD(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.noTach = true
		tt := b.test()
		tt.Speed = emission.OBDSpeed{Adapter: obdRPM{b.op}}
		res, err := run(t, tt)
		if err != nil || res.Verdict != emission.Pass || res.Speed != "OBD 010C" {
			t.Fatalf("verdict %s speed %q err %v %+v", res.Verdict, res.Speed, err, res.Reasons)
		}
		// The first sample of the window is read before the operator has heard the new prompt.
		if rpm := res.Idle.HighIdle.RPM; rpm == nil || *rpm < b.op.Speeds["high_idle_prepare"] || *rpm > b.op.Speeds["high_idle_sample"] {
			t.Errorf("high-idle rpm %v", rpm)
		}
	})
}

func TestTwoSpeedIdleAbort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		ctx, cancel := context.WithCancel(context.Background())
		tt := b.test()
		tt.OnProgress = func(p emission.Progress) {
			b.op.OnProgress(p)
			if p.Phase == "high_idle_sample" {
				cancel()
			}
		}
		res, err := emission.RunTest(ctx, tt)
		if !errors.Is(err, context.Canceled) || res.Verdict != emission.Aborted || len(res.Idle.Process) == 0 {
			t.Fatalf("verdict %v err %v", res.Verdict, err)
		}
	})
}

func TestTwoSpeedIdleCannotStartWithoutRatedSpeed(t *testing.T) {
	b := newBench()
	tt := b.test()
	tt.Vehicle.RatedRPM = 0
	res, err := emission.RunTest(context.Background(), tt)
	if res != nil || err == nil || !strings.Contains(err.Error(), "额定转速") {
		t.Fatalf("res %v err %v", res, err)
	}
	tt = b.test()
	tt.Limits.TwoSpeedIdle.A.IdleCOPct = 0
	if _, err := emission.RunTest(context.Background(), tt); err == nil || !strings.Contains(err.Error(), "two_speed_idle.a.idle_co_pct") {
		t.Fatalf("bad limits: %v", err)
	}
	if b.rig.Reads() != 0 {
		t.Errorf("the rig was read %d times by tests that could not start", b.rig.Reads())
	}
}

// The shared errors of the rig drivers (drivers/rig) are recognised without options.
func TestTwoSpeedIdleRecognisesTheDriversErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.inject = func(n int, phase string, tick int) (rig.Reading, error, bool) {
			switch {
			case phase == "high_idle_prepare" && tick >= 2 && tick < 6:
				return rig.Reading{}, &rig.BusyError{Model: "NHA-506", Frame: []byte{0x06, 0x01}}, true
			case phase == "idle_prepare" && tick >= 1 && tick < 3:
				return rig.Reading{}, &rig.ChecksumError{Model: "NHA-506", Frame: []byte{0x06, 0x00}, Want: 1, Got: 2}, true
			case phase == "idle_sample" && tick >= 3:
				return rig.Reading{}, fmt.Errorf("nanhua: read: %w", rig.ErrLinkLost), true
			}
			return rig.Reading{}, nil, false
		}
		tt := b.test()
		tt.Rig = &emissiontest.ZeroRig{Rig: b.rig, ZeroErr: fmt.Errorf("nanhua: zero: %w", rig.ErrUnsupported)}
		res, err := run(t, tt)
		if !errors.Is(err, rig.ErrLinkLost) || res.Verdict != emission.Error || !hasReason(res.Reasons, "rig_unplugged") {
			t.Fatalf("verdict %s err %v reasons %+v", res.Verdict, err, res.Reasons)
		}
		if !hasReason(res.Warnings, "zero_unsupported") {
			t.Errorf("warnings %+v", res.Warnings)
		}
		codes := map[string]int{}
		for _, u := range b.op.Events() {
			codes[u.Event.Code]++
		}
		if codes["rig_busy"] != 4 || codes["rig_error"] != 2 {
			t.Errorf("events %v, want 4 busy and 2 bad replies tolerated", codes)
		}
	})
}

func TestTwoSpeedIdleRigSilentFromTheStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.rig.Latency = 2 * time.Second // each attempt waits out the driver's deadline
		b.inject = func(int, string, int) (rig.Reading, error, bool) {
			return rig.Reading{}, fmt.Errorf("nanhua: %w", rig.ErrNoReply), true
		}
		res, err := run(t, b.test())
		if !errors.Is(err, rig.ErrNoReply) || res.Verdict != emission.Error || !strings.Contains(err.Error(), "check the cable") {
			t.Fatalf("verdict %s err %v", res.Verdict, err)
		}
		if b.rig.Reads() != emission.DefaultLimits().Rig.ErrorBurstMax+1 {
			t.Errorf("%d reads, want the burst limit + 1", b.rig.Reads())
		}
	})
}
