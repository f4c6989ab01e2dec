package indicator

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
)

func pins() (*gpiotest.Pin, *gpiotest.Pin) {
	return &gpiotest.Pin{N: "GPIO17", Num: 17}, &gpiotest.Pin{N: "GPIO27", Num: 27}
}

func TestSteadyStates(t *testing.T) {
	g, r := pins()
	l := New("bay1", g, r, 0)
	for _, tc := range []struct {
		s    State
		g, r gpio.Level
	}{
		{Ready, gpio.High, gpio.Low},
		{Fault, gpio.Low, gpio.High},
		{Off, gpio.Low, gpio.Low},
		{Busy, gpio.High, gpio.Low}, // blinking starts lit
		{Attention, gpio.Low, gpio.High},
	} {
		l.Set(tc.s)
		if g.L != tc.g || r.L != tc.r {
			t.Errorf("%v: green=%v red=%v, want %v %v", tc.s, g.L, r.L, tc.g, tc.r)
		}
	}
	if got := l.String(); got != "bay1 light (GPIO17/GPIO27)" {
		t.Errorf("String() = %q", got)
	}
}

func TestBlinkUnderFakeTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g, r := pins()
		l := New("bay1", g, r, 500*time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { l.Run(ctx); close(done) }()
		l.Set(Busy)
		synctest.Wait()
		var seen []gpio.Level
		for i := 0; i < 4; i++ {
			seen = append(seen, g.L)
			time.Sleep(500 * time.Millisecond)
			synctest.Wait()
		}
		want := []gpio.Level{gpio.High, gpio.Low, gpio.High, gpio.Low}
		for i := range want {
			if seen[i] != want[i] {
				t.Fatalf("green over time = %v, want %v", seen, want)
			}
		}
		if r.L != gpio.Low {
			t.Error("red lit while busy")
		}
		cancel()
		<-done
		if g.L != gpio.Low || r.L != gpio.Low {
			t.Error("light not off after Run ended")
		}
	})
}

type brokenPin struct{ gpiotest.Pin }

func (b *brokenPin) Out(gpio.Level) error { return errors.New("export failed") }

func TestPinErrorIsKeptNotFatal(t *testing.T) {
	_, r := pins()
	b := &brokenPin{gpiotest.Pin{N: "GPIO5"}}
	l := New("bay2", b, r, 0)
	l.Set(Fault)
	if r.L != gpio.High {
		t.Error("working red pin not driven when the green pin is broken")
	}
	if err := l.Err(); err == nil {
		t.Fatal("pin error not reported")
	}
	l2 := New("bay3", nil, nil, 0) // a bay without LEDs is fine
	l2.Set(Ready)
	if l2.Err() != nil || l2.State() != Ready {
		t.Fatal("light without pins misbehaves")
	}
}
