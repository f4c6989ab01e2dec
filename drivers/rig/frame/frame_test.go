package frame

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/obdgw/obdgw/drivers/rig"
)

func TestChecksumRules(t *testing.T) {
	// Published frames of rig-protocols.md, one per rule.
	if got := Sum([]byte{0x06, 0x00, 0xE7, 0x03, 0xE9, 0x01, 0xF4}); got != 0xCE {
		t.Errorf("SUM = %02X, want CE (§1.3 D)", got)
	}
	if got := TwoC([]byte{0x02, 0x60, 0x03}); got != 0x9B {
		t.Errorf("2C = %02X, want 9B (§4 get data)", got)
	}
	if got := Inv([]byte{0x04, 0x00, 0x01, 0x02, 0x02}); got != 0xF6 {
		t.Errorf("INV = %02X, want F6 (§2 get data)", got)
	}
	if I16([]byte{0xFF, 0xFD}, 0) != -3 || U16([]byte{0xFF, 0xFD}, 0) != 65533 {
		t.Error("signed/unsigned words")
	}
	if Round(453*0.1, 1) != 45.3 || Decimals(0.001) != 3 || Decimals(1) != 0 {
		t.Error("rounding")
	}
	if Round16(40000) != 32767 || Round16(-40000) != -32768 || RoundU16(-1) != 0 {
		t.Error("saturation")
	}
}

// The deadline and purge behaviour on an in-memory link, on fake time.
func TestLinkDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		l := &Link{Port: a, Pkg: "test", Model: "Test Rig", Baud: 9600}
		ctx := context.Background()

		// Silence: ErrNoReply after exactly the deadline, with a hint naming the speed.
		start := time.Now()
		_, err := l.Read(ctx, nil, 3, time.Now().Add(2500*time.Millisecond))
		if !errors.Is(err, rig.ErrNoReply) {
			t.Fatalf("silent peer: %v", err)
		}
		if el := time.Since(start); el != 2500*time.Millisecond {
			t.Errorf("gave up after %v of fake time, want the 2.5 s deadline", el)
		}
		if msg := err.Error(); !contains(msg, "9600 8N1") {
			t.Errorf("no link speed in %q", msg)
		}

		// Part of a reply: a ShortFrameError with the bytes so far.
		go b.Write([]byte{0x06, 0x01})
		_, err = l.Read(ctx, nil, 4, time.Now().Add(time.Second))
		var se *rig.ShortFrameError
		if !errors.As(err, &se) || len(se.Frame) != 2 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("short reply: %v", err)
		}

		// Stale bytes are purged before a request.
		go b.Write([]byte{0xAA, 0xBB})
		synctest.Wait()
		junk, err := l.Drain()
		if err != nil || len(junk) != 2 {
			t.Fatalf("drain = % X, %v", junk, err)
		}

		// Cancelling the context unblocks a pending read at once.
		cctx, cancel := context.WithCancel(ctx)
		go func() { time.Sleep(100 * time.Millisecond); cancel() }()
		start = time.Now()
		_, err = l.Read(cctx, nil, 1, time.Now().Add(time.Hour))
		if !errors.Is(err, context.Canceled) || time.Since(start) != 100*time.Millisecond {
			t.Fatalf("cancelled read: %v after %v", err, time.Since(start))
		}

		// A closed port is a lost link.
		b.Close()
		if _, err := l.Read(ctx, nil, 1, time.Now().Add(time.Second)); !errors.Is(err, rig.ErrLinkLost) {
			t.Fatalf("closed peer: %v", err)
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestUnverifiedAsksAgainThenStops(t *testing.T) {
	type reply struct{ ok bool }
	okf := func(r reply) bool { return r.ok }
	var u Unverified
	asked := 0
	bad := func() (reply, error) { asked++; return reply{false}, nil }
	for i := 0; i < MaxRetries; i++ {
		if _, kept := Keep(&u, reply{false}, okf, bad); !kept {
			t.Fatalf("round %d: a mismatch reported as verified", i)
		}
	}
	if asked != MaxRetries {
		t.Fatalf("asked again %d times, want %d", asked, MaxRetries)
	}
	Keep(&u, reply{false}, okf, bad)
	if asked != MaxRetries {
		t.Fatal("still asking twice after MaxRetries mismatches in a row")
	}
	// A good reply resets the run; noise that a second read clears is not kept.
	if _, kept := Keep(&u, reply{true}, okf, bad); kept {
		t.Fatal("a matching reply reported as kept")
	}
	good := func() (reply, error) { return reply{true}, nil }
	if r, kept := Keep(&u, reply{false}, okf, good); kept || !r.ok {
		t.Fatal("noise cleared by asking again was kept")
	}
}

// failingPort is a port whose device went away: every call fails with the error the serial
// layer reports for a pulled USB adapter.
type failingPort struct{ err error }

func (p failingPort) Read([]byte) (int, error)        { return 0, p.err }
func (p failingPort) Write([]byte) (int, error)       { return 0, p.err }
func (p failingPort) Close() error                    { return nil }
func (p failingPort) SetReadDeadline(time.Time) error { return nil }

// Whatever the port says when the device is gone, the procedures above see rig.ErrLinkLost
// (they never import the serial layer) and the port's own error stays in the chain.
func TestLinkWrapsPortFailuresAsLinkLost(t *testing.T) {
	gone := &os.PathError{Op: "read", Path: "/dev/ttyUSB1", Err: syscall.ENODEV}
	l := &Link{Port: failingPort{gone}, Pkg: "test", Model: "Test Rig", Baud: 9600}
	ctx := context.Background()
	_, rerr := l.Read(ctx, nil, 1, time.Now().Add(time.Second))
	werr := l.Write(ctx, []byte{0x02})
	for op, err := range map[string]error{"read": rerr, "write": werr} {
		if !errors.Is(err, rig.ErrLinkLost) || !errors.Is(err, syscall.ENODEV) {
			t.Errorf("%s on a pulled adapter: %v, want rig.ErrLinkLost wrapping ENODEV", op, err)
		}
	}
}
