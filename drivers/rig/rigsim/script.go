package rigsim

import (
	"math"
	"time"
)

// Gas is what a five-gas analyzer measures at one instant.
type Gas struct {
	HCppm, COPct, CO2Pct, O2Pct, NOppm, Lambda float64
	RPM, OilC, Flow                            float64
}

// Ambient is clean air as a drifting analyzer reads it while warming up or with the probe
// out: zero drift below zero on HC and CO (rig-protocols.md §1.3 B), which exercises the signed
// gas words end to end.
var Ambient = Gas{HCppm: -3, COPct: -0.02, CO2Pct: 0.02, O2Pct: 20.9, NOppm: 0, Lambda: 0, Flow: 380}

// GasCycle is the length of one idle → 2500 r/min → idle cycle.
const GasCycle = 60 * time.Second

// EngineRPM is the petrol script's engine speed at t since start: 20 s idle at 800 r/min,
// 5 s up, 20 s at 2500 r/min (two-speed-idle high idle), 5 s down, 10 s idle.
func EngineRPM(t time.Duration) float64 {
	s := math.Mod(t.Seconds(), GasCycle.Seconds())
	const idle, high = 800, 2500
	switch {
	case s < 20:
		return idle
	case s < 25:
		return idle + (high-idle)*(s-20)/5
	case s < 45:
		return high
	case s < 50:
		return high - (high-idle)*(s-45)/5
	}
	return idle
}

// wobble is a small deterministic variation so readings look alive but tests stay exact.
func wobble(t time.Duration, period float64, amp float64) float64 {
	return amp * math.Sin(2*math.Pi*t.Seconds()/period)
}

func lerp(a, b, x float64) float64 { return a + (b-a)*x }

// round keeps simulated values at the resolution instruments send.
func round(v float64, dec int) float64 {
	p := math.Pow(10, float64(dec))
	return math.Round(v*p) / p
}

// PetrolGas is the petrol script's exhaust at t since start (warm engine, working catalyst):
// gases move with engine load, oil warms from 60 to 90 °C.
func PetrolGas(t time.Duration) Gas {
	rpm := EngineRPM(t)
	return petrolExhaust(t, rpm, (rpm-800)/1700, round(60+30*(1-math.Exp(-t.Seconds()/300)), 1))
}

// petrolExhaust is a warm petrol engine's exhaust at engine speed rpm, its load x (0 at idle,
// 1 at 2500 r/min), with the readings' wobble at time t.
func petrolExhaust(t time.Duration, rpm, x, oilC float64) Gas {
	return Gas{
		HCppm:  round(lerp(120, 60, x)+wobble(t, 7, 5), 0),
		COPct:  round(lerp(0.45, 0.25, x)+wobble(t, 11, 0.02), 2),
		CO2Pct: round(lerp(14.6, 14.9, x)+wobble(t, 13, 0.05), 2),
		O2Pct:  round(lerp(0.50, 0.30, x)+wobble(t, 9, 0.03), 2),
		NOppm:  round(lerp(200, 650, x)+wobble(t, 5, 10), 0),
		Lambda: round(lerp(1.01, 1.00, x)+wobble(t, 17, 0.005), 3),
		RPM:    round(rpm+wobble(t, 3, 8), 0),
		OilC:   oilC,
		Flow:   400,
	}
}

// Smoke is what an opacimeter measures at one instant.
type Smoke struct {
	NPct, KM1, RPM, OilC float64
}

// SmokeCycle is the length of one free acceleration in the diesel script.
const SmokeCycle = 12 * time.Second

// pathL is the effective optical path the simulated k is computed over (GB 3847, 0.430 m).
const pathL = 0.430

// DieselSmoke is the diesel script at t since start: a free acceleration every 12 s — idle at
// 750 r/min, pedal down at 2 s, the governor's 2400 r/min at 3 s, back to idle by 6 s — with
// the smoke peak (35–45 % depending on the cycle) just after full speed, decaying within
// seconds. k follows N over the 0.430 m path.
func DieselSmoke(t time.Duration) Smoke {
	s := math.Mod(t.Seconds(), SmokeCycle.Seconds())
	cycle := int(t / SmokeCycle)
	peak := []float64{40, 44, 37, 42}[cycle%4]
	rpm := 750.0
	switch {
	case s >= 2 && s < 3:
		rpm = lerp(750, 2400, s-2)
	case s >= 3 && s < 6:
		rpm = lerp(2400, 750, (s-3)/3)
	}
	n := 2.0
	if s >= 2 {
		rise := math.Min(1, (s-2)/1.2)
		n += (peak - 2) * rise * math.Exp(-math.Max(0, s-3.2)/0.8)
	}
	n = round(n, 1)
	return Smoke{
		NPct: n,
		KM1:  round(-math.Log(1-n/100)/pathL, 2),
		RPM:  round(rpm, 0),
		OilC: round(70+15*(1-math.Exp(-t.Seconds()/300)), 0),
	}
}
