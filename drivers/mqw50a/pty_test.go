package mqw50a_test

import (
	"errors"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/mqw50a"
	"github.com/obdgw/obdgw/drivers/mqw50a/mqw50asim"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
	"github.com/obdgw/obdgw/drivers/rig/rigtest"
)

func TestAgainstSimulator(t *testing.T) {
	pct := 0.011
	rigtest.Run(t, rigtest.Case{
		Model: "mqw50a", Baud: mqw50a.Baud,
		Sim:  func(cfg rigsim.Config) (rigsim.Server, error) { return mqw50asim.New(cfg), nil },
		Open: func(p rig.Port, o rig.Options) (rig.Rig, error) { return mqw50a.New(p, o) },
		Check: func(t *testing.T, r rig.Reading, at time.Duration) {
			rigtest.CheckGas(t, r, at, map[string]float64{"hc": 0.5, "co": pct, "co2": pct, "o2": pct, "no": 0.5, "lambda": 0.0011, "rpm": 0.5, "oil": 0.05})
		},
		Busy: func(err error) bool {
			var ne *rig.NAKError
			return errors.As(err, &ne)
		},
		ReportsWarmUp: true,
	})
}

func TestRegistered(t *testing.T) {
	if m, ok := rig.Lookup("MQW-50A"); !ok || m.Baud != 9600 {
		t.Fatalf("rig.Lookup = %+v, %v", m, ok)
	}
	if _, ok := rigsim.Lookup("mqw50a"); !ok {
		t.Fatal("no simulator registered")
	}
}
