package elm327

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

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
	if req.Service == 0x01 && len(req.Data) > 1 {
		return a.queryPIDs(ctx, req)
	}
	return a.query(ctx, req)
}

func (a *Adapter) profile() obd.Profile {
	a.pmu.Lock()
	defer a.pmu.Unlock()
	return a.prof
}

// query sends one request and handles retries: STOPPED and DATA ERROR are retried once, LV
// RESET / ERRnn / low-power alerts re-initialise the adapter and retry once, a count suffix
// that fell short is dropped for that request. None of it applies to service 04.
func (a *Adapter) query(ctx context.Context, req obd.Request) ([]obd.Response, error) {
	cmd := req.String()
	clear := req.Service == 0x04
	retried := false
	bare := false // a Likely guess fell short: ask this once without a digit,
	exact := 0    // or with the count of frames the cut answer announced
	var exactECUs int
	_, _, sure, _ := a.expected(req) // ECUs sure to answer, digit or not
	for {
		line := cmd
		var hint, ecus int
		var guess bool
		switch {
		case exact > 0:
			hint, ecus = exact, exactECUs
		case !bare:
			hint, ecus, guess = a.hintFor(req)
		}
		if hint > 0 {
			line += fmt.Sprintf("%X", hint)
		}
		lines, err := a.exchange(ctx, line, a.opts.QueryTimeout)
		if err != nil {
			if isLinkError(err) {
				return nil, a.lost(ctx, cmd, err)
			}
			if hint > 0 && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
				a.dropHint(cmd, "timed out")
				continue
			}
			return nil, err
		}
		r, perr := parseReply(lines, a.f, line)
		if r.stale > 0 {
			a.logLimited("elm327: dropped the tail of an earlier answer", "request", line, "frames", r.stale)
		}
		if perr == nil {
			r.responses = a.dropRepeats(req, a.dropStale(req, r.responses))
			if len(r.responses) == 0 {
				perr = &FrameError{Command: line, Line: strings.Join(lines, "\r"), Reason: "only frames that answer another request"}
			}
		}
		if !clear && a.timing == 2 && tooQuick(r, perr, hint, sure) {
			// Under ATAT2 the adapter stopped waiting before an ECU that answers had spoken:
			// it was too slow for the aggressive timing, not silent.
			if err := a.relaxTiming(ctx, cmd); err != nil {
				if isLinkError(err) {
					return nil, a.lost(ctx, cmd, err)
				}
				return nil, err
			}
			a.waitQuiet(settleWait)
			continue
		}
		if hint > 0 && fellShort(r, perr, hint, ecus, guess) {
			n := 0
			if guess {
				n = a.repeatCount(req, r, perr)
			}
			switch {
			case n > 0:
				// The car answered otherwise than most do, but what came says how much to
				// ask for: the answers as they came (a cut one by the length its first
				// frame announced) and the usual answer of an ECU the count left out.
				exact, exactECUs = n, len(req.Expect)
				a.log.Debug("elm327: usual answer size did not fit; asking again for the size the answer showed", "cmd", cmd, "frames", exact)
			case guess || exact > 0:
				// The car answered otherwise than most do; the adapter is fine.
				a.log.Debug("elm327: usual answer size did not fit; asking again without a count digit", "cmd", cmd)
				exact, bare = 0, true
			default:
				a.dropHint(cmd, "answer fell short")
			}
			// Frames still on their way belong to this attempt, not to the repeat.
			a.waitQuiet(settleWait)
			continue
		}
		if perr != nil {
			var e *Error
			if !errors.As(perr, &e) || clear {
				return nil, perr
			}
			switch e.Code {
			case CodeStopped, CodeDataError:
				if !retried {
					retried = true
					a.log.Info("elm327: repeating a request once", "cmd", cmd, "reason", e.Code.String())
					continue
				}
			case CodeLowVoltageReset, CodeInternal, CodeLowPowerAlert:
				a.log.Warn("elm327: adapter lost its settings; re-initialising", "cmd", cmd, "reason", e.Raw)
				if err := a.initialise(ctx); err != nil {
					a.dropPort()
					return nil, fmt.Errorf("elm327: %s: re-initialisation after %q failed: %w", cmd, e.Code.String(), err)
				}
				if !retried {
					retried = true
					continue
				}
			}
			return nil, perr
		}
		a.learn(cmd, r)
		return r.responses, nil
	}
}

// fellShort reports whether an answer to a request sent with a count digit must be asked
// again without one. STOPPED and the codes that mean the adapter lost its settings have their
// own handling. A broken answer (a message cut short) always is. For a count that should be
// exact (a learned one, or a hint from what the car said) so is NO DATA, and fewer frames or
// ECUs than the digit promised: the adapter mishandles the digit or the car changed. For a
// Likely guess those only mean the adapter waited out its timeout and every ECU with
// something to say said it, as without a digit; only an ECU missing after the adapter
// stopped at the count can be one cut off.
func fellShort(r reply, perr error, hint, ecus int, guess bool) bool {
	if perr != nil {
		if isAdapterCode(perr, CodeStopped) || lostSettings(perr) {
			return false
		}
		return !guess || !isAdapterCode(perr, CodeNoData)
	}
	if guess {
		return r.frames >= hint && len(r.responses) < ecus
	}
	return len(r.responses) < ecus || r.frames < hint
}

// repeatCount is the count digit for asking a Likely request again after the adapter stopped
// at its count too early (CAN only): the frames of the answers that came, whole or by the
// length a cut one announced, plus the guessed frames of each ECU of the guess that the
// count left out. 0 when that cannot be worked out or does not fit one digit.
func (a *Adapter) repeatCount(req obd.Request, r reply, perr error) int {
	if !a.f.can() {
		return 0
	}
	var n int
	var from []string
	switch {
	case perr == nil:
		for _, x := range r.responses {
			n += expectedFrames([]obd.Expect{{Len: len(x.Data)}}, a.f)
			from = append(from, x.ECU)
		}
	case r.need > 0:
		n, from = r.need, r.from
	default:
		return 0
	}
	if len(from) < len(req.Expect) {
		for _, x := range req.Expect {
			if x.ECU == "" {
				return 0 // who is missing is not known
			}
			if !slices.Contains(from, x.ECU) {
				n += expectedFrames([]obd.Expect{x}, a.f)
			}
		}
	}
	if n < 1 || n > 0xF {
		return 0
	}
	return n
}

// tooQuick reports whether an answer under aggressive adaptive timing has fewer ECUs than are
// sure to answer (see expected) although the adapter waited out its timeout rather than
// stopping at a count digit (hint, 0 for none), or found nobody.
func tooQuick(r reply, perr error, hint, sure int) bool {
	answered := len(r.responses)
	switch {
	case perr != nil && isAdapterCode(perr, CodeNoData):
		answered = 0
	case perr != nil || hint > 0 && r.frames >= hint:
		return false
	}
	return answered < sure
}

// settleWait is how long the line must stay silent after an answer that fell short of its
// count digit before the request is repeated without one (a second ECU answering late).
const settleWait = 30 * time.Millisecond

func lostSettings(err error) bool {
	return isAdapterCode(err, CodeLowVoltageReset) || isAdapterCode(err, CodeInternal) || isAdapterCode(err, CodeLowPowerAlert)
}

func isAdapterCode(err error, c Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == c
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

// lost handles a broken link during cmd: close the port, reopen and re-initialise, and fail
// this request either way (it may or may not have reached the car).
func (a *Adapter) lost(ctx context.Context, cmd string, cause error) error {
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
