package elm327

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/obdgw/obdgw/obd"
)

// retryAdapter is an adapter on an 11-bit CAN car whose count digit works, with adaptive
// timing timing, for the retry rules (which send nothing).
func retryAdapter(timing int) *Adapter {
	a := &Adapter{f: can11, timing: timing, learned: map[string]learnedCount{}, noHint: map[string]bool{}}
	a.opts.defaults()
	a.log = a.opts.Logger
	a.prof.CountHint = true
	return a
}

// TestRetryRules: which reason, if any, an attempt's answer (literal adapter lines) gives for
// sending the request again, and what the next attempt changes.
func TestRetryRules(t *testing.T) {
	two := func(req obd.Request, size int, named, likely bool) obd.Request {
		for _, id := range []string{"7E8", "7E9"} {
			x := obd.Expect{Len: size}
			if named {
				x.ECU = id
			}
			req.Expect = append(req.Expect, x)
		}
		req.Likely = likely
		return req
	}
	const (
		// Three pending codes of the engine in two frames: a count of two is reached before
		// the transmission answers.
		engine03 = "7E81008430303000171\r7E82103000000000000\r\r"
		both0D   = "7E803410D00\r7E903410D00\r\r"
		engine0D = "7E803410D00\r\r"
	)
	for _, tc := range []struct {
		name    string
		timing  int
		learned map[string]learnedCount
		req     obd.Request
		at      attempt
		raw     string // the answer; "" with timeout
		timeout bool   // no prompt before the deadline
		sent    string // the line the attempt sent
		why     string // the rule that applies; "" for none: the request ends
		next    attempt
	}{
		{name: "answer as counted", timing: 2, req: two(obd.Req(1, 0x0D), 3, false, false), raw: both0D,
			sent: "010D2"},
		{name: "count digit timed out", timing: 1, req: two(obd.Req(1, 0x0D), 3, false, false), timeout: true,
			sent: "010D2", why: "no prompt with a count digit", next: attempt{digit: noDigit}},
		{name: "timed out without a digit", timing: 1, req: obd.Req(1, 0x0D), timeout: true,
			sent: "010D"},
		{name: "a shown count timed out", timing: 1, req: two(obd.Req(3), 2, true, true), at: attempt{digit: shownDigit, shown: 3}, timeout: true,
			sent: "033", why: "no prompt with a count digit", next: attempt{digit: noDigit}},
		{name: "ATAT2 missed a hinted ECU, no digit", timing: 2, req: two(obd.Req(1, 0x0D), 3, true, false), at: attempt{digit: noDigit}, raw: engine0D,
			sent: "010D", why: "an ECU too slow for ATAT2", next: attempt{digit: noDigit}},
		{name: "ATAT2 timed out short of the count", timing: 2, req: two(obd.Req(1, 0x0D), 3, true, false), raw: engine0D,
			sent: "010D2", why: "an ECU too slow for ATAT2", next: attempt{digit: usualDigit}},
		{name: "ATAT2, NO DATA from ECUs sure to answer", timing: 2, req: two(obd.Req(1, 0x0D), 3, true, false), at: attempt{digit: noDigit}, raw: "NO DATA\r\r",
			sent: "010D", why: "an ECU too slow for ATAT2", next: attempt{digit: noDigit}},
		{name: "ATAT1 answer with one ECU missing, no digit", timing: 1, req: two(obd.Req(1, 0x0D), 3, true, false), at: attempt{digit: noDigit}, raw: engine0D,
			sent: "010D"},
		{name: "guess cut, ECUs named", timing: 1, req: two(obd.Req(3), 2, true, true), raw: engine03,
			sent: "032", why: "a guessed count cut the answer", next: attempt{digit: shownDigit, shown: 3}},
		{name: "guess cut, ECUs not named", timing: 1, req: two(obd.Req(3), 2, false, true), raw: engine03,
			sent: "032", why: "the count did not fit", next: attempt{digit: noDigit}},
		{name: "shown count still short", timing: 1, req: two(obd.Req(3), 2, true, true), at: attempt{digit: shownDigit, shown: 3}, raw: engine03,
			sent: "033", why: "the count did not fit", next: attempt{digit: noDigit}},
		{name: "guess: NO DATA is an answer", timing: 1, req: two(obd.Req(0x0A), 2, false, true), raw: "NO DATA\r\r",
			sent: "0A2"},
		{name: "guess: fewer answers after the timeout", timing: 2, req: two(obd.Req(2, 0, 0), 7, false, true), raw: "7E806420000 40000000\r\r",
			sent: "0200002"},
		{name: "learned count fell short", timing: 1, learned: map[string]learnedCount{"010C": {frames: 2, ecus: 2}}, req: obd.Req(1, 0x0C), raw: "7E804410C0CE4\r\r",
			sent: "010C2", why: "a learned or hinted count fell short", next: attempt{digit: noDigit}},
		{name: "learned count, NO DATA", timing: 1, learned: map[string]learnedCount{"010C": {frames: 1, ecus: 1}}, req: obd.Req(1, 0x0C), raw: "NO DATA\r\r",
			sent: "010C1", why: "a learned or hinted count fell short", next: attempt{digit: noDigit}},
		{name: "STOPPED", timing: 1, req: obd.Req(1, 0x0C), raw: "STOPPED\r\r",
			sent: "010C", why: "STOPPED or DATA ERROR", next: attempt{digit: usualDigit}},
		{name: "STOPPED keeps a shown count", timing: 1, req: two(obd.Req(3), 2, true, true), at: attempt{digit: shownDigit, shown: 3}, raw: "STOPPED\r\r",
			sent: "033", why: "STOPPED or DATA ERROR", next: attempt{digit: shownDigit, shown: 3}},
		{name: "DATA ERROR", timing: 1, req: obd.Req(1, 0x0C), raw: "7E804410C0CE4\r<DATA ERROR\r\r",
			sent: "010C", why: "STOPPED or DATA ERROR", next: attempt{digit: usualDigit}},
		{name: "DATA ERROR under a learned count", timing: 1, learned: map[string]learnedCount{"010C": {frames: 1, ecus: 1}}, req: obd.Req(1, 0x0C), raw: "DATA ERROR\r\r",
			sent: "010C1", why: "a learned or hinted count fell short", next: attempt{digit: noDigit}},
		{name: "LV RESET", timing: 1, req: obd.Req(1, 0x05), raw: "LV RESET\r\r",
			sent: "0105", why: "the adapter was re-initialised", next: attempt{digit: usualDigit}},
		{name: "ERRnn", timing: 1, req: obd.Req(1, 0x05), raw: "ERR94\r\r",
			sent: "0105", why: "the adapter was re-initialised", next: attempt{digit: usualDigit}},
		{name: "ACT ALERT", timing: 1, req: obd.Req(1, 0x05), raw: "ACT ALERT\r\r",
			sent: "0105", why: "the adapter was re-initialised", next: attempt{digit: usualDigit}},
		{name: "BUS ERROR is an answer", timing: 1, req: obd.Req(1, 0x05), raw: "BUS ERROR\r\r",
			sent: "0105"},
		// Service 04 never goes again, whatever it draws.
		{name: "04 STOPPED", timing: 1, req: obd.Req(4), raw: "STOPPED\r\r", sent: "04"},
		{name: "04 DATA ERROR", timing: 1, req: obd.Req(4), raw: "DATA ERROR\r\r", sent: "04"},
		{name: "04 LV RESET", timing: 1, req: obd.Req(4), raw: "LV RESET\r\r", sent: "04"},
		{name: "04 timed out", timing: 1, req: obd.Req(4), timeout: true, sent: "04"},
		{name: "04 under ATAT2, an ECU sure to answer missing", timing: 2, req: two(obd.Req(4), 1, true, false), raw: "7E80144\r\r", sent: "04"},
		{name: "04 NO DATA under ATAT2", timing: 2, req: two(obd.Req(4), 1, true, false), raw: "NO DATA\r\r", sent: "04"},
		{name: "04 learned count", timing: 1, learned: map[string]learnedCount{"04": {frames: 2, ecus: 2}}, req: obd.Req(4), raw: "7E80144\r\r", sent: "04"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := retryAdapter(tc.timing)
			for k, v := range tc.learned {
				a.learned[k] = v
			}
			_, _, sure, _ := a.expected(tc.req)
			x, line := a.prepare(tc.req, tc.at, sure)
			if line != tc.sent {
				t.Fatalf("sent %q, want %q", line, tc.sent)
			}
			if tc.timeout {
				x.timedOut = true
			} else {
				x.r, x.perr = a.readAnswer(tc.req, line, cleanLines([]byte(tc.raw), line))
			}
			rule := newRetries(tc.req).next(a, x)
			switch {
			case rule == nil && tc.why != "":
				t.Errorf("no retry (answer %v, %v), want %q", x.r.responses, x.perr, tc.why)
			case rule != nil && rule.why != tc.why:
				t.Errorf("retry %q, want %q", rule.why, tc.why)
			case rule != nil:
				if next := rule.next(a, x); next != tc.next {
					t.Errorf("next attempt %+v, want %+v", next, tc.next)
				}
			}
		})
	}
}

// TestRetryOnceEach: each reason sends a request again once at most (STOPPED or DATA ERROR
// and a re-initialisation share that once), so the sequence is finite.
func TestRetryOnceEach(t *testing.T) {
	a := retryAdapter(1)
	req := obd.Req(1, 0x0C)
	seq := newRetries(req)
	for i, tc := range []struct {
		raw, why string
	}{
		{"STOPPED\r\r", "STOPPED or DATA ERROR"},
		{"DATA ERROR\r\r", ""},
		{"LV RESET\r\r", ""},
	} {
		x, line := a.prepare(req, attempt{}, 0)
		x.r, x.perr = a.readAnswer(req, line, cleanLines([]byte(tc.raw), line))
		rule := seq.next(a, x)
		if got := ""; rule != nil {
			got = rule.why
			if got != tc.why {
				t.Errorf("attempt %d, %q: retry %q, want %q", i+1, tc.raw, got, tc.why)
			}
		} else if tc.why != "" {
			t.Errorf("attempt %d, %q: no retry, want %q", i+1, tc.raw, tc.why)
		}
	}
	budgets := map[string]bool{}
	for _, r := range retryRules {
		if r.why == "" || r.applies == nil || r.next == nil {
			t.Errorf("rule %+v is incomplete", r)
		}
		b := r.once
		if b == "" {
			b = r.why
		}
		budgets[b] = true
	}
	if len(budgets) != len(retryRules)-1 {
		t.Errorf("%d budgets for %d rules, want one shared (adapter errors)", len(budgets), len(retryRules))
	}
}

// TestClearNeverSentAgain: whatever a service 04 request draws — an adapter error, a lost
// setting, no prompt, a broken answer, an ECU missing under ATAT2 — "04" goes out exactly
// once and nothing else follows it (no re-initialisation, no ATAT1), and never with a digit.
func TestClearNeverSentAgain(t *testing.T) {
	both := obd.Req(4).Expecting(obd.Expect{ECU: "7E8", Len: 1}, obd.Expect{ECU: "7E9", Len: 1})
	for _, tc := range []struct {
		name  string
		reply []step
		req   obd.Request
	}{
		{"STOPPED", say("STOPPED\r\r>"), obd.Req(4)},
		{"DATA ERROR", say("DATA ERROR\r\r>"), obd.Req(4)},
		{"LV RESET", say("LV RESET\r\r>"), obd.Req(4)},
		{"ERR94", say("ERR94\r\r>"), obd.Req(4)},
		{"LP ALERT", say("LP ALERT\r\r>"), obd.Req(4)},
		{"BUFFER FULL", say("BUFFER FULL\r\r>"), obd.Req(4)},
		{"no prompt", []step{pause(time.Hour)}, obd.Req(4)},
		{"cut answer", say("7E8100844\r\r>"), obd.Req(4)},
		{"an ECU missing under ATAT2", say("7E80144\r\r>"), both},
		{"NO DATA under ATAT2", say("NO DATA\r\r>"), both},
		{"a guess, cut", say("7E8100844\r\r>"), func() obd.Request { r := both; r.Likely = true; return r }()},
	} {
		synctest.Test(t, func(t *testing.T) {
			r := genuine()
			r["04"] = [][]step{tc.reply, say("7E80144\r\r>")}
			s := newScript(t, r)
			a := newAdapter(t, s, testOptions(nil))
			if p := a.Profile(); p.AdaptiveTiming != 2 || !p.CountHint {
				t.Fatalf("profile %+v: want ATAT2 and the count digit", p)
			}
			n := len(s.commands())
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := a.Query(ctx, tc.req)
			if got := s.commands()[n:]; !reflect.DeepEqual(got, []string{"04"}) {
				t.Errorf("%s: sent %q (err %v), want \"04\" once", tc.name, got, err)
			}
			if tc.name != "an ECU missing under ATAT2" && err == nil {
				t.Errorf("%s: no error", tc.name)
			}
		})
	}
}

// TestRetrySequences: whole requests against a scripted adapter: the lines sent one after the
// other, and the answer.
func TestRetrySequences(t *testing.T) {
	named := obd.Req(3).Expecting(obd.Expect{ECU: "7E8", Len: 2}, obd.Expect{ECU: "7E9", Len: 2})
	named.Likely = true
	const full03 = "7E81008430303000171\r7E82103000000000000\r7E9024300\r\r>"
	for _, tc := range []struct {
		name    string
		req     obd.Request
		replies map[string][][]step
		sent    []string
		ecus    int
		err     error
	}{
		{"a guess cut, the shown count", named, map[string][][]step{
			"032": {say("7E81008430303000171\r7E82103000000000000\r\r>")},
			"033": {say(full03)},
		}, []string{"032", "033"}, 2, nil},
		// The repeat with the count the answer showed got no prompt: once more without a
		// digit (it used to go again with the same count until the request's deadline).
		{"the shown count timed out", named, map[string][][]step{
			"032": {say("7E81008430303000171\r7E82103000000000000\r\r>")},
			"033": {say("7E8100843")}, // and no prompt
			"03":  {say(full03)},
		}, []string{"032", "033", "03"}, 2, nil},
		{"STOPPED, then the shown count", named, map[string][][]step{
			"032": {say("7E81008430303000171\r7E82103000000000000\r\r>")},
			"033": {say("STOPPED\r\r>"), say(full03)},
		}, []string{"032", "033", "033"}, 2, nil},
		{"STOPPED twice", obd.Req(1, 0x05), map[string][][]step{
			"0105": {say("STOPPED\r\r>")},
		}, []string{"0105", "0105"}, 0, errors.New("stopped")},
		{"STOPPED, then LV RESET: re-initialised, not sent again", obd.Req(1, 0x05), map[string][][]step{
			"0105": {say("STOPPED\r\r>"), say("LV RESET\r\r>"), say("7E80341057B\r\r>")},
		}, append([]string{"0105", "0105"}, initSeq...), 0, errors.New("low voltage reset")},
	} {
		synctest.Test(t, func(t *testing.T) {
			r := genuine()
			for k, v := range tc.replies {
				r[k] = v
			}
			s := newScript(t, r)
			a := newAdapter(t, s, testOptions(nil))
			n := len(s.commands())
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			rs, err := a.Query(ctx, tc.req)
			if got := s.commands()[n:]; !reflect.DeepEqual(got, tc.sent) {
				t.Errorf("%s: sent %q, want %q", tc.name, got, tc.sent)
			}
			switch {
			case tc.err == nil && (err != nil || len(rs) != tc.ecus):
				t.Errorf("%s: %v %v, want %d answers", tc.name, rs, err, tc.ecus)
			case tc.err != nil && (err == nil || !strings.Contains(err.Error(), tc.err.Error())):
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
			}
		})
	}
}
