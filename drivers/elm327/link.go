package elm327

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/obdgw/obdgw/drivers/lograte"
)

// The I/O half: one command out, one prompt-terminated reply in.

// exchange drains stale bytes, sends cmd with a CR (never LF, never a bare CR) and reads
// until the prompt. Progress lines extend the deadline. The returned lines are cleaned
// (cleanLines). Errors are *TimeoutError, the context's error, or an I/O error (ioError).
func (a *Adapter) exchange(ctx context.Context, cmd string, timeout time.Duration) ([]string, error) {
	if cmd == "" {
		// A bare CR repeats the previous command; after a Mode 04 that clears codes again.
		return nil, errors.New("elm327: refusing to send an empty command")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a.drain(cmd)
	if _, err := a.port.Write([]byte(cmd + "\r")); err != nil {
		return nil, &ioError{op: "write " + cmd, err: err}
	}
	raw, err := a.readPrompt(ctx, cmd, timeout)
	if err != nil {
		return nil, err
	}
	a.log.Debug("elm327 exchange", "cmd", cmd, "reply", string(raw))
	return cleanLines(raw, cmd), nil
}

// exchangeFirm is exchange under a firm deadline: progress lines do not extend it. A reply
// that has not ended by then is a *TimeoutError, as in exchange; what came of it is drained
// before the next command.
func (a *Adapter) exchangeFirm(ctx context.Context, cmd string, timeout time.Duration) ([]string, error) {
	fctx, cancel := context.WithTimeoutCause(ctx, timeout, errFirmDeadline)
	defer cancel()
	lines, err := a.exchange(fctx, cmd, timeout)
	if err != nil && ctx.Err() == nil && context.Cause(fctx) == errFirmDeadline {
		return nil, &TimeoutError{Command: cmd, Raw: string(a.leftover)}
	}
	return lines, err
}

var errFirmDeadline = errors.New("elm327: firm deadline")

// ioError marks a failure of the link itself (not of the adapter or the bus): the port must
// be reopened.
type ioError struct {
	op  string
	err error
}

func (e *ioError) Error() string { return "elm327: " + e.op + ": " + e.err.Error() }
func (e *ioError) Unwrap() error { return e.err }

// readPrompt reads until '>' appears anywhere in the stream. Bytes after the prompt are kept
// for the next drain. NUL bytes are dropped. Progress lines extend the deadline, never past
// timeout plus one SearchTimeout however many come; more than MaxReply bytes without a prompt
// are an *OverflowError, as a failure of the link.
func (a *Adapter) readPrompt(ctx context.Context, cmd string, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	limit := deadline.Add(a.opts.SearchTimeout)
	port := a.port // the callback must not see a port swapped by a later reconnect
	stop := context.AfterFunc(ctx, func() { port.SetReadDeadline(time.Now().Add(-time.Second)) })
	defer stop()
	defer port.SetReadDeadline(time.Time{})
	acc := a.leftover
	a.leftover = nil
	progress := countProgress(acc)
	buf := make([]byte, 256)
	for {
		if i := bytes.IndexByte(acc, '>'); i >= 0 {
			if rest := acc[i+1:]; len(bytes.Trim(rest, "\x00\r\n ")) > 0 {
				a.leftover = append([]byte(nil), rest...)
			}
			return acc[:i], nil
		}
		if p := countProgress(acc); p > progress {
			// SEARCHING... or BUS INIT: the adapter is working through protocols; a K-line
			// slow init alone takes 2–3 s.
			progress = p
			if a.opts.Progress != nil {
				a.opts.Progress(lastProgressLine(acc))
			}
			if ext := time.Now().Add(a.opts.SearchTimeout); ext.After(deadline) {
				deadline = ext
			}
			if deadline.After(limit) {
				deadline = limit
			}
		}
		a.port.SetReadDeadline(deadline)
		if err := ctx.Err(); err != nil {
			a.leftover = acc
			return nil, err
		}
		n, err := a.port.Read(buf)
		for _, c := range buf[:n] {
			if c != 0 {
				acc = append(acc, c)
			}
		}
		if len(acc) > MaxReply && bytes.IndexByte(acc, '>') < 0 {
			return nil, &ioError{op: "read " + cmd, err: &OverflowError{Command: cmd, Raw: string(acc[:80])}}
		}
		if err != nil && n == 0 {
			if ctx.Err() != nil {
				a.leftover = acc
				return nil, ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, &TimeoutError{Command: cmd, Raw: string(acc)}
			}
			return nil, &ioError{op: "read " + cmd, err: err}
		}
	}
}

func lastProgressLine(b []byte) string {
	lines := cleanLines(b, "")
	for i := len(lines) - 1; i >= 0; i-- {
		n := normalise(lines[i])
		if strings.HasPrefix(n, "SEARCHING") || strings.HasPrefix(n, "BUSINIT") {
			return lines[i]
		}
	}
	return "SEARCHING..."
}

func countProgress(b []byte) int {
	s := strings.ToUpper(string(b))
	return strings.Count(s, "SEARCHING") + strings.Count(strings.ReplaceAll(s, " ", ""), "BUSINIT")
}

// drainPoll is the read deadline that takes only bytes already buffered. It must be in the
// future: a Port fails a read whose deadline has passed without looking at its buffer. The
// serial ports poll with it as a select timeout and sockets try the read before waiting,
// so a buffered byte comes back at once and an empty buffer costs about this long.
const drainPoll = 200 * time.Microsecond

// drain reads whatever arrived since the last prompt (late frames of a second ECU, Bluetooth
// chatter, a reply to a command that timed out) so it cannot be taken for the next answer.
// It does not wait for more unless Options.DrainWait says so.
func (a *Adapter) drain(next string) {
	stale := a.leftover
	a.leftover = nil
	buf := make([]byte, 256)
	wait := max(a.opts.DrainWait, drainPoll)
	for i := 0; i < 64; i++ { // bounded: a babbling adapter must not stall us forever
		a.port.SetReadDeadline(time.Now().Add(wait))
		n, err := a.port.Read(buf)
		stale = append(stale, buf[:n]...)
		if err != nil || n == 0 {
			break
		}
	}
	a.port.SetReadDeadline(time.Time{})
	if txt := strings.TrimSpace(strings.Trim(string(stale), "\x00\r\n >")); txt != "" {
		a.logLimited("elm327: discarded stale bytes before a command", "before", next, "bytes", fmt.Sprintf("%q", stale))
	}
}

// logLimited logs at most one warning per staleLogEvery so a flapping adapter cannot fill the
// SD card; the number of suppressed messages is reported with the next one.
func (a *Adapter) logLimited(msg string, args ...any) {
	a.limit.Warn(a.log, a.opts.Now(), msg, args...)
}

const staleLogEvery = lograte.DefaultEvery
