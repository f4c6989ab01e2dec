package rig

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"
)

// Port is the byte link a driver talks over: drivers/serialport.Port satisfies it, and so do
// net.Pipe ends and pty files, which is what the tests use.
//
// Contract (as serialport.Port): Read blocks until at least one byte arrives, the read deadline
// passes (an error wrapping os.ErrDeadlineExceeded) or the port is closed.
type Port interface {
	io.ReadWriteCloser
	SetReadDeadline(t time.Time) error
}

// Options tune a driver opened through the registry. The zero value is fine.
type Options struct {
	Log *slog.Logger // nil: discard
	// Now stamps readings; nil: time.Now.
	Now func() time.Time
	// Firmware selects a firmware variant of the model's frame spec; "" is the default.
	Firmware string
	// Timeout overrides the model's per-request reply deadline; 0 keeps the model's own
	// (2.5 s on Nanhua analyzers, which older firmware needs).
	Timeout time.Duration
	// Poll is the interval between polls while the instrument zeroes or checks for leaks;
	// 0 means 1 s.
	Poll time.Duration
}

// Model is one instrument model a driver package registers.
type Model struct {
	Name   string // registry key, lower case: "nha506"
	Title  string // "Nanhua NHA-506(I)"
	Kind   string // "analyzer" or "opacimeter"
	Family string // the driver package: "nanhua", "opacity", …
	Baud   int    // link speed; 8N1 for every model here
	// Open wraps an already opened port. The rig owns the port afterwards (Close closes it).
	Open func(p Port, o Options) (Rig, error)
}

var (
	regMu  sync.RWMutex
	models = map[string]Model{}
)

// Register adds a model under its normalized name (see NormalizeModel); driver packages call
// it from init. A duplicate name panics.
func Register(m Model) {
	regMu.Lock()
	defer regMu.Unlock()
	key := NormalizeModel(m.Name)
	if _, dup := models[key]; dup {
		panic("rig: model registered twice: " + m.Name)
	}
	models[key] = m
}

// Lookup finds a registered model by name, case-insensitive ("NHA-506" works as "nha506"),
// also with its family in front, as an instrument's maker and model are often written
// ("nanhua-nha506", "Nanhua NHA-506").
func Lookup(name string) (Model, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	key := NormalizeModel(name)
	if m, ok := models[key]; ok {
		return m, ok
	}
	for _, m := range models {
		if fam := NormalizeModel(m.Family); fam != "" && key == fam+NormalizeModel(m.Name) {
			return m, true
		}
	}
	return Model{}, false
}

// NormalizeModel lower-cases a model name and drops '-', '_' and spaces.
func NormalizeModel(name string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', ' ':
			return -1
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, name)
}

// Models lists the registered models sorted by name.
func Models() []Model {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]Model, 0, len(models))
	for _, m := range models {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ModelNames is Models' names, for usage messages.
func ModelNames() []string {
	var n []string
	for _, m := range Models() {
		n = append(n, m.Name)
	}
	return n
}

// Open wraps p as the named model.
func Open(model string, p Port, o Options) (Rig, error) {
	m, ok := Lookup(model)
	if !ok {
		return nil, fmt.Errorf("rig: unknown model %q (known: %s)", model, strings.Join(ModelNames(), ", "))
	}
	return m.Open(p, o)
}

// Pumper is implemented by analyzers whose sampling pump the driver can start. Halt stops it.
type Pumper interface {
	PumpOn(ctx context.Context) error
}
