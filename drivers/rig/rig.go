// Package rig is the common shape of emission test instruments: five-gas analyzers and
// opacimeters (smoke meters). Each protocol family lives in its own package under drivers/
// (drivers/nanhua, drivers/mqw50a, drivers/opacity, …) with a simulator beside it; this package holds only the
// interface they share and the reading they return, so the emission procedures in the gateway
// never depend on a particular brand.
package rig

import (
	"context"
	"time"
)

// Rig is one instrument on one serial line.
//
// Contract: Read asks the instrument for one real-time reading and returns it, or an error
// (typed errors in the driver packages keep the raw frame; a busy instrument wraps ErrBusy).
// Read honours ctx and its own per-request deadline. A Rig is not safe for concurrent use.
// Halt stops moving parts (the sampling pump) but keeps the port open; Close halts and releases
// the port. String names the instrument for logs ("/dev/ttyUSB1@9600 Nanhua NHA-506").
type Rig interface {
	Read(ctx context.Context) (Reading, error)
	String() string
	Halt() error
	Close() error
}

// Zeroer is implemented by instruments that can zero themselves on ambient air.
type Zeroer interface {
	Zero(ctx context.Context) error
}

// LeakChecker is implemented by analyzers with a leak-check command.
type LeakChecker interface {
	LeakCheck(ctx context.Context) (leak bool, err error)
}

// Reading is one real-time sample. Channels an instrument does not have are nil; the JSON keys
// carry the unit.
type Reading struct {
	Time time.Time `json:"time"`

	// Gas analyzer channels.
	HCppm  *float64 `json:"hc_ppm,omitempty"`  // hydrocarbons, ppm vol (n-hexane equivalent)
	COPct  *float64 `json:"co_pct,omitempty"`  // carbon monoxide, % vol
	CO2Pct *float64 `json:"co2_pct,omitempty"` // carbon dioxide, % vol
	O2Pct  *float64 `json:"o2_pct,omitempty"`  // oxygen, % vol
	NOppm  *float64 `json:"no_ppm,omitempty"`  // nitric oxide, ppm vol
	Lambda *float64 `json:"lambda,omitempty"`  // excess-air ratio as the analyzer reports it

	// Opacimeter channels.
	OpacityPct *float64 `json:"opacity_pct,omitempty"` // opacity N, %
	KM1        *float64 `json:"k_m1,omitempty"`        // light absorption coefficient k, m⁻¹

	// Engine channels, when the instrument has the sensors.
	RPM  *float64 `json:"rpm,omitempty"`   // engine speed, r/min
	OilC *float64 `json:"oil_c,omitempty"` // oil temperature, °C

	// State reported by the instrument alongside the data.
	WarmingUp bool     `json:"warming_up,omitempty"`
	Flags     []string `json:"flags,omitempty"` // e.g. "o2_sensor_aged", "k_computed_from_n"
}

// F returns a pointer to v, for filling optional channels.
func F(v float64) *float64 { return &v }
