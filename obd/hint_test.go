package obd_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/obdgw/obdgw/obd"
	"github.com/obdgw/obdgw/obd/obdtest"
)

// TestScanHintsPetrol: every hint the scan works out matches, ECU for ECU, the answers the car
// then gives (one entry per answering ECU, each the length of its answer). The requests whose
// answer the scan cannot know beforehand carry the usual answer, marked Likely, for every ECU
// that may answer; only 0100 goes without any hint.
func TestScanHintsPetrol(t *testing.T) {
	script := petrolScript()
	pb := obdtest.New(t, script...)
	prof := obd.Profile{Version: "ELM327 v1.5", ProtocolNum: "6", CountHint: true, MultiPID: true}
	if _, err := obd.Scan(context.Background(), obdtest.Profiled{Playback: pb, P: prof}, obd.ScanOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	reqs := pb.Requests()
	if len(reqs) != len(script) {
		t.Fatalf("%d requests for a script of %d", len(reqs), len(script))
	}
	var unhinted []string
	likely := map[string]string{}
	sure := map[string]int{}
	for i, req := range reqs {
		if req.Expect == nil {
			unhinted = append(unhinted, req.String())
			continue
		}
		if req.Likely {
			var l []int
			for _, x := range req.Expect {
				l = append(l, x.Len)
				if x.Answers {
					sure[req.String()]++
				}
			}
			likely[req.String()] = fmt.Sprint(l)
			continue
		}
		var got, want []int
		for _, x := range req.Expect {
			got = append(got, x.Len)
		}
		for _, r := range script[i].Resps {
			want = append(want, len(r.Data))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: hinted answer lengths %v, the ECUs answered %v", req, got, want)
		}
	}
	// 0100 the adapter learned at connect. Who answers 02 00 00, and how many pending,
	// permanent codes, CALIDs, CVNs and IUPR counters come, nothing said beforehand: both
	// ECUs with two codes at most, one bitmap, one CALID; one CVN per CALID read; the engine
	// alone (its bitmap) with the 20-counter IUPR list.
	if want := []string{"0100"}; !slices.Equal(unhinted, want) {
		t.Errorf("requests without a hint %v, want %v", unhinted, want)
	}
	wantLikely := map[string]string{"07": "[2 2]", "0A": "[2 2]", "020000": "[7 7]", "0904": "[19 19]", "0906": "[7 7]", "0908": "[43]"}
	if !maps.Equal(likely, wantLikely) {
		t.Errorf("usual-answer hints %v, want %v", likely, wantLikely)
	}
	// Sure to answer: both ECUs to 07 (both answered 03) and to the 09 PIDs their bitmaps
	// name; nobody to 0A or 02 00 00, where silence is an answer.
	if want := map[string]int{"07": 2, "0904": 2, "0906": 2, "0908": 1}; !maps.Equal(sure, want) {
		t.Errorf("ECUs marked sure to answer %v, want %v", sure, want)
	}
	for _, req := range reqs {
		switch req.String() {
		case "0120", "0101", "020400":
			if req.Expect[0].Messages != 1 {
				t.Errorf("%s: legacy messages %d, want 1", req, req.Expect[0].Messages)
			}
		case "0902":
			if req.Expect[0].Messages != 5 {
				t.Errorf("0902: legacy messages %d, want 5 (§7)", req.Expect[0].Messages)
			}
		case "011C21314D4E", "01A60C0D05", "090A":
			for _, x := range req.Expect {
				if x.Messages != 0 {
					t.Errorf("%s: legacy messages %d for an answer with no legacy form known", req, x.Messages)
				}
			}
		}
	}
}

// TestScanHintsLegacyDTCs: on a K-line car the 03 hint counts messages, three codes each, from
// the DTC count 0101 gave.
func TestScanHintsLegacyDTCs(t *testing.T) {
	E, R := obdtest.Ex, obdtest.Resp
	script := []obdtest.Exchange{
		E("0100", R("10", "41 00 88 00 00 00")), // 01 05
		obdtest.ExErr("0900", obd.ErrNoData),
		obdtest.ExErr("0902", obd.ErrNoData),
		E("0101", R("10", "41 01 84 07 65 00")), // MIL, 4 codes
		E("03", obdtest.Legacy("10", "43 04 20 01 71 03 00", "43 24 63 00 00 00 00")...),
		E("07", obdtest.Legacy("10", "47 00 00 00 00 00 00")...),
		obdtest.ExErr("0A", obd.ErrNoData),
		obdtest.ExErr("020000", obd.ErrNoData),
	}
	script = withNoData(script, "0904", "0906", "090A", "0908", "090B")
	script = withNoData(append(script, E("0105", R("10", "41 05 7B"))), "0131", "01A6")
	pb := obdtest.New(t, script...)
	prof := obd.Profile{Version: "ELM327 v1.5", Protocol: "ISO 14230-4 KWP", ProtocolNum: "5", CountHint: true}
	rep, err := obd.Scan(context.Background(), obdtest.Profiled{Playback: pb, P: prof}, obd.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	hints := map[string]string{}
	for _, r := range pb.Requests() {
		hints[r.String()] = fmt.Sprint(r.Expect)
	}
	want := map[string]string{
		"0100": "[]", "0900": "[{10 6 1 false}]", "0101": "[{10 6 1 false}]", "03": "[{10 10 2 false}]", "07": "[]", "0A": "[]",
		"020000": "[]", "0105": "[{10 3 1 false}]",
	}
	for req, w := range want {
		if hints[req] != w {
			t.Errorf("%s: hint %s, want %s", req, hints[req], w)
		}
	}
	if len(rep.DTCs.Stored) != 4 {
		t.Errorf("stored %v", rep.DTCs.Stored)
	}
}

// TestLikelyCVNsFollowCALIDs: the usual CVN answer is one CVN per CALID the ECU reported, so
// an engine with two CALIDs is expected to send two CVNs (11 bytes: first frame and one
// consecutive frame).
func TestLikelyCVNsFollowCALIDs(t *testing.T) {
	two := obdtest.Ex("0904",
		obdtest.Resp("7E8", "49 04 02 43 4E 47 36 45 43 4D 2D 32 32 30 35 41 33 31 31 43 4E 47 36 45 43 4D 2D 32 32 30 35 41 33 31 32"),
		obdtest.Resp("7E9", "49 04 01 54 43 55 38 41 54 30 33 30 31 2D 30 30 30 30 00"))
	reqs := scanWith(t, replace(petrolScript(), "0904", two), canProfile, nil)
	for _, r := range reqs {
		if r.String() == "0906" && (!r.Likely || hinted(r) != "[11 7]") {
			t.Errorf("0906 hinted %s (likely %v), want [11 7]", hinted(r), r.Likely)
		}
	}
}
