package emissiontest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/gateway/emission"
)

// Rig is a scripted rig.Rig: Script answers the n-th Read (counting from 0).
type Rig struct {
	Name    string
	Script  func(n int) (rig.Reading, error)
	Latency time.Duration // each Read takes this long

	mu     sync.Mutex
	reads  int
	halts  int
	closed bool
}

var _ rig.Rig = (*Rig)(nil)

// Read waits Latency, then returns the script's answer.
func (r *Rig) Read(ctx context.Context) (rig.Reading, error) {
	if r.Latency > 0 {
		t := time.NewTimer(r.Latency)
		select {
		case <-ctx.Done():
			t.Stop()
			return rig.Reading{}, ctx.Err()
		case <-t.C:
		}
	}
	r.mu.Lock()
	n := r.reads
	r.reads++
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return rig.Reading{}, fmt.Errorf("testrig: read: %w", os.ErrClosed)
	}
	return r.Script(n)
}

func (r *Rig) String() string {
	if r.Name == "" {
		return "testrig"
	}
	return r.Name
}

// Halt counts calls.
func (r *Rig) Halt() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.halts++
	return nil
}

// Close marks the rig closed; later reads fail.
func (r *Rig) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

// Reads is the number of Read calls so far.
func (r *Rig) Reads() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reads
}

// Halts is the number of Halt calls so far.
func (r *Rig) Halts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.halts
}

// ZeroRig is a Rig that can zero itself (rig.Zeroer).
type ZeroRig struct {
	*Rig
	ZeroErr  error
	ZeroTime time.Duration

	zeros int
}

var _ rig.Zeroer = (*ZeroRig)(nil)

// Zero waits ZeroTime and returns ZeroErr.
func (z *ZeroRig) Zero(ctx context.Context) error {
	z.zeros++
	if z.ZeroTime > 0 {
		t := time.NewTimer(z.ZeroTime)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return z.ZeroErr
}

// Zeros is the number of Zero calls.
func (z *ZeroRig) Zeros() int { return z.zeros }

// BusyError is what a driver returns for a busy instrument: it has Busy() true, the shape the
// procedures recognise by default.
type BusyError struct{}

func (BusyError) Error() string { return "testrig: instrument busy" }

// Busy reports true.
func (BusyError) Busy() bool { return true }

// ChecksumError is a bad frame; it keeps the bytes like the real drivers' errors do.
type ChecksumError struct{ Raw []byte }

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("testrig: checksum mismatch in % X", e.Raw)
}

// ErrUnplugged is what a driver returns when the USB serial adapter is pulled out: the port's
// failure wrapped in rig.ErrLinkLost.
var ErrUnplugged = fmt.Errorf("testrig: read reply: %w (is the cable plugged in?): read /dev/ttyUSB1: no such device", rig.ErrLinkLost)

// Gas is a steady gas composition.
type Gas struct {
	HC, CO, CO2, O2, NO float64
	Lambda              float64 // 0 = the analyzer reports no λ
}

// Reading returns the gas as a reading at rpm (rpm < 0: no tachometer) with oil at oilC
// (oilC < 0: no oil sensor).
func (g Gas) Reading(rpm, oilC float64) rig.Reading {
	r := rig.Reading{HCppm: rig.F(g.HC), COPct: rig.F(g.CO), CO2Pct: rig.F(g.CO2), O2Pct: rig.F(g.O2), NOppm: rig.F(g.NO)}
	if g.Lambda > 0 {
		r.Lambda = rig.F(g.Lambda)
	}
	if rpm >= 0 {
		r.RPM = rig.F(rpm)
	}
	if oilC >= 0 {
		r.OilC = rig.F(oilC)
	}
	return r
}

// Operator plays the person at the car: it reads the procedure's prompts (Progress) and holds
// the engine at the speed it was told. Speeds maps a phase name to engine speed; Override, when
// set, may change it for a phase's visit (1 = first time in the phase) and tick (0 = the
// first update of that visit).
type Operator struct {
	Speeds   map[string]float64
	Override func(phase string, visit, tick int, acceleration int) (float64, bool)

	mu     sync.Mutex
	phase  string
	acc    int
	tick   int
	visits map[string]int
	events []emission.Progress
	all    []emission.Progress
}

// OnProgress is the Test.OnProgress hook.
func (o *Operator) OnProgress(p emission.Progress) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.visits == nil {
		o.visits = map[string]int{}
	}
	o.all = append(o.all, p)
	if p.Event != nil {
		o.events = append(o.events, p)
	}
	if p.Phase != o.phase || p.Acceleration != o.acc {
		o.phase, o.acc, o.tick = p.Phase, p.Acceleration, 0
		o.visits[p.Phase]++
		return
	}
	o.tick++
}

// RPM is the engine speed the operator holds now.
func (o *Operator) RPM() float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.Override != nil {
		if v, ok := o.Override(o.phase, o.visits[o.phase], o.tick, o.acc); ok {
			return v
		}
	}
	return o.Speeds[o.phase]
}

// Phase is the phase of the last update, its update count within the visit and the
// acceleration it belongs to.
func (o *Operator) Phase() (phase string, tick, acceleration int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.phase, o.tick, o.acc
}

// Events returns the updates that carried an Event.
func (o *Operator) Events() []emission.Progress {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]emission.Progress(nil), o.events...)
}

// Updates returns every update seen.
func (o *Operator) Updates() []emission.Progress {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]emission.Progress(nil), o.all...)
}

// IdleSpeeds are plausible engine speeds for each two-speed idle phase of a car rated at
// 6000 r/min (70 % = 4200).
func IdleSpeeds() map[string]float64 {
	return map[string]float64{
		"precondition":      4200,
		"high_idle_prepare": 2500,
		"high_idle_sample":  2520,
		"idle_prepare":      780,
		"idle_sample":       760,
	}
}

// AccelSpeeds are engine speeds for free acceleration of a diesel rated at 3200 r/min.
func AccelSpeeds() map[string]float64 {
	return map[string]float64{"idle": 750, "accelerate": 3300}
}
