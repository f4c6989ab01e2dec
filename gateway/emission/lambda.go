package emission

import "math"

// Fuel is the atomic composition of a fuel for the Brettschneider formula.
type Fuel struct {
	HC float64 // H/C atomic ratio (Hcv)
	OC float64 // O/C atomic ratio (Ocv)
}

// Petrol is the usual petrol composition (im-emission.md §6.2, unconfirmed against GB 18285).
var Petrol = Fuel{HC: 1.7261, OC: 0.0176}

// Brettschneider computes the excess-air ratio λ from dry exhaust concentrations: CO2, CO, O2
// in % vol, HC in ppm vol (n-hexane) and NO in ppm vol (0 when the analyzer has no NO channel).
// It reports false when the gases do not allow a value (no carbon in the sample: the probe is
// in ambient air, or the channels are zero).
//
// The result is a plausibility check on the analyzer's own λ, never the judged value unless
// the configuration says so (im-emission.md §6.2).
func Brettschneider(co2, co, o2, hcPPM, noPPM float64, f Fuel) (float64, bool) {
	const (
		k1 = 6e-4 // ppm n-hexane → % vol carbon (six carbon atoms)
		kw = 3.5  // water-gas equilibrium constant
	)
	for _, v := range []float64{co2, co, o2, hcPPM, noPPM} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, false
		}
	}
	// Analyzers drift a little below zero on clean air; a negative concentration carries no
	// information here.
	co2, co, o2, hcPPM, noPPM = max(co2, 0), max(co, 0), max(o2, 0), max(hcPPM, 0), max(noPPM, 0)
	carbon := co2 + co
	if carbon <= 0 {
		return 0, false
	}
	ratio := 0.0
	if co2 > 0 {
		ratio = co / co2
	}
	num := co2 + co/2 + o2 + noPPM*1e-4/2 + ((f.HC/4)*kw/(kw+ratio)-f.OC/2)*carbon
	den := (1 + f.HC/4 - f.OC/2) * (carbon + k1*hcPPM)
	if co2 == 0 { // kw/(kw+∞) → 0
		num = co/2 + o2 + noPPM*1e-4/2 - f.OC/2*carbon
	}
	l := num / den
	if !(l > 0) || math.IsInf(l, 0) {
		return 0, false
	}
	return l, true
}
