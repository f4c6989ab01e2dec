package fga4100

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/drivers/rig"
)

func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(strings.ReplaceAll(s, "\n", ""), " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

const example = `7E 01 C6 38 7E 01 81 7D 00 00 00 00 00 00 00 00 00 00
30 31 32 33  30 30 34 35  30 31 34 36  30 30 30 35
30 32 31 30  30 31 30 31  30 38 31 35  30 38 35 33
BD`

// rig-protocols.md §2: request frames and the worked example.
func TestRequests(t *testing.T) {
	for _, tt := range []struct {
		p    []byte
		want string
	}{
		{PayloadData, "7E 01 F4 0A 7E 04 00 01 02 02 F6"},
		{PayloadPumpOn, "7E 01 F4 0A 7E 0A 00 01 0E 02 01 00 00 00 00 00 E3"},
		{PayloadPumpOff, "7E 01 F4 0A 7E 0A 00 01 0E 02 00 00 00 00 00 00 E4"},
		{PayloadZero, "7E 01 F4 0A 7E 04 00 01 16 45 9F"},
	} {
		if got := Request(tt.p); !bytes.Equal(got, hx(t, tt.want)) {
			t.Errorf("Request = % X, want %s", got, tt.want)
		}
	}
	// The control-reply preamble and echo frame pass INV.
	fr, err := SplitFrames(hx(t, "7E 01 C6 38 7E 01 81 7D 7E 0B 01 01 0E 00 00 01 00 00 00 00 00 E3"))
	if err != nil || len(fr) != 3 {
		t.Fatalf("control reply: %d frames, %v", len(fr), err)
	}
}

func TestDecodeWorkedExample(t *testing.T) {
	b := hx(t, example)
	d, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"hc": 123, "co": 0.45, "co2": 14.6, "o2": 0.5, "no": 210, "lambda": 1.01, "rpm": 815, "oil": 85.3}
	for k, w := range want {
		if d.V[k] != w {
			t.Errorf("%s = %v, want %v", k, d.V[k], w)
		}
	}
	if again := Encode(d.V); !bytes.Equal(again, b) {
		t.Errorf("re-encoded\n% X\nwant\n% X", again, b)
	}
}

func TestFieldPadding(t *testing.T) {
	for _, tt := range []struct {
		f    string
		want int
		ok   bool
	}{
		{"0123", 123, true}, {" 123", 123, true}, {"  -3", -3, true}, {"-003", -3, true}, {"+012", 12, true},
		{"12 3", 0, false}, {"    ", 0, false}, {"1a23", 0, false}, {"---1", 0, false}, {"   -", 0, false},
	} {
		n, ok := atoi([]byte(tt.f))
		if n != tt.want || ok != tt.ok {
			t.Errorf("atoi(%q) = %d, %v; want %d, %v", tt.f, n, ok, tt.want, tt.ok)
		}
	}
	// HC -3 ppm through a whole frame.
	d, err := Decode(Encode(map[string]float64{"hc": -3, "co": -0.02}))
	if err != nil || d.V["hc"] != -3 || d.V["co"] != -0.02 {
		t.Errorf("negative drift: %v %v", d.V, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	b := hx(t, example)
	b[50] = 0xBC
	var ce *rig.ChecksumError
	if _, err := Decode(b); !errors.As(err, &ce) || ce.Want != 0xBD {
		t.Errorf("checksum: %v", err)
	}
	var se *rig.ShortFrameError
	if _, err := Decode(b[:20]); !errors.As(err, &se) {
		t.Errorf("short: %v", err)
	}
	fixed := Encode(map[string]float64{})
	copy(fixed[18:], "1x23")
	var sum byte
	for _, c := range fixed[18:50] {
		sum += c
	}
	fixed[50] = ^sum // a good checksum over a field that does not parse
	var fe *rig.FrameError
	if _, err := Decode(fixed); !errors.As(err, &fe) || !strings.Contains(err.Error(), "hc") {
		t.Errorf("bad field: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(hx(f, example))
	f.Add(hx(f, "7E 01 C6 38 7E 01 81 7D 7E 0B 01 01 0E 00 00 01 00 00 00 00 00 E3"))
	f.Add([]byte{0x7E})
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := Decode(b); err == nil {
			_ = d.Reading()
		}
		_, _ = SplitFrames(b)
		_, _ = CheckFrame(b)
	})
}
