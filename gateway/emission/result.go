package emission

import (
	"fmt"
	"math"
	"time"

	"github.com/obdgw/obdgw/drivers/rig"
)

// Method is a test method, numbered as INSPECTION_METHOD of HJ 1238 ODS_A4_TEST
// (im-emission.md §4.1, confirmed).
type Method int

const (
	TwoSpeedIdle     Method = 1 // 双怠速
	FreeAcceleration Method = 5 // 自由加速不透光
)

func (m Method) String() string {
	switch m {
	case TwoSpeedIdle:
		return "two_speed_idle"
	case FreeAcceleration:
		return "free_acceleration"
	}
	return fmt.Sprintf("method(%d)", int(m))
}

// ParseMethod accepts the names String returns ("two_speed_idle", "free_acceleration") and
// the INSPECTION_METHOD codes ("1", "5").
func ParseMethod(s string) (Method, error) {
	switch s {
	case "two_speed_idle", "1":
		return TwoSpeedIdle, nil
	case "free_acceleration", "5":
		return FreeAcceleration, nil
	}
	return 0, fmt.Errorf("emission: method %q: want two_speed_idle or free_acceleration", clip(s))
}

// MarshalText makes a Method read as its name in JSON.
func (m Method) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText is the inverse of MarshalText.
func (m *Method) UnmarshalText(b []byte) error {
	v, err := ParseMethod(string(b))
	if err == nil {
		*m = v
	}
	return err
}

// Verdict is how a test ended.
type Verdict string

const (
	Pass    Verdict = "pass"    // judged, every item within its limit
	Fail    Verdict = "fail"    // judged, at least one item over its limit
	Refused Verdict = "refused" // the data does not allow a judgement; Reasons say why
	Aborted Verdict = "aborted" // stopped by the operator (context cancelled)
	Error   Verdict = "error"   // the rig or the link failed; the error says what
	// CannotJudge is the OBD check's verdict when the car could not be read (no communication,
	// or the MIL, DTCs or readiness were not read): neither a pass nor a fail of the car.
	CannotJudge Verdict = "cannot_judge"
)

// Judged reports whether the verdict is a judgement (pass or fail).
func (v Verdict) Judged() bool { return v == Pass || v == Fail }

// Text is a message in the console's two languages.
type Text struct {
	ZH string `json:"zh"`
	EN string `json:"en"`
}

func (t Text) String() string { return t.EN }

// Reason is one cause of a fail, a refusal or a warning. Code is stable for programs
// ("rpm_window", "samples_missing", "rig_busy", …); Text is for people.
type Reason struct {
	Code string `json:"code"`
	Text
}

func reason(code, zh, en string) Reason { return Reason{Code: code, Text: Text{ZH: zh, EN: en}} }

// Item is one judged quantity: HIGH_IDLE_CO, IDLE_HC, AIR_COEFFICIENT, EMISSION (k), …
//
// Name is the HJ 1238 stem of the field (the record adds _LIMIT / _RESULT / _IF). For a range
// (λ) Lower and Limit are the two ends; otherwise Limit is an upper limit.
type Item struct {
	Name     string  `json:"name"`
	Unit     string  `json:"unit"`
	Value    float64 `json:"value"`
	Lower    float64 `json:"lower,omitempty"`
	Limit    float64 `json:"limit"`
	Decimals int     `json:"decimals"` // resolution the value is rounded to before it is judged
	Pass     bool    `json:"pass"`
	// NotJudged: the value is shown but not judged (λ of a car without closed-loop fuel control
	// and a three-way catalyst); Pass is then true.
	NotJudged bool `json:"not_judged,omitempty"`
}

// Result is what a test produced. It is complete for pass and fail; for refused, aborted
// and error it holds whatever was measured until the end, process data included.
type Result struct {
	Method   Method    `json:"method"`
	Verdict  Verdict   `json:"verdict"`
	Reasons  []Reason  `json:"reasons,omitempty"`  // why fail / refused / error
	Warnings []Reason  `json:"warnings,omitempty"` // do not change the verdict
	LimitSet string    `json:"limit_set"`
	Items    []Item    `json:"items,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Rig      string    `json:"rig"`             // rig.String() of the instrument used
	Speed    string    `json:"speed,omitempty"` // where engine speed came from: "rig", "OBD 010C"

	Idle  *IdleResult  `json:"two_speed_idle,omitempty"`
	Accel *AccelResult `json:"free_acceleration,omitempty"`
}

// Pass reports whether the test was judged and passed.
func (r *Result) Pass() bool { return r != nil && r.Verdict == Pass }

// Item returns the item called name.
func (r *Result) Item(name string) (Item, bool) {
	for _, it := range r.Items {
		if it.Name == name {
			return it, true
		}
	}
	return Item{}, false
}

// Condition types of two-speed idle process data (HJ 1238 ODS_A16 CONDITION_TYPE, confirmed).
const (
	CondPrecondition   = 0 // 70 % 额定转速
	CondHighIdlePrep   = 1 // 高怠速准备
	CondHighIdleSample = 2 // 高怠速检测
	CondIdlePrep       = 3 // 怠速准备
	CondIdleSample     = 4 // 怠速检测
)

// PhaseAverages are the averages of one sampling window.
type PhaseAverages struct {
	Samples        int      `json:"samples"`  // averaged
	Expected       int      `json:"expected"` // the window's length in sample periods
	HCppm          float64  `json:"hc_ppm"`
	COPct          float64  `json:"co_pct"`
	CO2Pct         *float64 `json:"co2_pct,omitempty"`
	O2Pct          *float64 `json:"o2_pct,omitempty"`
	NOppm          *float64 `json:"no_ppm,omitempty"`
	Lambda         *float64 `json:"lambda,omitempty"`          // the analyzer's
	LambdaComputed *float64 `json:"lambda_computed,omitempty"` // Brettschneider
	RPM            *float64 `json:"rpm,omitempty"`
	OilC           *float64 `json:"oil_c,omitempty"`
}

// IdleResult is the detail of a two-speed idle test (ODS_A15 and ODS_A16).
type IdleResult struct {
	RatedRPM    float64        `json:"rated_rpm"`
	HighIdleMin float64        `json:"high_idle_rpm_min"`
	HighIdleMax float64        `json:"high_idle_rpm_max"`
	IdleMin     float64        `json:"idle_rpm_min"`
	IdleMax     float64        `json:"idle_rpm_max"`
	LambdaMin   float64        `json:"lambda_min"`
	LambdaMax   float64        `json:"lambda_max"`
	Limits      IdleLimits     `json:"limits"`
	HighIdle    *PhaseAverages `json:"high_idle,omitempty"`
	Idle        *PhaseAverages `json:"idle,omitempty"`
	// LambdaSource says which λ was judged: "analyzer" or "computed"; "not_judged" when λ is
	// shown only.
	LambdaSource string `json:"lambda_source,omitempty"`
	// LambdaJudged: λ is judged; LambdaJudgedBy says what decided it: "stated" (the test
	// request), "obd_closed_loop" (the scan saw closed-loop fuel control), "fuel_petrol",
	// "fuel_lpg", "fuel_cng" (the fuel's default, lambda_judged_gas for gas).
	LambdaJudged   bool   `json:"lambda_judged"`
	LambdaJudgedBy string `json:"lambda_judged_by"`
	// FuelHC and FuelOC are the fuel's atomic ratios the computed λ used.
	FuelHC   float64       `json:"fuel_h_c"`
	FuelOC   float64       `json:"fuel_o_c"`
	Restarts int           `json:"restarts"`
	Process  []IdleProcess `json:"process"`
}

// IdleProcess is one second of two-speed idle process data (ODS_A16 names in the comments).
type IdleProcess struct {
	Time           time.Time `json:"time"`
	FullSequence   int       `json:"full_sequence_s"`  // FULL_SEQUENCE_TIME: seconds since the test began
	Condition      int       `json:"condition"`        // CONDITION_TYPE 0–4
	SamplingTiming int       `json:"sampling_timing"`  // SAMPLING_TIMING: seconds into the condition
	HCppm          *float64  `json:"hc_ppm,omitempty"` // HC
	COPct          *float64  `json:"co_pct,omitempty"` // CO
	O2Pct          *float64  `json:"o2_pct,omitempty"` // O2
	CO2Pct         *float64  `json:"co2_pct,omitempty"`
	NOppm          *float64  `json:"no_ppm,omitempty"`
	Lambda         *float64  `json:"lambda,omitempty"`          // AIR_COEFFICIENT (the analyzer's)
	LambdaComputed *float64  `json:"lambda_computed,omitempty"` // Brettschneider, always when the gases allow
	RPM            *float64  `json:"rpm,omitempty"`             // ENGIN_SPEED
	OilC           *float64  `json:"oil_c,omitempty"`           // ENGINE_OIL_TEMPERATURE
	Averaged       bool      `json:"averaged"`                  // counted in the window's average
}

// AccelResult is the detail of a free-acceleration test.
type AccelResult struct {
	RatedRPM    float64        `json:"rated_rpm,omitempty"`
	Limit       float64        `json:"limit_k_m1"`
	PeaksKM1    []float64      `json:"peaks_k_m1"` // EMISSION_ONE, _TWO, _THREE, as measured (not rounded)
	PeakRPM     []float64      `json:"peak_rpm,omitempty"`
	AvgKM1      *float64       `json:"avg_k_m1,omitempty"` // EMISSION_AVG: the mean of the peaks, rounded once to 0.01
	IdleRPM     *float64       `json:"idle_rpm,omitempty"` // ENGIN_SPEED (idle before the accelerations)
	MaxRPM      *float64       `json:"max_rpm,omitempty"`  // ACTUAL_ENGINE_SPEED
	KFromN      bool           `json:"k_from_n"`           // the opacimeter reported N only
	Repeated    int            `json:"repeated"`           // invalid accelerations done again
	PathLengthM float64        `json:"path_length_m"`
	Process     []AccelProcess `json:"process"`
}

// AccelProcess is one sample of free-acceleration process data.
type AccelProcess struct {
	Time           time.Time `json:"time"`
	FullSequenceMS int64     `json:"full_sequence_ms"` // since the test began
	Condition      int       `json:"condition"`        // CONDITION_TYPE: n-th measured acceleration, 0 while purging
	Phase          string    `json:"phase"`            // "idle" or "accelerate"
	SamplingTiming int64     `json:"sampling_timing_ms"`
	KM1            *float64  `json:"k_m1,omitempty"` // LIGHT_ABSORPTION_COEFFICIENT
	OpacityPct     *float64  `json:"opacity_pct,omitempty"`
	RPM            *float64  `json:"rpm,omitempty"` // ENGIN_SPEED
	OilC           *float64  `json:"oil_c,omitempty"`
}

// Progress is what a live console shows while a test runs.
type Progress struct {
	Method  Method        `json:"method"`
	Phase   string        `json:"phase"`
	Prompt  Text          `json:"prompt"` // what the operator should do now
	Elapsed time.Duration `json:"elapsed_ns"`
	// SecondsLeft of the current hold; -1 while waiting for the engine to reach its window.
	SecondsLeft  int          `json:"seconds_left"`
	Condition    int          `json:"condition"`
	Acceleration int          `json:"acceleration,omitempty"` // free acceleration: n of N (0 while purging)
	Reading      *rig.Reading `json:"reading,omitempty"`      // the latest good reading
	RPM          *float64     `json:"rpm,omitempty"`
	Window       *RPMWindow   `json:"rpm_window,omitempty"`
	Restarts     int          `json:"restarts"`
	// Event is set on the update that reports something happening: a phase restarted, the
	// rig busy, a bad reply tolerated.
	Event *Reason `json:"event,omitempty"`
}

// RPMWindow is the engine speed window of the current phase and where the engine is.
type RPMWindow struct {
	Min   float64 `json:"min"`
	Max   float64 `json:"max"`
	State string  `json:"state"` // "in", "below", "above", "unknown"
}

func (w RPMWindow) classify(rpm *float64) string {
	switch {
	case rpm == nil:
		return "unknown"
	case *rpm < w.Min:
		return "below"
	case *rpm > w.Max:
		return "above"
	}
	return "in"
}

// round rounds to d decimals, half away from zero (GB/T 8170 rounds half to even on exact
// halves, which binary floats almost never are).
func round(v float64, d int) float64 {
	p := math.Pow(10, float64(d))
	return math.Round(v*p) / p
}

func ptr(v float64) *float64 { return &v }
