package rigtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/drivers/serialport/ptypair"
	"github.com/obdgw/obdgw/hack/testenv"
)

// Served is a simulator running on a pty.
type Served struct {
	PTY  *ptypair.Pair
	Port rig.Port // the driver's end, opened with serialport.Open
	done chan struct{}
	err  error
	stop context.CancelFunc
}

// Wait waits for the simulator to end and returns what Serve returned.
func (s *Served) Wait() error {
	<-s.done
	return s.err
}

// Stop ends the simulator and waits for it.
func (s *Served) Stop() error {
	s.stop()
	return s.Wait()
}

// Serve opens a pty, starts srv on its master and opens the slave at baud through
// serialport.Open. Everything is closed when the test ends. A pty that cannot be opened skips
// the test under OBDGW_QEMU (qemu-user) only (testenv.PTY).
func Serve(t testing.TB, srv rigsim.Server, baud int) *Served {
	t.Helper()
	p := testenv.PTY(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Served{PTY: p, done: make(chan struct{}), stop: cancel}
	go func() {
		defer close(s.done)
		s.err = srv.Serve(ctx, p.Master)
	}()
	port, err := serialport.Open(p.SlavePath, serialport.WithBaud(baud))
	if err != nil {
		cancel()
		t.Fatalf("serialport.Open(%s): %v", p.SlavePath, err)
	}
	s.Port = port
	t.Cleanup(func() {
		cancel()
		port.Close()
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			t.Errorf("simulator did not stop within 5s")
		}
	})
	return s
}

// Read reads n readings from r, failing the test on the first error.
func Read(t testing.TB, r rig.Rig, n int) []rig.Reading {
	t.Helper()
	var out []rig.Reading
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		rd, err := r.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("reading %d from %s: %v", i+1, r, err)
		}
		out = append(out, rd)
	}
	return out
}

// ReadErr reads once and returns the error.
func ReadErr(r rig.Rig, d time.Duration) (rig.Reading, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return r.Read(ctx)
}

// IsLinkFailure reports whether err is what a driver must say when the rig goes away:
// ErrNoReply (silent) or ErrLinkLost (closed).
func IsLinkFailure(err error) bool {
	return errors.Is(err, rig.ErrNoReply) || errors.Is(err, rig.ErrLinkLost)
}
