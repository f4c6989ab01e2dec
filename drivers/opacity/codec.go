package opacity

import (
	"fmt"
	"math"

	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/frame"
)

// NAK is the lead byte of a refusal; the error code follows it.
const NAK = 0x15

// NoSensor is the oil-temperature word when no sensor is fitted.
const NoSensor = 0xFFFF

// Data is one decoded real-time reply.
type Data struct {
	NPct       float64
	KM1        float64
	KComputed  bool // k computed from N (FTY-100)
	KClamped   bool // N was 100 % or more; k is the value at NMax
	RPM        float64
	OilC       float64
	HasOil     bool
	ChecksumOK bool
	Raw        []byte
}

// NMax is where N is clamped before computing k (k → ∞ at 100 %); it is the largest N below
// 100 % the ÷10 word can carry.
const NMax = 99.9

// KFromN computes the light absorption coefficient k (m⁻¹) from opacity N (%) for the
// effective path L: k = −ln(1 − N/100) / L. N ≥ 100 is clamped to NMax (clamped = true).
// Negative N (zero drift) gives a small negative k, kept like the gas channels' drift.
func KFromN(n float64) (k float64, clamped bool) {
	if n >= 100 || math.IsNaN(n) {
		n, clamped = NMax, true
	}
	return round(-math.Log(1-n/100)/L, 0.001), clamped
}

func round(v, step float64) float64 { return frame.Round(v, frame.Decimals(step)) }

func nak(s Spec, b []byte) error {
	code := -1
	if len(b) > 1 {
		code = int(b[1])
	}
	return &rig.NAKError{Model: s.Title, Code: code, Frame: append([]byte(nil), b...)}
}

// check validates the common framing of a reply of n bytes: NAK, length, 2C.
func check(s Spec, b []byte, n int, enforce bool) (ok bool, err error) {
	raw := append([]byte(nil), b...)
	if n < 2 {
		return false, fmt.Errorf("opacity: %s: reply length %d in spec", s.Title, n)
	}
	if len(b) > 0 && b[0] == NAK {
		return false, nak(s, b)
	}
	if len(b) < n {
		return false, &rig.ShortFrameError{Model: s.Title, Frame: raw, Want: n}
	}
	if len(b) > n {
		return false, &rig.FrameError{Model: s.Title, Frame: raw, Reason: fmt.Sprintf("%d bytes, want %d", len(b), n)}
	}
	want := frame.TwoC(b[:n-1])
	if want != b[n-1] {
		if enforce {
			return false, &rig.ChecksumError{Model: s.Title, Frame: raw, Want: want, Got: b[n-1]}
		}
		return false, nil
	}
	return true, nil
}

// Decode parses a real-time reply under spec s.
func Decode(s Spec, b []byte) (Data, error) {
	ok, err := check(s, b, s.ReplyLen, s.CheckSum)
	if err != nil {
		return Data{}, err
	}
	d := Data{ChecksumOK: ok, Raw: append([]byte(nil), b...)}
	d.NPct = round(float64(frame.I16(b, s.NOff))*0.1, 0.1)
	if s.KOff >= 0 {
		d.KM1 = round(float64(frame.I16(b, s.KOff))*0.01, 0.01)
	} else {
		d.KM1, d.KClamped = KFromN(d.NPct)
		d.KComputed = true
	}
	d.RPM = float64(frame.U16(b, s.RPMOff))
	if oil := frame.U16(b, s.OilOff); oil != NoSensor {
		d.OilC, d.HasOil = float64(oil)-273, true
	}
	return d, nil
}

// Reading converts d to the common reading (without Time).
func (d Data) Reading() rig.Reading {
	r := rig.Reading{OpacityPct: rig.F(d.NPct), KM1: rig.F(d.KM1), RPM: rig.F(d.RPM)}
	if d.HasOil {
		r.OilC = rig.F(d.OilC)
	}
	if d.KComputed {
		r.Flags = append(r.Flags, "k_computed_from_n")
	}
	if d.KClamped {
		r.Flags = append(r.Flags, "k_clamped")
	}
	if !d.ChecksumOK {
		r.Flags = append(r.Flags, "checksum_unverified")
	}
	return r
}

// Encode builds a real-time reply (simulator side). For models without k on the wire kM1 is
// ignored. oilC < -273 encodes "no sensor". Bytes the model does not interpret echo the request
// (the likely echo; parsers never depend on it).
func Encode(s Spec, nPct, kM1, rpm, oilC float64) []byte {
	b := make([]byte, s.ReplyLen)
	copy(b[:min(s.NOff, len(s.RealTime))], s.RealTime)
	frame.PutI16(b, s.NOff, frame.Round16(nPct*10))
	if s.KOff >= 0 {
		frame.PutI16(b, s.KOff, frame.Round16(kM1*100))
	}
	frame.PutU16(b, s.RPMOff, frame.RoundU16(rpm))
	if oilC < -273 {
		frame.PutU16(b, s.OilOff, NoSensor)
	} else {
		frame.PutU16(b, s.OilOff, frame.RoundU16(oilC+273))
	}
	b[len(b)-1] = frame.TwoC(b[:len(b)-1])
	return b
}

// Max is the maxima reply: peak N, k and rpm since the last clear.
type Max struct {
	NPct, KM1, RPM float64
}

// DecodeMax parses a maxima reply (8 bytes: lead, N, k, rpm, 2C).
func DecodeMax(s Spec, b []byte) (Max, error) {
	if s.Max == nil || s.MaxLen < 8 {
		return Max{}, fmt.Errorf("opacity: %s maxima: %w", s.Title, rig.ErrUnsupported)
	}
	if _, err := check(s, b, s.MaxLen, true); err != nil {
		return Max{}, err
	}
	return Max{
		NPct: round(float64(frame.I16(b, 1))*0.1, 0.1),
		KM1:  round(float64(frame.I16(b, 3))*0.01, 0.01),
		RPM:  float64(frame.U16(b, 5)),
	}, nil
}

// Status is a decoded status reply.
type Status struct {
	Raw       []byte
	WarmingUp bool
	Fault     string
}

// DecodeStatus parses the model's status reply.
func DecodeStatus(s Spec, b []byte) (Status, error) {
	if s.Status == nil {
		return Status{}, fmt.Errorf("opacity: %s status: %w", s.Title, rig.ErrUnsupported)
	}
	if _, err := check(s, b, s.StatusLen, s.CheckSum); err != nil {
		return Status{}, err
	}
	w, f := s.StatusWarm(b)
	return Status{Raw: append([]byte(nil), b...), WarmingUp: w, Fault: f}, nil
}

// Request returns a request frame: cmd + params + 2C.
func Request(cmd ...byte) []byte { return append(append([]byte(nil), cmd...), frame.TwoC(cmd)) }
