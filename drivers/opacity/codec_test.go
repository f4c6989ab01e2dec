package opacity

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/drivers/rig"
)

func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func spec(t testing.TB, m string) Spec {
	t.Helper()
	s, err := Lookup(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rig-protocols.md §6.1–6.3, byte for byte.
func TestDecodeWorkedExamples(t *testing.T) {
	noOil := math.Inf(-1)
	tests := []struct {
		name, model, tx, rx string
		n, k, rpm, oil      float64
		computed            bool
	}{
		{"6.1 NHT-6 20%", "nht6", "A5 5B", "A5 00 C8 00 34 02 EE 01 62 0C", 20.0, 0.52, 750, 81, false},
		{"6.1 NHT-6 no oil sensor", "nht6", "A5 5B", "A5 01 C5 00 8C 09 4C FF FF B6", 45.3, 1.40, 2380, noOil, false},
		{"6.1 NHT-1L same frame", "nht1l", "A5 5B", "A5 00 C8 00 34 02 EE 01 62 0C", 20.0, 0.52, 750, 81, false},
		{"6.2 MQY-200", "mqy200", "A6 5A", "A6 01 5E 00 64 08 A2 01 69 83", 35.0, 1.00, 2210, 88, false},
		{"6.3 FTY-100 k from N", "fty100", "66 74 79 01 02 02 A8", "66 74 79 00 7D 01 5C 03 34 9C", 12.5, 0.311, 820, 75, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec(t, tt.model)
			if !bytes.Equal(s.RealTime, hx(t, tt.tx)) {
				t.Errorf("request = % X, want %s", s.RealTime, tt.tx)
			}
			d, err := Decode(s, hx(t, tt.rx))
			if err != nil {
				t.Fatal(err)
			}
			if d.NPct != tt.n || math.Abs(d.KM1-tt.k) > 1e-9 || d.RPM != tt.rpm {
				t.Errorf("N %v k %v rpm %v, want %v %v %v", d.NPct, d.KM1, d.RPM, tt.n, tt.k, tt.rpm)
			}
			if math.IsInf(tt.oil, -1) {
				if d.HasOil {
					t.Errorf("oil %v, want no sensor", d.OilC)
				}
			} else if !d.HasOil || d.OilC != tt.oil {
				t.Errorf("oil %v (has %v), want %v", d.OilC, d.HasOil, tt.oil)
			}
			r := d.Reading()
			if got := strings.Contains(strings.Join(r.Flags, ","), "k_computed_from_n"); got != tt.computed {
				t.Errorf("flags %v", r.Flags)
			}
			if r.OpacityPct == nil || r.KM1 == nil || *r.KM1 != d.KM1 {
				t.Errorf("reading %+v", r)
			}
		})
	}
}

func TestRequestsCarry2C(t *testing.T) {
	for _, tt := range []struct{ cmd, want string }{
		{"A5", "A5 5B"}, {"A1", "A1 5F"}, {"A6", "A6 5A"}, {"A9", "A9 57"}, {"A4", "A4 5C"},
		{"66 74 79 01 02 02", "66 74 79 01 02 02 A8"}, {"66 74 79 01 02 01", "66 74 79 01 02 01 A9"},
	} {
		if got := Request(hx(t, tt.cmd)...); !bytes.Equal(got, hx(t, tt.want)) {
			t.Errorf("Request(%s) = % X, want %s", tt.cmd, got, tt.want)
		}
	}
	for _, s := range Specs() {
		for _, req := range [][]byte{s.RealTime, s.Status, s.Zero, s.Max, s.ClearMax} {
			if req != nil && !bytes.Equal(Request(req[:len(req)-1]...), req) {
				t.Errorf("%s: request % X has a wrong 2C", s.Model, req)
			}
		}
	}
}

func TestStatusMaxNAK(t *testing.T) {
	nht := spec(t, "nht6")
	st, err := DecodeStatus(nht, hx(t, "A1 01 5E"))
	if err != nil || st.WarmingUp || st.Fault != "" {
		t.Errorf("status 1 = %+v, %v", st, err)
	}
	st, err = DecodeStatus(nht, Request(0xA1, 0x00))
	if err != nil || !st.WarmingUp {
		t.Errorf("status 0 = %+v, %v", st, err)
	}
	st, err = DecodeStatus(nht, Request(0xA1, 0x03))
	if err != nil || !strings.Contains(st.Fault, "measuring unit") {
		t.Errorf("status 3 = %+v, %v", st, err)
	}
	mx, err := DecodeMax(nht, hx(t, "A6 02 70 00 E3 0A 5A A1"))
	if err != nil || mx != (Max{NPct: 62.4, KM1: 2.27, RPM: 2650}) {
		t.Errorf("maxima = %+v, %v", mx, err)
	}
	var ne *rig.NAKError
	if _, err := Decode(nht, hx(t, "15 02")); !errors.As(err, &ne) || ne.Code != 2 || !bytes.Equal(ne.Frame, hx(t, "15 02")) {
		t.Errorf("NAK: %v", err)
	}
	fty := spec(t, "fty100")
	st, err = DecodeStatus(fty, hx(t, "66 74 79 04 00 00 A9"))
	if err != nil || st.WarmingUp {
		t.Errorf("fty status measuring = %+v, %v", st, err)
	}
	st, err = DecodeStatus(fty, hx(t, "66 74 79 02 00 00 AB"))
	if err != nil || !st.WarmingUp {
		t.Errorf("fty status warming = %+v, %v", st, err)
	}
}

func TestChecksumRules(t *testing.T) {
	bad := hx(t, "A5 00 C8 00 34 02 EE 01 62 0D")
	var ce *rig.ChecksumError
	if _, err := Decode(spec(t, "nht6"), bad); !errors.As(err, &ce) || ce.Want != 0x0C || ce.Got != 0x0D {
		t.Errorf("nht6 bad 2C: %v", err)
	}
	// FTY-100: kept, flagged.
	d, err := Decode(spec(t, "fty100"), hx(t, "66 74 79 00 7D 01 5C 03 34 9D"))
	if err != nil {
		t.Fatalf("fty100 mismatch must be kept: %v", err)
	}
	if d.ChecksumOK || !strings.Contains(strings.Join(d.Reading().Flags, ","), "checksum_unverified") {
		t.Errorf("fty100 mismatch not flagged: %+v", d)
	}
	var se *rig.ShortFrameError
	if _, err := Decode(spec(t, "mqy200"), hx(t, "A6 01 5E")); !errors.As(err, &se) {
		t.Errorf("short: %v", err)
	}
}

func TestKFromN(t *testing.T) {
	for _, tt := range []struct {
		n, k    float64
		clamped bool
	}{
		{0, 0, false},
		{20, 0.519, false},
		{12.5, 0.311, false},
		{50, 1.612, false},
		{-0.5, -0.012, false},
		{100, 16.065, true},
		{130, 16.065, true},
	} {
		k, c := KFromN(tt.n)
		if math.Abs(k-tt.k) > 1e-9 || c != tt.clamped {
			t.Errorf("KFromN(%v) = %v, %v; want %v, %v", tt.n, k, c, tt.k, tt.clamped)
		}
	}
	// FTY-100 frame with N = 100.0 %: clamped and flagged.
	s := spec(t, "fty100")
	d, err := Decode(s, Encode(s, 100, 0, 2400, 80))
	if err != nil {
		t.Fatal(err)
	}
	if !d.KClamped || math.IsInf(d.KM1, 0) || !strings.Contains(strings.Join(d.Reading().Flags, ","), "k_clamped") {
		t.Errorf("N 100: %+v", d)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, s := range Specs() {
		d, err := Decode(s, Encode(s, 45.3, 1.4, 2380, -300))
		if err != nil {
			t.Fatalf("%s: %v", s.Model, err)
		}
		if d.NPct != 45.3 || d.RPM != 2380 || d.HasOil {
			t.Errorf("%s: %+v", s.Model, d)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(0, hx(f, "A5 00 C8 00 34 02 EE 01 62 0C"))
	f.Add(2, hx(f, "A6 01 5E 00 64 08 A2 01 69 83"))
	f.Add(3, hx(f, "66 74 79 00 7D 01 5C 03 34 9C"))
	f.Add(0, hx(f, "15 02"))
	f.Add(1, hx(f, "A6 02 70 00 E3 0A 5A A1"))
	f.Add(3, []byte{})
	f.Fuzz(func(t *testing.T, i int, b []byte) {
		ss := Specs()
		s := ss[(i%len(ss)+len(ss))%len(ss)]
		if d, err := Decode(s, b); err == nil {
			if len(b) != s.ReplyLen {
				t.Fatalf("accepted %d bytes", len(b))
			}
			_ = d.Reading()
		}
		_, _ = DecodeMax(s, b)
		_, _ = DecodeStatus(s, b)
	})
}
