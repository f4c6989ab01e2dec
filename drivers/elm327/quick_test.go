package elm327

import (
	"reflect"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// TestQuickNeverUnproved: a protocol tried directly counts only when its 0100 drew a positive
// answer. The adapter says OK to ATSP6 and ATSP7 each time, but 0100 draws an error, a
// negative answer, nothing at all or a cut reply: the connect closes the protocol and searches
// as it would have (ATPC, ATSP0, 0100), and keeps what the search found (CAN 11/250 here, a
// protocol neither try named).
func TestQuickNeverUnproved(t *testing.T) {
	for _, tc := range []struct {
		name string
		can6 []step // the answer to 0100 under ATSP6
		late bool   // it comes after the firm deadline (a real pty, a 100 ms QuickTimeout)
	}{
		{"CAN ERROR", say("CAN ERROR\r\r>"), false},
		{"NO DATA", say("NO DATA\r\r>"), false},
		{"UNABLE TO CONNECT", say("UNABLE TO CONNECT\r\r>"), false},
		{"BUS ERROR", say("BUS ERROR\r\r>"), false},
		{"negative answer", say("7E8037F0112\r\r>"), false},
		{"another service's answer", say("7E806410100076505\r\r>"), false},
		{"refused", say("?\r\r>"), false},
		{"only a prompt", say("\r\r>"), false},
		// No prompt before the firm deadline; the NO DATA comes later, and the "?" of the
		// interrupting 7F7F after it: neither may be read as ATSP7's answer.
		{"no prompt in time", []step{pause(400 * time.Millisecond), w("NO DATA\r\r>")}, true},
		// SEARCHING... does not extend the firm deadline: an answer after it is too late.
		{"late answer after SEARCHING...", []step{w("SEARCHING...\r"), pause(400 * time.Millisecond), w("7E806410 0BE3FA813\r\r>")}, true},
	} {
		run := synctest.Test
		if tc.late {
			// A pipe cannot take the 7F7F while the script is still answering; a pty can.
			run = func(t *testing.T, f func(*testing.T)) { f(t) }
		}
		run(t, func(t *testing.T) {
			r := genuine()
			r["ATSP7"] = [][]step{ok()}
			r["ATPC"] = [][]step{ok()}
			r["ATDPN"] = [][]step{say("A8\r\r>")}
			r["ATDP"] = [][]step{say("AUTO, ISO 15765-4 (CAN 11/250)\r\r>")}
			r["0100"] = [][]step{tc.can6, say("NO DATA\r\r>"), say("SEARCHING...\r7E806410 0BE3FA813\r\r>")}
			s := newScript(t, r)
			lb := &logBuf{}
			o := testOptions(lb)
			var a *Adapter
			if tc.late {
				path, _, _ := scriptOnPTY(t, s)
				o.QuickTimeout = 100 * time.Millisecond
				var err error
				if a, err = Open("serial://"+path+"?baud=38400", o); err != nil {
					t.Fatalf("%s: %v\ncommands %q\n%s", tc.name, err, s.commands(), lb)
				}
				defer a.Close()
			} else {
				a = newAdapter(t, s, o)
			}
			if p := a.Profile(); p.ProtocolNum != "8" || p.Protocol != "ISO 15765-4 (CAN 11/250)" {
				t.Errorf("%s: protocol %q (%s), want 8 found by the search\n%s", tc.name, p.ProtocolNum, p.Protocol, lb)
			}
			cmds := s.commands()
			i := slices.Index(cmds, "ATSP7")
			if i < 0 || !reflect.DeepEqual(cmds[i:i+6], []string{"ATSP7", "0100", "ATPC", "ATSP0", "ATRV", "0100"}) {
				t.Errorf("%s: commands %q: want ATSP7, 0100, then the search from a closed protocol", tc.name, cmds)
			}
		})
	}
}

// TestQuickOrder: the protocols tried directly, in order, for each remembered protocol, and
// that the first proved ends the tries. NoQuick leaves CAN 11/500 and 29/500 out.
func TestQuickOrder(t *testing.T) {
	for _, tc := range []struct {
		remembered string
		noQuick    bool
		answers    map[string]bool // protocols whose 0100 draws 41 00
		want       []string        // ATSP commands, in order
	}{
		{"", false, map[string]bool{"6": true}, []string{"ATSP6"}},
		{"", false, map[string]bool{"7": true}, []string{"ATSP6", "ATSP7"}},
		{"", false, nil, []string{"ATSP6", "ATSP7", "ATSP0"}},
		{"6", false, map[string]bool{"6": true}, []string{"ATSP6"}},
		{"8", false, map[string]bool{"8": true}, []string{"ATSP8"}},
		{"8", false, map[string]bool{"6": true}, []string{"ATSP8", "ATSP6"}},
		{"a", false, nil, []string{"ATSPA", "ATSP6", "ATSP7", "ATSP0"}},
		{"", true, map[string]bool{"6": true}, []string{"ATSP0"}},
		{"7", true, nil, []string{"ATSP7", "ATSP0"}},
	} {
		synctest.Test(t, func(t *testing.T) {
			r := genuine()
			var sp []string
			for _, p := range []string{"0", "6", "7", "8", "A"} {
				r["ATSP"+p] = [][]step{ok()}
			}
			r["ATPC"] = [][]step{ok()}
			s := newScript(t, r)
			// 0100 answers according to the protocol set last.
			for i := 0; i < 6; i++ {
				s.set("0100", say("SEARCHING...\r7E806410 0BE3FA813\r\r>"))
			}
			o := testOptions(nil)
			o.Protocol, o.NoQuick = tc.remembered, tc.noQuick
			o.InitProgress = func(step string) {
				// Set the answer of the coming 0100 by the protocol just set.
				cmds := s.commands()
				if len(cmds) == 0 || len(cmds[len(cmds)-1]) < 5 || cmds[len(cmds)-1][:4] != "ATSP" {
					return
				}
				p := cmds[len(cmds)-1][4:]
				if p == "0" || tc.answers[p] {
					s.set("0100", say("SEARCHING...\r7E806410 0BE3FA813\r\r>"))
				} else {
					s.set("0100", say("NO DATA\r\r>"))
				}
			}
			newAdapter(t, s, o)
			for _, c := range s.commands() {
				if len(c) == 5 && c[:4] == "ATSP" {
					sp = append(sp, c)
				}
			}
			if !reflect.DeepEqual(sp, tc.want) {
				t.Errorf("remembered %q, no quick %v, answers on %v: sent %q, want %q", tc.remembered, tc.noQuick, tc.answers, sp, tc.want)
			}
		})
	}
}

// TestQuickForgetsERR94: a CAN try that drew ERR94 leaves CAN out of the adapter's automatic
// search until ATFE, so the connect sends ATFE before ATSP0; without ERR94 it does not.
func TestQuickForgetsERR94(t *testing.T) {
	for _, err94 := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			r := genuine()
			r["ATSP7"] = [][]step{ok()}
			r["ATPC"] = [][]step{ok()}
			r["ATFE"] = [][]step{ok()}
			r["ATDPN"] = [][]step{say("A8\r\r>")}
			first := say("CAN ERROR\r\r>")
			if err94 {
				first = say("ERR94\r\r>")
			}
			r["0100"] = [][]step{first, say("NO DATA\r\r>"), say("SEARCHING...\r7E806410 0BE3FA813\r\r>")}
			s := newScript(t, r)
			newAdapter(t, s, testOptions(nil))
			cmds := s.commands()
			i := slices.Index(cmds, "ATPC")
			want := []string{"ATPC", "ATSP0"}
			if err94 {
				want = []string{"ATPC", "ATFE", "ATSP0"}
			}
			if i < 0 || !reflect.DeepEqual(cmds[i:i+len(want)], want) {
				t.Errorf("ERR94 %v: commands %q, want %q before the search", err94, cmds, want)
			}
		})
	}
}
