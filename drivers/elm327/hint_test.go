package elm327

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/obdgw/obdgw/obd"
)

// TestExpectedFrames: the requester's hint becomes what an ELM327 counts: CAN frames (a
// single frame carries up to 7 bytes, a first frame 6, each consecutive frame 7) summed over
// the ECUs, or legacy messages; unknown figures or protocols give no digit.
func TestExpectedFrames(t *testing.T) {
	can := format{protocol: '6', headers: true}
	kline := format{protocol: '5', headers: true}
	for _, tc := range []struct {
		name string
		f    format
		x    []obd.Expect
		want int
	}{
		{"nothing expected", can, nil, 0},
		{"one PID, one ECU", can, []obd.Expect{{Len: 4}}, 1},
		{"single frame at its limit", can, []obd.Expect{{Len: 7}}, 1},
		{"first frame + one consecutive", can, []obd.Expect{{Len: 8}}, 2},
		{"first frame + one consecutive, full", can, []obd.Expect{{Len: 13}}, 2},
		{"VIN: 20 bytes", can, []obd.Expect{{Len: 20}}, 3},
		{"ECU name: 23 bytes", can, []obd.Expect{{Len: 23}}, 4},
		{"two ECUs, single and multi", can, []obd.Expect{{Len: 6}, {Len: 23}}, 5},
		{"two VINs", can, []obd.Expect{{Len: 20, Messages: 5}, {Len: 20, Messages: 5}}, 6},
		{"CAN length unknown for one ECU", can, []obd.Expect{{Len: 6}, {Messages: 1}}, 0},
		{"legacy VIN", kline, []obd.Expect{{Len: 20, Messages: 5}}, 5},
		{"legacy DTCs of two ECUs", kline, []obd.Expect{{Len: 10, Messages: 2}, {Len: 2, Messages: 1}}, 3},
		{"legacy count unknown", kline, []obd.Expect{{Len: 23}}, 0},
		{"protocol unknown", format{}, []obd.Expect{{Len: 4, Messages: 1}}, 0},
		{"ISO-TP length out of range", can, []obd.Expect{{Len: 5000}}, 0},
	} {
		if got := expectedFrames(tc.x, tc.f); got != tc.want {
			t.Errorf("%s: %d frames, want %d", tc.name, got, tc.want)
		}
	}
}

// TestHintBecomesDigit: on a first request (nothing learned) the hint goes out as the count
// digit; more than F frames, a 7-byte request or an adapter without the suffix get none.
func TestHintBecomesDigit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		vin := "7E8101449020131 3233\r7E821343536373839 41\r7E822424344454647 48\r"
		r["09023"] = [][]step{say(vin + "\r>")}
		r["09026"] = [][]step{say(vin + strings.ReplaceAll(vin, "7E8", "7E9") + "\r>")}
		r["010C0D2"] = [][]step{say("7E806410C0CE40D00\r7E903410D00\r\r>")}
		r["0101"] = [][]step{say("7E806410100076505\r\r>")}
		r["010C0D0511041F"] = [][]step{say("7E8100F410C0CE40D00\r7E821057B112604041F\r7E822012C\r\r>")}
		s := newScript(t, r)
		lb := &logBuf{}
		a := newAdapter(t, s, testOptions(lb))
		defer func() {
			if t.Failed() {
				t.Log(lb.String())
			}
		}()
		ctx := context.Background()
		if rs, err := a.Query(ctx, obd.Req(9, 2).Expecting(obd.Expect{Len: 20, Messages: 5})); err != nil || len(rs) != 1 || len(rs[0].Data) != 20 {
			t.Fatalf("0902 one ECU: %v %v (sent %q)", rs, err, s.commands())
		}
		// What the last answer taught (three frames, one ECU) wins over a hint for two.
		if rs, err := a.Query(ctx, obd.Req(9, 2).Expecting(obd.Expect{Len: 20}, obd.Expect{Len: 20})); err != nil || len(rs) != 1 {
			t.Fatalf("0902 learned: %v %v", rs, err)
		}
		a.learned = map[string]learnedCount{}
		if rs, err := a.Query(ctx, obd.Req(9, 2).Expecting(obd.Expect{Len: 20}, obd.Expect{Len: 20})); err != nil || len(rs) != 2 {
			t.Fatalf("0902 two ECUs: %v %v", rs, err)
		}
		// A two-PID batch: 7E8 answers both (6 bytes, one frame), 7E9 only 0D (3 bytes).
		if rs, err := a.Query(ctx, obd.Req(1, 0x0C, 0x0D).Expecting(obd.Expect{Len: 6}, obd.Expect{Len: 3})); err != nil || len(rs) != 2 {
			t.Fatalf("010C0D: %v %v", rs, err)
		}
		// Sixteen frames or more do not fit a digit.
		if _, err := a.Query(ctx, obd.Req(1, 1).Expecting(obd.Expect{Len: 6 + 15*7})); err != nil {
			t.Fatal(err)
		}
		// A 7-byte request has no room for the digit.
		if _, err := a.Query(ctx, obd.Req(1, 0x0C, 0x0D, 0x05, 0x11, 0x04, 0x1F).Expecting(obd.Expect{Len: 16})); err != nil {
			t.Fatal(err)
		}
		got := s.commands()[len(initSeq):]
		want := []string{"09023", "09023", "09026", "010C0D2", "0101", "010C0D0511041F"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("sent %q, want %q", got, want)
		}
	})
}

// TestHintLegacyMessages: on a K-line car the hint counts messages.
func TestHintLegacyMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["0100"] = [][]step{say("SEARCHING...\r486B104100BE3FA813E5\r\r>")}
		r["ATDPN"] = [][]step{say("A3\r\r>")}
		r["ATDP"] = [][]step{say("AUTO, ISO 9141-2\r\r>")}
		r["01001"] = [][]step{say("486B104100BE3FA813E5\r\r>")}
		r["09025"] = [][]step{say("486B104902010000004C01\r486B104902024B36414402\r486B104902034345313503\r486B104902045042343004\r486B104902053531323705\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		rs, err := a.Query(context.Background(), obd.Req(9, 2).Expecting(obd.Expect{Len: 20, Messages: 5}))
		if err != nil || len(rs) != 1 {
			t.Fatalf("%v %v", rs, err)
		}
		if got := s.commands()[len(s.commands())-1]; got != "09025" {
			t.Errorf("sent %q, want 09025", got)
		}
	})
}

// TestHintNeverOn04: a clear request goes out bare whatever hint it carries, exactly once,
// even though under ATAT2 one ECU fewer than the hint names answering would send any other
// request again.
func TestHintNeverOn04(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["04"] = [][]step{say("7E80144\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		req := obd.Request{Service: 4, Expect: []obd.Expect{{Len: 1, Messages: 1}, {Len: 1, Messages: 1}}}
		rs, err := a.Query(context.Background(), req)
		if err != nil || len(rs) != 1 {
			t.Fatalf("%v %v", rs, err)
		}
		if got := s.commands()[len(initSeq):]; !reflect.DeepEqual(got, []string{"04"}) {
			t.Errorf("sent %q, want one bare 04", got)
		}
	})
}

// TestHintTooSmall: the hint promised one frame, the ECU sent three codes in two frames. The
// adapter stopped after the first frame; the answer is incomplete, so the request goes again
// without a digit, and the cut-off frame that now stands in front of the repeated answer is
// dropped, not read as part of it.
func TestHintTooSmall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		lb := &logBuf{}
		r["031"] = [][]step{say("7E8100843030420 0171\r\r>")}
		r["03"] = [][]step{say("7E8210300AAAAAAAAAA\r7E8100843030420 0171\r7E8210300AAAAAAAAAA\r\r>")}
		r["010D"] = [][]step{say("7E803410D00\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(lb))
		rs, err := a.Query(context.Background(), obd.Req(3).Expecting(obd.Expect{Len: 6, Messages: 2}))
		if err != nil {
			t.Fatal(err)
		}
		want := []obd.Response{{ECU: "7E8", Data: h("43 03 04 20 01 71 03 00")}}
		if !reflect.DeepEqual(rs, want) {
			t.Errorf("got %v, want %v", rs, want)
		}
		if got := s.commands()[len(initSeq):]; !reflect.DeepEqual(got, []string{"031", "03"}) {
			t.Errorf("sent %q", got)
		}
		if !strings.Contains(lb.String(), "tail of an earlier answer") {
			t.Errorf("dropped frames not logged:\n%s", lb.String())
		}
		// The digit stays off for 03 from now on, and the next request is clean.
		if _, err := a.Query(context.Background(), obd.Req(3).Expecting(obd.Expect{Len: 6})); err != nil {
			t.Fatal(err)
		}
		if got := s.commands()[len(s.commands())-1]; got != "03" {
			t.Errorf("03 sent again as %q after its digit was dropped", got)
		}
	})
}

// TestLikelyHint: a hint marked Likely (the usual answer, not one the car has shown) goes out
// as the count digit, and a car that answers otherwise costs no more than a bare request
// would, and loses nothing:
//   - fewer answers than guessed after the adapter waited out its timeout (an ECU with
//     nothing to say) and NO DATA are answers, not asked again;
//   - an ECU missing once the adapter stopped at the count, or a message cut short, are
//     asked again once: with the count the answer showed (a cut message's first frame
//     announces its length; a missing ECU named in the guess is counted at its usual size),
//     else without the digit; the digit is not dropped for good (the adapter is fine), and
//     the next request uses the count that answer taught.
func TestLikelyHint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["0200002"] = [][]step{say("7E806420000 40000000\r\r>")}
		r["0A2"] = [][]step{say("NO DATA\r\r>")}
		// 07: the engine has three pending codes (two frames), so the count of two is
		// reached before the transmission answers.
		r["072"] = [][]step{say("7E81008470303000171\r7E82103000000000000\r\r>")}
		r["07"] = [][]step{say("7E81008470303000171\r7E82103000000000000\r7E9024700\r\r>")}
		r["073"] = [][]step{say("7E81008470303000171\r7E82103000000000000\r7E9024700\r\r>")}
		// 0906: two CVNs for one CALID: the engine's first frame and the transmission's
		// single frame make the count; the engine's answer is cut short.
		// The first frame announces 11 bytes (two frames), so the repeat asks for three.
		r["09062"] = [][]step{say("7E8100B4906023A9C0F\r7E9074906011F2E3D4C\r\r>")}
		// 03 (any service alike) with the ECUs named: the engine's two frames make the count
		// and the transmission is left out, so the repeat asks for the engine's two frames
		// and the one the transmission usually sends.
		r["032"] = [][]step{say("7E81008430303000171\r7E82103000000000000\r\r>")}
		r["033"] = [][]step{say("7E81008430303000171\r7E82103000000000000\r7E9024300\r\r>")}
		r["09063"] = [][]step{say("7E8215D000B7E21\r7E8100B4906023A9C0F\r7E9074906011F2E3D4C\r7E8215D000B7E21\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		ctx := context.Background()
		guess := func(service byte, n, size int, data ...byte) obd.Request {
			req := obd.Req(service, data...)
			for range n {
				req.Expect = append(req.Expect, obd.Expect{Len: size})
			}
			req.Likely = true
			return req
		}
		if rs, err := a.Query(ctx, guess(2, 2, 7, 0, 0)); err != nil || len(rs) != 1 || rs[0].ECU != "7E8" {
			t.Fatalf("020000: %v %v", rs, err)
		}
		if _, err := a.Query(ctx, guess(0x0A, 2, 2)); !errors.Is(err, obd.ErrNoData) {
			t.Fatalf("0A: %v, want NO DATA", err)
		}
		rs, err := a.Query(ctx, guess(7, 2, 2))
		if err != nil || len(rs) != 2 || !reflect.DeepEqual(rs[0].Data, h("47 03 03 00 01 71 03 00")) || !reflect.DeepEqual(rs[1].Data, h("47 00")) {
			t.Fatalf("07: %v %v", rs, err)
		}
		if _, err := a.Query(ctx, guess(7, 2, 2)); err != nil {
			t.Fatal(err)
		}
		named := guess(3, 2, 2)
		named.Expect[0].ECU, named.Expect[1].ECU = "7E8", "7E9"
		if rs, err := a.Query(ctx, named); err != nil || len(rs) != 2 || !reflect.DeepEqual(rs[1].Data, h("43 00")) {
			t.Fatalf("03: %v %v", rs, err)
		}
		rs, err = a.Query(ctx, guess(9, 2, 7, 6))
		if err != nil || len(rs) != 2 || !reflect.DeepEqual(rs[0].Data, h("49 06 02 3A 9C 0F 5D 00 0B 7E 21")) || rs[1].ECU != "7E9" {
			t.Fatalf("0906: %v %v", rs, err)
		}
		got := s.commands()[len(initSeq):]
		want := []string{"0200002", "0A2", "072", "07", "073", "032", "033", "09062", "09063"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("sent %q, want %q", got, want)
		}
	})
}

// TestLikelyHintSlowECU: under ATAT2 a guess came back without an ECU that is sure to answer
// (its bitmap names the PID) although the adapter had timed out short of the count: that ECU
// was too slow for the aggressive timing, not silent. The adapter goes back to ATAT1 and
// asks again. An ECU that may have nothing to say (02 00 00) missing changes nothing.
func TestLikelyHintSlowECU(t *testing.T) {
	// The CALIDs of elm327-obd.md §5, engine first.
	const engine04 = "7E81013490401434E47\r7E8213645434D2D3232\r7E82230354133313100\r"
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["0200002"] = [][]step{say("7E806420000 40000000\r\r>")}
		r["09042"] = [][]step{
			say(engine04 + "\r>"),
			say(engine04 + "7E91013490401544355\r7E92138415430333031\r7E9222D303030300000\r\r>"),
		}
		r["09046"] = r["09042"]
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		ctx := context.Background()
		guess := func(sure bool, size int, service byte, data ...byte) obd.Request {
			req := obd.Req(service, data...)
			for _, id := range []string{"7E8", "7E9"} {
				req.Expect = append(req.Expect, obd.Expect{ECU: id, Len: size, Answers: sure})
			}
			req.Likely = true
			return req
		}
		if rs, err := a.Query(ctx, guess(false, 7, 2, 0, 0)); err != nil || len(rs) != 1 {
			t.Fatalf("020000: %v %v", rs, err)
		}
		if p := a.Profile(); p.AdaptiveTiming != 2 {
			t.Fatalf("adaptive timing %d after a silent ECU, want 2", p.AdaptiveTiming)
		}
		rs, err := a.Query(ctx, guess(true, 19, 9, 4))
		if err != nil || len(rs) != 2 || rs[1].ECU != "7E9" {
			t.Fatalf("0904: %v %v; sent %q", rs, err, s.commands()[len(initSeq):])
		}
		if got, want := s.commands()[len(initSeq):], []string{"0200002", "09046", "ATAT1", "09046"}; !reflect.DeepEqual(got, want) {
			t.Errorf("sent %q, want %q", got, want)
		}
		if p := a.Profile(); p.AdaptiveTiming != 1 {
			t.Errorf("adaptive timing %d after a slow ECU, want 1", p.AdaptiveTiming)
		}
	})
}

// TestNoDigitSlowECU: an adapter that refuses the count digit keeps ATAT2 once 0100 without
// a digit brought every ECU at connect (every request waits out the timeout there, so the
// shorter wait matters most). A request whose hint names two ECUs that comes back with one
// sends it back to ATAT1, and the request goes again.
func TestNoDigitSlowECU(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["01001"] = [][]step{say("?\r\r>")}
		r["010D"] = [][]step{say("7E803410D00\r\r>"), say("7E803410D00\r7E903410D00\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		if p := a.Profile(); p.CountHint || p.AdaptiveTiming != 2 {
			t.Fatalf("profile %+v, want no count digit and ATAT2", p)
		}
		if got, want := s.commands()[len(initSeq)-3:], []string{"ATAT2", "01001", "0100", "01000C"}; !reflect.DeepEqual(got, want) {
			t.Errorf("connect ended with %q, want %q", got, want)
		}
		n := len(s.commands())
		two := obd.Req(1, 0x0D).Expecting(obd.Expect{ECU: "7E8", Len: 3}, obd.Expect{ECU: "7E9", Len: 3})
		if rs, err := a.Query(context.Background(), two); err != nil || len(rs) != 2 {
			t.Fatalf("010D: %v %v", rs, err)
		}
		if got, want := s.commands()[n:], []string{"010D", "ATAT1", "010D"}; !reflect.DeepEqual(got, want) {
			t.Errorf("sent %q, want %q", got, want)
		}
		if p := a.Profile(); p.AdaptiveTiming != 1 {
			t.Errorf("adaptive timing %d after a slow ECU, want 1", p.AdaptiveTiming)
		}
	})
}
