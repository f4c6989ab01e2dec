package emission

import (
	"math"
	"testing"
)

// The worked values of im-emission.md §6.2.
func TestBrettschneiderWorkedValues(t *testing.T) {
	for _, c := range []struct {
		co2, co, o2, hc, no float64
		want                float64
	}{
		{14.60, 0.45, 0.52, 123, 0, 1.006},
		{14.60, 0.45, 0.52, 123, 210, 1.007},
		{13.80, 1.20, 0.30, 180, 0, 0.972},
		{14.20, 0.10, 1.20, 60, 0, 1.053},
	} {
		got, ok := Brettschneider(c.co2, c.co, c.o2, c.hc, c.no, Petrol)
		if !ok {
			t.Fatalf("%+v: no value", c)
		}
		if math.Abs(got-c.want) > 0.0005 {
			t.Errorf("CO2 %v CO %v O2 %v HC %v NO %v: λ = %.4f, want %.3f", c.co2, c.co, c.o2, c.hc, c.no, got, c.want)
		}
	}
}

func TestBrettschneiderLeanerWithMoreOxygen(t *testing.T) {
	prev := 0.0
	for _, o2 := range []float64{0, 0.5, 1, 2, 4} {
		l, ok := Brettschneider(14, 0.3, o2, 100, 0, Petrol)
		if !ok || l <= prev {
			t.Fatalf("O2 %v: λ %v (ok %v) not above %v", o2, l, ok, prev)
		}
		prev = l
	}
}

func TestBrettschneiderRefusesAmbientAir(t *testing.T) {
	for _, c := range [][5]float64{
		{0, 0, 20.9, 0, 0},
		{-0.02, -0.01, 20.9, 3, 0},
		{math.NaN(), 0.1, 1, 1, 0},
		{14, math.Inf(1), 1, 1, 0},
	} {
		if l, ok := Brettschneider(c[0], c[1], c[2], c[3], c[4], Petrol); ok {
			t.Errorf("%v: got λ %v, want no value", c, l)
		}
	}
	// CO only (no CO2 channel reading): finite, positive.
	if l, ok := Brettschneider(0, 2, 1, 100, 0, Petrol); !ok || !(l > 0) || math.IsInf(l, 0) {
		t.Errorf("CO only: λ %v ok %v", l, ok)
	}
}
