package elm327

import (
	"errors"
	"os"
	"slices"
	"time"

	"github.com/obdgw/obdgw/obd"
)

// The retry sequence of one request. A request goes out as an attempt; what the attempt drew
// may be a reason to send it again, with a change (another count digit, the patient timing,
// a re-initialised adapter). The reasons are a list (retryRules), tried in order; each may
// be used once per request, so a request goes out at most 1+len(retryRules) times. Service
// 04 (clear DTCs) has no retry at all: it is sent exactly once.

// countDigit is how an attempt chooses its count digit.
type countDigit int

const (
	// usualDigit: the count learned from this request's last answer, else the requester's
	// hint (hintFor); none when the digit was dropped for this request or does not work.
	usualDigit countDigit = iota
	// shownDigit: the count the previous answer showed (attempt.shown).
	shownDigit
	// noDigit: none; the adapter waits out its timeout.
	noDigit
)

// attempt is one sending of a request.
type attempt struct {
	digit countDigit
	shown int // the frames, for shownDigit
}

// tried is an attempt and what it drew, as the retry rules read it.
type tried struct {
	req   obd.Request
	at    attempt
	hint  int  // the count digit sent, 0 for none
	ecus  int  // the ECUs that count stands for
	guess bool // the count is a Likely guess
	sure  int  // the ECUs sure to answer (see expected)
	// timedOut: no prompt before the deadline (a broken link or a cancelled request end
	// the request before the rules are asked).
	timedOut bool
	r        reply // the parsed answer (with dropped stale and repeated frames) ...
	perr     error // ... or why it is not one
}

// retryRule is one reason for sending a request again.
type retryRule struct {
	why string
	// once names the budget the rule spends when it is not its own (why): rules with the
	// same one share it.
	once string
	// applies says whether the attempt drew this reason (the adapter's timing and format
	// are read, nothing is sent).
	applies func(a *Adapter, x *tried) bool
	// next is the next attempt.
	next func(a *Adapter, x *tried) attempt
	// relax: back to ATAT1 for the connection first. dropDigit: no count digit for this
	// request from now on (the adapter or the car do not keep to it). settle: let frames
	// still on their way arrive first, so they are drained, not read as the next answer.
	relax, dropDigit, settle bool
}

// retryRules is the retry sequence, in the order the reasons are looked for.
var retryRules = []retryRule{
	{
		// With a count digit the adapter may wait for frames that never come.
		why:       "no prompt with a count digit",
		applies:   func(_ *Adapter, x *tried) bool { return x.timedOut && x.hint > 0 },
		next:      withoutDigit,
		dropDigit: true,
	},
	{
		// Under ATAT2 the adapter stopped waiting before an ECU that answers had spoken: it
		// was too slow for the aggressive timing, not silent.
		why: "an ECU too slow for ATAT2",
		applies: func(a *Adapter, x *tried) bool {
			return !x.timedOut && a.timing == 2 && tooQuick(x.r, x.perr, x.hint, x.sure)
		},
		next:  sameAttempt,
		relax: true, settle: true,
	},
	{
		// The car answered otherwise than most do, but what came says how much to ask for:
		// the answers as they came (a cut one by the length its first frame announced) and
		// the usual answer of an ECU the count left out.
		why:     "a guessed count cut the answer",
		applies: func(a *Adapter, x *tried) bool { return x.cutGuess() && a.repeatCount(x.req, x.r, x.perr) > 0 },
		next: func(a *Adapter, x *tried) attempt {
			return attempt{digit: shownDigit, shown: a.repeatCount(x.req, x.r, x.perr)}
		},
		settle: true,
	},
	{
		// The car answered otherwise than most do (or than its answer showed); the adapter
		// is fine, the digit stays for other requests.
		why:     "the count did not fit",
		applies: func(_ *Adapter, x *tried) bool { return x.cutGuess() || x.short() && x.at.digit == shownDigit },
		next:    withoutDigit,
		settle:  true,
	},
	{
		// A count that should be exact fell short: the adapter mishandles the digit or the
		// car changed.
		why:       "a learned or hinted count fell short",
		applies:   func(_ *Adapter, x *tried) bool { return x.short() && x.at.digit == usualDigit && !x.guess },
		next:      withoutDigit,
		dropDigit: true, settle: true,
	},
	{
		why: "STOPPED or DATA ERROR", once: "adapter error",
		applies: func(_ *Adapter, x *tried) bool {
			return isAdapterCode(x.perr, CodeStopped) || isAdapterCode(x.perr, CodeDataError)
		},
		next: sameAttempt,
	},
	{
		// The adapter lost its settings and was re-initialised (query does that whether or
		// not the budget allows another attempt).
		why: "the adapter was re-initialised", once: "adapter error",
		applies: func(_ *Adapter, x *tried) bool { return lostSettings(x.perr) },
		next:    sameAttempt,
	},
}

func sameAttempt(_ *Adapter, x *tried) attempt { return x.at }
func withoutDigit(*Adapter, *tried) attempt    { return attempt{digit: noDigit} }

// short reports whether an answer to an attempt with a count digit fell short of it (see
// fellShort).
func (x *tried) short() bool {
	return !x.timedOut && x.hint > 0 && fellShort(x.r, x.perr, x.hint, x.ecus, x.guess)
}

// cutGuess reports whether a Likely guess fell short: the adapter stopped at the count before
// an ECU had answered, or cut an answer.
func (x *tried) cutGuess() bool { return x.guess && x.at.digit == usualDigit && x.short() }

// retries is what one request has left of the retry sequence.
type retries struct {
	clear bool            // service 04: never again
	spent map[string]bool // the budgets used
}

func newRetries(req obd.Request) *retries {
	return &retries{clear: req.Service == 0x04, spent: map[string]bool{}}
}

// next returns the rule that sends the request again after x, and spends its budget; nil
// when the request ends with x. Service 04 always ends.
func (s *retries) next(a *Adapter, x *tried) *retryRule {
	if s.clear {
		return nil
	}
	for i := range retryRules {
		r := &retryRules[i]
		budget := r.once
		if budget == "" {
			budget = r.why
		}
		if !s.spent[budget] && r.applies(a, x) {
			s.spent[budget] = true
			return r
		}
	}
	return nil
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

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
