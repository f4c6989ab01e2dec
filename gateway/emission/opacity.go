package emission

import "math"

// DefaultPathLengthM is the effective optical path length of the opacimeters whose drivers
// report N only (im-emission.md §7, confirmed: N2K(N, 430) for the FTY-100).
const DefaultPathLengthM = 0.430

// MaxOpacityPct is where KFromN clamps: N = 100 % has no finite k.
const MaxOpacityPct = 99.9

// KFromN converts opacity N (%) into the light absorption coefficient k (m⁻¹) for the optical
// path length l (m): k = −(1/L)·ln(1 − N/100). N at or above 100 % is clamped to MaxOpacityPct
// and reported as clamped; N below 0 (zero drift) gives k = 0.
func KFromN(n, l float64) (k float64, clamped bool) {
	if math.IsNaN(n) || l <= 0 {
		return math.NaN(), false
	}
	if n <= 0 {
		return 0, false
	}
	if n >= MaxOpacityPct {
		n, clamped = MaxOpacityPct, true
	}
	return -math.Log(1-n/100) / l, clamped
}

// NFromK is the inverse: N = 100·(1 − e^(−k·L)).
func NFromK(k, l float64) float64 {
	if k <= 0 {
		return 0
	}
	return 100 * (1 - math.Exp(-k*l))
}
