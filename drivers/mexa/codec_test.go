package mexa

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

func TestRequests(t *testing.T) {
	for _, tt := range []struct {
		q    Query
		want string
	}{
		{QStatus, "02 01 01 FC"}, {QSubsystem, "02 01 AA 53"}, {QChannels, "02 01 40 BD"},
		{QPEF, "02 03 18 00 00 E3"}, {QMeasure, "02 01 A6 57"}, {QStandby, "02 01 A7 56"},
	} {
		if got := tt.q.Frame(); !bytes.Equal(got, hx(t, tt.want)) {
			t.Errorf("frame %02X = % X, want %s", tt.q.Cmd, got, tt.want)
		}
	}
}

// rig-protocols.md §5 worked examples.
func TestWorkedExamples(t *testing.T) {
	c, err := DecodeChannels(hx(t, "06 40 00 00 00 05 B2 00 3E 00 87 00 30 00 92 03 E3 00 00 00 00 00 F0 09 CE 00 57 78"))
	if err != nil {
		t.Fatal(err)
	}
	if c.CO2Pct != 14.58 || c.COPct != 0.62 || c.HCppm != 135 || c.O2Pct != 0.48 || c.AFR != 14.6 ||
		c.Lambda != 0.995 || c.NOppm != 240 || c.RPM != 2510 || c.OilC != 87 || c.RPMAlarm || c.OilAlarm {
		t.Errorf("channels = %+v", c)
	}
	sub, err := DecodeSubsystem(hx(t, "06 AA 00 00 40 00 0F 00 00 01"))
	if err != nil {
		t.Fatal(err)
	}
	if !sub.Measuring || sub.Options != OptO2|OptNO|OptRPM|OptOil || sub.Leak || sub.HangUp || sub.Filter {
		t.Errorf("subsystem = %+v", sub)
	}
	st, err := DecodeStatus(hx(t, "06 01 00 00 00 00 00 00 00 00 00 00 00 00 00 F9"), sub.Options)
	if err != nil || st.WarmingUp || st.CalError {
		t.Errorf("status = %+v, %v", st, err)
	}
	pef, err := DecodePEF(hx(t, "06 18 00 02 00 E0"))
	if err != nil || pef != 0.512 {
		t.Errorf("PEF = %v, %v", pef, err)
	}
	r := c.Reading(sub.Options)
	if r.O2Pct == nil || r.NOppm == nil || r.RPM == nil || r.OilC == nil || *r.Lambda != 0.995 {
		t.Errorf("reading with all options = %+v", r)
	}
	// Without the options those channels are absent, not zero.
	if r := c.Reading(0); r.O2Pct != nil || r.NOppm != nil || r.RPM != nil || r.OilC != nil {
		t.Errorf("reading without options = %+v", r)
	}
	if again := EncodeChannels(c); !bytes.Equal(again, c.Raw) {
		t.Errorf("re-encoded % X", again)
	}
}

// The MEAS/STANDBY ACK shape the doc calls plausible (inferred) passes the reply check.
func TestModeACK(t *testing.T) {
	if err := CheckReply(hx(t, "06 A6 00 54"), CmdMeasure, 4); err != nil {
		t.Errorf("06 A6 00 54: %v", err)
	}
	var ne *rig.NAKError
	if err := CheckReply(hx(t, "15 A6 00 00 45"), CmdMeasure, 4); !errors.As(err, &ne) {
		t.Errorf("NAK: %v", err)
	}
}

func TestStatusFlags(t *testing.T) {
	st, err := DecodeStatus(Reply(CmdStatus, 16, map[int]byte{3: 0x08}), 0)
	if err != nil || !st.WarmingUp {
		t.Errorf("warming: %+v %v", st, err)
	}
	// Byte 12 counts only with the NO option.
	b := Reply(CmdStatus, 16, map[int]byte{12: 1})
	if st, _ := DecodeStatus(b, OptO2); st.CalError {
		t.Error("byte 12 without NO option flagged")
	}
	if st, _ := DecodeStatus(b, OptNO); !st.CalError {
		t.Error("byte 12 with NO option not flagged")
	}
}

func TestErrors(t *testing.T) {
	b := hx(t, "06 40 00 00 00 05 B2 00 3E 00 87 00 30 00 92 03 E3 00 00 00 00 00 F0 09 CE 00 57 79")
	var ce *rig.ChecksumError
	if _, err := DecodeChannels(b); !errors.As(err, &ce) || ce.Want != 0x78 {
		t.Errorf("checksum: %v", err)
	}
	var ne *rig.NAKError
	if _, err := DecodeChannels(hx(t, "15 40 00 00 AB")); !errors.As(err, &ne) {
		t.Errorf("nak: %v", err)
	}
	var fe *rig.FrameError
	if _, err := DecodeSubsystem(Reply(CmdStatus, 10, nil)); !errors.As(err, &fe) {
		t.Errorf("wrong echo: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(hx(f, "06 40 00 00 00 05 B2 00 3E 00 87 00 30 00 92 03 E3 00 00 00 00 00 F0 09 CE 00 57 78"))
	f.Add(hx(f, "06 AA 00 00 40 00 0F 00 00 01"))
	f.Add(hx(f, "06 01 00 00 00 00 00 00 00 00 00 00 00 00 00 F9"))
	f.Add(hx(f, "06 18 00 02 00 E0"))
	f.Add([]byte{0x15})
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := DecodeChannels(b); err == nil {
			_ = c.Reading(OptO2 | OptNO)
		}
		_, _ = DecodeSubsystem(b)
		_, _ = DecodeStatus(b, 0xFF)
		_, _ = DecodePEF(b)
		_ = CheckReply(b, 0x40, len(b))
	})
}

func TestSubsystemFlags(t *testing.T) {
	s, err := DecodeSubsystem(Reply(CmdSubsystem, 10, map[int]byte{3: 0x20, 5: 0x0A, 6: 0x03}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(subFlags(s), ","); got != "leak,hang_up,filter" {
		t.Errorf("flags %q", got)
	}
	if s.Options != OptO2|OptNO || s.Measuring {
		t.Errorf("subsystem %+v", s)
	}
}
