package elm327

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/obdgw/obdgw/obd"
)

func stepNamed(t *testing.T, name string) initStep {
	t.Helper()
	for _, st := range initSteps {
		if st.name == name {
			return st
		}
	}
	t.Fatalf("no init step %q", name)
	return initStep{}
}

// TestInitStepNames: every step has a name of its own, for errors and progress.
func TestInitStepNames(t *testing.T) {
	seen := map[string]bool{}
	for _, st := range initSteps {
		if st.name == "" || seen[st.name] || st.accept == nil {
			t.Errorf("step %q: empty or repeated name, or nothing reads its answer", st.name)
		}
		seen[st.name] = true
	}
}

// TestInitStepAnswers: what each step makes of literal adapter answers: accepted (and what it
// learned), a lost capability (and the clone sign it leaves, if any) or the end of the
// connect.
func TestInitStepAnswers(t *testing.T) {
	search := "SEARCHING...\r7E806410 0BE3FA813\r\r"
	type result struct {
		outcome string // "ok", "degraded" or "fatal"
		sign    string // the clone sign of a degraded step, or a text the fatal error holds
	}
	for _, tc := range []struct {
		step   string
		raw    string // the adapter's answer, as sent ("" with timeout: nothing at all)
		noWait bool   // no prompt came: the exchange timed out with raw received
		prep   func(a *Adapter, s *initState)
		want   result
		check  func(a *Adapter, s *initState) string
	}{
		{step: "resync", raw: "?\r\r", want: result{"ok", ""}},
		{step: "resync", raw: "\xff\x13", noWait: true, want: result{"ok", ""}},
		{step: "reset", raw: "\x00\x7f\r\rELM327 v1.5\r\r", want: result{"ok", ""},
			check: func(_ *Adapter, s *initState) string { return want(s.banner, "ELM327 v1.5") }},
		{step: "echo off", raw: "ATE0\rOK\r\r", want: result{"ok", ""}},
		{step: "echo off", raw: "?\r\r", want: result{"degraded", "ATE0 refused"}},
		{step: "echo off", raw: "garbage", noWait: true, want: result{"degraded", "ATE0 refused"}},
		{step: "linefeeds off", raw: "OK\r\r", want: result{"ok", ""}},
		{step: "spaces off", raw: "?\r\r", want: result{"degraded", "ATS0 refused"}},
		{step: "headers on", raw: "ATH1OK\r\r", want: result{"ok", ""},
			check: func(a *Adapter, _ *initState) string { return want(a.f.headers, true) }},
		{step: "headers on", raw: "?\r\r", want: result{"degraded", "ATH1 refused"},
			check: func(a *Adapter, _ *initState) string { return want(a.f.headers, false) }},
		{step: "adaptive timing", raw: "OK\r\r", want: result{"ok", ""},
			check: func(a *Adapter, _ *initState) string { return want(a.timing, 1) }},
		{step: "adaptive timing", raw: "?\r\r", want: result{"degraded", "ATAT1 refused"},
			check: func(a *Adapter, _ *initState) string { return want(a.timing, 0) }},
		{step: "protocol", raw: "OK\r\r", want: result{"ok", ""}},
		{step: "protocol", raw: "?\r\r", want: result{"degraded", "ATSP0 refused"}},
		{step: "supply voltage", raw: "12.4V\r\r", want: result{"ok", ""},
			check: func(_ *Adapter, s *initState) string { return want(s.prof.VoltageV, 12.4) }},
		{step: "supply voltage", raw: "12.1\r\r", want: result{"ok", ""},
			check: func(_ *Adapter, s *initState) string { return want(s.prof.VoltageV, 12.1) }},
		{step: "supply voltage", raw: "?\r\r", want: result{"degraded", `ATRV answered ["?"]`}},
		{step: "supply voltage", raw: "12.", noWait: true, want: result{"degraded", "ATRV timed out"}},
		{step: "protocol search", raw: search, want: result{"ok", ""},
			check: func(_ *Adapter, s *initState) string { return want(len(s.search), 2) }},
		{step: "protocol search", raw: "SEARCHING...\r", noWait: true, want: result{"fatal", "no answer during the protocol search"}},
		{step: "protocol number", raw: "A6\r\r", want: result{"ok", ""},
			check: func(a *Adapter, s *initState) string {
				return want(s.prof.ProtocolNum, "6") + want(a.f.protocol, byte('6'))
			}},
		{step: "protocol number", raw: "\r3\r\r", want: result{"ok", ""},
			check: func(a *Adapter, _ *initState) string { return want(a.f.legacy(), true) }},
		{step: "protocol number", raw: "?\r\r", want: result{"degraded", ""}},
		{step: "vehicle answer", prep: searched(search), want: result{"ok", ""},
			check: func(a *Adapter, s *initState) string {
				return want(len(s.first.responses), 1) + want(a.learned["0100"], learnedCount{frames: 1, ecus: 1})
			}},
		{step: "vehicle answer", prep: searched("SEARCHING...\rUNABLE TO CONNECT\r\r"), want: result{"fatal", "unable to connect"}},
		{step: "vehicle answer", prep: searched("SEARCHING...\rNO DATA\r\r"), want: result{"fatal", "is the ignition on"}},
		{step: "protocol name", raw: "AUTO, ISO 15765-4 (CAN 11/500)\r\r", want: result{"ok", ""},
			check: func(_ *Adapter, s *initState) string { return want(s.prof.Protocol, "ISO 15765-4 (CAN 11/500)") }},
		{step: "version", raw: "ELM327 v1.5\r\r", prep: func(_ *Adapter, s *initState) { s.banner = "ELM327 v1.5" }, want: result{"ok", ""}},
		{step: "version", raw: "?\r\r", prep: func(_ *Adapter, s *initState) { s.banner = "ELM327 v1.5" }, want: result{"ok", ""},
			check: func(_ *Adapter, s *initState) string { return want(s.prof.Version, "ELM327 v1.5") }},
		{step: "version", raw: "ELM327 v2.1\r\r", prep: func(_ *Adapter, s *initState) { s.banner = "ELM327 v1.5" },
			want: result{"degraded", `ATZ banner "ELM327 v1.5" differs from ATI "ELM327 v2.1"`}},
		{step: "STN version", raw: "STN1110 v4.2.0\r\r", want: result{"ok", ""},
			check: func(_ *Adapter, s *initState) string { return want(s.prof.STN, "STN1110 v4.2.0") }},
		{step: "STN version", raw: "?\r\r", prep: func(_ *Adapter, s *initState) { s.prof.Version = "ELM327 v2.1" },
			want: result{"degraded", "v2.1 banner (no genuine ELM327 v2.1 behaves like one)"}},
		{step: "aggressive timing", raw: "OK\r\r", prep: func(a *Adapter, _ *initState) { a.timing = 1 }, want: result{"ok", ""},
			check: func(a *Adapter, _ *initState) string { return want(a.timing, 2) }},
		// Refusing ATAT2 is no sign of a clone: many genuine adapters lack it.
		{step: "aggressive timing", raw: "?\r\r", prep: func(a *Adapter, _ *initState) { a.timing = 1 }, want: result{"degraded", ""},
			check: func(a *Adapter, _ *initState) string { return want(a.timing, 1) }},
		{step: "count digit", raw: "7E8064100BE3FA813\r\r", prep: found(search), want: result{"ok", ""},
			check: func(_ *Adapter, s *initState) string { return want(s.works, true) }},
		{step: "count digit", raw: "?\r\r", prep: found(search), want: result{"degraded", ""},
			check: func(_ *Adapter, s *initState) string { return want(s.works, false) + want(s.refused, true) }},
		{step: "count digit", raw: "NO DATA\r\r", prep: found(search), want: result{"degraded", ""},
			check: func(_ *Adapter, s *initState) string { return want(s.refused, true) }},
		// Another ECU's answer only: the adapter stopped early, it did not refuse the digit.
		{step: "count digit", raw: "7E9064100800000 01\r\r", prep: found(search), want: result{"degraded", ""},
			check: func(_ *Adapter, s *initState) string { return want(s.works, false) + want(s.refused, false) }},
		{step: "aggressive timing without the count digit", raw: "7E8064100BE3FA813\r\r", prep: found(search), want: result{"ok", ""},
			check: func(_ *Adapter, s *initState) string { return want(s.keepAT2, true) }},
		{step: "aggressive timing without the count digit", raw: "NO DATA\r\r", prep: found(search), want: result{"degraded", ""},
			check: func(_ *Adapter, s *initState) string { return want(s.keepAT2, false) }},
		{step: "patient timing", raw: "OK\r\r", prep: func(a *Adapter, _ *initState) { a.timing = 2 }, want: result{"ok", ""},
			check: func(a *Adapter, s *initState) string { return want(a.timing, 1) + want(s.relaxed, true) }},
		{step: "patient timing", raw: "?\r\r", prep: func(a *Adapter, _ *initState) { a.timing = 2 }, want: result{"degraded", ""},
			check: func(a *Adapter, s *initState) string { return want(a.timing, 2) + want(s.relaxed, false) }},
		{step: "count digit under patient timing", raw: "7E8064100BE3FA813\r\r", prep: found(search), want: result{"ok", ""},
			check: func(_ *Adapter, s *initState) string { return want(s.works, true) }},
		{step: "multi-PID", raw: "7E8100941 00BE3FA813\r7E8210C0CE400000000\r\r", prep: found(search), want: result{"ok", ""},
			check: func(_ *Adapter, s *initState) string { return want(s.prof.MultiPID, true) }},
		// Only the bitmap came back: the ECU does not batch PIDs.
		{step: "multi-PID", raw: "7E8064100BE3FA813\r\r", prep: found(search), want: result{"degraded", ""},
			check: func(_ *Adapter, s *initState) string { return want(s.prof.MultiPID, false) }},
	} {
		synctest.Test(t, func(t *testing.T) {
			st := stepNamed(t, tc.step)
			a := &Adapter{opts: Options{}, learned: map[string]learnedCount{}, noHint: map[string]bool{}}
			a.opts.defaults()
			a.log = a.opts.Logger
			a.setPort(newScript(t, map[string][][]step{}).start())
			s := &initState{}
			if tc.prep != nil {
				tc.prep(a, s)
			}
			var r stepReply
			if st.send != nil {
				r.cmd = st.send(a, s)
				r.lines = cleanLines([]byte(tc.raw), r.cmd)
				if tc.noWait {
					r.lines, r.err = nil, &TimeoutError{Command: r.cmd, Raw: tc.raw}
				}
			}
			var got result
			err := st.accept(a, s, r)
			var d degraded
			switch {
			case err == nil:
				got = result{"ok", ""}
			case errors.As(err, &d):
				got = result{"degraded", string(d)}
			default:
				got = result{"fatal", tc.want.sign}
				if !strings.Contains(err.Error(), tc.want.sign) {
					got.sign = err.Error()
				}
			}
			if got != tc.want {
				t.Errorf("step %q, answer %q: %+v (err %v), want %+v", tc.step, tc.raw, got, err, tc.want)
			}
			if tc.check != nil {
				if msg := tc.check(a, s); msg != "" {
					t.Errorf("step %q, answer %q: %s", tc.step, tc.raw, msg)
				}
			}
		})
	}
}

func want[T comparable](got, want T) string {
	if got != want {
		return fmt.Sprintf("got %v, want %v; ", got, want)
	}
	return ""
}

// searched is the state after the protocol search drew raw on an 11-bit CAN car.
func searched(raw string) func(a *Adapter, s *initState) {
	return func(a *Adapter, s *initState) {
		a.f = can11
		s.search = cleanLines([]byte(raw), "0100")
	}
}

// found is the state after the search's answer raw was read.
func found(raw string) func(a *Adapter, s *initState) {
	return func(a *Adapter, s *initState) {
		searched(raw)(a, s)
		if err := acceptVehicle(a, s, stepReply{}); err != nil {
			panic(err)
		}
	}
}

// TestInitStepOrder: the steps that run, in order, with the command each sends, for the
// adapters the connect tells apart. InitProgress reports each step as it starts.
func TestInitStepOrder(t *testing.T) {
	head := []string{"resync 7F7F", "reset ATZ", "echo off ATE0", "linefeeds off ATL0", "spaces off ATS0", "headers on ATH1",
		"adaptive timing ATAT1"}
	quick := []string{"CAN 11/500 ATSP6", "CAN 11/500 answer 0100", "supply voltage ATRV"}
	tail := []string{"protocol number ATDPN", "vehicle answer", "protocol name ATDP", "version ATI", "STN version STI"}
	for _, tc := range []struct {
		name    string
		replies map[string][][]step
		want    []string
		connect []string // the steps between head and tail; nil: quick
	}{
		{"genuine ELM327 on CAN", nil,
			[]string{"aggressive timing ATAT2", "count digit 01001", "multi-PID 01000C2"}, nil},
		{"count digit stops at the first ECU", map[string][][]step{
			"0100":  {say("SEARCHING...\r7E806410 0BE3FA813\r7E9064100 80000001\r\r>")},
			"01002": {say("7E8064100BE3FA813\r\r>")},
		}, []string{"aggressive timing ATAT2", "count digit 01002", "patient timing ATAT1", "count digit under patient timing 01002", "multi-PID 01000C"}, nil},
		{"count digit refused under ATAT2", map[string][][]step{
			"01001": {say("?\r\r>")},
		}, []string{"aggressive timing ATAT2", "count digit 01001", "aggressive timing without the count digit 0100", "multi-PID 01000C"}, nil},
		{"ATAT2 refused", map[string][][]step{
			"ATAT2": {say("?\r\r>")},
		}, []string{"aggressive timing ATAT2", "count digit 01001", "multi-PID 01000C2"}, nil},
		{"K-line", map[string][][]step{
			"ATSP7": {ok()},
			"ATPC":  {ok()},
			"0100":  {say("CAN ERROR\r\r>"), say("CAN ERROR\r\r>"), say("SEARCHING...\r48 6B 10 41 00 BE 3F A8 13 E5\r\r>")},
			"ATDPN": {say("A3\r\r>")},
			"01001": {say("486B104100BE3FA813E5\r\r>")},
		}, []string{"count digit 01001"}, []string{"CAN 11/500 ATSP6", "CAN 11/500 answer 0100", "CAN 29/500 ATSP7", "CAN 29/500 answer 0100",
			"close the protocol ATPC", "protocol ATSP0", "supply voltage ATRV", "protocol search 0100"}},
	} {
		synctest.Test(t, func(t *testing.T) {
			r := genuine()
			for k, v := range tc.replies {
				r[k] = v
			}
			s := newScript(t, r)
			var names []string
			o := testOptions(nil)
			o.InitProgress = func(step string) { names = append(names, step) }
			newAdapter(t, s, o)
			var got []string
			cmds := s.commands()
			for _, n := range names {
				if n == "vehicle answer" {
					got = append(got, n)
					continue
				}
				if len(cmds) == 0 {
					got = append(got, n+" (nothing sent)")
					continue
				}
				got = append(got, n+" "+cmds[0])
				cmds = cmds[1:]
			}
			if len(cmds) > 0 {
				t.Errorf("commands %q sent by no step", cmds)
			}
			connect := quick
			if tc.connect != nil {
				connect = tc.connect
			}
			if want := slices.Concat(head, connect, tail, tc.want); !reflect.DeepEqual(got, want) {
				t.Errorf("steps\n%q\nwant\n%q", got, want)
			}
		})
	}
}

// TestInitErrorNamesStep: a connect that fails says which step failed, with its command.
func TestInitErrorNamesStep(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replies map[string][][]step
		want    []string
		is      error
	}{
		{"silent after ATL0", map[string][][]step{"ATL0": {{pause(time.Hour)}}},
			[]string{`elm327: init step "linefeeds off": no prompt after ATL0 on /dev/ttyUSB0@38400`, "baud"}, nil},
		{"unplugged during ATS0", map[string][][]step{"ATS0": {{hangup()}}},
			[]string{`elm327: init step "spaces off" (ATS0) on /dev/ttyUSB0@38400: `}, ErrDisconnected},
		{"ignition off", map[string][][]step{"0100": {say("SEARCHING...\rUNABLE TO CONNECT\r\r>")}},
			[]string{`elm327: init step "vehicle answer" on /dev/ttyUSB0@38400: `, "ignition"}, obd.ErrNoVehicle},
		{"search never ends", map[string][][]step{"0100": {say("NO DATA\r\r>"), {w("SEARCHING...\r"), pause(time.Hour)}}},
			[]string{`elm327: init step "protocol search" (0100) on /dev/ttyUSB0@38400: no answer during the protocol search`}, obd.ErrNoVehicle},
		{"unplugged during the multi-PID probe", map[string][][]step{"01000C2": {{hangup()}}},
			[]string{`elm327: init step "multi-PID" (01000C2) on `}, ErrDisconnected},
	} {
		synctest.Test(t, func(t *testing.T) {
			r := genuine()
			for k, v := range tc.replies {
				r[k] = v
			}
			s := newScript(t, r)
			_, err := NewContext(context.Background(), s.start(), Options{})
			if err == nil {
				t.Fatalf("%s: connected", tc.name)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: err %q lacks %q", tc.name, err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%s: err %v is not %v", tc.name, err, tc.is)
			}
		})
	}
}

// TestInitCancelledNamesStep: a connect cancelled during any step ends there, naming it, even
// in the steps whose other failures only cost a capability (the protocol number, the
// multi-PID probe), and never returns an adapter.
func TestInitCancelledNamesStep(t *testing.T) {
	for _, step := range []string{"resync", "protocol number", "STN version", "multi-PID"} {
		synctest.Test(t, func(t *testing.T) {
			s := newScript(t, genuine())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o := Options{InitProgress: func(name string) {
				if name == step {
					cancel()
				}
			}}
			a, err := NewContext(ctx, s.start(), o)
			if err == nil {
				a.Close()
				t.Errorf("cancelled at %q: connected", step)
				return
			}
			if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `init step "`+step+`"`) {
				t.Errorf("cancelled at %q: err %v", step, err)
			}
		})
	}
}
