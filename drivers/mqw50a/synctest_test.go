package mqw50a_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/obdgw/obdgw/drivers/mqw50a"
	"github.com/obdgw/obdgw/drivers/mqw50a/mqw50asim"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
)

// Zero polls the status once a second until the zeroing bit clears, on fake time.
func TestZeroWaitsForStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			mqw50asim.New(rigsim.Config{Op: 20 * time.Second, WarmUp: time.Minute}).Serve(ctx, b)
		}()
		defer func() { cancel(); a.Close(); b.Close(); <-done }()
		an, err := mqw50a.New(a, rig.Options{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := an.Read(context.Background())
		if err != nil || !r.WarmingUp {
			t.Fatalf("during warm-up: %+v, %v", r, err)
		}
		time.Sleep(time.Minute)
		start := time.Now()
		if err := an.Zero(context.Background()); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < 20*time.Second || el > 22*time.Second {
			t.Errorf("Zero took %v of fake time, want just over the simulator's 20 s", el)
		}
		short, cancelShort := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancelShort()
		if err := an.Zero(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Zero past its deadline: %v", err)
		}
	})
}
