package nanhua_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/obdgw/obdgw/drivers/nanhua"
	"github.com/obdgw/obdgw/drivers/nanhua/nanhuasim"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
)

// pipeRig runs the simulator on one end of net.Pipe inside the bubble and the driver on the
// other, with default (2.5 s) deadlines and 1 s polls.
func pipeRig(t *testing.T, model string, cfg rigsim.Config) *nanhua.ZeroAnalyzer {
	t.Helper()
	a, b := net.Pipe()
	sim, err := nanhuasim.New(model, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sim.Serve(ctx, b) }()
	t.Cleanup(func() { cancel(); a.Close(); b.Close(); <-done })
	r, err := nanhua.Open(a, model, rig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r.(*nanhua.ZeroAnalyzer)
}

// Zero polls every second while the analyzer answers 05, for as long as zeroing runs.
func TestZeroPollsOnFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		z := pipeRig(t, "nha503", rigsim.Config{Op: 30 * time.Second})
		start := time.Now()
		if err := z.Zero(context.Background()); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < 30*time.Second || el > 32*time.Second {
			t.Errorf("Zero returned after %v of fake time, want just over the 30 s the simulator zeroes for", el)
		}
		// A deadline shorter than the operation ends the wait with the context's error.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := z.LeakCheck(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("LeakCheck past its deadline: %v", err)
		}
	})
}

// A silent analyzer costs exactly the 2.5 s Nanhua deadline (plus the purge), then ErrNoReply.
func TestSilentAnalyzerDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		z := pipeRig(t, "nha506", rigsim.Config{Faults: rigsim.Faults{UnplugAfter: 1}})
		if _, err := z.Read(context.Background()); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err := z.Read(context.Background())
		if !errors.Is(err, rig.ErrNoReply) {
			t.Fatalf("err = %v, want ErrNoReply", err)
		}
		if el := time.Since(start); el < 2500*time.Millisecond || el > 2600*time.Millisecond {
			t.Errorf("gave up after %v, want the 2.5 s deadline", el)
		}
	})
}

// Warm-up on fake time: the state command is asked until the analyzer reports warm, and the
// warm-up time left counts down.
func TestWarmUpOnFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		z := pipeRig(t, "nha503", rigsim.Config{WarmUp: 10 * time.Minute})
		ctx := context.Background()
		r, err := z.Read(ctx)
		if err != nil || !r.WarmingUp {
			t.Fatalf("first reading: %+v, %v", r, err)
		}
		if r.O2Pct == nil || *r.O2Pct != 20.9 {
			t.Errorf("warming analyzer should read ambient air: O2 %v", r.O2Pct)
		}
		left, err := z.WarmupLeft(ctx)
		if err != nil || left < 9*time.Minute || left > 10*time.Minute {
			t.Errorf("warm-up left %v, %v", left, err)
		}
		time.Sleep(10 * time.Minute)
		if r, err = z.Read(ctx); err != nil || r.WarmingUp {
			t.Fatalf("after warm-up: %+v, %v", r, err)
		}
		env, err := z.Env(ctx)
		if err != nil || env.PressureKPa != 100.1 {
			t.Errorf("env = %+v, %v", env, err)
		}
	})
}

// Firmware that refuses the state command still reads: the driver stops asking for it.
func TestStateCommandRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		// The FLA-502 simulator has no 26 (state) command and answers it with 15, and it
		// speaks the same data command (01) and frame length as an NHA-506.
		sim, err := nanhuasim.New("fla502", "", rigsim.Config{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); sim.Serve(ctx, b) }()
		defer func() { cancel(); a.Close(); b.Close(); <-done }()
		r, err := nanhua.New(a, "nha506", rig.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			rd, err := r.Read(context.Background())
			if err != nil || rd.WarmingUp || rd.HCppm == nil {
				t.Fatalf("read %d: %+v, %v", i+1, rd, err)
			}
		}
		if _, err := r.State(context.Background()); err == nil {
			t.Error("State still asked after the refusal")
		}
	})
}
