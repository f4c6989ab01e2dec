package opacity_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/opacity"
	"github.com/obdgw/obdgw/drivers/opacity/opacitysim"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
	"github.com/obdgw/obdgw/drivers/rig/rigtest"
)

func TestAgainstSimulator(t *testing.T) {
	for _, model := range []string{"nht6", "nht1l", "mqy200", "fty100"} {
		t.Run(model, func(t *testing.T) {
			t.Parallel()
			kTol := 0.005
			if model == "fty100" {
				kTol = 0.01 // computed from N with ÷10 resolution, not sent
			}
			rigtest.Run(t, rigtest.Case{
				Model: model, Baud: 9600,
				Sim:  func(cfg rigsim.Config) (rigsim.Server, error) { return opacitysim.New(model, cfg) },
				Open: func(p rig.Port, o rig.Options) (rig.Rig, error) { return opacity.Open(p, model, o) },
				Check: func(t *testing.T, r rig.Reading, at time.Duration) {
					rigtest.CheckSmoke(t, r, at, kTol)
				},
				Busy: func(err error) bool {
					var ne *rig.NAKError
					return errors.As(err, &ne) && ne.Code == 2
				},
				ReportsWarmUp: true,
			})
		})
	}
}

// A free-acceleration peak shows in the maxima, and clearing resets them.
func TestMaxima(t *testing.T) {
	for _, model := range []string{"nht6", "mqy200"} {
		t.Run(model, func(t *testing.T) {
			clk := rigtest.NewClock()
			srv, err := opacitysim.New(model, rigsim.Config{Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			s := rigtest.Serve(t, srv, 9600)
			m, err := opacity.New(s.Port, model, rig.Options{Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			clk.Set(8 * time.Second) // after the first acceleration (peak 40 %)
			mx, err := m.Maxima(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if mx.NPct < 35 || mx.NPct > 45 || mx.RPM < 2300 {
				t.Errorf("maxima after a free acceleration = %+v", mx)
			}
			if err := m.ClearMaxima(ctx); err != nil {
				t.Fatal(err)
			}
			clk.Set(9 * time.Second) // idle only since the clear
			if mx, err = m.Maxima(ctx); err != nil || mx.NPct > 5 {
				t.Errorf("maxima after clear = %+v, %v", mx, err)
			}
		})
	}
}

func TestModelsAreNotInterchangeable(t *testing.T) {
	// An NHT-6 driver on an MQY-200 asks with A5, which the MQY-200 refuses: never share
	// command tables.
	srv, err := opacitysim.New("mqy200", rigsim.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := rigtest.Serve(t, srv, 9600)
	m, err := opacity.Open(s.Port, "nht6", rig.Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, err = rigtest.ReadErr(m, 3*time.Second)
	var ne *rig.NAKError
	if !errors.As(err, &ne) {
		t.Fatalf("NHT-6 driver on an MQY-200: err = %v, want a NAK", err)
	}
}
