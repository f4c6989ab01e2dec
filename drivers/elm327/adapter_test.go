package elm327

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/obd"
)

// initSeq is the connect of genuine(): CAN 11/500 tried directly proves the protocol, so no
// search.
var initSeq = []string{"7F7F", "ATZ", "ATE0", "ATL0", "ATS0", "ATH1", "ATAT1", "ATSP6", "0100", "ATRV", "ATDPN", "ATDP", "ATI", "STI", "ATAT2", "01001", "01000C2"}

func TestInitGenuine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newScript(t, genuine())
		a := newAdapter(t, s, testOptions(nil))
		if got := s.commands(); !reflect.DeepEqual(got, initSeq) {
			t.Errorf("init sent\n%q\nwant\n%q", got, initSeq)
		}
		want := obd.Profile{Device: "/dev/ttyUSB0@38400", Version: "ELM327 v1.5", Protocol: "ISO 15765-4 (CAN 11/500)",
			ProtocolNum: "6", VoltageV: 12.4, CountHint: true, MultiPID: true, AdaptiveTiming: 2}
		if got := a.Profile(); got != want {
			t.Errorf("profile\n%+v\nwant\n%+v", got, want)
		}
		if got := a.String(); got != "/dev/ttyUSB0@38400 ELM327 v1.5" {
			t.Errorf("String() = %q", got)
		}
	})
}

// TestInitCloneQuirks: echo left on in replies, replies split across writes, NUL bytes, an
// OBDLink-style banner with leading NULs, "ATH1OK"-style answers, a voltage without V, the
// count suffix refused with "?" and a v2.1 banner.
func TestInitCloneQuirks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["ATZ"] = [][]step{splitReply("\x00\x00\x00\x00\r\r", "ELM327 v2.1\r", "\r>")}
		r["ATE0"] = [][]step{splitReply("OK", "\r\r", ">")}
		r["ATH1"] = [][]step{say("ATH1OK\r\r>")}
		r["ATRV"] = [][]step{say("12.1\r\r>")}
		r["ATI"] = [][]step{say("ELM327 v2.1\r\r>")}
		r["0100"] = [][]step{splitReply("SEARCHING...\r\x007E8 06 41", " 00 BE 3F A8 13 \r", "\r", ">")}
		r["01001"] = [][]step{say("?\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		p := a.Profile()
		if p.Version != "ELM327 v2.1" || !p.Clone || p.CountHint || p.VoltageV != 12.1 || p.ProtocolNum != "6" {
			t.Errorf("profile %+v", p)
		}
		// Without count-suffix support requests go out bare.
		for i := 0; i < 2; i++ {
			rs, err := a.Query(context.Background(), obd.Req(1, 0x0C))
			if err != nil || len(rs) != 1 || rs[0].ECU != "7E8" {
				t.Fatalf("query: %v %v", rs, err)
			}
		}
		if s.count("010C") != 2 || s.count("010C1") != 0 {
			t.Errorf("commands %q", s.commands())
		}
	})
}

// TestNoCountHintWhenProbeStopsEarly: two ECUs answered 0100, and "01002" brought back only
// the first, under ATAT2 and again under ATAT1: the adapter stops at the first frame whatever
// the digit says (not a slow ECU), which would lose the second ECU's answers, so the suffix
// is never used, and the patient timing stays.
func TestNoCountHintWhenProbeStopsEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["0100"] = [][]step{say("SEARCHING...\r7E806410 0BE3FA813\r7E9064100 80000001\r\r>")}
		r["01002"] = [][]step{say("7E8064100BE3FA813\r\r>")}
		r["01000C"] = [][]step{say("7E8100941 00BE3FA813\r7E8210C0CE400000000\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		if p := a.Profile(); p.CountHint || p.AdaptiveTiming != 1 {
			t.Errorf("profile %+v: count suffix trusted, or ATAT2 kept", p)
		}
		if got, want := s.commands()[len(initSeq)-3:], []string{"ATAT2", "01002", "ATAT1", "01002", "01000C"}; !reflect.DeepEqual(got, want) {
			t.Errorf("commands %q, want %q", got, want)
		}
	})
}

// TestNoCountHintOnNoData: an OBDLink LX answered NO DATA to "01001" (obd-java-api #67);
// the suffix is then never used.
func TestNoCountHintOnNoData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["01001"] = [][]step{say("NO DATA\r\r>")}
		r["STI"] = [][]step{say("STN1110 v4.2.0\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		p := a.Profile()
		if p.CountHint || p.STN != "STN1110 v4.2.0" || p.Clone {
			t.Errorf("profile %+v", p)
		}
		for i := 0; i < 2; i++ {
			if _, err := a.Query(context.Background(), obd.Req(1, 0x0D)); err != nil {
				t.Fatal(err)
			}
		}
		if s.count("010D") != 2 || s.count("010D1") != 0 {
			t.Errorf("commands %q", s.commands()[len(initSeq):])
		}
	})
}

// TestInitRememberedProtocol: the remembered protocol is tried first, directly, then CAN
// 11/500 and CAN 29/500, each once; the first whose 0100 draws 41 00 is kept, without a search.
func TestInitRememberedProtocol(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["ATSP3"] = [][]step{ok()}
		r["ATSP7"] = [][]step{ok()}
		r["ATPC"] = [][]step{ok()}
		// A K-line init that fails, CAN at 500k that nobody answers, then 29-bit ECUs.
		r["0100"] = [][]step{say("BUS INIT: ...ERROR\r\r>"), say("NO DATA\r\r>"), say("18DAF110064100BE3FA813\r\r>")}
		r["ATDPN"] = [][]step{say("7\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, Options{Protocol: "3"})
		want := []string{"ATAT1", "ATSP3", "0100", "ATSP6", "0100", "ATSP7", "0100", "ATRV", "ATDPN"}
		if got := s.commands()[6 : 6+len(want)]; !reflect.DeepEqual(got, want) {
			t.Errorf("commands %q, want %q after ATH1", s.commands(), want)
		}
		if p := a.Profile(); p.ProtocolNum != "7" {
			t.Errorf("protocol %q, want 7", p.ProtocolNum)
		}
	})
	// The remembered protocol is one of the quick ones: tried once.
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["ATSP7"] = [][]step{ok()}
		r["ATDPN"] = [][]step{say("7\r\r>")}
		r["0100"] = [][]step{say("18DAF110064100BE3FA813\r\r>")}
		s := newScript(t, r)
		newAdapter(t, s, Options{Protocol: "7"})
		if s.count("ATSP7") != 1 || s.count("ATSP6") != 0 || s.count("ATSP0") != 0 || s.count("0100") != 1 {
			t.Errorf("commands %q", s.commands())
		}
	})
	s := newScript(t, genuine())
	if _, err := New(s.start(), Options{Protocol: "Z"}); err == nil || !strings.Contains(err.Error(), "protocol") {
		t.Errorf("bad remembered protocol accepted: %v", err)
	}
}

// TestInitSearching: the protocol search prints SEARCHING... and BUS INIT: progress; each one
// grants the search deadline again, so a 50 s search succeeds with a 30 s deadline.
func TestInitSearching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["0100"] = [][]step{{w("SEARCHING...\r"), pause(25 * time.Second), w("BUS INIT: ...OK\r"), pause(25 * time.Second),
			w("48 6B 10 41 00 BE 3F A8 13 E5\r\r>")}}
		r["ATDPN"] = [][]step{say("A3\r\r>")}
		r["ATDP"] = [][]step{say("AUTO, ISO 9141-2\r\r>")}
		r["01001"] = [][]step{say("486B104100BE3FA813E5\r\r>")}
		r["0902"] = [][]step{say("486B104902010000004C01\r486B104902024B36414402\r486B1049020343453135 03\r486B104902045042343004\r486B104902053531323705\r\r>")}
		s := newScript(t, r)
		start := time.Now()
		o := testOptions(nil)
		o.NoQuick = true // the search itself
		var seen []string
		o.Progress = func(msg string) { seen = append(seen, msg) }
		a := newAdapter(t, s, o)
		if !reflect.DeepEqual(seen, []string{"SEARCHING...", "BUS INIT: ...OK"}) {
			t.Errorf("progress reported %q", seen)
		}
		if d := time.Since(start); d < 50*time.Second {
			t.Errorf("init took %v of fake time, want the whole 50 s search", d)
		}
		p := a.Profile()
		if p.ProtocolNum != "3" || p.Protocol != "ISO 9141-2" || p.MultiPID || !p.CountHint {
			t.Errorf("profile %+v", p)
		}
		if s.count("01000C") != 0 {
			t.Error("multi-PID probed on a K-line car")
		}
		rs, err := a.Query(context.Background(), obd.Req(9, 2))
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 1 || rs[0].ECU != "10" || !reflect.DeepEqual(rs[0].Data, h("49 02 01 00 00 00 4C 49 02 02 4B 36 41 44 49 02 03 43 45 31 35 49 02 04 50 42 34 30 49 02 05 35 31 32 37")) {
			t.Errorf("VIN %v", rs)
		}
		// Multi-PID on a legacy protocol is split into single requests.
		r2 := map[string][][]step{
			"010C1": {say("486B10410C0CE4 00\r\r>")}, "010C": {say("486B10410C0CE400\r\r>")},
			"010D": {say("486B10410D0000\r\r>")}, "010D1": {say("486B10410D0000\r\r>")},
		}
		for k, v := range r2 {
			s.set(k, v...)
		}
		rs, err = a.Query(context.Background(), obd.Req(1, 0x0C, 0x0D))
		if err != nil || len(rs) != 1 || rs[0].ECU != "10" || !reflect.DeepEqual(rs[0].Data, h("41 0C 0C E4 0D 00")) {
			t.Errorf("merged singles %v, %v", rs, err)
		}
	})
}

func TestInitSearchGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["0100"] = [][]step{{w("SEARCHING...\r"), pause(time.Hour)}}
		s := newScript(t, r)
		_, err := NewContext(context.Background(), s.start(), Options{NoQuick: true})
		if !errors.Is(err, obd.ErrNoVehicle) || !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "deadline") {
			t.Errorf("err = %v, want no vehicle after the search deadline", err)
		}
	})
}

func TestInitIgnitionOff(t *testing.T) {
	for _, tc := range []struct {
		reply string
		code  Code
	}{
		{"SEARCHING...\rUNABLE TO CONNECT\r\r>", CodeUnableToConnect},
		{"SEARCHING...\rNO DATA\r\r>", CodeNoData},
		{"BUS INIT: ...ERROR\r\r>", CodeBusInitError},
		{"NOT CONNECTED\r\r>", CodeUnableToConnect},
	} {
		synctest.Test(t, func(t *testing.T) {
			r := genuine()
			r["0100"] = [][]step{say(tc.reply)}
			s := newScript(t, r)
			_, err := NewContext(context.Background(), s.start(), Options{})
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code || !errors.Is(err, obd.ErrNoVehicle) || errors.Is(err, obd.ErrNoData) {
				t.Fatalf("%q: err = %v, want %v wrapping ErrNoVehicle", tc.reply, err, tc.code)
			}
			if !strings.Contains(err.Error(), "ignition") || e.Raw == "" {
				t.Errorf("%q: message %q lacks advice or raw reply", tc.reply, err)
			}
		})
	}
}

func TestInitNoPrompt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["7F7F"] = [][]step{{pause(time.Hour)}}
		r["ATZ"] = [][]step{{pause(time.Hour)}}
		s := newScript(t, r)
		// A pipe's write waits for the script, which sleeps an hour over 7F7F: give the
		// connect as a whole longer than that, so ATZ's own deadline is what ends it.
		_, err := NewContext(context.Background(), s.start(), Options{ConnectTimeout: 3 * time.Hour})
		if err == nil || !strings.Contains(err.Error(), "no prompt after ATZ") || !strings.Contains(err.Error(), "baud") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestQueryLearnsCountSuffix(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		vin := "7E8101449020 14C4B36\r7E82141444345313550\r7E82242343035313237\r\r>"
		r["0902"] = [][]step{say(vin)}
		r["09023"] = [][]step{say(vin)}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		for i := 0; i < 3; i++ {
			rs, err := a.Query(context.Background(), obd.Req(9, 2))
			if err != nil || len(rs) != 1 || string(rs[0].Data[3:]) != "LK6ADCE15PB405127" {
				t.Fatalf("VIN: %v %v", rs, err)
			}
			if _, err := a.Query(context.Background(), obd.Req(1, 0x0C)); err != nil {
				t.Fatal(err)
			}
		}
		if s.count("0902") != 1 || s.count("09023") != 2 || s.count("010C") != 1 || s.count("010C1") != 2 {
			t.Errorf("commands %q", s.commands()[len(initSeq):])
		}
	})
}

// TestQueryCountSuffixFallsShort: a second ECU that answered the first time is missing from a
// count-hinted answer. Under ATAT2 it may have been too slow, so the adapter goes back to
// ATAT1 and asks again with the digit; still missing, the request goes again without the
// digit and stays bare.
func TestQueryCountSuffixFallsShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		two := "7E804410C0CE4\r7E904410C0CE0\r\r>"
		r["010C"] = [][]step{say(two)}
		r["010C2"] = [][]step{say("7E804410C0CE4\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		for i := 0; i < 3; i++ {
			rs, err := a.Query(context.Background(), obd.Req(1, 0x0C))
			if err != nil || len(rs) != 2 || rs[1].ECU != "7E9" {
				t.Fatalf("query %d: %v %v", i, rs, err)
			}
		}
		if got := s.commands()[len(initSeq):]; !reflect.DeepEqual(got, []string{"010C", "010C2", "ATAT1", "010C2", "010C", "010C"}) {
			t.Errorf("commands %q", got)
		}
		if p := a.Profile(); p.AdaptiveTiming != 1 {
			t.Errorf("adaptive timing %d after an ECU went missing under ATAT2, want 1", p.AdaptiveTiming)
		}
	})
}

// TestLateFrames: frames of a slow second ECU arrive after the prompt (count digit satisfied
// early) and in front of the next answer; they are drained or dropped, never returned as
// the answer to the next request.
func TestLateFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		lb := &logBuf{}
		r["010C"] = [][]step{{w("7E804410C0CE4\r\r>"), pause(time.Millisecond), w("7E904410C0CE0\r\r")}}
		r["010D"] = [][]step{say("7E904410C0CE0\r7E803410D00\r\r>")}
		s := newScript(t, r)
		// net.Pipe has no buffer: the late write blocks until read, where a real port would
		// keep it. Listening a little before the next command reads it; the default (no
		// wait) is covered over a real pty by the simulator's late_second_ecu fault.
		o := testOptions(lb)
		o.DrainWait = 5 * time.Millisecond
		a := newAdapter(t, s, o)
		rs, err := a.Query(context.Background(), obd.Req(1, 0x0C))
		if err != nil || len(rs) != 1 {
			t.Fatalf("%v %v", rs, err)
		}
		rs, err = a.Query(context.Background(), obd.Req(1, 0x0D))
		if err != nil || len(rs) != 1 || rs[0].ECU != "7E8" || !reflect.DeepEqual(rs[0].Data, h("41 0D 00")) {
			t.Fatalf("next answer polluted: %v %v", rs, err)
		}
		if !strings.Contains(lb.String(), "stale") {
			t.Errorf("stale bytes not logged:\n%s", lb.String())
		}
	})
}

func TestStoppedRetriedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["010D"] = [][]step{say("STOPPED\r\r>"), say("7E803410D00\r\r>")}
		r["0105"] = [][]step{say("STOPPED\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		if rs, err := a.Query(context.Background(), obd.Req(1, 0x0D)); err != nil || len(rs) != 1 {
			t.Fatalf("%v %v", rs, err)
		}
		if s.count("010D") != 2 {
			t.Errorf("commands %q", s.commands())
		}
		_, err := a.Query(context.Background(), obd.Req(1, 0x05))
		if !isAdapterCode(err, CodeStopped) || s.count("0105") != 2 {
			t.Errorf("err %v after %d tries", err, s.count("0105"))
		}
	})
}

// TestClearDTCsNeverRetried: service 04 goes out as exactly "04" — no count digit even when
// the suffix works and was learned, no retry on STOPPED, DATA ERROR or a timeout.
func TestClearDTCsNeverRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["04"] = [][]step{say("7E80144\r\r>"), say("7E80144\r\r>"), say("STOPPED\r\r>"), say("DATA ERROR\r\r>"), {pause(time.Hour)}}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		for i := 0; i < 2; i++ {
			rs, err := a.Query(context.Background(), obd.Req(4))
			if err != nil || len(rs) != 1 || !reflect.DeepEqual(rs[0].Data, []byte{0x44}) {
				t.Fatalf("clear: %v %v", rs, err)
			}
		}
		for _, want := range []Code{CodeStopped, CodeDataError} {
			if _, err := a.Query(context.Background(), obd.Req(4)); !isAdapterCode(err, want) {
				t.Errorf("err = %v, want %v", err, want)
			}
		}
		if _, err := a.Query(context.Background(), obd.Req(4)); !errors.As(err, new(*TimeoutError)) {
			t.Errorf("err = %v, want a timeout", err)
		}
		for _, c := range s.commands() {
			if strings.HasPrefix(c, "04") && c != "04" {
				t.Errorf("sent %q", c)
			}
		}
		if n := s.count("04"); n != 5 {
			t.Errorf("04 sent %d times for 5 requests", n)
		}
	})
}

func TestLowVoltageResetReinitialises(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["0105"] = [][]step{say("LV RESET\r\r>"), say("7E80341057B\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		rs, err := a.Query(context.Background(), obd.Req(1, 0x05))
		if err != nil || len(rs) != 1 || !reflect.DeepEqual(rs[0].Data, h("41 05 7B")) {
			t.Fatalf("%v %v", rs, err)
		}
		if s.count("ATZ") != 2 || s.count("ATH1") != 2 {
			t.Errorf("no re-init: %q", s.commands())
		}
	})
}

func TestERRnnReinitialisesThenFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["0105"] = [][]step{say("ERR94\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		_, err := a.Query(context.Background(), obd.Req(1, 0x05))
		if !isAdapterCode(err, CodeInternal) || s.count("ATZ") != 3 {
			t.Errorf("err %v, ATZ sent %d times", err, s.count("ATZ"))
		}
	})
}

func TestNoData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["0A"] = [][]step{say("NO DATA\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		_, err := a.Query(context.Background(), obd.Req(0x0A))
		if !errors.Is(err, obd.ErrNoData) || errors.Is(err, obd.ErrNoVehicle) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestMultiPID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		// The transmission ECU supports only 0D of the four: its answer starts there.
		r["010C0D0511"] = [][]step{say("7E8100A410C0CE40D00\r7E903410D00\r7E821057B1126000000\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		rs, err := a.Query(context.Background(), obd.Req(1, 0x0C, 0x0D, 0x05, 0x11))
		want := []obd.Response{resp("7E8", "41 0C 0C E4 0D 00 05 7B 11 26"), resp("7E9", "41 0D 00")}
		if err != nil || !reflect.DeepEqual(rs, want) {
			t.Fatalf("got %s, %v; want %s", dump(rs), err, dump(want))
		}
	})
}

// TestMultiPIDStepDown: NO DATA to a batch is answered PID by PID, merged per ECU in request
// order; a batch that times out turns multi-PID off for the connection.
func TestMultiPIDStepDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["010C0D05"] = [][]step{say("NO DATA\r\r>")}
		r["010C"] = [][]step{say("7E904410C0CE0\r7E804410C0CE4\r\r>")}
		r["010D"] = [][]step{say("7E803410D00\r\r>")}
		r["0105"] = [][]step{say("7E90341057A\r7E80341057B\r\r>")}
		r["010C2"] = [][]step{say("7E904410C0CE0\r7E804410C0CE4\r\r>")}
		r["010D1"] = [][]step{say("7E803410D00\r\r>")}
		r["01052"] = [][]step{say("7E90341057A\r7E80341057B\r\r>")}
		r["010C0D"] = [][]step{{pause(time.Hour)}}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		rs, err := a.Query(context.Background(), obd.Req(1, 0x0C, 0x0D, 0x05))
		want := []obd.Response{resp("7E9", "41 0C 0C E0 05 7A"), resp("7E8", "41 0C 0C E4 0D 00 05 7B")}
		if err != nil || !reflect.DeepEqual(rs, want) {
			t.Fatalf("got %s, %v; want %s", dump(rs), err, dump(want))
		}
		if !a.Profile().MultiPID {
			t.Error("NO DATA turned multi-PID off")
		}
		rs, err = a.Query(context.Background(), obd.Req(1, 0x0C, 0x0D))
		if err != nil || len(rs) != 2 {
			t.Fatalf("%v %v", rs, err)
		}
		if a.Profile().MultiPID {
			t.Error("a batch timeout left multi-PID on")
		}
		before := len(s.commands())
		if _, err := a.Query(context.Background(), obd.Req(1, 0x0C, 0x0D)); err != nil {
			t.Fatal(err)
		}
		if got := s.commands()[before:]; !reflect.DeepEqual(got, []string{"010C2", "010D1"}) {
			t.Errorf("after step-down sent %q", got)
		}
	})
}

// TestDisconnectMidReply: the link breaks in the middle of a reply; the request fails with
// ErrDisconnected, the adapter reopens and re-initialises, and the next request works.
func TestDisconnectMidReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["0902"] = [][]step{{w("7E8101449020 14C4B36\r7E821"), hangup()}}
		s := newScript(t, r)
		reopened := 0
		o := testOptions(nil)
		o.Reopen = func(context.Context) (serialport.Port, error) {
			reopened++
			s.set("0902", say("7E8101449020 14C4B36\r7E82141444345313550\r7E82242343035313237\r\r>"))
			return s.start(), nil
		}
		a := newAdapter(t, s, o)
		_, err := a.Query(context.Background(), obd.Req(9, 2))
		if !errors.Is(err, ErrDisconnected) || !strings.Contains(err.Error(), "reconnected") {
			t.Fatalf("err = %v", err)
		}
		if reopened != 1 || s.count("ATZ") != 2 {
			t.Errorf("reopened %d times, ATZ %d", reopened, s.count("ATZ"))
		}
		rs, err := a.Query(context.Background(), obd.Req(9, 2))
		if err != nil || len(rs) != 1 {
			t.Fatalf("after reconnect: %v %v", rs, err)
		}
	})
}

// TestReopenFailsThenRecovers: while the dongle is unplugged, reopening fails; a later request
// reopens it.
func TestReopenFailsThenRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["010D"] = [][]step{{hangup()}}
		s := newScript(t, r)
		plugged := false
		o := testOptions(nil)
		o.Reopen = func(context.Context) (serialport.Port, error) {
			if !plugged {
				return nil, serialport.ErrNotFound
			}
			s.set("010D", say("7E803410D00\r\r>"))
			return s.start(), nil
		}
		a := newAdapter(t, s, o)
		if _, err := a.Query(context.Background(), obd.Req(1, 0x0D)); !errors.Is(err, ErrDisconnected) {
			t.Fatalf("err = %v", err)
		}
		if _, err := a.Query(context.Background(), obd.Req(1, 0x0D)); !errors.Is(err, serialport.ErrNotFound) {
			t.Fatalf("while unplugged: %v", err)
		}
		plugged = true
		if rs, err := a.Query(context.Background(), obd.Req(1, 0x0D)); err != nil || len(rs) != 1 {
			t.Fatalf("after replug: %v %v", rs, err)
		}
	})
}

func TestQueryHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["0902"] = [][]step{{pause(time.Hour)}}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		_, err := a.Query(ctx, obd.Req(9, 2))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("returned after %v of fake time, want 1s", d)
		}
	})
}

func TestQueryTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["0105"] = [][]step{{w("7E8"), pause(time.Hour)}}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		_, err := a.Query(context.Background(), obd.Req(1, 0x05))
		var te *TimeoutError
		if !errors.As(err, &te) || te.Raw != "7E8" || te.Command != "0105" {
			t.Errorf("err = %v", err)
		}
	})
}

func TestCloseEndsQuery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["0902"] = [][]step{{pause(time.Hour)}}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		time.AfterFunc(time.Second, func() { a.Close() })
		if _, err := a.Query(context.Background(), obd.Req(9, 2)); err == nil {
			t.Error("query survived Close")
		}
		if _, err := a.Query(context.Background(), obd.Req(9, 2)); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("query after Close: %v", err)
		}
	})
}
