package emission_test

import (
	"math"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/emission/emissiontest"
)

// smoke is a free-acceleration setup: the opacimeter shows a puff in each acceleration that
// rises to a peak and decays; peaks[i] is the peak of the i-th acceleration (purges first).
type smoke struct {
	op     *emissiontest.Operator
	rig    *emissiontest.Rig
	peaks  []float64
	nOnly  bool // the opacimeter reports N only
	noTach bool
	count  int // accelerations seen so far
	lastPh string
}

func newSmoke(peaks ...float64) *smoke {
	s := &smoke{op: &emissiontest.Operator{Speeds: emissiontest.AccelSpeeds()}, peaks: peaks}
	s.rig = &emissiontest.Rig{Name: "/dev/ttyUSB2@9600 test opacimeter", Script: s.script}
	return s
}

// shape of a puff over the 25 samples (200 ms) of a five-second window.
var shape = []float64{0.1, 0.4, 0.8, 1.0, 0.9, 0.6, 0.4, 0.25, 0.15, 0.1}

func (s *smoke) script(n int) (rig.Reading, error) {
	phase, tick, _ := s.op.Phase()
	if phase == "accelerate" && s.lastPh != "accelerate" {
		s.count++
	}
	s.lastPh = phase
	k := 0.05 // clean idle
	if phase == "accelerate" && s.count-1 < len(s.peaks) && tick < len(shape) {
		k = s.peaks[s.count-1] * shape[tick]
	}
	r := rig.Reading{OilC: rig.F(85)}
	if s.nOnly {
		r.OpacityPct = rig.F(emission.NFromK(k, emission.DefaultPathLengthM))
	} else {
		r.KM1 = rig.F(k)
		r.OpacityPct = rig.F(emission.NFromK(k, emission.DefaultPathLengthM))
	}
	if !s.noTach {
		r.RPM = rig.F(s.op.RPM())
	}
	return r, nil
}

func (s *smoke) test() emission.Test {
	return emission.Test{
		Method:     emission.FreeAcceleration,
		Rig:        s.rig,
		Vehicle:    emission.Vehicle{VIN: "LGWEF4A59NF123456", RatedRPM: 3200},
		Limits:     emission.DefaultLimits(),
		OnProgress: s.op.OnProgress,
	}
}

func TestFreeAccelerationPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSmoke(2.5, 2.0, 1.5, 0.80, 0.90, 1.00) // three dirty purges, then three measured
		res, err := run(t, s.test())
		if err != nil || res.Verdict != emission.Pass {
			t.Fatalf("verdict %s err %v %+v", res.Verdict, err, res.Reasons)
		}
		a := res.Accel
		if len(a.PeaksKM1) != 3 || a.PeaksKM1[0] != 0.8 || a.PeaksKM1[1] != 0.9 || a.PeaksKM1[2] != 1.0 {
			t.Fatalf("peaks %v: the purge accelerations must not count", a.PeaksKM1)
		}
		it := item(t, res, "EMISSION")
		if a.AvgKM1 == nil || *a.AvgKM1 != 0.9 || it.Value != 0.9 || it.Limit != 1.2 || !it.Pass {
			t.Errorf("avg %v item %+v", a.AvgKM1, it)
		}
		if a.KFromN || a.MaxRPM == nil || *a.MaxRPM != 3300 || a.IdleRPM == nil || math.Abs(*a.IdleRPM-750) > 200 {
			t.Errorf("k from N %v max rpm %v idle rpm %v", a.KFromN, a.MaxRPM, a.IdleRPM)
		}
		// Process data: condition 0 while purging, then 1, 2, 3; every sample has k and rpm.
		seen := map[int]int{}
		for _, p := range a.Process {
			seen[p.Condition]++
			if p.KM1 == nil || p.RPM == nil || (p.Phase != "idle" && p.Phase != "accelerate") {
				t.Fatalf("record %+v", p)
			}
		}
		for c := 0; c <= 3; c++ {
			if seen[c] == 0 {
				t.Errorf("no process data for condition %d: %v", c, seen)
			}
		}
		// 6 cycles of 10 s idle + 5 s acceleration at 200 ms.
		if n := len(a.Process); n < 6*75 || n > 6*75+5 {
			t.Errorf("%d process records", n)
		}
	})
}

func TestFreeAccelerationFail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSmoke(2.5, 2.5, 2.5, 1.3, 1.25, 1.4)
		res, err := run(t, s.test())
		if err != nil || res.Verdict != emission.Fail {
			t.Fatalf("verdict %s err %v", res.Verdict, err)
		}
		it := item(t, res, "EMISSION")
		if it.Pass || it.Value != 1.32 {
			t.Errorf("item %+v, want 1.32 over 1.2", it)
		}
		if !strings.Contains(res.Reasons[0].EN, "light absorption coefficient k 1.32 m⁻¹ is over the limit 1.20 m⁻¹") {
			t.Errorf("reason %q", res.Reasons[0].EN)
		}
	})
}

func TestFreeAccelerationLimitSetB(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSmoke(1, 1, 1, 0.8, 0.9, 1.0)
		tt := s.test()
		tt.LimitSet = "b"
		res, _ := run(t, tt)
		if res.Verdict != emission.Fail || item(t, res, "EMISSION").Limit != 0.7 {
			t.Errorf("verdict %s items %+v", res.Verdict, res.Items)
		}
	})
}

func TestFreeAccelerationKFromN(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSmoke(1, 1, 1, 0.8, 0.9, 1.0)
		s.nOnly = true
		res, err := run(t, s.test())
		if err != nil || res.Verdict != emission.Pass || !res.Accel.KFromN {
			t.Fatalf("verdict %s k from N %v err %v", res.Verdict, res.Accel.KFromN, err)
		}
		near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
		if p := res.Accel.PeaksKM1; len(p) != 3 || !near(p[0], 0.8) || !near(p[1], 0.9) || !near(p[2], 1.0) {
			t.Errorf("peaks from N: %v", p)
		}
	})
}

func TestFreeAccelerationWeakAccelerationRepeated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSmoke(1, 1, 1, 0.6, 0.8, 0.9, 1.0)
		accels := 0
		s.op.Override = func(phase string, visit, tick, acc int) (float64, bool) {
			if phase == "accelerate" && tick == 0 {
				accels++
			}
			if phase == "accelerate" && accels == 4 { // the first measured one: half throttle
				return 2100, true
			}
			return 0, false
		}
		res, err := run(t, s.test())
		if err != nil || res.Verdict != emission.Pass || res.Accel.Repeated != 1 {
			t.Fatalf("verdict %s repeated %d err %v %+v", res.Verdict, res.Accel.Repeated, err, res.Reasons)
		}
		if p := res.Accel.PeaksKM1; len(p) != 3 || p[0] != 0.8 {
			t.Errorf("peaks %v: the weak acceleration must not count", p)
		}
		found := false
		for _, u := range s.op.Events() {
			found = found || (u.Event.Code == "acceleration_repeated" && strings.Contains(u.Event.EN, "reached only 2100 r/min, needs 2880 r/min"))
		}
		if !found {
			t.Error("no event told the operator to repeat the acceleration")
		}
	})
}

func TestFreeAccelerationRefusesWhenItCannotJudge(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*smoke)
		code string
	}{
		{"always weak", func(s *smoke) { s.op.Speeds["accelerate"] = 1800 }, "acceleration_weak"},
		{"engine stays high", func(s *smoke) { s.op.Speeds["idle"] = 1500 }, "not_idle"},
		{"no opacity", func(s *smoke) {
			old := s.rig.Script
			s.rig.Script = func(n int) (rig.Reading, error) {
				r, err := old(n)
				r.KM1, r.OpacityPct = nil, nil
				return r, err
			}
		}, "no_opacity"},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newSmoke(1, 1, 1, 0.8, 0.9, 1.0, 1.0, 1.0)
				c.edit(s)
				res, err := run(t, s.test())
				if err != nil || res.Verdict != emission.Refused || !hasReason(res.Reasons, c.code) || len(res.Items) != 0 {
					t.Fatalf("verdict %s err %v reasons %+v", res.Verdict, err, res.Reasons)
				}
				if len(res.Accel.Process) == 0 {
					t.Error("process data not kept")
				}
			})
		})
	}
}

func TestFreeAccelerationWithoutEngineSpeedWarns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSmoke(1, 1, 1, 0.8, 0.9, 1.0)
		s.noTach = true
		res, err := run(t, s.test())
		if err != nil || res.Verdict != emission.Pass || !hasReason(res.Warnings, "rpm_unknown") || res.Accel.MaxRPM != nil {
			t.Fatalf("verdict %s warnings %+v err %v", res.Verdict, res.Warnings, err)
		}
	})
}

func TestFreeAccelerationSpreadCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSmoke(1, 1, 1, 0.5, 0.9, 1.0)
		tt := s.test()
		tt.Limits.FreeAcceleration.MaxSpreadKM1 = 0.25
		res, _ := run(t, tt)
		if res.Verdict != emission.Refused || !hasReason(res.Reasons, "spread") {
			t.Fatalf("verdict %s reasons %+v", res.Verdict, res.Reasons)
		}
	})
}

func TestFreeAccelerationWithoutRatedSpeedWarns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSmoke(1, 1, 1, 0.8, 0.9, 1.0)
		s.op.Speeds["accelerate"] = 1500 // would be too weak for a 3200 r/min engine
		tt := s.test()
		tt.Vehicle.RatedRPM = 0
		res, err := run(t, tt)
		if err != nil || res.Verdict != emission.Pass || !hasReason(res.Warnings, "rated_rpm_unknown") {
			t.Fatalf("verdict %s warnings %+v err %v", res.Verdict, res.Warnings, err)
		}
	})
}

// Each peak is kept as the opacimeter gave it and the mean is rounded once: rounding the peaks
// first (1.20, 1.20, 1.22 → 1.21) would fail a car whose mean is 1.2018 → 1.20.
func TestFreeAccelerationRoundsOnceAtTheEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSmoke(2.5, 2.0, 1.5, 1.1951, 1.1951, 1.2151)
		res, err := run(t, s.test())
		if err != nil || res.Verdict != emission.Pass {
			t.Fatalf("verdict %s err %v %+v", res.Verdict, err, res.Reasons)
		}
		a := res.Accel
		if len(a.PeaksKM1) != 3 || a.PeaksKM1[0] != 1.1951 || a.PeaksKM1[2] != 1.2151 {
			t.Errorf("peaks %v, want the instrument's values unrounded", a.PeaksKM1)
		}
		if it := item(t, res, "EMISSION"); it.Value != 1.2 || !it.Pass || a.AvgKM1 == nil || *a.AvgKM1 != 1.2 {
			t.Errorf("EMISSION %+v avg %v, want 1.20 judged once", it, a.AvgKM1)
		}
	})
}
