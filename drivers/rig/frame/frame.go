package frame

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"time"

	"github.com/obdgw/obdgw/drivers/rig"
)

// Sum is the SUM rule: the 8-bit sum of b.
func Sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

// TwoC is the 2C rule: the two's complement of the 8-bit sum, so b plus the result sums to 0.
func TwoC(b []byte) byte { return -Sum(b) }

// Inv is the INV rule: the one's complement of the 8-bit sum.
func Inv(b []byte) byte { return ^Sum(b) }

// I16 reads a signed big-endian word at off.
func I16(b []byte, off int) int16 { return int16(binary.BigEndian.Uint16(b[off:])) }

// U16 reads an unsigned big-endian word at off.
func U16(b []byte, off int) uint16 { return binary.BigEndian.Uint16(b[off:]) }

// PutI16 writes v as a big-endian word at off.
func PutI16(b []byte, off int, v int16) { binary.BigEndian.PutUint16(b[off:], uint16(v)) }

// PutU16 writes v as a big-endian word at off.
func PutU16(b []byte, off int, v uint16) { binary.BigEndian.PutUint16(b[off:], v) }

// Round16 gives the nearest integer to v, saturated to the int16 range; simulators use it to put
// physical values on the wire.
func Round16(v float64) int16 {
	r := math.Round(v)
	if r > math.MaxInt16 {
		return math.MaxInt16
	}
	if r < math.MinInt16 {
		return math.MinInt16
	}
	return int16(r)
}

// RoundU16 is Round16 for unsigned words.
func RoundU16(v float64) uint16 {
	r := math.Round(v)
	if r > math.MaxUint16 {
		return math.MaxUint16
	}
	if r < 0 {
		return 0
	}
	return uint16(r)
}

// Link runs exchanges on one port. It is not safe for concurrent use (neither is a Rig).
type Link struct {
	Port  rig.Port
	Pkg   string // package prefix of error messages: "nanhua"
	Model string // instrument title for messages: "Nanhua NHA-506(I)"
	Baud  int    // for the hint in no-reply messages
	Log   *slog.Logger
	// PurgeWindow is how long Drain waits for stale bytes before a request. A real serial
	// port has bytes still in flight when the previous reply was cut short, so a short wait
	// catches them; 0 means DefaultPurgeWindow.
	PurgeWindow time.Duration
}

// DefaultPurgeWindow is Link.PurgeWindow's default.
const DefaultPurgeWindow = 15 * time.Millisecond

// maxDrain bounds Drain so an instrument that streams without pause cannot hold us forever.
const maxDrain = 4096

func (l *Link) hint() string {
	if l.Baud > 0 {
		return fmt.Sprintf("check the cable, that the instrument is on, --model and the link speed (%d 8N1)", l.Baud)
	}
	return "check the cable, that the instrument is on and --model"
}

// Drain discards input that is already waiting or arrives within the purge window, so the
// next reply is read from its first byte. It returns the discarded bytes (for logs).
func (l *Link) Drain() ([]byte, error) {
	w := l.PurgeWindow
	if w <= 0 {
		w = DefaultPurgeWindow
	}
	var junk []byte
	buf := make([]byte, 256)
	for len(junk) < maxDrain {
		if err := l.Port.SetReadDeadline(time.Now().Add(w)); err != nil {
			return junk, l.linkErr("set deadline", err)
		}
		n, err := l.Port.Read(buf)
		junk = append(junk, buf[:n]...)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return junk, nil
			}
			return junk, l.linkErr("purge input", err)
		}
		if n == 0 {
			return junk, nil
		}
	}
	return junk, nil
}

// Purge is Drain that logs what it threw away.
func (l *Link) Purge() error {
	junk, err := l.Drain()
	if len(junk) > 0 && l.Log != nil {
		l.Log.Debug("discarded stale input", "rig", l.Model, "bytes", len(junk))
	}
	return err
}

// Write sends a request.
func (l *Link) Write(ctx context.Context, p []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %s: %w", l.Pkg, l.Model, err)
	}
	if _, err := l.Port.Write(p); err != nil {
		return l.linkErr("write request", err)
	}
	return nil
}

// Send purges the input, then writes p.
func (l *Link) Send(ctx context.Context, p []byte) error {
	if err := l.Purge(); err != nil {
		return err
	}
	return l.Write(ctx, p)
}

// Read appends exactly n bytes to buf, waiting at most until deadline (and ctx). Errors: a
// wrapped rig.ErrNoReply when nothing came at all (and buf was empty), a *rig.ShortFrameError
// holding every byte so far when the reply stopped early, rig.ErrLinkLost when the port failed,
// ctx's error when ctx ended.
func (l *Link) Read(ctx context.Context, buf []byte, n int, deadline time.Time) ([]byte, error) {
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := l.Port.SetReadDeadline(deadline); err != nil {
		return buf, l.linkErr("set deadline", err)
	}
	// Cancelling ctx moves the deadline into the past, which unblocks the pending Read.
	stop := context.AfterFunc(ctx, func() { _ = l.Port.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	want := len(buf) + n
	chunk := make([]byte, n)
	for len(buf) < want {
		k, err := l.Port.Read(chunk[:want-len(buf)])
		buf = append(buf, chunk[:k]...)
		if len(buf) >= want {
			break
		}
		if err == nil && k == 0 {
			err = io.ErrNoProgress
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return buf, fmt.Errorf("%s: %s: %w", l.Pkg, l.Model, cerr)
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if len(buf) == 0 {
					return buf, fmt.Errorf("%s: %s sent nothing before the deadline; %s: %w", l.Pkg, l.Model, l.hint(), rig.ErrNoReply)
				}
				return buf, fmt.Errorf("%s: %w", l.Pkg, &rig.ShortFrameError{Model: l.Model, Frame: buf, Want: want, Err: err})
			}
			return buf, l.linkErr("read reply", err)
		}
	}
	return buf, nil
}

func (l *Link) linkErr(op string, err error) error {
	return fmt.Errorf("%s: %s: %s: %w (is the cable plugged in?): %w", l.Pkg, l.Model, op, rig.ErrLinkLost, err)
}

// Retryable reports whether err is a garbled reply that one more try may fix (bad checksum,
// wrong lead byte, a reply cut short), as opposed to a silent or lost link or a NAK.
func Retryable(err error) bool {
	var ce *rig.ChecksumError
	var fe *rig.FrameError
	var se *rig.ShortFrameError
	return errors.As(err, &ce) || errors.As(err, &fe) || errors.As(err, &se)
}

// Discard is a logger that drops everything (the nil-logger default).
var Discard = slog.New(slog.DiscardHandler)

// Logger returns l, or Discard when l is nil.
func Logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return Discard
	}
	return l
}

// Now returns now, or time.Now when now is nil.
func Now(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}

// Sleep waits d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Round rounds v to the given number of decimals so that scaled words read back as the literal
// the instrument meant (453 ÷ 10 → 45.3, not 45.300000000000004).
func Round(v float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
}

// Decimals is the number of decimals a scale factor carries (0.01 → 2, 1 → 0).
func Decimals(scale float64) int {
	if scale >= 1 || scale <= 0 {
		return 0
	}
	return int(math.Round(-math.Log10(scale)))
}

// Describe names an instrument for logs: "/dev/ttyUSB1@9600 Nanhua NHA-506(I)". A port whose
// own String already carries the speed is not given it twice.
func Describe(p any, baud int, title string) string {
	name := "port"
	if s, ok := p.(fmt.Stringer); ok {
		name = s.String()
	}
	if !strings.Contains(name, "@") && baud > 0 {
		name = fmt.Sprintf("%s@%d", name, baud)
	}
	return name + " " + title
}
