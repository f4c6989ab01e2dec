package opacity

import (
	"fmt"
	"time"
)

// Spec is one opacimeter model's frame spec. Offsets are into the reply, -1 = absent.
type Spec struct {
	Model, Title string
	Baud         int
	Timeout      time.Duration

	RealTime []byte // request for real-time data
	ReplyLen int
	NOff     int // opacity N, ÷10 %
	KOff     int // k, ÷100 m⁻¹; -1: compute from N
	RPMOff   int
	OilOff   int // kelvin; FFFF = no sensor
	// CheckSum: reject replies whose 2C sum is not 0. Off for the FTY-100, where the rule is
	// an assumption (logged instead).
	CheckSum bool

	Status    []byte // request; nil: none
	StatusLen int
	// StatusWarm decodes a status reply: warming up, and a fault the user must fix.
	StatusWarm func(b []byte) (warming bool, fault string)

	Zero    []byte // request; nil: no zero command
	ZeroLen int

	Max      []byte // maxima request; nil: none
	MaxLen   int
	ClearMax []byte
}

// Nanhua / Mingquan status byte 1 (NHT-6 header): 0 warming up, 1 measuring, 2 calibrating,
// 3 control unit cannot talk to the measuring unit.
func nhtStatus(b []byte) (bool, string) {
	switch b[1] {
	case 0:
		return true, ""
	case 3:
		return false, "the control unit cannot talk to the measuring unit (check the cable between them)"
	}
	return false, ""
}

// FTY-100 status byte 3: bit1 warming up, bit2 real-time measuring.
func ftyStatus(b []byte) (bool, string) { return b[3]&0x02 != 0, "" }

// NHTStateCalibrating is status byte 1 while a zero (calibration) runs.
const NHTStateCalibrating = 2

// L is the effective optical path length (m) used to compute k from N.
const L = 0.430

var specs = []Spec{
	{
		Model: "nht6", Title: "Nanhua NHT-6", Baud: 9600, Timeout: 2 * time.Second,
		RealTime: []byte{0xA5, 0x5B}, ReplyLen: 10, NOff: 1, KOff: 3, RPMOff: 5, OilOff: 7, CheckSum: true,
		Status: []byte{0xA1, 0x5F}, StatusLen: 3, StatusWarm: nhtStatus,
		Zero: []byte{0xA4, 0x5C}, ZeroLen: 2,
		Max: []byte{0xA6, 0x5A}, MaxLen: 8, ClearMax: []byte{0xA7, 0x59},
	},
	{
		// Same real-time, status and zero commands as the NHT-6; B1 differs (version, not
		// results) and is not used here.
		Model: "nht1l", Title: "Nanhua NHT-1L", Baud: 9600, Timeout: 2 * time.Second,
		RealTime: []byte{0xA5, 0x5B}, ReplyLen: 10, NOff: 1, KOff: 3, RPMOff: 5, OilOff: 7, CheckSum: true,
		Status: []byte{0xA1, 0x5F}, StatusLen: 3, StatusWarm: nhtStatus,
		Zero: []byte{0xA4, 0x5C}, ZeroLen: 2,
		Max: []byte{0xA6, 0x5A}, MaxLen: 8, ClearMax: []byte{0xA7, 0x59},
	},
	{
		// A6 is REAL-TIME here. No zero command is published.
		Model: "mqy200", Title: "Mingquan MQY-200", Baud: 9600, Timeout: 2 * time.Second,
		RealTime: []byte{0xA6, 0x5A}, ReplyLen: 10, NOff: 1, KOff: 3, RPMOff: 5, OilOff: 7, CheckSum: true,
		Status: []byte{0xA1, 0x5F}, StatusLen: 3, StatusWarm: nhtStatus,
		Max: []byte{0xA9, 0x57}, MaxLen: 8, ClearMax: []byte{0xA8, 0x58},
	},
	{
		// No k on the wire; bytes 0–2 and 9 uninterpreted (echo of "fty" and a 2C are guesses).
		Model: "fty100", Title: "Foshan FTY-100", Baud: 9600, Timeout: 2 * time.Second,
		RealTime: []byte{0x66, 0x74, 0x79, 0x01, 0x02, 0x02, 0xA8}, ReplyLen: 10,
		NOff: 3, KOff: -1, RPMOff: 7, OilOff: 5, CheckSum: false,
		Status: []byte{0x66, 0x74, 0x79, 0x01, 0x02, 0x01, 0xA9}, StatusLen: 7, StatusWarm: ftyStatus,
	},
}

// Specs returns the known models.
func Specs() []Spec { return append([]Spec(nil), specs...) }

// Lookup finds a model's spec.
func Lookup(model string) (Spec, error) {
	for _, s := range specs {
		if s.Model == model {
			return s, nil
		}
	}
	return Spec{}, fmt.Errorf("opacity: unknown model %q (known: nht6, nht1l, mqy200, fty100)", model)
}
