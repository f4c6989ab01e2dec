package elm327

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/obdgw/obdgw/obd"
)

// TestStaleLogRateLimited: a babbling adapter produces one warning per interval, and the next
// one says how many were held back.
func TestStaleLogRateLimited(t *testing.T) {
	lb := &logBuf{}
	now := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	a := &Adapter{log: slog.New(slog.NewTextHandler(lb, nil))}
	a.opts.Now = func() time.Time { return now }
	for i := 0; i < 50; i++ {
		a.logLimited("elm327: discarded stale bytes before a command")
		now = now.Add(100 * time.Millisecond)
	}
	if n := strings.Count(lb.String(), "stale"); n != 1 {
		t.Errorf("%d warnings in 5 s, want 1", n)
	}
	now = now.Add(staleLogEvery)
	a.logLimited("elm327: discarded stale bytes before a command")
	if !strings.Contains(lb.String(), "suppressed=49") {
		t.Errorf("suppressed count not reported:\n%s", lb.String())
	}
}

func TestLearnNeverOutOfRange(t *testing.T) {
	a := &Adapter{learned: map[string]learnedCount{}, noHint: map[string]bool{}}
	a.prof.CountHint = true
	for _, tc := range []struct {
		frames, want int
	}{{0, 0}, {1, 1}, {15, 15}, {16, 0}, {40, 0}} {
		a.learn("0908", reply{frames: tc.frames, responses: []obd.Response{{ECU: "7E8"}}})
		if got, _, _ := a.hintFor(obd.Req(9, 8)); got != tc.want {
			t.Errorf("%d frames → digit %d, want %d", tc.frames, got, tc.want)
		}
	}
	a.learn("04", reply{frames: 1, responses: []obd.Response{{ECU: "7E8"}}})
	a.learned["04"] = learnedCount{frames: 1, ecus: 1} // even if something stored one
	if got, _, _ := a.hintFor(obd.Req(4)); got != 0 {
		t.Errorf("service 04 got count digit %d", got)
	}
}

// TestMultiPIDBatches: more than six PIDs go out in batches of six, merged in request order.
func TestMultiPIDBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["01040506070C0D"] = [][]step{say("7E8100E410400057B06\r7E8218007800C0CE40D\r7E82200000000000000\r\r>")}
		r["0111"] = [][]step{say("7E803411126\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))
		rs, err := a.Query(context.Background(), obd.Req(1, 4, 5, 6, 7, 0x0C, 0x0D, 0x11))
		if err == nil && len(rs) == 1 {
			want := h("41 04 00 05 7B 06 80 07 80 0C 0C E4 0D 00 11 26")
			if !reflect.DeepEqual(rs[0].Data, want) {
				t.Errorf("got % X\nwant % X", rs[0].Data, want)
			}
		} else {
			t.Fatalf("%v %v (sent %q)", rs, err, s.commands()[len(initSeq):])
		}
	})
}

func TestErrorMessages(t *testing.T) {
	for _, c := range []string{"NO DATA", "UNABLE TO CONNECT", "BUS INIT: ...ERROR", "ERR94", "?"} {
		e := newError(classify(normalise(c)), "0100", "SEARCHING...\r"+c)
		msg := e.Error()
		if strings.HasSuffix(msg, ".") || !strings.HasPrefix(msg, "elm327: 0100: ") || msg != strings.ToLower(msg[:7])+msg[7:] {
			t.Errorf("bad style: %q", msg)
		}
		t.Log(msg)
	}
	t.Log((&TimeoutError{Command: "0100", Raw: "SEARCHING...\r"}).Error())
	t.Log((&FrameError{Command: "0902", Line: "7E8 22 42", Reason: "consecutive frame without a first frame"}).Error())
}

// TestDisconnectedIsAdapterLost: the scan stops on a broken link by obd.ErrAdapterLost, so the
// driver's own error must be it, wrapped or not.
func TestDisconnectedIsAdapterLost(t *testing.T) {
	if !errors.Is(fmt.Errorf("elm327: 0904: %w", ErrDisconnected), obd.ErrAdapterLost) {
		t.Error("ErrDisconnected is not obd.ErrAdapterLost")
	}
	if errors.Is(obd.ErrAdapterLost, ErrDisconnected) || errors.Is(ErrDisconnected, obd.ErrNoVehicle) {
		t.Error("ErrDisconnected matches more than it should")
	}
}
