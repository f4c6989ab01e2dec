package obd_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/obdgw/obdgw/obd"
	"github.com/obdgw/obdgw/obd/obdtest"
)

var canProfile = obd.Profile{Version: "ELM327 v1.5", ProtocolNum: "6", CountHint: true, MultiPID: true}

// scanWith runs one scan of script with mem and returns the requests as the adapter saw them.
func scanWith(t *testing.T, script []obdtest.Exchange, prof obd.Profile, mem obd.Memory) []obd.Request {
	t.Helper()
	pb := obdtest.New(t, script...)
	if _, err := obd.Scan(context.Background(), obdtest.Profiled{Playback: pb, P: prof}, obd.ScanOptions{Memory: mem}); err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	return pb.Requests()
}

// hinted lists the lengths a request was hinted with; answered, those of a scripted answer.
func hinted(req obd.Request) string {
	var l []string
	for _, x := range req.Expect {
		l = append(l, fmt.Sprint(x.Len))
	}
	slices.Sort(l)
	return fmt.Sprint(l)
}

func answered(ex obdtest.Exchange) string {
	var l []string
	for _, r := range ex.Resps {
		l = append(l, fmt.Sprint(len(r.Data)))
	}
	slices.Sort(l)
	return fmt.Sprint(l)
}

// unhinted lists the requests sized by nothing the car said, now or on an earlier visit: no
// hint, or only the usual answer (Likely).
func unhinted(reqs []obd.Request) []string {
	var out []string
	for _, r := range reqs {
		if r.Expect == nil || r.Likely {
			out = append(out, r.String())
		}
	}
	return out
}

// TestMemorySizesAReturningCar: the second scan of the petrol car sizes every answer — 0100
// alone goes without a hint (nothing names the car before it) — and each size it gives is the
// size the car then answers with.
func TestMemorySizesAReturningCar(t *testing.T) {
	mem := &obd.MapMemory{}
	script := petrolScript()
	first := scanWith(t, script, canProfile, mem)
	if got, want := unhinted(first), []string{"0100", "07", "0A", "020000", "0904", "0906", "0908"}; !slices.Equal(got, want) {
		t.Fatalf("first visit: requests without a hint %v, want %v", got, want)
	}
	a, ok := mem.Recall("LK6ADCE15PB405127")
	if !ok {
		t.Fatal("nothing remembered of the car")
	}
	if !slices.Equal(a.ECUs, []string{"7E8", "7E9"}) || len(a.Requests) != 6 {
		t.Errorf("remembered %+v", a)
	}
	if got := fmt.Sprint(a.Requests["0904"]); got != "[{7E8 19} {7E9 19}]" {
		t.Errorf("0904 remembered as %s", got)
	}

	second := scanWith(t, script, canProfile, mem)
	if got := unhinted(second); !slices.Equal(got, []string{"0100"}) {
		t.Errorf("returning car: requests without a hint %v, want only 0100", got)
	}
	for i, req := range second {
		if req.Expect != nil && hinted(req) != answered(script[i]) {
			t.Errorf("%s: hinted %s, the ECUs answered %s", req, hinted(req), answered(script[i]))
		}
	}
}

// replace returns script with the exchange for req swapped for ex.
func replace(script []obdtest.Exchange, req string, ex obdtest.Exchange) []obdtest.Exchange {
	out := slices.Clone(script)
	for i := range out {
		if out[i].Req == req {
			out[i] = ex
			return out
		}
	}
	panic("no exchange " + req)
}

// TestMemoryFreezeFrameResponders: who answers 02 00 00 follows the codes. The transmission
// stayed silent last time; with other codes today it may hold a frame now, so 02 00 00 goes
// without a hint. With the same codes as then, its silence is trusted again.
func TestMemoryFreezeFrameResponders(t *testing.T) {
	mem := &obd.MapMemory{}
	scanWith(t, petrolScript(), canProfile, mem)

	// Today the transmission also has a pending code.
	changed := replace(petrolScript(), "07", obdtest.Ex("07", obdtest.CAN("7E8 04 47 01 03 00", "7E9 06 47 02 07 00 07 30")...))
	reqs := scanWith(t, changed, canProfile, mem)
	for _, r := range reqs {
		switch r.String() {
		case "020000":
			if !r.Likely || hinted(r) != "[7 7]" {
				t.Errorf("020000 hinted %v (likely %v) although 7E9's codes changed; want the usual answer of both ECUs", r.Expect, r.Likely)
			}
		case "07":
			// The remembered size of 07 is a guess, and sent as one: an adapter that stops
			// early sees the cut-short message and asks again.
			if r.Likely || hinted(r) != "[4 4]" {
				t.Errorf("07 hinted %s, want the remembered [4 4]", hinted(r))
			}
		}
	}
	// That scan remembered today's 07 and codes; the same codes again make 020000 sized.
	reqs = scanWith(t, changed, canProfile, mem)
	for _, r := range reqs {
		if r.String() == "020000" && hinted(r) != "[7]" {
			t.Errorf("020000 hinted %s, want [7] (the engine alone, as last time)", hinted(r))
		}
		if r.String() == "07" && hinted(r) != "[4 6]" {
			t.Errorf("07 hinted %s, want [4 6]", hinted(r))
		}
	}
}

// TestMemoryOtherECUs: a car whose ECUs differ from the remembered ones (a module swapped, a
// VIN read wrongly) gets no remembered sizes at all.
func TestMemoryOtherECUs(t *testing.T) {
	mem := &obd.MapMemory{}
	scanWith(t, petrolScript(), canProfile, mem)
	a, _ := mem.Recall("LK6ADCE15PB405127")
	a.ECUs = []string{"7E8", "7EA"}
	mem.Remember("LK6ADCE15PB405127", a)
	reqs := scanWith(t, petrolScript(), canProfile, mem)
	if got, want := unhinted(reqs), []string{"0100", "07", "0A", "020000", "0904", "0906", "0908"}; !slices.Equal(got, want) {
		t.Errorf("requests without a hint %v, want %v", got, want)
	}
	if a, _ := mem.Recall("LK6ADCE15PB405127"); !slices.Equal(a.ECUs, []string{"7E8", "7E9"}) {
		t.Errorf("the scan did not replace the stale memory: %v", a.ECUs)
	}
}

// TestMemoryForgetsWhatNobodyAnswers: a request answered last time and NO DATA today is
// dropped from memory rather than kept as a size that is now wrong.
func TestMemoryForgetsWhatNobodyAnswers(t *testing.T) {
	mem := &obd.MapMemory{}
	scanWith(t, petrolScript(), canProfile, mem)
	scanWith(t, replace(petrolScript(), "0A", obdtest.ExErr("0A", obd.ErrNoData)), canProfile, mem)
	a, _ := mem.Recall("LK6ADCE15PB405127")
	if _, ok := a.Requests["0A"]; ok {
		t.Errorf("0A still remembered: %v", a.Requests["0A"])
	}
	if _, ok := a.Requests["0904"]; !ok {
		t.Errorf("0904 forgotten too")
	}
}

// TestMemoryNotForLegacy: K-line answers carry no length, so nothing is remembered of them.
func TestMemoryNotForLegacy(t *testing.T) {
	E, R := obdtest.Ex, obdtest.Resp
	script := []obdtest.Exchange{
		E("0100", R("10", "41 00 88 00 00 00")),
		E("0900", R("10", "49 00 40 00 00 00")),
		E("0902", obdtest.Legacy("10", "49 02 01 00 00 00 4C", "49 02 02 4B 36 41 44", "49 02 03 43 45 31 35", "49 02 04 50 42 34 30", "49 02 05 35 31 32 37")...),
		E("0101", R("10", "41 01 00 07 65 00")),
		E("03", obdtest.Legacy("10", "43 00 00 00 00 00 00")...),
		E("07", obdtest.Legacy("10", "47 00 00 00 00 00 00")...),
		obdtest.ExErr("0A", obd.ErrNoData),
		obdtest.ExErr("020000", obd.ErrNoData),
		obdtest.ExErr("0904", obd.ErrNoData), obdtest.ExErr("0906", obd.ErrNoData), // in no bitmap: asked all the same
		E("0105", R("10", "41 05 7B")),
		obdtest.ExErr("0131", obd.ErrNoData), obdtest.ExErr("01A6", obd.ErrNoData),
	}
	mem := &obd.MapMemory{}
	prof := obd.Profile{Version: "ELM327 v1.5", ProtocolNum: "5", CountHint: true}
	scanWith(t, script, prof, mem)
	if a, ok := mem.Recall("LK6ADCE15PB405127"); ok {
		t.Errorf("remembered a K-line car: %+v", a)
	}
}

// TestMemoryNotAfterAStoppedScan: a scan that stopped half-way (the car went away) leaves the
// memory as it was.
func TestMemoryNotAfterAStoppedScan(t *testing.T) {
	mem := &obd.MapMemory{}
	script := petrolScript()
	for i, ex := range script {
		if ex.Req == "0904" {
			script = append(script[:i:i], obdtest.ExErr("0904", obd.ErrNoVehicle))
			break
		}
	}
	pb := obdtest.New(t, script...)
	if _, err := obd.Scan(context.Background(), obdtest.Profiled{Playback: pb, P: canProfile}, obd.ScanOptions{Memory: mem}); err == nil {
		t.Fatal("the scan went on without the car")
	}
	if a, ok := mem.Recall("LK6ADCE15PB405127"); ok {
		t.Errorf("a stopped scan was remembered: %+v", a)
	}
}
