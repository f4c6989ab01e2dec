package opacity_test

import (
	"context"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/obdgw/obdgw/drivers/opacity"
	"github.com/obdgw/obdgw/drivers/opacity/opacitysim"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
)

// NHT-6 zero: A4, then the status says calibrating (2) until done; on fake time.
func TestZeroWaitsWhileCalibrating(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		sim, err := opacitysim.New("nht6", rigsim.Config{Op: 15 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); sim.Serve(ctx, b) }()
		defer func() { cancel(); a.Close(); b.Close(); <-done }()
		r, err := opacity.Open(a, "nht6", rig.Options{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := r.(rig.Zeroer).Zero(context.Background()); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < 15*time.Second || el > 17*time.Second {
			t.Errorf("Zero took %v of fake time, want just over the 15 s calibration", el)
		}
		// A free acceleration read on fake time: the peak shows within the cycle.
		var peak float64
		for i := 0; i < 60; i++ {
			rd, err := r.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			peak = max(peak, *rd.OpacityPct)
			time.Sleep(200 * time.Millisecond)
		}
		if peak < 35 {
			t.Errorf("no smoke peak over a 12 s free-acceleration cycle: max N %v %%", peak)
		}
	})
}
