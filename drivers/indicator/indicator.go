package indicator

import (
	"context"
	"fmt"
	"sync"
	"time"

	"periph.io/x/conn/v3/gpio"
)

// State is what the light shows.
type State int

// The states, in order of urgency.
const (
	Off       State = iota // both LEDs off: bay idle or not configured
	Ready                  // green steady: adapter connected, vehicle answering
	Busy                   // green blinking: scan or self-test running
	Fault                  // red steady: adapter missing, ignition off, rig error
	Attention              // red blinking: the technician must act (VIN mismatch, ambiguous order)
)

func (s State) String() string {
	switch s {
	case Off:
		return "off"
	case Ready:
		return "ready"
	case Busy:
		return "busy"
	case Fault:
		return "fault"
	case Attention:
		return "attention"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Light is one bay's status light. Its methods are safe for concurrent use.
type Light struct {
	name       string
	green, red gpio.PinOut // nil when not fitted
	period     time.Duration

	mu    sync.Mutex
	state State
	phase bool // blink phase: true = lit
	err   error
	wake  chan struct{}
}

// New returns a light on the given pins; either pin may be nil. blink is the half-period of
// blinking states (0 = 500 ms). Call Run to drive blinking.
func New(name string, green, red gpio.PinOut, blink time.Duration) *Light {
	if blink <= 0 {
		blink = 500 * time.Millisecond
	}
	l := &Light{name: name, green: green, red: red, period: blink, wake: make(chan struct{}, 1)}
	l.apply()
	return l
}

// String names the light for logs: "bay1 light (GPIO17/GPIO27)".
func (l *Light) String() string {
	pin := func(p gpio.PinOut) string {
		if p == nil {
			return "-"
		}
		return p.Name()
	}
	return fmt.Sprintf("%s light (%s/%s)", l.name, pin(l.green), pin(l.red))
}

// Set changes the state shown; blinking states start lit.
func (l *Light) Set(s State) {
	l.mu.Lock()
	changed := l.state != s
	l.state, l.phase = s, true
	l.applyLocked()
	l.mu.Unlock()
	if changed {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// State returns the state shown.
func (l *Light) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Err returns the last error a pin write returned (nil when all writes succeeded since).
// A broken LED must never stop a bay, so pin errors are kept here rather than returned.
func (l *Light) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Run blinks the blinking states until ctx ends, then turns the light off.
func (l *Light) Run(ctx context.Context) {
	t := time.NewTicker(l.period)
	defer t.Stop()
	defer l.Halt()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
			t.Reset(l.period)
		case <-t.C:
			l.mu.Lock()
			if l.state == Busy || l.state == Attention {
				l.phase = !l.phase
				l.applyLocked()
			}
			l.mu.Unlock()
		}
	}
}

// Halt turns both LEDs off and keeps them off until the next Set.
func (l *Light) Halt() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state = Off
	l.applyLocked()
	return l.err
}

func (l *Light) apply() {
	l.mu.Lock()
	l.applyLocked()
	l.mu.Unlock()
}

func (l *Light) applyLocked() {
	g, r := gpio.Low, gpio.Low
	switch l.state {
	case Ready:
		g = gpio.High
	case Busy:
		g = gpio.Level(l.phase)
	case Fault:
		r = gpio.High
	case Attention:
		r = gpio.Level(l.phase)
	}
	l.err = nil
	for _, pl := range []struct {
		p gpio.PinOut
		v gpio.Level
	}{{l.green, g}, {l.red, r}} {
		if pl.p == nil {
			continue
		}
		if err := pl.p.Out(pl.v); err != nil {
			l.err = fmt.Errorf("indicator: %s: set %s %v: %w", l.name, pl.p.Name(), pl.v, err)
		}
	}
}
