package mexa_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/mexa"
	"github.com/obdgw/obdgw/drivers/mexa/mexasim"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
	"github.com/obdgw/obdgw/drivers/rig/rigtest"
)

func TestAgainstSimulator(t *testing.T) {
	pct := 0.011
	rigtest.Run(t, rigtest.Case{
		Model: "mexa584l", Baud: mexa.Baud,
		Sim:  func(cfg rigsim.Config) (rigsim.Server, error) { return mexasim.New(cfg), nil },
		Open: func(p rig.Port, o rig.Options) (rig.Rig, error) { return mexa.New(p, o) },
		Check: func(t *testing.T, r rig.Reading, at time.Duration) {
			rigtest.CheckGas(t, r, at, map[string]float64{"hc": 0.5, "co": pct, "co2": pct, "o2": pct, "no": 0.5, "lambda": 0.0011, "rpm": 0.5, "oil": 0.5})
		},
		Busy: func(err error) bool {
			var ne *rig.NAKError
			return errors.As(err, &ne)
		},
		ReportsWarmUp: true,
		// The simulator answers at once; the full pauses are exercised in TestRealPauses.
		Tune: func(r rig.Rig) { r.(*mexa.Analyzer).SetDelayScale(0.05) },
	})
}

// With the real per-command pauses (no scaling) the first reading (subsystem + status + channels) still
// arrives, and PEF reads back the simulator's 0.512.
func TestRealPauses(t *testing.T) {
	s := rigtest.Serve(t, mexasim.New(rigsim.Config{}), mexa.Baud)
	a, err := mexa.New(s.Port, rig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := rigtest.Read(t, a, 1)[0]
	if r.O2Pct == nil || r.NOppm == nil || r.RPM == nil || r.OilC == nil {
		t.Errorf("options fitted in the simulator but channels missing: %+v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if pef, err := a.PEF(ctx); err != nil || pef != 0.512 {
		t.Errorf("PEF = %v, %v", pef, err)
	}
}
