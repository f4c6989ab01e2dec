package obd_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/obd"
	"github.com/obdgw/obdgw/obd/obdtest"
)

// carMap answers each request it knows with its responses and everything else with NO DATA,
// as a car does; it records what was asked.
type carMap struct {
	p       obd.Profile
	answers map[string][]obd.Response
	sent    []string
}

func (c *carMap) Profile() obd.Profile { return c.p }
func (c *carMap) Query(_ context.Context, req obd.Request) ([]obd.Response, error) {
	c.sent = append(c.sent, req.String())
	if r, ok := c.answers[req.String()]; ok {
		return r, nil
	}
	return nil, obd.ErrNoData
}

func (c *carMap) count(req string) int {
	n := 0
	for _, s := range c.sent {
		if s == req {
			n++
		}
	}
	return n
}

func stepOf(t *testing.T, rep *obd.Report, name string) obd.Step {
	t.Helper()
	for _, s := range rep.Steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no step %s in %+v", name, rep.Steps)
	return obd.Step{}
}

func hasNote(s obd.Step, part string) bool {
	for _, n := range s.Notes {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}

// Mode 09 answers of a car that gives no 0900 bitmap (0900 draws NO DATA) but answers every
// item when asked: the behaviour a public ELM327 emulator's car model showed (its data is not
// used here: its licence keeps it out of this repository).
func noBitmapCar09() map[string][]obd.Response {
	return map[string][]obd.Response{
		"0100": {obdtest.Resp("7E8", "41 00 BE 3F A8 13")},
		"0101": {obdtest.Resp("7E8", "41 01 00 07 A1 00")},
		"03":   {obdtest.Resp("7E8", "43 00")},
		"07":   {obdtest.Resp("7E8", "47 00")},
		"0902": {obdtest.Resp("7E8", "49 02 01 4C 4B 36 41 44 43 45 31 35 50 42 34 30 35 31 32 37")},
		"0904": {obdtest.Resp("7E8", "49 04 02 47 57 30 43 41 4C 31 30 00 00 00 00 00 00 00 00 47 57 30 43 41 4C 32 30 00 00 00 00 00 00 00 00")},
		"0906": {obdtest.Resp("7E8", "49 06 02 1A 2B 3C 4D 5E 6F 70 81")},
		"090A": {obdtest.Resp("7E8", "49 0A 01 45 43 4D 00 2D 45 6E 67 69 6E 65 43 6F 6E 74 72 6F 6C 00 00")},
	}
}

// Item: Mode 09 without a 0900 bitmap. NO DATA, a negative answer, or an empty or zero
// bitmap to 0900 must not hide the VIN, CALIDs, CVNs and ECU name the car gives.
func TestScanMode09WithoutBitmap(t *testing.T) {
	for name, bitmap := range map[string][]obd.Response{
		"no data":         nil,
		"negative answer": {obdtest.Resp("7E8", "7F 09 12")},
		"zero bitmap":     {obdtest.Resp("7E8", "49 00 00 00 00 00")},
	} {
		t.Run(name, func(t *testing.T) {
			car := &carMap{p: obd.Profile{ProtocolNum: "6"}, answers: noBitmapCar09()}
			if bitmap != nil {
				car.answers["0900"] = bitmap
			}
			rep, err := obd.Scan(context.Background(), car, obd.ScanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.VIN != "LK6ADCE15PB405127" {
				t.Errorf("VIN %q, want LK6ADCE15PB405127", rep.VIN)
			}
			if len(rep.ECUs) != 1 {
				t.Fatalf("ECUs %+v", rep.ECUs)
			}
			e := rep.ECUs[0]
			if !reflect.DeepEqual(e.CALIDs, []string{"GW0CAL10", "GW0CAL20"}) || !reflect.DeepEqual(e.CVNs, []string{"1A2B3C4D", "5E6F7081"}) || e.Name != "ECM-EngineControl" {
				t.Errorf("CALIDs %q CVNs %q name %q", e.CALIDs, e.CVNs, e.Name)
			}
			if s := stepOf(t, rep, "supported_pids_09"); !hasNote(s, "no ECU gave a 0900 bitmap") {
				t.Errorf("supported_pids_09 %+v does not say the bitmap was missing", s)
			}
			for _, st := range []string{"vin", "calid", "cvn", "ecu_name"} {
				if s := stepOf(t, rep, st); s.Status != obd.StepOK || !hasNote(s, "without a 0900 bitmap") {
					t.Errorf("step %+v: want ok, noting the missing bitmap", s)
				}
			}
			for _, req := range []string{"0902", "0904", "0906", "090A", "0908", "090B"} {
				if n := car.count(req); n != 1 {
					t.Errorf("%s asked %d times, want once", req, n)
				}
			}
		})
	}
}

// Item: Mode 01 PIDs the daemon reads are asked even when no bitmap names them (a bitmap
// chain that stops early), each once.
func TestScanNeededPIDsWithoutBitmap(t *testing.T) {
	answers := noBitmapCar09()
	answers["0100"] = []obd.Response{obdtest.Resp("7E8", "41 00 08 18 00 00")} // 05 0C 0D, no 01, no next part
	answers["0101"] = []obd.Response{obdtest.Resp("7E8", "41 01 00 07 A1 00")}
	answers["0131"] = []obd.Response{obdtest.Resp("7E8", "41 31 00 32")}
	answers["01A6"] = []obd.Response{obdtest.Resp("7E8", "41 A6 00 01 23 45")}
	car := &carMap{p: obd.Profile{ProtocolNum: "6"}, answers: answers}
	rep, err := obd.Scan(context.Background(), car, obd.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OdometerKM == nil || *rep.OdometerKM != 7456.5 {
		t.Errorf("odometer %v, want 7456.5 km", rep.OdometerKM)
	}
	if rep.Readiness == nil || rep.MIL == nil {
		t.Errorf("readiness %v MIL %v: 0101 not read", rep.Readiness, rep.MIL)
	}
	found := false
	for _, v := range rep.Live {
		found = found || v.PID == 0x31 && v.Value == 50
	}
	if !found {
		t.Errorf("distance since codes cleared missing from %+v", rep.Live)
	}
	for _, req := range []string{"0101", "0131", "01A6"} {
		if n := car.count(req); n != 1 {
			t.Errorf("%s asked %d times, want once", req, n)
		}
	}
	if s := stepOf(t, rep, "context_pids"); !hasNote(s, "01A6 is in no 0100 bitmap") {
		t.Errorf("context_pids %+v does not note the PID asked without a bitmap", s)
	}
}

// Item: a frame that answers no request is noted and ignored; it neither fails the step nor
// hides the other ECUs' answers. An ECU that answered no bitmap is kept in the report.
func TestScanStrayFrames(t *testing.T) {
	answers := noBitmapCar09()
	answers["0900"] = []obd.Response{obdtest.Resp("7E8", "49 00 55 40 00 00")}
	// A 41 frame among the VIN answers, and a second ECU (not in 0100) with its own VIN.
	answers["0902"] = []obd.Response{
		obdtest.Resp("7E9", "41 0C 0C E4"),
		obdtest.Resp("7E8", "49 02 01 4C 4B 36 41 44 43 45 31 35 50 42 34 30 35 31 32 37"),
		obdtest.Resp("7EA", "49 02 01 4C 4B 36 41 44 43 45 31 35 50 42 34 30 35 31 32 37"),
	}
	// The odometer request answered by service 21 of another ECU (7EA), as an emulated car did.
	answers["01A6"] = []obd.Response{obdtest.Resp("7EA", "61 A6 00 01 23 45")}
	// CALIDs from an ECU that answered no bitmap.
	answers["0904"] = append(answers["0904"], obdtest.Resp("7E9", "49 04 01 54 43 55 38 41 54 30 33 30 31 2D 30 30 30 30 00"))
	car := &carMap{p: obd.Profile{ProtocolNum: "6"}, answers: answers}
	rep, err := obd.Scan(context.Background(), car, obd.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.VIN != "LK6ADCE15PB405127" {
		t.Errorf("VIN %q", rep.VIN)
	}
	vin := stepOf(t, rep, "vin")
	if vin.Status != obd.StepOK || !hasNote(vin, "ignored 41 0C 0C E4") {
		t.Errorf("vin step %+v: want ok with a note of the stray frame", vin)
	}
	ctx := stepOf(t, rep, "context_pids")
	if ctx.Status == obd.StepFailed || !hasNote(ctx, "ignored 61 A6 00 01 23 45") {
		t.Errorf("context_pids %+v: a stray frame failed the step or went unnoted", ctx)
	}
	if rep.OdometerKM != nil {
		t.Errorf("odometer %v read from an answer of another service", *rep.OdometerKM)
	}
	ids := map[string]obd.ECUReport{}
	for _, e := range rep.ECUs {
		ids[e.ID] = e
	}
	if e, ok := ids["7E9"]; !ok || !reflect.DeepEqual(e.CALIDs, []string{"TCU8AT0301-0000"}) {
		t.Errorf("ECU 7E9 (no bitmap) = %+v, %v", e, ok)
	}
	if e, ok := ids["7EA"]; !ok || e.VIN != "LK6ADCE15PB405127" {
		t.Errorf("ECU 7EA (no bitmap) = %+v, %v", e, ok)
	}
}

// Item: CALID and CVN answers without the item count byte decode whole, and a step that
// dropped data is never ok.
func TestScanMode09WithoutCountByte(t *testing.T) {
	answers := noBitmapCar09()
	answers["0900"] = []obd.Response{obdtest.Resp("7E8", "49 00 55 40 00 00")}
	// 0904 and 0906 answered without the count byte, as some ECUs do.
	answers["0904"] = []obd.Response{obdtest.Resp("7E8", "49 04 47 57 32 35 30 31 38 46")}
	answers["0906"] = []obd.Response{obdtest.Resp("7E8", "49 06 00 00 AB 12")}
	car := &carMap{p: obd.Profile{ProtocolNum: "6"}, answers: answers}
	rep, err := obd.Scan(context.Background(), car, obd.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := rep.ECUs[0]
	if !reflect.DeepEqual(e.CALIDs, []string{"GW25018F"}) || !reflect.DeepEqual(e.CVNs, []string{"0000AB12"}) {
		t.Errorf("CALIDs %q CVNs %q", e.CALIDs, e.CVNs)
	}
	for _, st := range []string{"calid", "cvn"} {
		if s := stepOf(t, rep, st); s.Status != obd.StepOK {
			t.Errorf("step %+v", s)
		}
	}

	// More CVNs than the count byte says: all kept, and the step is not ok.
	answers["0906"] = []obd.Response{obdtest.Resp("7E8", "49 06 01 1A 2B 3C 4D 5E 6F 70 81")}
	rep, err = obd.Scan(context.Background(), &carMap{p: obd.Profile{ProtocolNum: "6"}, answers: answers}, obd.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s := stepOf(t, rep, "cvn"); s.Status == obd.StepOK || !reflect.DeepEqual(rep.ECUs[0].CVNs, []string{"1A2B3C4D", "5E6F7081"}) {
		t.Errorf("cvn step %+v, CVNs %q: data beyond the count must be kept and flagged", s, rep.ECUs[0].CVNs)
	}
}

func TestMode09WithoutCountByte(t *testing.T) {
	for _, c := range []struct {
		name, data string
		fn         func([]byte) ([]string, error)
		want       []string
	}{
		{"calid 16", "49 04 " + asciiHex("JMB*36761500\x00\x00\x00\x00"), obd.DecodeCALIDs, []string{"JMB*36761500"}},
		{"calid short", "49 04 47 57 32 35 30 31 38 46", obd.DecodeCALIDs, []string{"GW25018F"}},
		{"calid with count", "49 04 01 " + asciiHex("JMB*36761500\x00\x00\x00\x00"), obd.DecodeCALIDs, []string{"JMB*36761500"}},
		{"cvn", "49 06 00 00 AB 12", obd.DecodeCVNs, []string{"0000AB12"}},
		{"two cvns", "49 06 1A 2B 3C 4D 5E 6F 70 81", obd.DecodeCVNs, []string{"1A2B3C4D", "5E6F7081"}},
		{"cvn with count", "49 06 01 00 00 AB 12", obd.DecodeCVNs, []string{"0000AB12"}},
	} {
		got, err := c.fn(obdtest.MustHex(c.data))
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	n, err := obd.DecodeECUName(obdtest.MustHex("49 0A 45 43 4D 00 2D 45 6E 67 69 6E 65 43 6F 6E 74 72 6F 6C 00 00"))
	if err != nil || n.String() != "ECM-EngineControl" {
		t.Errorf("ECU name without count = %+v, %v", n, err)
	}
}
