package fga4100_test

import (
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/fga4100"
	"github.com/obdgw/obdgw/drivers/fga4100/fga4100sim"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
	"github.com/obdgw/obdgw/drivers/rig/rigtest"
)

func TestAgainstSimulator(t *testing.T) {
	rigtest.Run(t, rigtest.Case{
		Model: "fga4100", Baud: fga4100.Baud,
		Sim:  func(cfg rigsim.Config) (rigsim.Server, error) { return fga4100sim.New(cfg), nil },
		Open: func(p rig.Port, o rig.Options) (rig.Rig, error) { return fga4100.New(p, o) },
		Check: func(t *testing.T, r rig.Reading, at time.Duration) {
			// CO2 and O2 travel in tenths of a percent.
			rigtest.CheckGas(t, r, at, map[string]float64{"hc": 0.5, "co": 0.0051, "co2": 0.051, "o2": 0.051, "no": 0.5, "lambda": 0.0051, "rpm": 0.5, "oil": 0.051})
		},
	})
}
