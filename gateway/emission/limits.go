package emission

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/obdgw/obdgw/obd"
)

// Limits is the "emission:" section of the daemon's configuration. It holds the legal limit
// values of both limit sets and the procedure parameters the standard texts we have did not
// confirm (im-emission.md §5 and §11): the provincial platform or the shop's configuration
// decides them, the procedures never carry their own.
//
// Start from DefaultLimits() and lay the configuration over it, so a configuration names only
// what it changes; then Validate. gateway/config does both when it reads the file (strictly:
// a typo in a key must not silently leave a legal limit at its default).
type Limits struct {
	// LimitSet selects 限值a ("a") or 限值b ("b"). Which set applies to a vehicle depends on the
	// province and date (im-emission.md §11, open); a test may override it.
	LimitSet string `yaml:"limit_set"`

	TwoSpeedIdle     TwoSpeedIdleConfig `yaml:"two_speed_idle"`
	FreeAcceleration FreeAccelConfig    `yaml:"free_acceleration"`
	Rig              RigConfig          `yaml:"rig"`
	OBD              OBDRules           `yaml:"obd_check"`
}

// OBDRules are the parts of the inspection-station OBD check that are configuration
// (im-emission.md §8.1, §8.3).
type OBDRules struct {
	// Readiness monitors the stations count, by obd.Mon… key, per engine type. An incomplete
	// monitor outside the list is shown but never fails the check.
	ReadinessSpark       []string `yaml:"readiness_spark"`
	ReadinessCompression []string `yaml:"readiness_compression"`
	// MaxIncomplete counted monitors may be incomplete; one more fails the check.
	MaxIncomplete int `yaml:"max_incomplete"`
}

// Counted returns the monitors counted for an engine type: spark, compression, or both lists
// when the type is not known (nil). The monitor keys of the two types do not overlap except
// EGR/VVT, so the union of both lists judges either kind of engine as its own list would.
func (r OBDRules) Counted(compression *bool) []string {
	switch {
	case compression == nil:
		out := append([]string{}, r.ReadinessSpark...)
		for _, m := range r.ReadinessCompression {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
		return out
	case *compression:
		return append([]string{}, r.ReadinessCompression...)
	}
	return append([]string{}, r.ReadinessSpark...)
}

// IdleLimits are the two-speed idle limits of one limit set. CO in % vol, HC in ppm vol.
type IdleLimits struct {
	IdleCOPct     float64 `yaml:"idle_co_pct"`
	IdleHCppm     float64 `yaml:"idle_hc_ppm"`
	HighIdleCOPct float64 `yaml:"high_idle_co_pct"`
	HighIdleHCppm float64 `yaml:"high_idle_hc_ppm"`
}

// TwoSpeedIdleConfig holds the limits and the procedure parameters of 双怠速 (GB 18285-2018).
type TwoSpeedIdleConfig struct {
	A IdleLimits `yaml:"a"`
	B IdleLimits `yaml:"b"`

	// λ range judged at high idle; a vehicle's manufacturer range overrides it.
	LambdaMin float64 `yaml:"lambda_min"`
	LambdaMax float64 `yaml:"lambda_max"`

	// Engine speed windows, r/min. Heavy vehicles (gross mass above HeavyGrossMassKg) hold
	// HeavyHighIdleRPM instead of HighIdleRPM at high idle, with the same tolerance.
	HighIdleRPM          float64 `yaml:"high_idle_rpm"`
	HighIdleToleranceRPM float64 `yaml:"high_idle_rpm_tolerance"`
	HeavyHighIdleRPM     float64 `yaml:"heavy_high_idle_rpm"`
	HeavyGrossMassKg     float64 `yaml:"heavy_gross_mass_kg"`
	IdleRPMMin           float64 `yaml:"idle_rpm_min"`
	IdleRPMMax           float64 `yaml:"idle_rpm_max"`
	// Preconditioning runs at PreconditionFraction of the rated speed ± PreconditionTolerance
	// (a fraction of the target).
	PreconditionFraction  float64 `yaml:"precondition_fraction"`
	PreconditionTolerance float64 `yaml:"precondition_tolerance"`

	// Phase durations.
	Precondition time.Duration `yaml:"precondition"` // at 70 % rated speed
	Stabilise    time.Duration `yaml:"stabilise"`    // before each sampling window
	Sample       time.Duration `yaml:"sample"`       // averaging window
	SamplePeriod time.Duration `yaml:"sample_period"`

	// How long the operator has to bring the engine into a window before the test is refused.
	ReachTimeout time.Duration `yaml:"reach_timeout"`
	// How long engine speed may stay outside its window before the phase restarts.
	RPMExcursion time.Duration `yaml:"rpm_excursion"`
	// How many phase restarts a test allows before it refuses to judge.
	PhaseRestarts int `yaml:"phase_restarts"`
	// Share of the expected samples a sampling window needs to be averaged.
	MinSampleFraction float64 `yaml:"min_sample_fraction"`
	// Dilution check: the average CO+CO2 below this says the probe is not in the exhaust stream
	// or the sampling line leaks; 0 disables it.
	MinCOPlusCO2Pct float64 `yaml:"min_co_plus_co2_pct"`
	// Engine warm: oil temperature at least this when the rig measures it; 0 disables it.
	OilMinC float64 `yaml:"oil_min_c"`

	// Fuel atomic ratios for the Brettschneider λ: petrol (FuelHC, FuelOC), LPG and CNG (no
	// oxygen in the fuel). The car's fuel picks the pair.
	FuelHC float64 `yaml:"fuel_h_c"`
	FuelOC float64 `yaml:"fuel_o_c"`
	LPGHC  float64 `yaml:"lpg_h_c"`
	CNGHC  float64 `yaml:"cng_h_c"`
	// λ is judged only on cars with closed-loop fuel control and a three-way catalyst. Petrol
	// cars are taken to have them unless the test says otherwise; LPG and CNG cars only when
	// this is set (or the test says so).
	LambdaJudgedGas bool `yaml:"lambda_judged_gas"`
	// A warning is added when the analyzer's λ and the computed one differ by more than this.
	LambdaPlausibility float64 `yaml:"lambda_plausibility"`
	// Judge the computed λ when the analyzer reports none. im-emission.md §6.2 says the
	// Brettschneider value is a plausibility check only, so the default refuses instead.
	JudgeComputedLambda bool `yaml:"judge_computed_lambda"`
}

// OpacityLimit is the free-acceleration limit of one limit set.
type OpacityLimit struct {
	KM1 float64 `yaml:"k_m1"` // light absorption coefficient, m⁻¹
}

// FreeAccelConfig holds the limits and the procedure parameters of 自由加速 (GB 3847-2018).
type FreeAccelConfig struct {
	A OpacityLimit `yaml:"a"`
	B OpacityLimit `yaml:"b"`

	PurgeAccelerations    int           `yaml:"purge_accelerations"`    // blow the exhaust out first
	MeasuredAccelerations int           `yaml:"measured_accelerations"` // averaged for the result
	Accelerate            time.Duration `yaml:"accelerate"`             // window in which a peak is taken
	IdleBetween           time.Duration `yaml:"idle_between"`           // idle before each acceleration
	SamplePeriod          time.Duration `yaml:"sample_period"`
	ReachTimeout          time.Duration `yaml:"reach_timeout"` // extra time for the engine to return to idle
	IdleRPMMax            float64       `yaml:"idle_rpm_max"`
	// An acceleration counts only if engine speed (when known) reached this share of the rated
	// speed; 0 disables the check.
	MinPeakRPMFraction float64 `yaml:"min_peak_rpm_fraction"`
	// How many invalid accelerations may be repeated before the test refuses to judge.
	AccelerationRetries int `yaml:"acceleration_retries"`
	// The measured peaks must lie within this band (max − min, m⁻¹); 0 disables the check.
	MaxSpreadKM1 float64 `yaml:"max_spread_k_m1"`
	// Effective optical path length for k from N when an opacimeter reports only N.
	PathLengthM float64 `yaml:"path_length_m"`
	OilMinC     float64 `yaml:"oil_min_c"`
}

// RigConfig says how much misbehaviour of the rig a test tolerates.
type RigConfig struct {
	// An instrument that answers busy longer than this ends the test as refused.
	BusyMax time.Duration `yaml:"busy_max"`
	// Consecutive failed reads (checksum errors, NAKs, timeouts) tolerated before the test ends
	// with an error.
	ErrorBurstMax int `yaml:"error_burst_max"`
	// Zero the instrument before a test when it can zero itself (rig.Zeroer).
	ZeroBeforeTest bool `yaml:"zero_before_test"`
	// EngineWarmUpMax is how long a test waits, showing oil temperature and engine speed, for
	// a cold engine to reach the method's oil_min_c before it refuses; 0 refuses at once.
	EngineWarmUpMax time.Duration `yaml:"engine_warm_up_max"`
}

// DefaultLimits returns the values of im-emission.md §5 and our defaults for the procedure
// parameters. Markings follow that page: corroborated, unconfirmed, inferred.
func DefaultLimits() Limits {
	return Limits{
		LimitSet: "a",
		TwoSpeedIdle: TwoSpeedIdleConfig{
			// 限值a: corroborated (LimitOfDIS.ini); 限值b: unconfirmed.
			A: IdleLimits{IdleCOPct: 0.6, IdleHCppm: 80, HighIdleCOPct: 0.3, HighIdleHCppm: 50},
			B: IdleLimits{IdleCOPct: 0.4, IdleHCppm: 40, HighIdleCOPct: 0.3, HighIdleHCppm: 30},
			// corroborated
			LambdaMin: 0.95,
			LambdaMax: 1.05,
			// unconfirmed (2500 ± 200 for light-duty vehicles; 1800 ± 200 above 3500 kg gross mass)
			HighIdleRPM:          2500,
			HighIdleToleranceRPM: 200,
			HeavyHighIdleRPM:     1800,
			HeavyGrossMassKg:     3500,
			// inferred: GB 18285 names the manufacturer's idle speed, not a window
			IdleRPMMin: 500,
			IdleRPMMax: 1100,
			// 70 % confirmed by the HJ 1238 condition name (70 % 额定转速); tolerance inferred
			PreconditionFraction:  0.70,
			PreconditionTolerance: 0.10,
			// unconfirmed: 30 s at 70 %, 15 s stabilisation, 30 s average per idle speed
			Precondition: 30 * time.Second,
			Stabilise:    15 * time.Second,
			Sample:       30 * time.Second,
			SamplePeriod: time.Second, // second-by-second process data (HJ 1238)
			// inferred
			ReachTimeout:      60 * time.Second,
			RPMExcursion:      3 * time.Second,
			PhaseRestarts:     2,
			MinSampleFraction: 0.9,
			MinCOPlusCO2Pct:   6.0, // unconfirmed
			OilMinC:           80,  // unconfirmed
			// petrol, im-emission.md §6.2 (unconfirmed); LPG and CNG §6.3 (unconfirmed)
			FuelHC:              1.7261,
			FuelOC:              0.0176,
			LPGHC:               2.525,
			CNGHC:               4.0,
			LambdaJudgedGas:     false, // unconfirmed: whether stations judge λ on gas cars
			LambdaPlausibility:  0.03,  // inferred
			JudgeComputedLambda: false,
		},
		FreeAcceleration: FreeAccelConfig{
			A: OpacityLimit{KM1: 1.2}, // unconfirmed
			B: OpacityLimit{KM1: 0.7}, // unconfirmed
			// three measured accelerations: confirmed by EMISSION_ONE/TWO/THREE; the rest unconfirmed
			PurgeAccelerations:    3,
			MeasuredAccelerations: 3,
			Accelerate:            5 * time.Second,
			IdleBetween:           10 * time.Second,
			SamplePeriod:          200 * time.Millisecond, // inferred: a peak lasts about a second
			ReachTimeout:          30 * time.Second,
			IdleRPMMax:            1100,
			MinPeakRPMFraction:    0.9,
			AccelerationRetries:   2,
			MaxSpreadKM1:          0,
			PathLengthM:           0.430, // confirmed
			OilMinC:               80,    // unconfirmed
		},
		Rig: RigConfig{
			BusyMax:        10 * time.Second, // inferred
			ErrorBurstMax:  5,                // inferred
			ZeroBeforeTest: true,
			// inferred: a cold engine reaches 80 °C oil in a few minutes at fast idle
			EngineWarmUpMax: 10 * time.Minute,
		},
		OBD: DefaultOBDRules(),
	}
}

// monitorKeys are the readiness monitor keys of package obd.
var monitorKeys = []string{obd.MonMisfire, obd.MonFuelSystem, obd.MonComponents, obd.MonCatalyst, obd.MonHeatedCatalyst,
	obd.MonEvap, obd.MonSecondaryAir, obd.MonOxygenSensor, obd.MonOxygenHeater, obd.MonEGRVVT, obd.MonNMHCCatalyst,
	obd.MonNOxSCR, obd.MonBoostPressure, obd.MonExhaustGasSensor, obd.MonPMFilter}

// DefaultOBDRules are the readiness monitors inspection stations count (im-emission.md §8.3):
// petrol catalyst, O2 sensor, O2 sensor heater and EGR/VVT, diesel SCR/NOx aftertreatment, NMHC
// catalyst (DOC), PM filter (DPF, POC) and EGR/VVT — corroborated by the item lists of public
// I-station OBD code; the annexes of GB 18285-2018 / GB 3847-2018 and HJ 1237 / HJ 1238 that
// name them were not available: unconfirmed. Boost pressure (diesel) is in no list we have
// seen: unconfirmed. More than two incomplete fails (confirmed, §8.1).
func DefaultOBDRules() OBDRules {
	return OBDRules{
		ReadinessSpark:       []string{obd.MonCatalyst, obd.MonOxygenSensor, obd.MonOxygenHeater, obd.MonEGRVVT},
		ReadinessCompression: []string{obd.MonNOxSCR, obd.MonNMHCCatalyst, obd.MonPMFilter, obd.MonEGRVVT, obd.MonBoostPressure},
		MaxIncomplete:        MaxIncompleteMonitors,
	}
}

// Limit sets.
const (
	SetA = "a" // 限值a
	SetB = "b" // 限值b
)

// Idle returns the two-speed idle limits of set ("" = the configured set).
func (l Limits) Idle(set string) (IdleLimits, error) {
	switch l.set(set) {
	case SetA:
		return l.TwoSpeedIdle.A, nil
	case SetB:
		return l.TwoSpeedIdle.B, nil
	}
	return IdleLimits{}, fmt.Errorf("emission: limit_set: %q: want \"a\" (限值a) or \"b\" (限值b)", clip(set))
}

// Opacity returns the free-acceleration limit of set ("" = the configured set).
func (l Limits) Opacity(set string) (OpacityLimit, error) {
	switch l.set(set) {
	case SetA:
		return l.FreeAcceleration.A, nil
	case SetB:
		return l.FreeAcceleration.B, nil
	}
	return OpacityLimit{}, fmt.Errorf("emission: limit_set: %q: want \"a\" (限值a) or \"b\" (限值b)", clip(set))
}

func (l Limits) set(override string) string {
	if override != "" {
		return override
	}
	return l.LimitSet
}

// LimitError is one value Validate refuses. Key is the value's path inside the emission
// section ("two_speed_idle.a.idle_co_pct"), so the configuration can point at its line.
type LimitError struct {
	Key string
	Msg string
}

func (e *LimitError) Error() string { return "emission: " + e.Key + ": " + e.Msg }

// Validate checks every value and returns every problem (errors.Join of *LimitError), each
// naming the key that is wrong ("emission: two_speed_idle.a.idle_co_pct: …").
func (l Limits) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &LimitError{Key: key, Msg: fmt.Sprintf(format, a...)})
	}
	pos := func(key string, v float64) {
		if !(v > 0) || math.IsInf(v, 0) {
			bad(key, "must be a number above 0, got %v", v)
		}
	}
	nonneg := func(key string, v float64) {
		if !(v >= 0) || math.IsInf(v, 0) {
			bad(key, "must be 0 or more, got %v", v)
		}
	}
	frac := func(key string, v float64) {
		if !(v > 0 && v <= 1) {
			bad(key, "must lie in (0, 1], got %v", v)
		}
	}
	dur := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be a positive duration such as 30s, got %v", d)
		}
	}
	count := func(key string, n, min int) {
		if n < min {
			bad(key, "must be at least %d, got %d", min, n)
		}
	}
	if l.LimitSet != SetA && l.LimitSet != SetB {
		bad("limit_set", "%q: want \"a\" (限值a) or \"b\" (限值b)", clip(l.LimitSet))
	}
	t := l.TwoSpeedIdle
	for _, set := range []struct {
		name string
		s    IdleLimits
	}{{"a", t.A}, {"b", t.B}} {
		p, s := "two_speed_idle."+set.name+".", set.s
		pos(p+"idle_co_pct", s.IdleCOPct)
		pos(p+"idle_hc_ppm", s.IdleHCppm)
		pos(p+"high_idle_co_pct", s.HighIdleCOPct)
		pos(p+"high_idle_hc_ppm", s.HighIdleHCppm)
	}
	pos("two_speed_idle.lambda_min", t.LambdaMin)
	pos("two_speed_idle.lambda_max", t.LambdaMax)
	if t.LambdaMin >= t.LambdaMax {
		bad("two_speed_idle.lambda_max", "%v must be above lambda_min %v", t.LambdaMax, t.LambdaMin)
	}
	pos("two_speed_idle.high_idle_rpm", t.HighIdleRPM)
	pos("two_speed_idle.high_idle_rpm_tolerance", t.HighIdleToleranceRPM)
	if t.HighIdleToleranceRPM >= t.HighIdleRPM {
		bad("two_speed_idle.high_idle_rpm_tolerance", "%v must be below high_idle_rpm %v", t.HighIdleToleranceRPM, t.HighIdleRPM)
	}
	pos("two_speed_idle.heavy_high_idle_rpm", t.HeavyHighIdleRPM)
	if t.HighIdleToleranceRPM >= t.HeavyHighIdleRPM {
		bad("two_speed_idle.high_idle_rpm_tolerance", "%v must be below heavy_high_idle_rpm %v", t.HighIdleToleranceRPM, t.HeavyHighIdleRPM)
	}
	pos("two_speed_idle.heavy_gross_mass_kg", t.HeavyGrossMassKg)
	pos("two_speed_idle.idle_rpm_min", t.IdleRPMMin)
	pos("two_speed_idle.idle_rpm_max", t.IdleRPMMax)
	if t.IdleRPMMin >= t.IdleRPMMax {
		bad("two_speed_idle.idle_rpm_max", "%v must be above idle_rpm_min %v", t.IdleRPMMax, t.IdleRPMMin)
	}
	if t.IdleRPMMax >= min(t.HighIdleRPM, t.HeavyHighIdleRPM)-t.HighIdleToleranceRPM {
		bad("two_speed_idle.idle_rpm_max", "%v overlaps the high-idle window", t.IdleRPMMax)
	}
	frac("two_speed_idle.precondition_fraction", t.PreconditionFraction)
	frac("two_speed_idle.precondition_tolerance", t.PreconditionTolerance)
	dur("two_speed_idle.precondition", t.Precondition)
	dur("two_speed_idle.stabilise", t.Stabilise)
	dur("two_speed_idle.sample", t.Sample)
	dur("two_speed_idle.sample_period", t.SamplePeriod)
	if t.SamplePeriod > 0 && t.Sample > 0 && t.SamplePeriod > t.Sample {
		bad("two_speed_idle.sample_period", "%v is longer than the sampling window %v", t.SamplePeriod, t.Sample)
	}
	dur("two_speed_idle.reach_timeout", t.ReachTimeout)
	dur("two_speed_idle.rpm_excursion", t.RPMExcursion)
	count("two_speed_idle.phase_restarts", t.PhaseRestarts, 0)
	frac("two_speed_idle.min_sample_fraction", t.MinSampleFraction)
	nonneg("two_speed_idle.min_co_plus_co2_pct", t.MinCOPlusCO2Pct)
	nonneg("two_speed_idle.oil_min_c", t.OilMinC)
	pos("two_speed_idle.fuel_h_c", t.FuelHC)
	nonneg("two_speed_idle.fuel_o_c", t.FuelOC)
	pos("two_speed_idle.lpg_h_c", t.LPGHC)
	pos("two_speed_idle.cng_h_c", t.CNGHC)
	pos("two_speed_idle.lambda_plausibility", t.LambdaPlausibility)

	f := l.FreeAcceleration
	pos("free_acceleration.a.k_m1", f.A.KM1)
	pos("free_acceleration.b.k_m1", f.B.KM1)
	count("free_acceleration.purge_accelerations", f.PurgeAccelerations, 0)
	count("free_acceleration.measured_accelerations", f.MeasuredAccelerations, 1)
	if f.MeasuredAccelerations > 10 {
		bad("free_acceleration.measured_accelerations", "at most 10, got %d", f.MeasuredAccelerations)
	}
	dur("free_acceleration.accelerate", f.Accelerate)
	dur("free_acceleration.idle_between", f.IdleBetween)
	dur("free_acceleration.sample_period", f.SamplePeriod)
	if f.SamplePeriod > 0 && f.Accelerate > 0 && f.SamplePeriod > f.Accelerate {
		bad("free_acceleration.sample_period", "%v is longer than the acceleration window %v", f.SamplePeriod, f.Accelerate)
	}
	dur("free_acceleration.reach_timeout", f.ReachTimeout)
	pos("free_acceleration.idle_rpm_max", f.IdleRPMMax)
	if !(f.MinPeakRPMFraction >= 0 && f.MinPeakRPMFraction <= 1) {
		bad("free_acceleration.min_peak_rpm_fraction", "must lie in [0, 1], got %v", f.MinPeakRPMFraction)
	}
	count("free_acceleration.acceleration_retries", f.AccelerationRetries, 0)
	nonneg("free_acceleration.max_spread_k_m1", f.MaxSpreadKM1)
	pos("free_acceleration.path_length_m", f.PathLengthM)
	nonneg("free_acceleration.oil_min_c", f.OilMinC)

	dur("rig.busy_max", l.Rig.BusyMax)
	count("rig.error_burst_max", l.Rig.ErrorBurstMax, 0)
	if l.Rig.EngineWarmUpMax < 0 {
		bad("rig.engine_warm_up_max", "must be 0 (refuse a cold engine at once) or a duration such as 10m, got %v", l.Rig.EngineWarmUpMax)
	}

	monitors := func(key string, ms []string) {
		if len(ms) == 0 {
			bad(key, "empty: list the readiness monitors the stations count, e.g. [catalyst, oxygen_sensor]")
		}
		for i, m := range ms {
			if !slices.Contains(monitorKeys, m) {
				bad(fmt.Sprintf("%s[%d]", key, i), "%q is not a readiness monitor (known: %s)", clip(m), strings.Join(monitorKeys, ", "))
			}
		}
	}
	monitors("obd_check.readiness_spark", l.OBD.ReadinessSpark)
	monitors("obd_check.readiness_compression", l.OBD.ReadinessCompression)
	count("obd_check.max_incomplete", l.OBD.MaxIncomplete, 0)
	return errors.Join(errs...)
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
