package nanhua_test

import (
	"errors"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/nanhua"
	"github.com/obdgw/obdgw/drivers/nanhua/nanhuasim"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
	"github.com/obdgw/obdgw/drivers/rig/rigtest"
)

// Each model against its simulator over a real pty, opened with serialport.Open.
func TestAgainstSimulator(t *testing.T) {
	pct := 0.011
	for _, tt := range []struct {
		model, firmware string
		tol             map[string]float64
		warm            bool
	}{
		{"nha503", "", map[string]float64{"hc": 0.5, "co": pct, "co2": pct, "o2": pct, "no": 0.5, "lambda": pct, "rpm": 0.5, "oil": 0.05}, true},
		{"nha503", "pre-1.0.4", map[string]float64{"hc": 0.5, "co": pct, "co2": pct, "o2": pct, "no": 0.5, "lambda": pct, "rpm": 0.5, "oil": 0.05}, true},
		{"nha503", "2c", map[string]float64{"hc": 0.5, "co": pct, "co2": pct, "o2": pct, "no": 0.5, "lambda": pct, "rpm": 0.5, "oil": 0.05}, true},
		{"nha506", "", map[string]float64{"hc": 0.5, "co": pct, "co2": pct, "o2": pct, "no": 0.5, "lambda": pct, "rpm": 0.5, "oil": 0.5}, true},
		{"fla502", "", map[string]float64{"hc": 0.5, "co": 0.0011, "co2": pct, "o2": pct, "no": 0.5, "lambda": pct, "rpm": 0.5, "oil": 0.05}, true},
		{"mqw511", "", map[string]float64{"hc": 0.5, "co": pct, "co2": pct, "o2": pct, "no": 0.5, "lambda": pct, "rpm": 0.5, "oil": 0.5}, false},
	} {
		name := tt.model
		if tt.firmware != "" {
			name += "/" + tt.firmware
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rigtest.Run(t, rigtest.Case{
				Model: tt.model, Baud: 9600,
				Sim: func(cfg rigsim.Config) (rigsim.Server, error) { return nanhuasim.New(tt.model, tt.firmware, cfg) },
				Open: func(p rig.Port, o rig.Options) (rig.Rig, error) {
					o.Firmware = tt.firmware
					return nanhua.Open(p, tt.model, o)
				},
				Check: func(t *testing.T, r rig.Reading, at time.Duration) {
					rigtest.CheckGas(t, r, at, tt.tol)
				},
				Busy:          func(err error) bool { return errors.Is(err, rig.ErrBusy) },
				ReportsWarmUp: tt.warm,
			})
		})
	}
}

func TestRegistry(t *testing.T) {
	for _, m := range []string{"nha503", "nha506", "fla502", "mqw511", "NHA-506"} {
		mod, ok := rig.Lookup(m)
		if !ok || mod.Baud != 9600 || mod.Family != "nanhua" {
			t.Errorf("rig.Lookup(%q) = %+v, %v", m, mod, ok)
		}
		if _, ok := rigsim.Lookup(rig.NormalizeModel(m)); !ok {
			t.Errorf("no simulator for %s", m)
		}
	}
}
