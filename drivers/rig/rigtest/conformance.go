package rigtest

import (
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
)

// Clock is a settable clock for simulators and drivers.
type Clock struct {
	mu    sync.Mutex
	start time.Time
	t     time.Time
}

// NewClock starts a clock at a fixed instant.
func NewClock() *Clock {
	t := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	return &Clock{start: t, t: t}
}

// Now is the current fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to start + d.
func (c *Clock) Set(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.start.Add(d)
}

// Case describes one model for Run.
type Case struct {
	Model string
	Baud  int
	Sim   func(cfg rigsim.Config) (rigsim.Server, error)
	Open  func(p rig.Port, o rig.Options) (rig.Rig, error)
	// Check compares a reading with the simulator's script at elapsed.
	Check func(t *testing.T, r rig.Reading, elapsed time.Duration)
	// Busy recognises the error of a busy data request; nil: the protocol has no busy or NAK
	// reply to data and the busy subtest is skipped.
	Busy func(err error) bool
	// ReportsWarmUp: the protocol tells warm-up apart.
	ReportsWarmUp bool
	// Tune adjusts a freshly opened rig (for example shorter MEXA pauses).
	Tune func(r rig.Rig)
}

const (
	shortTimeout = 400 * time.Millisecond
	fastPoll     = 50 * time.Millisecond
	// qemuTimeout replaces shortTimeout under qemu-user (OBDGW_QEMU). There the simulator and
	// the driver are both emulated, several models run in parallel and other test binaries
	// share the CPUs; on a loaded machine a reply then occasionally takes longer than 400 ms
	// to start (seen under qemu-aarch64 and qemu-i386 alike), which fails a reading the
	// script says must succeed. The real instruments' deadlines are longer still.
	qemuTimeout = time.Second
)

func replyTimeout() time.Duration {
	if os.Getenv("OBDGW_QEMU") != "" {
		return qemuTimeout
	}
	return shortTimeout
}

func (c Case) start(t *testing.T, cfg rigsim.Config) (*Served, rig.Rig) {
	t.Helper()
	srv, err := c.Sim(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := Serve(t, srv, c.Baud)
	r, err := c.Open(s.Port, rig.Options{Now: cfg.Now, Timeout: replyTimeout(), Poll: fastPoll})
	if err != nil {
		t.Fatal(err)
	}
	if c.Tune != nil {
		c.Tune(r)
	}
	return s, r
}

// Run exercises a driver against its simulator over a real pty: readings equal to the
// script, warm-up, a checksum error, a burst of them, garbage before a reply, busy replies,
// unplugging (silent and closed), and the optional zero / leak-check / pump commands.
func Run(t *testing.T, c Case) {
	t.Run("readings follow the script", func(t *testing.T) {
		clk := NewClock()
		_, r := c.start(t, rigsim.Config{Now: clk.Now})
		for _, at := range []time.Duration{5 * time.Second, 22 * time.Second, 30 * time.Second, 3 * time.Second} {
			clk.Set(at)
			rd := Read(t, r, 1)[0]
			if !rd.Time.Equal(clk.Now()) {
				t.Errorf("reading time %v, want the injected clock %v", rd.Time, clk.Now())
			}
			if rd.WarmingUp {
				t.Errorf("at %v: warming up without a warm-up period", at)
			}
			c.Check(t, rd, at)
		}
	})
	if c.ReportsWarmUp {
		t.Run("warm-up", func(t *testing.T) {
			clk := NewClock()
			_, r := c.start(t, rigsim.Config{Now: clk.Now, WarmUp: 10 * time.Second})
			clk.Set(2 * time.Second)
			rd := Read(t, r, 1)[0]
			if !rd.WarmingUp {
				t.Errorf("at 2 s of a 10 s warm-up: WarmingUp false (%+v)", rd)
			}
			// Ambient air with zero drift: signed words must keep the minus sign.
			if rd.HCppm != nil {
				Near(t, "warming HC (drift)", rd.HCppm, rigsim.Ambient.HCppm, 0.5)
			}
			if rd.COPct != nil {
				Near(t, "warming CO (drift)", rd.COPct, rigsim.Ambient.COPct, 0.006)
			}
			clk.Set(11 * time.Second)
			rd = Read(t, r, 1)[0]
			if rd.WarmingUp {
				t.Errorf("after warm-up: WarmingUp true")
			}
			c.Check(t, rd, 11*time.Second)
		})
	}
	t.Run("single bad checksum is retried", func(t *testing.T) {
		clk := NewClock()
		_, r := c.start(t, rigsim.Config{Now: clk.Now, Faults: rigsim.Faults{ChecksumEvery: 2}})
		clk.Set(30 * time.Second)
		for _, rd := range Read(t, r, 4) {
			c.Check(t, rd, 30*time.Second)
		}
	})
	t.Run("checksum burst surfaces then recovers", func(t *testing.T) {
		clk := NewClock()
		// Data requests 3 and 4 are bad: the retry inside the third Read cannot help.
		_, r := c.start(t, rigsim.Config{Now: clk.Now, Faults: rigsim.Faults{ChecksumEvery: 4, ChecksumBurst: 2}})
		clk.Set(30 * time.Second)
		Read(t, r, 2)
		_, err := ReadErr(r, 5*time.Second)
		var ce *rig.ChecksumError
		if !errors.As(err, &ce) {
			if c.Model == "mqw511" || c.Model == "fty100" {
				// Checksums these models' public drivers ignore are logged, not fatal.
				if err != nil {
					t.Fatalf("unchecked checksum model: %v", err)
				}
			} else {
				t.Fatalf("burst: err = %v, want a *rig.ChecksumError", err)
			}
		} else if len(ce.Frame) == 0 {
			t.Errorf("checksum error lost the raw frame")
		}
		for _, rd := range Read(t, r, 2) {
			c.Check(t, rd, 30*time.Second)
		}
	})
	t.Run("garbage before a reply resynchronises", func(t *testing.T) {
		clk := NewClock()
		_, r := c.start(t, rigsim.Config{Now: clk.Now, Faults: rigsim.Faults{GarbageEvery: 2}})
		clk.Set(30 * time.Second)
		for _, rd := range Read(t, r, 4) {
			c.Check(t, rd, 30*time.Second)
		}
	})
	if c.Busy != nil {
		t.Run("busy", func(t *testing.T) {
			clk := NewClock()
			_, r := c.start(t, rigsim.Config{Now: clk.Now, Faults: rigsim.Faults{BusyEvery: 2}})
			clk.Set(30 * time.Second)
			Read(t, r, 1)
			if _, err := ReadErr(r, 5*time.Second); !c.Busy(err) {
				t.Fatalf("busy: err = %v", err)
			}
			for _, rd := range Read(t, r, 1) {
				c.Check(t, rd, 30*time.Second)
			}
		})
	}
	t.Run("unplugged silent gives no-reply", func(t *testing.T) {
		clk := NewClock()
		_, r := c.start(t, rigsim.Config{Now: clk.Now, Faults: rigsim.Faults{UnplugAfter: 2}})
		Read(t, r, 2)
		_, err := ReadErr(r, 5*time.Second)
		if !errors.Is(err, rig.ErrNoReply) {
			t.Fatalf("err = %v, want rig.ErrNoReply", err)
		}
		if msg := err.Error(); !strings.Contains(msg, "cable") || !strings.Contains(msg, "--model") {
			t.Errorf("message %q does not say what to check", msg)
		}
	})
	t.Run("unplugged link closed gives a clear error", func(t *testing.T) {
		clk := NewClock()
		s, r := c.start(t, rigsim.Config{Now: clk.Now, Faults: rigsim.Faults{UnplugAfter: 1, UnplugClose: true}})
		Read(t, r, 1)
		_, err := ReadErr(r, 5*time.Second)
		if err == nil {
			t.Fatal("read after the fault succeeded")
		}
		if serr := s.Wait(); !errors.Is(serr, rigsim.ErrUnplugged) {
			t.Fatalf("simulator ended with %v, want ErrUnplugged", serr)
		}
		s.PTY.Master.Close()
		_, err = ReadErr(r, 5*time.Second)
		if !IsLinkFailure(err) {
			t.Fatalf("after the master closed: err = %v, want ErrLinkLost or ErrNoReply", err)
		}
	})
	t.Run("commands", func(t *testing.T) {
		_, r := c.start(t, rigsim.Config{Op: 150 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if p, ok := r.(rig.Pumper); ok {
			if err := p.PumpOn(ctx); err != nil {
				t.Errorf("PumpOn: %v", err)
			}
		}
		if z, ok := r.(rig.Zeroer); ok {
			if err := z.Zero(ctx); err != nil {
				t.Errorf("Zero: %v", err)
			}
		}
		if l, ok := r.(rig.LeakChecker); ok {
			leak, err := l.LeakCheck(ctx)
			if err != nil || leak {
				t.Errorf("LeakCheck = %v, %v; want no leak", leak, err)
			}
		}
		Read(t, r, 1)
		if err := r.Halt(); err != nil {
			t.Errorf("Halt: %v", err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// Near fails the test when got is nil or further than tol from want.
func Near(t *testing.T, what string, got *float64, want, tol float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s missing, want %v", what, want)
		return
	}
	if math.Abs(*got-want) > tol+1e-9 {
		t.Errorf("%s = %v, want %v ± %v", what, *got, want, tol)
	}
}

// CheckGas compares an analyzer reading with the petrol script; tol holds per-channel
// tolerances (the model's resolution) for "hc", "co", "co2", "o2", "no", "lambda", "rpm",
// "oil"; a channel missing from tol must be absent from the reading.
func CheckGas(t *testing.T, r rig.Reading, elapsed time.Duration, tol map[string]float64) {
	t.Helper()
	g := rigsim.PetrolGas(elapsed)
	for _, ch := range []struct {
		name string
		got  *float64
		want float64
	}{
		{"hc", r.HCppm, g.HCppm}, {"co", r.COPct, g.COPct}, {"co2", r.CO2Pct, g.CO2Pct},
		{"o2", r.O2Pct, g.O2Pct}, {"no", r.NOppm, g.NOppm}, {"lambda", r.Lambda, g.Lambda},
		{"rpm", r.RPM, g.RPM}, {"oil", r.OilC, g.OilC},
	} {
		tl, ok := tol[ch.name]
		if !ok {
			if ch.got != nil {
				t.Errorf("%s = %v, want absent", ch.name, *ch.got)
			}
			continue
		}
		Near(t, ch.name, ch.got, ch.want, tl)
	}
}

// CheckSmoke compares an opacimeter reading with the diesel script.
func CheckSmoke(t *testing.T, r rig.Reading, elapsed time.Duration, kTol float64) {
	t.Helper()
	s := rigsim.DieselSmoke(elapsed)
	Near(t, "N", r.OpacityPct, s.NPct, 0.05)
	Near(t, "k", r.KM1, s.KM1, kTol)
	Near(t, "rpm", r.RPM, s.RPM, 0.5)
	Near(t, "oil", r.OilC, s.OilC, 0.5)
}
