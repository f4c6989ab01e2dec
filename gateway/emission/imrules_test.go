package emission_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/obdgw/obdgw/gateway/emission"
)

// λ is judged only on cars with closed-loop fuel control and a three-way catalyst: a rich
// λ 0.90 fails a petrol car, and is shown, not judged, on a car stated to have neither, or on
// an LPG car unless the configuration judges gas cars.
func TestLambdaJudgedOnlyWithClosedLoopAndCatalyst(t *testing.T) {
	no, yes := false, true
	for _, c := range []struct {
		name    string
		v       func(*emission.Vehicle)
		gas     bool // lambda_judged_gas
		judged  bool
		by      string
		verdict emission.Verdict
	}{
		{"petrol default", func(*emission.Vehicle) {}, false, true, "fuel_petrol", emission.Fail},
		{"stated no", func(v *emission.Vehicle) { v.LambdaJudged = &no }, false, false, "stated", emission.Pass},
		{"stated yes on LPG", func(v *emission.Vehicle) { v.FuelType, v.LambdaJudged = emission.FuelLPG, &yes }, false, true, "stated", emission.Fail},
		{"LPG not configured", func(v *emission.Vehicle) { v.FuelType = emission.FuelLPG }, false, false, "fuel_lpg", emission.Pass},
		{"CNG configured", func(v *emission.Vehicle) { v.FuelType = emission.FuelCNG }, true, true, "fuel_cng", emission.Fail},
		{"closed loop seen on CNG", func(v *emission.Vehicle) { v.FuelType, v.ClosedLoopSeen = emission.FuelCNG, true }, false, true, "obd_closed_loop", emission.Fail},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := newBench()
				b.high.Lambda, b.low.Lambda = 0.90, 0.90
				tt := b.test()
				c.v(&tt.Vehicle)
				tt.Limits.TwoSpeedIdle.LambdaJudgedGas = c.gas
				tt.Limits.TwoSpeedIdle.LambdaPlausibility = 1 // the gases are not rich: no warning wanted here
				res, err := run(t, tt)
				if err != nil || res.Verdict != c.verdict {
					t.Fatalf("verdict %s err %v reasons %+v, want %s", res.Verdict, err, res.Reasons, c.verdict)
				}
				it := item(t, res, "AIR_COEFFICIENT")
				if it.Value != 0.9 || it.NotJudged == c.judged || res.Idle.LambdaJudged != c.judged || res.Idle.LambdaJudgedBy != c.by {
					t.Errorf("λ item %+v judged %v by %q, want judged %v by %q", it, res.Idle.LambdaJudged, res.Idle.LambdaJudgedBy, c.judged, c.by)
				}
				if !c.judged && (res.Idle.LambdaSource != "not_judged" || len(res.Reasons) != 0) {
					t.Errorf("λ shown only: source %q reasons %+v", res.Idle.LambdaSource, res.Reasons)
				}
			})
		})
	}
}

// A car whose λ is not judged needs no λ from the analyzer: the test is not refused for it.
func TestLambdaNotJudgedNeedsNoAnalyzerLambda(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.high.Lambda, b.low.Lambda = 0, 0
		tt := b.test()
		no := false
		tt.Vehicle.LambdaJudged = &no
		res, err := run(t, tt)
		if err != nil || res.Verdict != emission.Pass {
			t.Fatalf("verdict %s err %v reasons %+v", res.Verdict, err, res.Reasons)
		}
		if it := item(t, res, "AIR_COEFFICIENT"); !it.NotJudged || res.Idle.HighIdle.LambdaComputed == nil || it.Value != math.Round(*res.Idle.HighIdle.LambdaComputed*100)/100 {
			t.Errorf("λ item %+v: want the computed λ shown, not judged", it)
		}
		b = newBench()
		b.high.Lambda, b.low.Lambda = 0, 0
		res, _ = run(t, b.test())
		if res.Verdict != emission.Refused || !hasReason(res.Reasons, "no_lambda") {
			t.Errorf("judged λ without the analyzer's: %s %+v, want refused no_lambda", res.Verdict, res.Reasons)
		}
	})
}

// Heavy vehicles (gross mass above 3500 kg) hold 1800 ± 200 r/min at high idle; the operator
// holding 2500 is outside that window and the phase never starts.
func TestHeavyVehicleHighIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBench()
		b.op.Speeds["high_idle_prepare"], b.op.Speeds["high_idle_sample"] = 1810, 1790
		tt := b.test()
		tt.Vehicle.GrossMassKg = 4500
		res, err := run(t, tt)
		if err != nil || res.Verdict != emission.Pass {
			t.Fatalf("verdict %s err %v reasons %+v", res.Verdict, err, res.Reasons)
		}
		if res.Idle.HighIdleMin != 1600 || res.Idle.HighIdleMax != 2000 {
			t.Errorf("high-idle window %v–%v, want 1600–2000", res.Idle.HighIdleMin, res.Idle.HighIdleMax)
		}
		b = newBench()
		tt = b.test()
		tt.Vehicle.GrossMassKg = 3500 // not above: a light vehicle
		tt.Limits.TwoSpeedIdle.HeavyHighIdleRPM = 1700
		res, _ = run(t, tt)
		if res.Idle.HighIdleMin != 2300 || res.Verdict != emission.Pass {
			t.Errorf("3500 kg: window from %v, verdict %s", res.Idle.HighIdleMin, res.Verdict)
		}
	})
}

// The computed λ uses the car's fuel: CNG (H/C 4.0) and petrol (1.7261) give different λ
// from the same gases.
func TestComputedLambdaFollowsTheFuel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		got := map[string]float64{}
		for _, f := range []string{emission.FuelPetrol, emission.FuelCNG} {
			b := newBench()
			tt := b.test()
			tt.Vehicle.FuelType = f
			res, _ := run(t, tt)
			if res.Idle == nil || res.Idle.HighIdle == nil || res.Idle.HighIdle.LambdaComputed == nil {
				t.Fatalf("%s: no computed λ", f)
			}
			got[f] = *res.Idle.HighIdle.LambdaComputed
			want := map[string]float64{emission.FuelPetrol: 1.7261, emission.FuelCNG: 4.0}[f]
			if res.Idle.FuelHC != want {
				t.Errorf("%s: H/C %v, want %v", f, res.Idle.FuelHC, want)
			}
		}
		g := highGas
		want, _ := emission.Brettschneider(g.CO2, g.CO, g.O2, g.HC, g.NO, emission.Fuel{HC: 4.0})
		if math.Abs(got[emission.FuelCNG]-want) > 0.01 || math.Abs(got[emission.FuelCNG]-got[emission.FuelPetrol]) < 0.005 {
			t.Errorf("computed λ petrol %.4f CNG %.4f, want CNG about %.4f", got[emission.FuelPetrol], got[emission.FuelCNG], want)
		}
	})
}

// A method that does not fit the instrument or the car's fuel is refused before anything is
// read from the rig.
func TestMethodMustFitInstrumentAndFuel(t *testing.T) {
	diesel, spark := true, false
	for _, c := range []struct {
		name   string
		method emission.Method
		instr  string
		edit   func(*emission.Vehicle)
		want   string
	}{
		{"idle on an opacimeter", emission.TwoSpeedIdle, emission.Opacimeter, func(*emission.Vehicle) {}, "two-speed idle needs a gas analyzer"},
		{"idle on a diesel", emission.TwoSpeedIdle, emission.GasAnalyzer, func(v *emission.Vehicle) { v.FuelType = emission.FuelDiesel }, "run free_acceleration (GB 3847-2018)"},
		{"idle on a car OBD says is diesel", emission.TwoSpeedIdle, "", func(v *emission.Vehicle) { v.Compression = &diesel }, "compression ignition"},
		{"free acceleration on an analyzer", emission.FreeAcceleration, emission.GasAnalyzer, func(*emission.Vehicle) {}, "free acceleration needs an opacimeter"},
		{"free acceleration on a petrol car", emission.FreeAcceleration, emission.Opacimeter, func(v *emission.Vehicle) { v.FuelType = emission.FuelPetrol }, "run two_speed_idle (GB 18285-2018)"},
		{"free acceleration on a CNG car", emission.FreeAcceleration, "", func(v *emission.Vehicle) { v.FuelType = emission.FuelCNG }, "this car is cng"},
		{"free acceleration on a spark car by OBD", emission.FreeAcceleration, "", func(v *emission.Vehicle) { v.Compression = &spark }, "spark ignition"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBench()
			tt := b.test()
			tt.Method, tt.Instrument = c.method, c.instr
			c.edit(&tt.Vehicle)
			res, err := emission.RunTest(t.Context(), tt)
			var pe *emission.PreconditionError
			if res != nil || !errors.As(err, &pe) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("RunTest = %v, %v; want a PreconditionError saying %q", res, err, c.want)
			}
			if b.rig.Reads() != 0 {
				t.Errorf("%d reads before the refusal", b.rig.Reads())
			}
			if _, err := emission.NewRuns(nil).Start(t.Context(), "bay1", tt); !errors.As(err, &pe) {
				t.Errorf("Runs.Start = %v, want the same refusal", err)
			}
		})
	}
	// A fitting combination starts.
	b := newBench()
	tt := b.test()
	tt.Instrument, tt.Vehicle.FuelType = emission.GasAnalyzer, emission.FuelLPG
	if _, err := emission.ParseFuel("液化石油气"); err != nil {
		t.Error(err)
	}
	if _, err := emission.ParseFuel("kerosene"); err == nil || !strings.Contains(err.Error(), "want petrol, diesel, lpg or cng") {
		t.Errorf("ParseFuel(kerosene) = %v", err)
	}
	synctest.Test(t, func(t *testing.T) {
		if res, err := run(t, tt); err != nil || !res.Verdict.Judged() {
			t.Errorf("LPG car on an analyzer: %v %v", res.Verdict, err)
		}
	})
}
