package mqw50a

import (
	"fmt"

	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/frame"
)

// Commands (rig-protocols.md §4).
const (
	CmdData       = 0x60
	CmdStatus     = 0x61
	CmdLeakCheck  = 0x66
	CmdZero       = 0x67
	CmdStop       = 0x78
	CmdPumpSample = 0x7B
	CmdPumpAir    = 0x7C
)

// Reply lengths.
const (
	DataLen    = 28
	StatusLen  = 11
	ControlLen = 4
	ACK        = 0x06
	NAK        = 0x15
	Start      = 0x02
)

// Title is the model's display name.
const Title = "Mingquan MQW-50A"

// Request builds `02 cmd len [param…] cs`.
func Request(cmd byte, param ...byte) []byte {
	b := []byte{Start, cmd, byte(3 + len(param))}
	b = append(b, param...)
	return append(b, frame.TwoC(b))
}

// Field is one signed word of the data reply: value = raw × Scale.
type Field struct {
	Name   string
	Off    int
	Signed bool
	Scale  float64
}

// DataFields is the data-reply layout (firmware as in the public drivers).
var DataFields = []Field{
	{"co2", 3, true, 0.01},
	{"co", 5, true, 0.01},
	{"hc", 7, true, 1},
	{"no", 9, true, 1},
	{"o2", 11, true, 0.01},
	{"rh", 13, true, 0.1},
	{"oil", 15, true, 0.1},
	{"ambient", 17, true, 0.1},
	{"rpm", 19, false, 1},
	{"lambda", 23, true, 0.001},
	{"pressure", 25, true, 0.1},
}

// Data is a decoded data reply, keyed by DataFields names.
type Data struct {
	V   map[string]float64
	Raw []byte
}

// checkReply validates lead byte, echo, length and the zero sum of a reply.
func checkReply(b []byte, cmd byte, n int) error {
	raw := append([]byte(nil), b...)
	if len(b) > 0 && b[0] == NAK {
		return &rig.NAKError{Model: Title, Code: -1, Frame: raw}
	}
	if len(b) > 0 && b[0] != ACK {
		return &rig.FrameError{Model: Title, Frame: raw, Reason: fmt.Sprintf("lead byte %02X, want 06", b[0])}
	}
	if len(b) < n {
		return &rig.ShortFrameError{Model: Title, Frame: raw, Want: n}
	}
	if len(b) > n {
		return &rig.FrameError{Model: Title, Frame: raw, Reason: fmt.Sprintf("%d bytes, want %d", len(b), n)}
	}
	if want := frame.TwoC(b[:n-1]); want != b[n-1] {
		return &rig.ChecksumError{Model: Title, Frame: raw, Want: want, Got: b[n-1]}
	}
	if b[1] != cmd {
		return &rig.FrameError{Model: Title, Frame: raw, Reason: fmt.Sprintf("echo %02X, want %02X", b[1], cmd)}
	}
	return nil
}

// Decode parses a 28-byte data reply.
func Decode(b []byte) (Data, error) {
	if err := checkReply(b, CmdData, DataLen); err != nil {
		return Data{}, err
	}
	d := Data{V: map[string]float64{}, Raw: append([]byte(nil), b...)}
	for _, f := range DataFields {
		var v float64
		if f.Signed {
			v = float64(frame.I16(b, f.Off))
		} else {
			v = float64(frame.U16(b, f.Off))
		}
		d.V[f.Name] = frame.Round(v*f.Scale, frame.Decimals(f.Scale))
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

// Encode builds a data reply from values keyed like DataFields (simulator side).
func Encode(v map[string]float64) []byte {
	b := make([]byte, DataLen)
	b[0], b[1], b[2] = ACK, CmdData, DataLen-1
	for _, f := range DataFields {
		raw := v[f.Name] / f.Scale
		if f.Signed {
			frame.PutI16(b, f.Off, frame.Round16(raw))
		} else {
			frame.PutU16(b, f.Off, frame.RoundU16(raw))
		}
	}
	b[DataLen-1] = frame.TwoC(b[:DataLen-1])
	return b
}

// Status bits of byte 3 (why the analyzer is busy).
const (
	StWarmingUp = 0x01
	StBackFlush = 0x02
	StBackAir   = 0x04
	StAmbient   = 0x08
	StLeakCheck = 0x10
	StResidual  = 0x20
	StZeroing   = 0x40
	StLowFlow   = 0x80
)

// Status is a decoded status reply.
type Status struct {
	Busy   bool // byte 4 bit 7
	Reason byte // byte 3 bits, meaningful when Busy
	Raw    []byte
}

// WarmingUp reports a warm-up in progress.
func (s Status) WarmingUp() bool { return s.Busy && s.Reason&StWarmingUp != 0 }

// DecodeStatus parses an 11-byte status reply.
func DecodeStatus(b []byte) (Status, error) {
	if err := checkReply(b, CmdStatus, StatusLen); err != nil {
		return Status{}, err
	}
	return Status{Busy: b[4]&0x80 != 0, Reason: b[3], Raw: append([]byte(nil), b...)}, nil
}

// EncodeStatus builds a status reply (simulator side).
func EncodeStatus(busy bool, reason byte) []byte {
	b := make([]byte, StatusLen)
	b[0], b[1], b[2], b[3] = ACK, CmdStatus, StatusLen-1, reason
	if busy {
		b[4] = 0x80
	}
	b[StatusLen-1] = frame.TwoC(b[:StatusLen-1])
	return b
}

// DecodeControl checks a 4-byte control ACK `06 cmd 03 cs`. The echoed command is not
// insisted on: a public driver expects 7B after 7C and the reverse, so either the instrument
// or that driver swaps them.
func DecodeControl(b []byte) error {
	if len(b) >= 2 {
		return checkReply(b, b[1], ControlLen)
	}
	return checkReply(b, 0, ControlLen)
}

// EncodeControl builds a control ACK (simulator side).
func EncodeControl(cmd byte) []byte {
	b := []byte{ACK, cmd, 0x03}
	return append(b, frame.TwoC(b))
}
