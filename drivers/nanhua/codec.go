package nanhua

import (
	"fmt"

	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/frame"
)

// Reply lead bytes.
const (
	ACK  = 0x06
	Busy = 0x05
	NAK  = 0x15
)

// Data is one decoded main-data frame.
type Data struct {
	Values     [numChannels]float64
	Has        [numChannels]bool
	Status     byte // raw status byte (0 when the model has none)
	WaterTrap  bool // water trap full (23-byte frame only)
	ChecksumOK bool // false only where Spec.CheckSum is off and the SUM did not match
	Raw        []byte
}

// Get returns a channel's value and whether the frame has it.
func (d Data) Get(c Channel) (float64, bool) { return d.Values[c], d.Has[c] }

// Decode parses a whole main-data frame (lead byte to checksum) under spec s.
func Decode(s Spec, b []byte) (Data, error) {
	raw := append([]byte(nil), b...)
	if len(b) == 0 {
		return Data{}, &rig.ShortFrameError{Model: s.Title, Frame: raw, Want: s.ReplyLen}
	}
	switch b[0] {
	case ACK:
	case Busy:
		return Data{}, &rig.BusyError{Model: s.Title, Frame: raw}
	case NAK:
		return Data{}, &rig.NAKError{Model: s.Title, Code: -1, Frame: raw}
	default:
		return Data{}, &rig.FrameError{Model: s.Title, Frame: raw, Reason: fmt.Sprintf("lead byte %02X, want 06", b[0])}
	}
	if len(b) != s.ReplyLen {
		if len(b) < s.ReplyLen {
			return Data{}, &rig.ShortFrameError{Model: s.Title, Frame: raw, Want: s.ReplyLen}
		}
		return Data{}, &rig.FrameError{Model: s.Title, Frame: raw, Reason: fmt.Sprintf("%d bytes, want %d", len(b), s.ReplyLen)}
	}
	n := len(b)
	d := Data{Raw: raw, ChecksumOK: true}
	if want := frame.Sum(b[:n-1]); want != b[n-1] {
		if s.CheckSum {
			return Data{}, &rig.ChecksumError{Model: s.Title, Frame: raw, Want: want, Got: b[n-1]}
		}
		d.ChecksumOK = false
	}
	for _, f := range s.Fields {
		if f.Off+2 > n-1 {
			return Data{}, fmt.Errorf("nanhua: spec %s: field %v at %d outside the frame", s.Model, f.Ch, f.Off)
		}
		var v float64
		if f.Signed {
			v = float64(frame.I16(b, f.Off))
		} else {
			v = float64(frame.U16(b, f.Off))
		}
		d.Values[f.Ch] = v * f.Scale
		d.Has[f.Ch] = true
	}
	if s.StatusOff >= 0 && s.StatusOff < n-1 {
		d.Status = b[s.StatusOff]
	}
	if s.WaterTrapOff > 0 && s.WaterTrapOff < n-1 {
		d.WaterTrap = b[s.WaterTrapOff]&0x40 != 0
	}
	// Scaled values carry binary noise (0.45 as 0.45000000000000001); round to the word's
	// resolution so JSON shows what the instrument sent.
	for _, f := range s.Fields {
		d.Values[f.Ch] = roundTo(d.Values[f.Ch], f.Scale)
	}
	return d, nil
}

func roundTo(v, step float64) float64 { return frame.Round(v, frame.Decimals(step)) }

// Reading converts a decoded frame into the common reading (without Time).
func (d Data) Reading(s Spec) rig.Reading {
	var r rig.Reading
	set := func(c Channel, dst **float64) {
		if d.Has[c] {
			*dst = rig.F(d.Values[c])
		}
	}
	set(HC, &r.HCppm)
	set(CO, &r.COPct)
	set(CO2, &r.CO2Pct)
	set(O2, &r.O2Pct)
	set(NO, &r.NOppm)
	set(Lambda, &r.Lambda)
	set(RPM, &r.RPM)
	set(Oil, &r.OilC)
	switch s.StatusKind {
	case StatusSensors:
		if d.Status&0x01 != 0 {
			r.Flags = append(r.Flags, "o2_sensor_aged")
		}
		if d.Status&0x02 != 0 {
			r.Flags = append(r.Flags, "no_sensor_aged")
		}
	case StatusState:
		switch d.Status {
		case 0x02:
			r.WarmingUp = true
		case 0x04:
			r.Flags = append(r.Flags, "leak_check_running")
		case 0x05:
			r.Flags = append(r.Flags, "zeroing")
		}
	}
	if d.WaterTrap {
		r.Flags = append(r.Flags, "water_trap_full")
	}
	if !d.ChecksumOK {
		r.Flags = append(r.Flags, "checksum_unverified")
	}
	return r
}

// Encode builds a main-data frame (the simulator's side and the tests' round trip). Channels
// the spec does not carry are ignored; values are rounded to the word's resolution.
func Encode(s Spec, values [numChannels]float64, status byte) []byte {
	b := make([]byte, s.ReplyLen)
	b[0] = ACK
	for _, f := range s.Fields {
		raw := values[f.Ch] / f.Scale
		if f.Signed {
			frame.PutI16(b, f.Off, frame.Round16(raw))
		} else {
			frame.PutU16(b, f.Off, frame.RoundU16(raw))
		}
	}
	if s.StatusOff >= 0 {
		b[s.StatusOff] = status
	}
	b[len(b)-1] = frame.Sum(b[:len(b)-1])
	return b
}

// Values is a convenience for building Encode's input.
func Values(m map[Channel]float64) [numChannels]float64 {
	var v [numChannels]float64
	for c, x := range m {
		if c >= 0 && c < numChannels {
			v[c] = x
		}
	}
	return v
}

// Env is the environment data of command 02.
type Env struct {
	AmbientC    float64
	PressureKPa float64
	RHPct       float64
}

// EnvLen is the length of the environment reply.
const EnvLen = 8

// DecodeEnv parses the 8-byte environment reply `06 T T P P H H SUM`.
func DecodeEnv(model string, b []byte) (Env, error) {
	raw := append([]byte(nil), b...)
	if len(b) < 1 || b[0] != ACK {
		if len(b) > 0 && b[0] == NAK {
			return Env{}, &rig.NAKError{Model: model, Code: -1, Frame: raw}
		}
		return Env{}, &rig.FrameError{Model: model, Frame: raw, Reason: "environment reply must start with 06"}
	}
	if len(b) != EnvLen {
		return Env{}, &rig.ShortFrameError{Model: model, Frame: raw, Want: EnvLen}
	}
	if want := frame.Sum(b[:7]); want != b[7] {
		return Env{}, &rig.ChecksumError{Model: model, Frame: raw, Want: want, Got: b[7]}
	}
	return Env{
		AmbientC:    roundTo(float64(frame.I16(b, 1))*0.1, 0.1),
		PressureKPa: roundTo(float64(frame.I16(b, 3))*0.1, 0.1),
		RHPct:       roundTo(float64(frame.I16(b, 5))*0.1, 0.1),
	}, nil
}

// Process is the process data that follows a 05 (busy) reply to calibrate or automatic check.
type Process struct {
	HCppm, COPct, CO2Pct, O2Pct, NOppm, PEF float64
	// ChecksumOK: byte 13 equals the SUM of bytes 0–12. That it is a SUM is inferred, so a
	// mismatch is reported here, not as an error.
	ChecksumOK bool
}

// ProcessLen is the length of a busy reply with process data, the 05 included.
const ProcessLen = 14

// DecodeProcess parses `05` + 13 bytes of process data.
func DecodeProcess(model string, b []byte) (Process, error) {
	raw := append([]byte(nil), b...)
	if len(b) < 1 || b[0] != Busy {
		return Process{}, &rig.FrameError{Model: model, Frame: raw, Reason: "process data must start with 05"}
	}
	if len(b) != ProcessLen {
		return Process{}, &rig.ShortFrameError{Model: model, Frame: raw, Want: ProcessLen}
	}
	return Process{
		HCppm:      float64(frame.I16(b, 1)),
		COPct:      roundTo(float64(frame.I16(b, 3))*0.01, 0.01),
		CO2Pct:     roundTo(float64(frame.I16(b, 5))*0.01, 0.01),
		O2Pct:      roundTo(float64(frame.I16(b, 7))*0.01, 0.01),
		NOppm:      float64(frame.I16(b, 9)),
		PEF:        roundTo(float64(frame.I16(b, 11))*0.001, 0.001),
		ChecksumOK: frame.Sum(b[:13]) == b[13],
	}, nil
}
