package fga4100

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/frame"
)

// Title is the model's display name.
const Title = "Foshan FGA-4100"

// Prefix precedes every request frame.
var Prefix = []byte{0x7E, 0x01, 0xF4, 0x0A}

// Start opens every frame.
const Start = 0x7E

// Request payloads (after `7E len`).
var (
	PayloadData    = []byte{0x00, 0x01, 0x02, 0x02}
	PayloadPumpOn  = []byte{0x00, 0x01, 0x0E, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00}
	PayloadPumpOff = []byte{0x00, 0x01, 0x0E, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}
	PayloadZero    = []byte{0x00, 0x01, 0x16, 0x45}
)

// Frame builds `7E len payload… cs`.
func Frame(payload []byte) []byte {
	b := []byte{Start, byte(len(payload))}
	b = append(b, payload...)
	return append(b, frame.Inv(b[1:]))
}

// Request builds prefix + frame.
func Request(payload []byte) []byte { return append(append([]byte(nil), Prefix...), Frame(payload)...) }

// DataLen is the length of the data reply.
const DataLen = 51

// Field is one ASCII field of the data reply: value = integer × Scale.
type Field struct {
	Name  string
	Off   int
	Scale float64
}

// DataFields is the data-reply layout.
var DataFields = []Field{
	{"hc", 18, 1}, {"co", 22, 0.01}, {"co2", 26, 0.1}, {"o2", 30, 0.1},
	{"no", 34, 1}, {"lambda", 38, 0.01}, {"rpm", 42, 1}, {"oil", 46, 0.1},
}

// Data is a decoded data reply keyed by field name.
type Data struct {
	V   map[string]float64
	Raw []byte
}

// atoi parses a 4-character field the way the public driver's atoi does in practice: leading
// spaces, leading zeros and a sign are all fine; anything else is an error, not a silent 0.
func atoi(f []byte) (int, bool) {
	s := strings.TrimSpace(string(f))
	if s == "" {
		return 0, false
	}
	if s[0] == '+' {
		s = s[1:]
	}
	for i, c := range s {
		if !(c >= '0' && c <= '9') && !(i == 0 && c == '-' && len(s) > 1) {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// Decode parses a 51-byte data reply.
func Decode(b []byte) (Data, error) {
	raw := append([]byte(nil), b...)
	if len(b) < DataLen {
		return Data{}, &rig.ShortFrameError{Model: Title, Frame: raw, Want: DataLen}
	}
	if len(b) > DataLen {
		return Data{}, &rig.FrameError{Model: Title, Frame: raw, Reason: fmt.Sprintf("%d bytes, want %d", len(b), DataLen)}
	}
	if want := frame.Inv(b[18:50]); want != b[50] {
		return Data{}, &rig.ChecksumError{Model: Title, Frame: raw, Want: want, Got: b[50]}
	}
	d := Data{V: map[string]float64{}, Raw: raw}
	for _, f := range DataFields {
		n, ok := atoi(b[f.Off : f.Off+4])
		if !ok {
			return Data{}, &rig.FrameError{Model: Title, Frame: raw, Reason: fmt.Sprintf("field %s %q is not a decimal number", f.Name, b[f.Off:f.Off+4])}
		}
		d.V[f.Name] = frame.Round(float64(n)*f.Scale, frame.Decimals(f.Scale))
	}
	return d, nil
}

// Reading converts d to the common reading (without Time).
func (d Data) Reading() rig.Reading {
	return rig.Reading{
		HCppm: rig.F(d.V["hc"]), COPct: rig.F(d.V["co"]), CO2Pct: rig.F(d.V["co2"]),
		O2Pct: rig.F(d.V["o2"]), NOppm: rig.F(d.V["no"]), Lambda: rig.F(d.V["lambda"]),
		RPM: rig.F(d.V["rpm"]), OilC: rig.F(d.V["oil"]),
	}
}

// ControlPreamble opens every control reply (and, as placeholder, the data reply).
var ControlPreamble = []byte{0x7E, 0x01, 0xC6, 0x38, 0x7E, 0x01, 0x81, 0x7D}

// Encode builds a data reply (simulator side). Values that do not fit 4 characters are
// clamped (-999…9999).
func Encode(v map[string]float64) []byte {
	b := make([]byte, DataLen)
	copy(b, ControlPreamble)
	for _, f := range DataFields {
		n := int(frame.Round(v[f.Name]/f.Scale, 0))
		n = max(-999, min(9999, n))
		var s string
		if n < 0 {
			s = fmt.Sprintf("-%03d", -n)
		} else {
			s = fmt.Sprintf("%04d", n)
		}
		copy(b[f.Off:], s)
	}
	b[50] = frame.Inv(b[18:50])
	return b
}

// CheckFrame validates one `7E len payload… cs` frame and returns its payload.
func CheckFrame(b []byte) ([]byte, error) {
	raw := append([]byte(nil), b...)
	if len(b) < 3 {
		return nil, &rig.ShortFrameError{Model: Title, Frame: raw, Want: 3}
	}
	if b[0] != Start {
		return nil, &rig.FrameError{Model: Title, Frame: raw, Reason: fmt.Sprintf("frame starts %02X, want 7E", b[0])}
	}
	n := int(b[1]) + 3
	if len(b) != n {
		if len(b) < n {
			return nil, &rig.ShortFrameError{Model: Title, Frame: raw, Want: n}
		}
		return nil, &rig.FrameError{Model: Title, Frame: raw, Reason: fmt.Sprintf("%d bytes, length byte says %d", len(b), n)}
	}
	if want := frame.Inv(b[1 : n-1]); want != b[n-1] {
		return nil, &rig.ChecksumError{Model: Title, Frame: raw, Want: want, Got: b[n-1]}
	}
	return b[2 : n-1], nil
}

// SplitFrames cuts a byte stream into consecutive frames, checking each.
func SplitFrames(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return out, &rig.ShortFrameError{Model: Title, Frame: append([]byte(nil), b...), Want: 3}
		}
		n := min(int(b[1])+3, len(b))
		p, err := CheckFrame(b[:n])
		if err != nil {
			return out, err
		}
		out = append(out, p)
		b = b[n:]
	}
	return out, nil
}

// EncodeControlReply builds the reply to a control request (simulator side): the preamble and
// an echo frame — 01 (the reply direction, inferred), the request payload after its first
// byte, zero-padded to the 11 payload bytes of the published echo.
func EncodeControlReply(reqPayload []byte) []byte {
	echo := []byte{0x01}
	if len(reqPayload) > 1 {
		echo = append(echo, reqPayload[1:]...)
	}
	for len(echo) < 11 {
		echo = append(echo, 0)
	}
	return append(append([]byte(nil), ControlPreamble...), Frame(echo)...)
}
