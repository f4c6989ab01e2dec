package nanhua

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
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func spec(t testing.TB, model string) Spec {
	t.Helper()
	s, err := Lookup(model, "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type want map[Channel]float64

// The worked examples of rig-protocols.md §1.3 and §3, byte for byte.
func TestDecodeWorkedExamples(t *testing.T) {
	tests := []struct {
		name   string
		model  string
		cmd    byte
		rx     string
		want   want
		status byte
		flags  []string
	}{
		{
			name: "1.3A NHA-503 running engine", model: "nha503", cmd: 0x81,
			rx:   "06 00 7B 00 2D 05 B4 00 34 00 D2 03 2F 03 55 01 90 00 00 65 ED",
			want: want{HC: 123, CO: 0.45, CO2: 14.60, O2: 0.52, NO: 210, RPM: 815, Oil: 85.3, Flow: 400, Lambda: 1.01},
		},
		{
			name: "1.3B NHA-503 ambient air negative drift", model: "nha503", cmd: 0x81,
			rx:     "06 FF FD FF FE 00 02 08 2A 00 00 00 00 00 D7 01 7C 01 00 00 88",
			want:   want{HC: -3, CO: -0.02, CO2: 0.02, O2: 20.90, NO: 0, RPM: 0, Oil: 21.5, Flow: 380, Lambda: 0},
			status: 0x01, flags: []string{"o2_sensor_aged"},
		},
		{
			name: "1.3C NHA-506I", model: "nha506", cmd: 0x01,
			rx:   "06 00 5F 00 26 05 C3 00 29 00 B4 09 B0 00 58 01 8B 00 00 64 31",
			want: want{HC: 95, CO: 0.38, CO2: 14.75, O2: 0.41, NO: 180, RPM: 2480, Oil: 88, Flow: 395, Lambda: 1.00},
		},
		{
			name: "1.3C FLA-502", model: "fla502", cmd: 0x01,
			rx:   "06 00 5F 00 26 05 C3 00 29 00 B4 09 B0 00 58 01 8B 00 00 64 31",
			want: want{HC: 95, CO: 0.038, CO2: 14.75, O2: 0.41, NO: 180, RPM: 2480, Oil: 8.8, Flow: 395, Lambda: 1.00},
		},
		{
			name: "3 MQW-511", model: "mqw511", cmd: 0x03,
			rx:   "06 00 7B 00 2D 05 B4 00 34 00 D2 03 2F 00 55 00 65 00 59",
			want: want{HC: 123, CO: 0.45, CO2: 14.60, O2: 0.52, NO: 210, RPM: 815, Oil: 85, Lambda: 1.01},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec(t, tt.model)
			if s.DataCmd != tt.cmd {
				t.Errorf("data command = %02X, want %02X", s.DataCmd, tt.cmd)
			}
			b := hx(t, tt.rx)
			d, err := Decode(s, b)
			if err != nil {
				t.Fatal(err)
			}
			if !d.ChecksumOK {
				t.Error("checksum reported bad")
			}
			for c := Channel(0); c < numChannels; c++ {
				w, ok := tt.want[c]
				got, has := d.Get(c)
				if has != ok {
					t.Errorf("%v present = %v, want %v", c, has, ok)
					continue
				}
				if ok && got != w {
					t.Errorf("%v = %v, want %v", c, got, w)
				}
			}
			if d.Status != tt.status {
				t.Errorf("status = %02X, want %02X", d.Status, tt.status)
			}
			r := d.Reading(s)
			if strings.Join(r.Flags, ",") != strings.Join(tt.flags, ",") {
				t.Errorf("flags = %v, want %v", r.Flags, tt.flags)
			}
			if r.HCppm == nil || *r.HCppm != tt.want[HC] {
				t.Errorf("reading HC = %v, want %v", r.HCppm, tt.want[HC])
			}
			// Encoding the decoded values gives the same bytes back (flow and status included).
			if again := Encode(s, d.Values, d.Status); tt.model != "mqw511" && !bytes.Equal(again, b) {
				t.Errorf("re-encoded\n% X\nwant\n% X", again, b)
			}
		})
	}
}

func TestHCMinusThreeIsNotUnsigned(t *testing.T) {
	d, err := Decode(spec(t, "nha503"), hx(t, "06 FF FD FF FE 00 02 08 2A 00 00 00 00 00 D7 01 7C 01 00 00 88"))
	if err != nil {
		t.Fatal(err)
	}
	if hc, _ := d.Get(HC); hc != -3 {
		t.Fatalf("HC = %v, want -3 (65533 means the word was read unsigned)", hc)
	}
}

func TestDecodeErrors(t *testing.T) {
	s := spec(t, "nha503")
	good := hx(t, "06 00 7B 00 2D 05 B4 00 34 00 D2 03 2F 03 55 01 90 00 00 65 ED")
	bad := append([]byte(nil), good...)
	bad[20] = 0xEE
	var ce *rig.ChecksumError
	if _, err := Decode(s, bad); !errors.As(err, &ce) || ce.Want != 0xED || ce.Got != 0xEE || !bytes.Equal(ce.Frame, bad) {
		t.Errorf("bad checksum: err = %v", err)
	}
	var se *rig.ShortFrameError
	if _, err := Decode(s, good[:12]); !errors.As(err, &se) || se.Want != 21 || len(se.Frame) != 12 {
		t.Errorf("short: err = %v", err)
	}
	if _, err := Decode(s, []byte{0x05}); !errors.Is(err, rig.ErrBusy) {
		t.Errorf("busy: err = %v, want ErrBusy", err)
	}
	var ne *rig.NAKError
	if _, err := Decode(s, []byte{0x15}); !errors.As(err, &ne) {
		t.Errorf("nak: err = %v", err)
	}
	var fe *rig.FrameError
	if _, err := Decode(s, append([]byte{0x42}, good[1:]...)); !errors.As(err, &fe) {
		t.Errorf("garbage lead byte: err = %v", err)
	}
	// MQW-511: the public drivers do not check the checksum; a mismatch is kept and flagged.
	m := spec(t, "mqw511")
	mb := hx(t, "06 00 7B 00 2D 05 B4 00 34 00 D2 03 2F 00 55 00 65 00 58")
	d, err := Decode(m, mb)
	if err != nil {
		t.Fatalf("mqw511 with bad checksum: %v, want the frame kept", err)
	}
	if d.ChecksumOK {
		t.Error("mqw511 mismatch not reported")
	}
	if r := d.Reading(m); !strings.Contains(strings.Join(r.Flags, ","), "checksum_unverified") {
		t.Errorf("flags = %v", r.Flags)
	}
}

func TestFLA502StateByte(t *testing.T) {
	s := spec(t, "fla502")
	b := Encode(s, Values(map[Channel]float64{HC: 5}), 0x02)
	d, err := Decode(s, b)
	if err != nil {
		t.Fatal(err)
	}
	if r := d.Reading(s); !r.WarmingUp {
		t.Errorf("FLA-502 byte 17 = 02 must read as warming up: %+v", r)
	}
	// The same byte on an NHA-503 is sensor bits, not a state.
	n := spec(t, "nha503")
	d, err = Decode(n, Encode(n, Values(nil), 0x02))
	if err != nil {
		t.Fatal(err)
	}
	if r := d.Reading(n); r.WarmingUp || strings.Join(r.Flags, ",") != "no_sensor_aged" {
		t.Errorf("NHA-503 status 02: %+v", r)
	}
}

func TestFirmwareVariant(t *testing.T) {
	old, err := Lookup("nha503", "pre-1.0.4")
	if err != nil {
		t.Fatal(err)
	}
	if old.DataCmd != 0x01 {
		t.Errorf("pre-1.0.4 data command = %02X, want 01", old.DataCmd)
	}
	if _, err := Lookup("nha503", "v9"); err == nil || !strings.Contains(err.Error(), "pre-1.0.4") {
		t.Errorf("unknown firmware: err = %v, want the known variants listed", err)
	}
}

// The 23-byte frame of the newer 2C command: example A's words plus byte 21 bit 6.
func TestWaterTrapFrame(t *testing.T) {
	s, err := Lookup("nha503", "2c")
	if err != nil {
		t.Fatal(err)
	}
	a := hx(t, "06 00 7B 00 2D 05 B4 00 34 00 D2 03 2F 03 55 01 90 00 00 65")
	b := append(append([]byte(nil), a...), 0x00, 0x40) // byte 20 unknown, byte 21 bit 6
	var sum byte
	for _, c := range b {
		sum += c
	}
	b = append(b, sum)
	d, err := Decode(s, b)
	if err != nil {
		t.Fatal(err)
	}
	if hc, _ := d.Get(HC); hc != 123 || !d.WaterTrap {
		t.Errorf("decoded %+v", d)
	}
	if r := d.Reading(s); strings.Join(r.Flags, ",") != "water_trap_full" {
		t.Errorf("flags %v", r.Flags)
	}
	if _, err := Decode(s, hx(t, "06 00 7B 00 2D 05 B4 00 34 00 D2 03 2F 03 55 01 90 00 00 65 ED")); err == nil {
		t.Error("a 21-byte frame accepted as the 23-byte variant")
	}
}

// §1.3 D.
func TestDecodeEnv(t *testing.T) {
	e, err := DecodeEnv("NHA-503", hx(t, "06 00 E7 03 E9 01 F4 CE"))
	if err != nil {
		t.Fatal(err)
	}
	if e != (Env{AmbientC: 23.1, PressureKPa: 100.1, RHPct: 50.0}) {
		t.Fatalf("env = %+v", e)
	}
	var ce *rig.ChecksumError
	if _, err := DecodeEnv("NHA-503", hx(t, "06 00 E7 03 E9 01 F4 CF")); !errors.As(err, &ce) {
		t.Fatalf("bad checksum: %v", err)
	}
}

// §1.3 E.
func TestDecodeProcess(t *testing.T) {
	p, err := DecodeProcess("NHA-503", hx(t, "05 06 83 01 92 04 AE 00 03 0B A4 02 09 90"))
	if err != nil {
		t.Fatal(err)
	}
	w := Process{HCppm: 1667, COPct: 4.02, CO2Pct: 11.98, O2Pct: 0.03, NOppm: 2980, PEF: 0.521, ChecksumOK: true}
	if p != w {
		t.Fatalf("process = %+v, want %+v", p, w)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("nha503", hx(f, "06 00 7B 00 2D 05 B4 00 34 00 D2 03 2F 03 55 01 90 00 00 65 ED"))
	f.Add("nha503", hx(f, "06 FF FD FF FE 00 02 08 2A 00 00 00 00 00 D7 01 7C 01 00 00 88"))
	f.Add("fla502", hx(f, "06 00 5F 00 26 05 C3 00 29 00 B4 09 B0 00 58 01 8B 00 00 64 31"))
	f.Add("mqw511", hx(f, "06 00 7B 00 2D 05 B4 00 34 00 D2 03 2F 00 55 00 65 00 59"))
	f.Add("nha506", []byte{0x05})
	f.Add("nha506", []byte{})
	f.Fuzz(func(t *testing.T, model string, b []byte) {
		s, err := Lookup(model, "")
		if err != nil {
			s = specs[len(b)%len(specs)]
		}
		d, err := Decode(s, b)
		if err == nil {
			if len(b) != s.ReplyLen || b[0] != ACK {
				t.Fatalf("accepted % X", b)
			}
			_ = d.Reading(s)
		}
		_, _ = DecodeEnv(s.Title, b)
		_, _ = DecodeProcess(s.Title, b)
	})
}
