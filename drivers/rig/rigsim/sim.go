package rigsim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrUnplugged is what Serve returns when the unplug fault closes the link: the caller closes
// the port so the driver's side sees the line go away.
var ErrUnplugged = errors.New("rigsim: unplugged (fault injection)")

// Faults says which faults to inject. Counters are of data requests (the real-time reading),
// starting at 1; control and status exchanges are never faulted, so tests can tell them apart.
type Faults struct {
	// ChecksumEvery N: the data replies number N, 2N, … go out with a wrong checksum byte.
	// ChecksumBurst (default 1) makes that a run of consecutive bad replies ending at N.
	ChecksumEvery, ChecksumBurst int
	// BusyEvery N: data requests number N, 2N, … get the protocol's busy (or NAK) reply.
	BusyEvery int
	// GarbageEvery N: data replies number N, 2N, … are preceded by stray bytes.
	GarbageEvery int
	// UnplugAfter N data replies (or UnplugAt, a time since start): stop answering; with
	// UnplugClose, end Serve with ErrUnplugged instead so the link closes.
	UnplugAfter int
	UnplugAt    time.Duration
	UnplugClose bool
}

// ParseFaults reads a fault list like "checksum=5,burst=2,busy=7,garbage=4,unplug=30s,close".
// unplug takes a reply count or a duration since start; close makes unplug close the link.
func ParseFaults(s string) (Faults, error) {
	var f Faults
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, _ := strings.Cut(item, "=")
		num := func() (int, error) {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return 0, fmt.Errorf("rigsim: fault %q needs a positive count, like %s=5", item, k)
			}
			return n, nil
		}
		var err error
		switch k {
		case "checksum":
			f.ChecksumEvery, err = num()
		case "burst":
			f.ChecksumBurst, err = num()
		case "busy":
			f.BusyEvery, err = num()
		case "garbage":
			f.GarbageEvery, err = num()
		case "unplug":
			if d, derr := time.ParseDuration(v); derr == nil && d > 0 {
				f.UnplugAt = d
			} else {
				f.UnplugAfter, err = num()
			}
		case "close":
			f.UnplugClose = true
		default:
			err = fmt.Errorf("rigsim: unknown fault %q (known: checksum=N, burst=N, busy=N, garbage=N, unplug=N|DURATION, close)", k)
		}
		if err != nil {
			return Faults{}, err
		}
	}
	return f, nil
}

// Config configures a simulator.
type Config struct {
	Now    func() time.Time // the clock the script and warm-up run on; nil: time.Now
	WarmUp time.Duration    // warm-up period from start; 0: warm at once
	Faults Faults
	Log    *slog.Logger // nil: discard
	// Op is how long a zero, leak check or calibration takes on the simulated instrument;
	// 0 means 2 s.
	Op time.Duration
	// Engine, when set, is the engine under test: its speed, oil and exhaust replace the fixed
	// scripts, so a test can drive a whole procedure by its prompts.
	Engine *Engine
}

// Core is the state every simulator shares. Its methods are safe for concurrent use.
type Core struct {
	cfg   Config
	now   func() time.Time
	start time.Time
	log   *slog.Logger

	mu       sync.Mutex
	dataReqs int // data requests seen
	lastBusy bool
	replies  int // data replies sent
	silent   bool
}

// NewCore starts a simulator's clock.
func NewCore(cfg Config) *Core {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Faults.ChecksumBurst < 1 {
		cfg.Faults.ChecksumBurst = 1
	}
	if cfg.Op <= 0 {
		cfg.Op = 2 * time.Second
	}
	return &Core{cfg: cfg, now: now, start: now(), log: log}
}

// Elapsed is the script time.
func (c *Core) Elapsed() time.Duration { return c.now().Sub(c.start) }

// Now is the simulator's clock.
func (c *Core) Now() time.Time { return c.now() }

// Op is the duration of a simulated zero / leak check / calibration.
func (c *Core) Op() time.Duration { return c.cfg.Op }

// WarmingUp reports whether the warm-up period is still running.
func (c *Core) WarmingUp() bool { return c.Elapsed() < c.cfg.WarmUp }

// WarmupLeft is the remaining warm-up.
func (c *Core) WarmupLeft() time.Duration { return max(0, c.cfg.WarmUp-c.Elapsed()) }

// Gas is the petrol script (or the driven engine's exhaust) now; ambient air while warming up.
func (c *Core) Gas() Gas {
	gas := PetrolGas
	if c.cfg.Engine != nil {
		gas = c.cfg.Engine.Gas
	}
	if c.WarmingUp() {
		g := Ambient
		g.OilC = gas(c.Elapsed()).OilC
		return g
	}
	return gas(c.Elapsed())
}

// Smoke is the diesel script (or the driven engine's exhaust) now; clean air (N 0) while
// warming up.
func (c *Core) Smoke() Smoke {
	smoke := DieselSmoke
	if c.cfg.Engine != nil {
		smoke = c.cfg.Engine.Smoke
	}
	s := smoke(c.Elapsed())
	if c.WarmingUp() {
		s.NPct, s.KM1 = 0, 0
	}
	return s
}

// DataRequest counts a data request and reports whether it gets the busy fault. Simulators
// call it once per real-time data request.
func (c *Core) DataRequest() (busy bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dataReqs++
	f := c.cfg.Faults
	c.lastBusy = f.BusyEvery > 0 && c.dataReqs%f.BusyEvery == 0
	if c.lastBusy {
		c.log.Debug("fault: busy", "request", c.dataReqs)
	}
	return c.lastBusy
}

// Reply is one answer of a simulator.
type Reply struct {
	Bytes []byte
	Data  bool // a real-time data reply: subject to checksum and garbage faults
}

// Handler reads one request from r and returns the reply (nil Bytes: no reply). An error ends
// Serve (io.EOF when the link closed).
type Handler func(r *bufio.Reader) (Reply, error)

// Serve runs h on rw until ctx ends, rw fails or the unplug fault closes the link. It applies
// the reply faults and the unplug fault.
func (c *Core) Serve(ctx context.Context, rw io.ReadWriter, h Handler) error {
	type deadliner interface{ SetReadDeadline(time.Time) error }
	stop := context.AfterFunc(ctx, func() {
		if d, ok := rw.(deadliner); ok {
			_ = d.SetReadDeadline(time.Unix(1, 0))
		} else if cl, ok := rw.(io.Closer); ok {
			_ = cl.Close()
		}
	})
	defer stop()
	r := bufio.NewReader(rw)
	for {
		rep, err := h(r)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			return err
		}
		out, unplug := c.apply(rep)
		if unplug {
			if c.cfg.Faults.UnplugClose {
				c.log.Info("fault: unplugged, closing the link")
				return ErrUnplugged
			}
			continue
		}
		if len(out) == 0 {
			continue
		}
		if _, err := rw.Write(out); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
	}
}

// Garbage is what the garbage fault puts before a reply: bytes no family starts a reply with.
var Garbage = []byte{0xAA, 0x55, 0x3C}

func (c *Core) apply(rep Reply) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.cfg.Faults
	if c.silent || (f.UnplugAt > 0 && c.now().Sub(c.start) >= f.UnplugAt) {
		c.silent = true
		return nil, true
	}
	if !rep.Data || len(rep.Bytes) == 0 {
		return rep.Bytes, false
	}
	if f.UnplugAfter > 0 && c.replies >= f.UnplugAfter {
		c.silent = true
		return nil, true
	}
	c.replies++
	out := append([]byte(nil), rep.Bytes...)
	if c.lastBusy {
		return out, false
	}
	n := c.dataReqs
	if f.ChecksumEvery > 0 && n > 0 && (n-1)%f.ChecksumEvery >= f.ChecksumEvery-f.ChecksumBurst {
		out[len(out)-1] ^= 0x5A
		c.log.Debug("fault: bad checksum", "request", n)
	}
	if f.GarbageEvery > 0 && n > 0 && n%f.GarbageEvery == 0 {
		out = append(append([]byte(nil), Garbage...), out...)
		c.log.Debug("fault: garbage", "request", n)
	}
	return out, false
}

// ReadN reads exactly n bytes of a request.
func ReadN(r *bufio.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

// Server is a running simulator.
type Server interface {
	// Serve answers requests on rw until ctx ends or the link fails (see Core.Serve).
	Serve(ctx context.Context, rw io.ReadWriter) error
}

// Model is one simulated model.
type Model struct {
	Name  string // the driver registry name: "nha506"
	Title string
	New   func(cfg Config) (Server, error)
}

var (
	regMu  sync.RWMutex
	models = map[string]Model{}
)

// Register adds a simulator; simulator packages call it from init.
func Register(m Model) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := models[m.Name]; dup {
		panic("rigsim: model registered twice: " + m.Name)
	}
	models[m.Name] = m
}

// Lookup finds a simulator by model name.
func Lookup(name string) (Model, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	m, ok := models[name]
	return m, ok
}

// Names lists the simulated models.
func Names() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	var out []string
	for n := range models {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
