package elm327

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/obdgw/obdgw/obd"
)

// TestStrayFrames: a frame that answers another request (an emulated hybrid car answers 01A6
// with "61 A6 …" from 7EA) is no failure: alone it is NO DATA, among answers it is
// dropped; either way Strays names it.
func TestStrayFrames(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := genuine()
		r["01A6"] = [][]step{say("7EA 06 61 A6 00 01 23 45 \r\r>")}
		r["0902"] = [][]step{say("7E9 04 41 0C 0C E4\r7E8 10 14 49 02 01 4C 4B 36\r7E8 21 41 44 43 45 31 35 50\r7E8 22 42 34 30 35 31 32 37\r\r>")}
		s := newScript(t, r)
		a := newAdapter(t, s, testOptions(nil))

		rs, err := a.Query(context.Background(), obd.Req(0x01, 0xA6))
		if !errors.Is(err, obd.ErrNoData) || len(rs) != 0 {
			t.Errorf("01A6 answered only by 61 A6: %v, %v; want NO DATA", rs, err)
		}
		if st := a.Strays(); len(st) != 1 || st[0].ECU != "7EA" || st[0].Data[0] != 0x61 {
			t.Errorf("strays %v", st)
		}

		rs, err = a.Query(context.Background(), obd.Req(0x09, 0x02))
		if err != nil || len(rs) != 1 || rs[0].ECU != "7E8" {
			t.Fatalf("0902: %v, %v", rs, err)
		}
		if st := a.Strays(); len(st) != 1 || st[0].ECU != "7E9" || st[0].Data[0] != 0x41 {
			t.Errorf("strays %v", st)
		}
	})
}

// TestLegacyStrayLine: on a K-line car a 41 line from the ECU among its 49 lines was joined
// into the VIN and failed the answer ("lines of different services"); it is set aside.
func TestLegacyStrayLine(t *testing.T) {
	lines := []string{"486B10410C0CE400", "486B104902010000004CD0", "486B104902024B364144A1", "486B1049020343453135F1", "486B104902045042343093", "486B1049020535313237D4"}
	r, err := parseReply(lines, format{protocol: '3', headers: true}, "0902")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.responses) != 1 || len(r.strays) != 1 || r.strays[0].Data[0] != 0x41 {
		t.Fatalf("responses %s strays %s", dump(r.responses), dump(r.strays))
	}
	if vin, err := obd.DecodeVIN(r.responses[0].Data); err != nil || vin != "LK6ADCE15PB405127" {
		t.Errorf("VIN %q, %v", vin, err)
	}
}
