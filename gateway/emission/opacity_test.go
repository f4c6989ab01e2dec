package emission

import (
	"math"
	"testing"
)

// The k↔N table of im-emission.md §7 (L = 0.430 m). The table's k for N = 30 % reads 0.830;
// −ln(0.7)/0.43 = 0.82948, so the table rounded up from 0.8295; allow one unit in the last place.
func TestKFromNTable(t *testing.T) {
	for _, c := range []struct{ n, k float64 }{
		{10, 0.245}, {20, 0.519}, {30, 0.830}, {40, 1.188}, {50, 1.612}, {60, 2.131}, {80, 3.743},
	} {
		k, clamped := KFromN(c.n, DefaultPathLengthM)
		if clamped || math.Abs(k-c.k) > 0.001 {
			t.Errorf("N %v %%: k = %.4f (clamped %v), want %.3f", c.n, k, clamped, c.k)
		}
	}
	for _, c := range []struct{ k, n float64 }{
		{0.5, 19.35}, {0.7, 25.99}, {1.0, 34.95}, {1.2, 40.31}, {1.5, 47.53}, {2.5, 65.87}, {3.0, 72.47},
	} {
		if n := NFromK(c.k, DefaultPathLengthM); math.Abs(n-c.n) > 0.005 {
			t.Errorf("k %v: N = %.3f %%, want %.2f", c.k, n, c.n)
		}
		back, _ := KFromN(NFromK(c.k, DefaultPathLengthM), DefaultPathLengthM)
		if math.Abs(back-c.k) > 1e-9 {
			t.Errorf("k %v: round trip gives %v", c.k, back)
		}
	}
}

func TestKFromNEdges(t *testing.T) {
	if k, c := KFromN(100, DefaultPathLengthM); !c || math.IsInf(k, 0) || k < 15 {
		t.Errorf("N 100 %%: k %v clamped %v, want a large finite clamped value", k, c)
	}
	if k, c := KFromN(250, DefaultPathLengthM); !c || math.IsInf(k, 0) {
		t.Errorf("N 250 %%: k %v clamped %v", k, c)
	}
	if k, _ := KFromN(-0.3, DefaultPathLengthM); k != 0 {
		t.Errorf("N −0.3 %% (zero drift): k %v, want 0", k)
	}
	if k, _ := KFromN(20, 0); !math.IsNaN(k) {
		t.Errorf("path length 0: k %v, want NaN", k)
	}
}
