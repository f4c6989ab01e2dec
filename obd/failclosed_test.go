package obd_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/obd"
	"github.com/obdgw/obdgw/obd/obdtest"
)

// brokenAfter answers the requests of a script it has been given (the car as it answered up to
// the moment the bus broke) and every other request with err, the way an adapter that lost the
// bus after a good connect does: CAN ERROR, "?" or garbage to every request.
type brokenAfter struct {
	p    obd.Profile
	good map[string][]obd.Response
	err  error
}

func (a brokenAfter) Profile() obd.Profile { return a.p }
func (a brokenAfter) Query(ctx context.Context, req obd.Request) ([]obd.Response, error) {
	if r, ok := a.good[req.String()]; ok {
		return r, nil
	}
	return nil, a.err
}

// petrolUntil is the petrol car's answers to the requests named (MIL on, P0420 and P0171).
func petrolUntil(reqs ...string) map[string][]obd.Response {
	out := map[string][]obd.Response{}
	for _, ex := range petrolScript() {
		for _, r := range reqs {
			if ex.Req == r {
				out[r] = ex.Resps
			}
		}
	}
	return out
}

// The bug of issue 18: a car with MIL on, P0420 and P0171 behind an adapter that answers every
// request with an error after connecting came out as "MIL off, no codes". What was not read
// must be unknown, never "off" or "none", with the failed step next to it.
func TestScanFailedReadsAreUnknown(t *testing.T) {
	bitmaps := []string{"0100", "0120", "0140", "0160", "0180", "01A0", "0900"}
	for _, c := range []struct {
		name string
		good map[string][]obd.Response
		err  error
		// readiness is the status of the readiness step: failed, as 0101 is always asked.
		readiness string
	}{
		{"can error after the bitmaps", petrolUntil(bitmaps...), errors.New("elm327: 0101: can error: CAN trouble"), obd.StepFailed},
		{"? after the bitmaps", petrolUntil(bitmaps...), errors.New("elm327: 0101: command not understood"), obd.StepFailed},
		{"garbage after the bitmaps", petrolUntil(bitmaps...), errors.New(`elm327: 0101: unexpected reply "#%&!x"`), obd.StepFailed},
		// 0101 is asked even with no bitmap read (a bitmap never hides readiness): it fails too.
		{"can error from the first request", nil, errors.New("elm327: 0100: can error: CAN trouble"), obd.StepFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := brokenAfter{p: obd.Profile{ProtocolNum: "6", MultiPID: true}, good: c.good, err: c.err}
			rep, err := obd.Scan(context.Background(), a, obd.ScanOptions{Lang: "en"})
			if err != nil {
				t.Fatalf("scan: %v (the adapter errors are per request, the scan goes on)", err)
			}
			if rep.MIL != nil {
				t.Errorf("MIL = %v, want unknown (nil)", *rep.MIL)
			}
			if rep.Readiness != nil {
				t.Errorf("readiness = %+v, want unknown (nil)", *rep.Readiness)
			}
			for name, l := range map[string][]obd.DTC{"stored": rep.DTCs.Stored, "pending": rep.DTCs.Pending, "permanent": rep.DTCs.Permanent} {
				if l != nil {
					t.Errorf("DTCs %s = %v, want unknown (nil)", name, l)
				}
			}
			got := map[string]obd.Unread{}
			for _, u := range rep.Unread {
				got[u.Item] = u
			}
			for item, step := range map[string]string{"mil": "readiness", "readiness": "readiness", "dtcs_stored": "dtcs_stored", "dtcs_pending": "dtcs_pending", "dtcs_permanent": "dtcs_permanent"} {
				u, ok := got[item]
				if !ok {
					t.Errorf("unread lacks %s: %+v", item, rep.Unread)
					continue
				}
				want := obd.StepFailed
				if step == "readiness" {
					want = c.readiness
				}
				if u.Step != step || u.Status != want || !strings.Contains(u.Reason, c.err.Error()) {
					t.Errorf("unread %s = %+v, want step %s %s with the adapter's error %q", item, u, step, want, c.err)
				}
			}

			// JSON (what `obdgw scan --json` prints): null, never false or [].
			var doc struct {
				MIL       json.RawMessage            `json:"mil"`
				Readiness json.RawMessage            `json:"readiness"`
				DTCs      map[string]json.RawMessage `json:"dtcs"`
				Unread    []map[string]any           `json:"unread"`
			}
			b, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			if string(doc.MIL) != "null" || string(doc.Readiness) != "null" {
				t.Errorf("JSON mil %s readiness %s, want null", doc.MIL, doc.Readiness)
			}
			for _, k := range []string{"stored", "pending", "permanent"} {
				if string(doc.DTCs[k]) != "null" {
					t.Errorf("JSON dtcs.%s = %s, want null", k, doc.DTCs[k])
				}
			}
			if len(doc.Unread) != 5 {
				t.Errorf("JSON unread = %v, want the five items", doc.Unread)
			}

			for _, lang := range []string{"en", "zh"} {
				var text strings.Builder
				if err := rep.WriteText(&text, lang); err != nil {
					t.Fatal(err)
				}
				out := text.String()
				unknown := map[string]string{"en": "unknown (step failed", "zh": "未知（步骤失败"}[lang]
				if c.readiness == obd.StepSkipped {
					unknown = map[string]string{"en": "unknown (", "zh": "未知（"}[lang]
				}
				for _, bad := range map[string][]string{"en": {"  none", " off"}, "zh": {"  无\n", "熄灭"}}[lang] {
					if strings.Contains(out, bad) {
						t.Errorf("%s text says %q for what was not read:\n%s", lang, bad, out)
					}
				}
				if n := strings.Count(out, unknown); n < 3 {
					t.Errorf("%s text says %q %d times, want MIL, codes and readiness unknown:\n%s", lang, unknown, n, out)
				}
			}
		})
	}
}

// A good scan of the same car stays as it was: MIL on, both stored codes, readiness read,
// nothing unread.
func TestScanCompleteHasNoUnread(t *testing.T) {
	pb := obdtest.New(t, petrolScript()...)
	rep, err := obd.Scan(context.Background(), obdtest.Profiled{Playback: pb, P: obd.Profile{ProtocolNum: "6", MultiPID: true}}, obd.ScanOptions{Lang: "en"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.MIL == nil || !*rep.MIL {
		t.Errorf("MIL = %v, want on", rep.MIL)
	}
	var codes []string
	for _, d := range rep.DTCs.Stored {
		codes = append(codes, d.Code)
	}
	if strings.Join(codes, " ") != "P0420 P0171" {
		t.Errorf("stored = %v", codes)
	}
	if rep.DTCs.Permanent == nil || len(rep.DTCs.Permanent) != 0 {
		t.Errorf("permanent = %#v, want read and empty (the car refused 0A: not supported)", rep.DTCs.Permanent)
	}
	if rep.Readiness == nil || len(rep.Readiness.Incomplete) != 2 {
		t.Errorf("readiness = %+v", rep.Readiness)
	}
	if len(rep.Unread) != 0 {
		t.Errorf("unread = %+v, want none", rep.Unread)
	}
	var text strings.Builder
	if err := rep.WriteText(&text, "en"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text.String(), "unknown") || !strings.Contains(text.String(), "MIL       ON") {
		t.Errorf("text:\n%s", text.String())
	}
}
