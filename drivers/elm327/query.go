package elm327

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/obdgw/obdgw/obd"
)

// maxMultiPID is the most PIDs one Mode 01 request may carry (J1979; 7 data bytes per
// request including the service byte).
const maxMultiPID = 6

// Query sends req and returns each ECU's answer in the order the ECUs first answered. NO DATA
// is an *Error wrapping obd.ErrNoData. A Mode 01 request with several PIDs is sent as one
// request when the adapter proved multi-PID works, else split; either way the result is one
// Response per ECU with PID/data pairs in request order. Service 04 is sent exactly once.
func (a *Adapter) Query(ctx context.Context, req obd.Request) ([]obd.Response, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed.Load() {
		return nil, errors.New("elm327: adapter closed")
	}
	if len(req.Bytes()) > 7 && !(req.Service == 0x01 && len(req.Data) > 1) {
		return nil, fmt.Errorf("elm327: request %s too long: an OBD request carries at most 7 bytes", req)
	}
	if a.port == nil {
		if err := a.reconnect(ctx); err != nil {
			if !errors.Is(err, ErrDisconnected) {
				err = fmt.Errorf("%w: %w", ErrDisconnected, err)
			}
			return nil, err
		}
	}
	a.strays = nil
	if req.Service == 0x01 && len(req.Data) > 1 {
		return a.queryPIDs(ctx, req)
	}
	return a.query(ctx, req)
}

// Strays returns the frames the last Query dropped because they answer another request (a
// positive answer of another service, a late frame of an earlier request), for the caller
// to note (obd.StrayReporter).
func (a *Adapter) Strays() []obd.Response {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]obd.Response(nil), a.strays...)
}

func (a *Adapter) profile() obd.Profile {
	a.pmu.Lock()
	defer a.pmu.Unlock()
	return a.prof
}

// query sends one request and sends it again as the retry sequence says (retryRules): with
// another count digit, after going back to ATAT1, after STOPPED or DATA ERROR, after the
// adapter lost its settings and was re-initialised; each reason once. Service 04 goes out
// exactly once, whatever it draws.
func (a *Adapter) query(ctx context.Context, req obd.Request) ([]obd.Response, error) {
	cmd := req.String()
	seq := newRetries(req)
	_, _, sure, _ := a.expected(req) // ECUs sure to answer, digit or not
	at := attempt{digit: usualDigit}
	for {
		x, line := a.prepare(req, at, sure)
		lines, err := a.exchange(ctx, line, a.opts.QueryTimeout)
		switch {
		case err == nil:
			a.silent = 0
			x.r, x.perr = a.readAnswer(req, line, lines)
		case isLinkError(err):
			return nil, a.lost(ctx, cmd, err)
		case isTimeout(err) && ctx.Err() == nil:
			x.timedOut = true
			if a.silence(err) {
				return nil, a.lost(ctx, cmd, fmt.Errorf("the adapter answered none of the last %d requests, not a byte: it stalled", maxSilent))
			}
		default:
			return nil, err
		}
		var e *Error
		if lostSettings(x.perr) && errors.As(x.perr, &e) && !seq.clear {
			a.log.Warn("elm327: adapter lost its settings; re-initialising", "cmd", cmd, "reason", e.Raw)
			if err := a.initialise(ctx); err != nil {
				a.dropPort()
				return nil, fmt.Errorf("elm327: %s: re-initialisation after %q failed: %w", cmd, e.Code.String(), err)
			}
		}
		rule := seq.next(a, x)
		if rule == nil {
			var fe *FrameError
			switch {
			case x.timedOut:
				return nil, err
			case errors.As(x.perr, &fe) && fe.Reason == reasonOnlyStray:
				// Frames of another request only (Strays has them): for this request, no
				// ECU answered.
				return nil, newError(CodeNoData, cmd, fe.Line)
			case x.perr != nil:
				return nil, x.perr
			}
			a.learn(cmd, x.r)
			return x.r.responses, nil
		}
		at = rule.next(a, x)
		a.log.Debug("elm327: sending a request again", "cmd", cmd, "why", rule.why, "sent", line)
		if rule.relax {
			if err := a.relaxTiming(ctx, cmd); err != nil {
				if isLinkError(err) {
					return nil, a.lost(ctx, cmd, err)
				}
				return nil, err
			}
		}
		if rule.dropDigit {
			a.dropHint(cmd, rule.why)
		}
		if rule.settle {
			// Frames still on their way belong to this attempt, not to the next.
			a.waitQuiet(settleWait)
		}
	}
}

// prepare works out the count digit of attempt at of req and the line it sends.
func (a *Adapter) prepare(req obd.Request, at attempt, sure int) (*tried, string) {
	x := &tried{req: req, at: at, sure: sure}
	switch at.digit {
	case usualDigit:
		x.hint, x.ecus, x.guess = a.hintFor(req)
	case shownDigit:
		x.hint, x.ecus = at.shown, len(req.Expect)
	}
	line := req.String()
	if x.hint > 0 {
		line += fmt.Sprintf("%X", x.hint)
	}
	return x, line
}

// readAnswer parses an answer to line, without late frames of an earlier request and
// repeats.
func (a *Adapter) readAnswer(req obd.Request, line string, lines []string) (reply, error) {
	r, perr := parseReply(lines, a.f, line)
	if r.stale > 0 {
		a.logLimited("elm327: dropped the tail of an earlier answer", "request", line, "frames", r.stale)
	}
	a.strays = append(a.strays, r.strays...)
	if perr == nil {
		r.responses = a.dropRepeats(req, a.dropStale(req, r.responses))
		if len(r.responses) == 0 {
			perr = &FrameError{Command: line, Line: strings.Join(lines, "\r"), Reason: reasonOnlyStray}
		}
	}
	return r, perr
}

// hintFor returns the count digit to append to req (0 for none), how many ECUs it counts on
// and whether it is a guess (see expected), when the adapter proved the digit works and it
// was not dropped for this request.
func (a *Adapter) hintFor(req obd.Request) (frames, ecus int, guess bool) {
	if !a.profile().CountHint || a.noHint[req.String()] || len(req.Bytes()) >= 7 {
		return 0, 0, false
	}
	frames, ecus, _, guess = a.expected(req)
	return frames, ecus, guess
}

// expected is what is known of the answer to req: its frames (CAN) or messages (legacy), 0
// when unknown; how many ECUs answer; how many of those are sure to, which tells a slow ECU
// from a silent one (every ECU of a count learned from this request's last answer or of the
// requester's hint, which is turned into frames for the protocol in use; for a guess,
// req.Likely, those marked obd.Expect.Answers); and whether it is a guess. A learned count
// wins. Nothing is expected of service 04.
func (a *Adapter) expected(req obd.Request) (frames, ecus, sure int, guess bool) {
	if req.Service == 0x04 {
		return 0, 0, 0, false
	}
	if l, ok := a.learned[req.String()]; ok {
		return l.frames, l.ecus, l.ecus, false
	}
	n := expectedFrames(req.Expect, a.f)
	if n < 1 || n > 0xF {
		n = 0
	}
	sure = len(req.Expect)
	if req.Likely {
		sure = 0
		for _, x := range req.Expect {
			if x.Answers {
				sure++
			}
		}
	}
	if n == 0 {
		return 0, 0, sure, false
	}
	return n, len(req.Expect), sure, req.Likely
}

// expectedFrames is how many responses an ELM327 counts for the answers x describes: CAN
// frames (ISO 15765-2: a single frame carries up to 7 bytes after its PCI byte; else a first
// frame with 6 and consecutive frames with 7 each) or legacy messages. 0 when the protocol
// is not known or any entry lacks the figure this protocol needs.
func expectedFrames(x []obd.Expect, f format) int {
	if len(x) == 0 {
		return 0
	}
	n := 0
	for _, e := range x {
		switch {
		case f.can():
			if e.Len <= 0 || e.Len > 0xFFF {
				return 0
			}
			if e.Len <= 7 {
				n++
			} else {
				n += 1 + (e.Len-6+6)/7
			}
		case f.legacy():
			if e.Messages <= 0 {
				return 0
			}
			n += e.Messages
		default:
			return 0
		}
	}
	return n
}

// learn records how many frames and ECUs answered cmd, for the count digit next time. Counts
// outside 1–F are never used (0 draws "?" on clones; two digits would be read as data).
func (a *Adapter) learn(cmd string, r reply) {
	if strings.HasPrefix(cmd, "04") && len(cmd) == 2 {
		return
	}
	frames := r.frames
	if a.f.can() {
		// Count the frames of the answers kept: late frames of an earlier attempt or request
		// standing in front of this answer were no part of it.
		frames = 0
		for _, x := range r.responses {
			frames += expectedFrames([]obd.Expect{{Len: len(x.Data)}}, a.f)
		}
	}
	if frames < 1 || frames > 0xF {
		delete(a.learned, cmd)
		return
	}
	a.learned[cmd] = learnedCount{frames: frames, ecus: len(r.responses)}
}

func (a *Adapter) dropHint(cmd, why string) {
	a.noHint[cmd] = true
	a.log.Info("elm327: response-count suffix dropped for a request", "cmd", cmd, "reason", why)
}

// dropStale removes responses that do not answer req: late frames of an earlier request that
// slipped in before this answer (python-OBD #254).
func (a *Adapter) dropStale(req obd.Request, rs []obd.Response) []obd.Response {
	out := rs[:0:0]
	for _, r := range rs {
		if answers(req, r) {
			out = append(out, r)
			continue
		}
		a.strays = append(a.strays, r)
		a.logLimited("elm327: dropped a response to another request", "request", req.String(), "ecu", r.ECU, "data", fmt.Sprintf("% X", r.Data))
	}
	return out
}

// dropRepeats removes an answer identical to an earlier one from the same ECU: a clone that
// sends a frame twice (python-OBD #100), or, after a count digit fell short, the first
// attempt's late answer standing in front of the repeat's.
func (a *Adapter) dropRepeats(req obd.Request, rs []obd.Response) []obd.Response {
	out := rs[:0:0]
	for _, r := range rs {
		if slices.ContainsFunc(out, func(o obd.Response) bool { return o.ECU == r.ECU && bytes.Equal(o.Data, r.Data) }) {
			a.logLimited("elm327: dropped a repeated answer", "request", req.String(), "ecu", r.ECU)
			continue
		}
		out = append(out, r)
	}
	return out
}

func answers(req obd.Request, r obd.Response) bool {
	d := r.Data
	if len(d) == 0 {
		return false
	}
	if d[0] == 0x7F {
		return len(d) >= 2 && d[1] == req.Service
	}
	if d[0] != req.Service|0x40 {
		return false
	}
	switch req.Service {
	case 0x01:
		// In a multi-PID answer an ECU lists only the PIDs it supports, so its first PID may
		// be any of the requested ones.
		return len(req.Data) == 0 || len(d) >= 2 && bytes.IndexByte(req.Data, d[1]) >= 0
	case 0x02, 0x09, 0x06:
		return len(req.Data) == 0 || len(d) >= 2 && d[1] == req.Data[0]
	}
	return true
}

// queryPIDs answers a Mode 01 request for several PIDs: in batches of up to six when
// multi-PID works, stepping down to single PIDs on NO DATA, a timeout or a negative answer.
func (a *Adapter) queryPIDs(ctx context.Context, req obd.Request) ([]obd.Response, error) {
	var order []string
	parts := map[string][]byte{}
	neg := map[string][]byte{}
	add := func(rs []obd.Response) {
		for _, r := range rs {
			if _, ok := parts[r.ECU]; !ok {
				if _, ok := neg[r.ECU]; !ok {
					order = append(order, r.ECU)
				}
			}
			if _, bad := r.Negative(); bad {
				if neg[r.ECU] == nil {
					neg[r.ECU] = r.Data
				}
				continue
			}
			parts[r.ECU] = append(parts[r.ECU], r.Data[1:]...)
		}
	}
	singles := func(pids []byte) error {
		for _, pid := range pids {
			rs, err := a.query(ctx, obd.Req(0x01, pid))
			if errors.Is(err, obd.ErrNoData) {
				continue
			}
			if err != nil {
				return err
			}
			add(rs)
		}
		return nil
	}
	for start := 0; start < len(req.Data); start += maxMultiPID {
		chunk := req.Data[start:min(start+maxMultiPID, len(req.Data))]
		if !a.profile().MultiPID || !a.f.can() || len(chunk) == 1 {
			if err := singles(chunk); err != nil {
				return nil, err
			}
			continue
		}
		batch := obd.Request{Service: 0x01, Data: chunk}
		if len(chunk) == len(req.Data) {
			batch.Expect = req.Expect // the hint describes the whole request
		}
		rs, err := a.query(ctx, batch)
		negative := false
		for _, r := range rs {
			if _, bad := r.Negative(); bad {
				negative = true
			}
		}
		switch {
		case err == nil && !negative:
			add(rs)
			continue
		case err == nil, errors.Is(err, obd.ErrNoData):
			// Either none of these PIDs is supported or this ECU does not take batches:
			// only single requests tell.
		case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil && !isLinkError(err):
			a.log.Warn("elm327: multi-PID request timed out; using single PIDs from now on", "cmd", obd.Request{Service: 1, Data: chunk}.String())
			a.pmu.Lock()
			a.prof.MultiPID = false
			a.pmu.Unlock()
		default:
			return nil, err
		}
		if err := singles(chunk); err != nil {
			return nil, err
		}
	}
	var out []obd.Response
	for _, ecu := range order {
		if p, ok := parts[ecu]; ok {
			out = append(out, obd.Response{ECU: ecu, Data: append([]byte{0x41}, p...)})
		} else {
			out = append(out, obd.Response{ECU: ecu, Data: neg[ecu]})
		}
	}
	if len(out) == 0 {
		return nil, newError(CodeNoData, req.String(), "NO DATA")
	}
	return out, nil
}

// maxSilent is how many requests in a row may draw nothing at all before the link is
// declared lost: a car that does not answer still gets NO DATA from the adapter, so silence
// means the adapter (or the link to it) is gone, and each silent request costs QueryTimeout.
const maxSilent = 2

// silence counts a timed-out request and reports whether it was the maxSilent-th in a row
// that drew nothing at all.
func (a *Adapter) silence(err error) bool {
	var te *TimeoutError
	if !errors.As(err, &te) || te.Raw != "" {
		a.silent = 0
		return false
	}
	a.silent++
	return a.silent >= maxSilent
}

// lost handles a broken link during cmd: close the port, reopen and re-initialise, and fail
// this request either way (it may or may not have reached the car).
func (a *Adapter) lost(ctx context.Context, cmd string, cause error) error {
	a.silent = 0
	a.log.Warn("elm327: link to the adapter broke; reconnecting", "device", a.profile().Device, "cmd", cmd, "err", cause)
	a.dropPort()
	if err := a.reconnect(ctx); err != nil {
		return fmt.Errorf("elm327: %s: %w (%v); reconnecting failed, the next request tries again: %v", cmd, ErrDisconnected, cause, err)
	}
	return fmt.Errorf("elm327: %s: %w (%v); reconnected, repeat the request", cmd, ErrDisconnected, cause)
}

func (a *Adapter) dropPort() {
	if a.port != nil {
		a.port.Close()
	}
	a.setPort(nil)
}

// reconnect reopens the link and re-initialises. Callers hold a.mu.
func (a *Adapter) reconnect(ctx context.Context) error {
	if a.opts.Reopen == nil {
		return fmt.Errorf("elm327: %w and no way to reopen it (Options.Reopen is nil)", ErrDisconnected)
	}
	if a.closed.Load() {
		return errors.New("elm327: adapter closed")
	}
	p, err := a.opts.Reopen(ctx)
	if err != nil {
		return fmt.Errorf("elm327: reopen: %w", err)
	}
	a.setPort(p)
	if a.closed.Load() { // Close raced with the reopen
		a.dropPort()
		return errors.New("elm327: adapter closed")
	}
	if err := a.initialise(ctx); err != nil {
		a.dropPort()
		return err
	}
	a.log.Info("elm327: reconnected", "device", p.String())
	return nil
}
