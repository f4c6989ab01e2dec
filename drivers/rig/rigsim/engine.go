package rigsim

import (
	"math"
	"sync"
	"time"
)

// Engine is an engine a test (or an operator's script) drives through a procedure: its speed
// is what was last asked for (SetRPM), as a car follows its driver's foot, its oil warms while
// it runs, and the simulators' exhaust follows its speed instead of the fixed 60 s and 12 s
// scripts. Set Config.Engine to use it. Engine is safe for concurrent use.
type Engine struct {
	mu    sync.Mutex
	now   func() time.Time
	start time.Time
	idle  float64
	rpm   float64
	oil0  float64
	accel time.Duration // script time at which the current (or last) acceleration began; <0 none
	accN  int           // accelerations so far
	high  bool          // above idle since the last SetRPM
}

// EngineOilWarmC is the oil temperature a running engine settles at, and EngineOilTau the
// time constant of its warming.
const (
	EngineOilWarmC = 90.0
	EngineOilTau   = 120 * time.Second
)

// NewEngine starts an engine idling at idleRPM with oil at oilStartC, on clock now (nil:
// time.Now; give it the simulator's Config.Now).
func NewEngine(idleRPM, oilStartC float64, now func() time.Time) *Engine {
	if now == nil {
		now = time.Now
	}
	return &Engine{now: now, start: now(), idle: idleRPM, rpm: idleRPM, oil0: oilStartC, accel: -1}
}

// Elapsed is the time the engine has run.
func (e *Engine) Elapsed() time.Duration { return e.now().Sub(e.start) }

// SetRPM sets the engine speed. A rise from near idle to well above it starts an
// acceleration: the diesel exhaust puffs from then on.
func (e *Engine) SetRPM(rpm float64) {
	at := e.Elapsed()
	e.mu.Lock()
	defer e.mu.Unlock()
	high := rpm > e.idle+500
	if high && !e.high {
		e.accel, e.accN = at, e.accN+1
	}
	e.high, e.rpm = high, rpm
}

// RPM is the engine speed now.
func (e *Engine) RPM() float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rpm
}

// OilC is the oil temperature after running for t: warming from the start temperature towards
// EngineOilWarmC.
func (e *Engine) OilC(t time.Duration) float64 {
	return round(EngineOilWarmC-(EngineOilWarmC-e.oil0)*math.Exp(-t.Seconds()/EngineOilTau.Seconds()), 1)
}

// Gas is the petrol exhaust now: PetrolGas's gases at the engine's speed, its oil
// temperature. The argument (the simulator's script time) is not used: the engine keeps its
// own.
func (e *Engine) Gas(time.Duration) Gas {
	t := e.Elapsed()
	rpm := e.RPM()
	return petrolExhaust(t, rpm, math.Max(0, math.Min(1, (rpm-800)/1700)), e.OilC(t))
}

// Smoke is the diesel exhaust now: the puff of DieselSmoke's accelerations, starting when
// the engine was last asked to accelerate, with its peaks (35–45 %) taken in turn; clean idle
// smoke before the first acceleration. The argument is not used, as for Gas.
func (e *Engine) Smoke(time.Duration) Smoke {
	t := e.Elapsed()
	e.mu.Lock()
	rpm, start, n := e.rpm, e.accel, e.accN
	e.mu.Unlock()
	np := 2.0
	if start >= 0 && t >= start {
		since := (t - start).Seconds()
		peak := []float64{40, 44, 37, 42}[(n-1)%4]
		rise := math.Min(1, since/1.2)
		np += (peak - 2) * rise * math.Exp(-math.Max(0, since-1.2)/0.8)
	}
	np = round(np, 1)
	return Smoke{NPct: np, KM1: round(-math.Log(1-np/100)/pathL, 2), RPM: round(rpm, 0), OilC: round(e.OilC(t), 0)}
}
