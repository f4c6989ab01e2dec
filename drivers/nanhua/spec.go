package nanhua

import (
	"fmt"
	"sort"
	"time"
)

// Channel names one quantity in a data frame.
type Channel int

const (
	HC     Channel = iota // ppm
	CO                    // % vol
	CO2                   // % vol
	O2                    // % vol
	NO                    // ppm
	RPM                   // r/min
	Oil                   // °C
	Flow                  // raw flow equivalent (no unit published)
	Lambda                // λ
	numChannels
)

var channelNames = [...]string{"hc", "co", "co2", "o2", "no", "rpm", "oil", "flow", "lambda"}

func (c Channel) String() string {
	if c >= 0 && int(c) < len(channelNames) {
		return channelNames[c]
	}
	return fmt.Sprintf("channel(%d)", int(c))
}

// Field is one word of a data frame: value = raw × Scale.
type Field struct {
	Ch     Channel
	Off    int
	Signed bool
	Scale  float64
}

// StatusKind says what the status byte of the data frame means on a model.
type StatusKind int

const (
	StatusNone    StatusKind = iota // not decoded
	StatusSensors                   // bit0 O2 sensor aged, bit1 NO sensor aged (Nanhua)
	StatusState                     // 00 ready, 02 warming up, 04 leak check, 05 zeroing (Fuli)
)

// Spec is the frame spec of one model and firmware.
type Spec struct {
	Model    string // registry name: "nha503"
	Title    string // "Nanhua NHA-503"
	Firmware string // "" for the default variant
	Baud     int

	DataCmd  byte
	ReplyLen int // whole data frame including lead byte and checksum
	Fields   []Field
	// StatusOff is the offset of the status byte in the data frame (-1: none) and
	// StatusKind its meaning.
	StatusOff  int
	StatusKind StatusKind
	// WaterTrapOff is the offset of the byte whose bit 6 says the water trap is full (the
	// 23-byte "2C" main data); 0: none.
	WaterTrapOff int
	// CheckSum: reject frames whose SUM does not match. False where no public driver checks
	// it (MQW-511): a mismatch is then logged and the frame kept.
	CheckSum bool

	// Timeout is the reply deadline (2.5 s: older firmware answers slowly).
	Timeout time.Duration

	// Commands; 0 means the model has none.
	StatusCmd byte // 1-byte instrument state: 00 ready, 01 measuring, 02 warming up, 03 leak check
	WarmupCmd byte // 2-byte warm-up seconds left
	EnvCmd    byte // environment data (8 bytes)
	ZeroCmd   byte
	LeakCmd   byte
	PumpCmd   byte // pump sample from the probe
	StopCmd   byte // stop pump / back-flush
}

// Nanhua's main-data words (rig-protocols.md §1.1); only scales and the status byte differ.
func nanhuaFields(coScale, oilScale float64) []Field {
	return []Field{
		{HC, 1, true, 1},
		{CO, 3, true, coScale},
		{CO2, 5, true, 0.01},
		{O2, 7, true, 0.01},
		{NO, 9, true, 1},
		{RPM, 11, false, 1},
		{Oil, 13, true, oilScale},
		{Flow, 15, false, 1},
		{Lambda, 18, true, 0.01},
	}
}

const nanhuaTimeout = 2500 * time.Millisecond

var specs = []Spec{
	{
		Model: "nha503", Title: "Nanhua NHA-503", Baud: 9600,
		DataCmd: 0x81, ReplyLen: 21, Fields: nanhuaFields(0.01, 0.1),
		StatusOff: 17, StatusKind: StatusSensors, CheckSum: true, Timeout: nanhuaTimeout,
		StatusCmd: 0x26, WarmupCmd: 0x27, EnvCmd: 0x02, ZeroCmd: 0x08, LeakCmd: 0x07, PumpCmd: 0x04, StopCmd: 0x06,
	},
	{
		// Driver versions before 1.0.4 asked for main data with 01.
		Model: "nha503", Title: "Nanhua NHA-503", Firmware: "pre-1.0.4", Baud: 9600,
		DataCmd: 0x01, ReplyLen: 21, Fields: nanhuaFields(0.01, 0.1),
		StatusOff: 17, StatusKind: StatusSensors, CheckSum: true, Timeout: nanhuaTimeout,
		StatusCmd: 0x26, WarmupCmd: 0x27, EnvCmd: 0x02, ZeroCmd: 0x08, LeakCmd: 0x07, PumpCmd: 0x04, StopCmd: 0x06,
	},
	{
		// The "new" main-data command 2C: the same layout plus byte 21, bit 6 = water trap
		// full (byte 20 unknown), and the SUM at 22 (its position is inferred).
		Model: "nha503", Title: "Nanhua NHA-503", Firmware: "2c", Baud: 9600,
		DataCmd: 0x2C, ReplyLen: 23, Fields: nanhuaFields(0.01, 0.1),
		StatusOff: 17, StatusKind: StatusSensors, WaterTrapOff: 21, CheckSum: true, Timeout: nanhuaTimeout,
		StatusCmd: 0x26, WarmupCmd: 0x27, EnvCmd: 0x02, ZeroCmd: 0x08, LeakCmd: 0x07, PumpCmd: 0x04, StopCmd: 0x06,
	},
	{
		// "506_v29I": oil temperature is sent in whole degrees.
		Model: "nha506", Title: "Nanhua NHA-506(I)", Baud: 9600,
		DataCmd: 0x01, ReplyLen: 21, Fields: nanhuaFields(0.01, 1),
		StatusOff: 17, StatusKind: StatusSensors, CheckSum: true, Timeout: nanhuaTimeout,
		StatusCmd: 0x26, WarmupCmd: 0x27, EnvCmd: 0x02, ZeroCmd: 0x08, LeakCmd: 0x07, PumpCmd: 0x04, StopCmd: 0x06,
	},
	{
		// CO in thousandths; byte 17 is the instrument state, so warm-up needs no extra
		// command. Its status command is 22 hex (34) — not used here. Pump/zero/leak codes
		// follow the Nanhua table (the Fuli C++ driver sends the same ones; unconfirmed).
		Model: "fla502", Title: "Fuli FLA-502", Baud: 9600,
		DataCmd: 0x01, ReplyLen: 21, Fields: nanhuaFields(0.001, 0.1),
		StatusOff: 17, StatusKind: StatusState, CheckSum: true, Timeout: nanhuaTimeout,
		EnvCmd: 0x02, ZeroCmd: 0x08, LeakCmd: 0x07, PumpCmd: 0x04, StopCmd: 0x06,
	},
	{
		// 19-byte frame, oil unscaled and unsigned, no flow; byte 17 unknown. The checksum
		// is not checked by the public drivers (SUM inferred): log, do not drop.
		Model: "mqw511", Title: "Mingquan MQW-511", Baud: 9600,
		DataCmd: 0x03, ReplyLen: 19,
		Fields: []Field{
			{HC, 1, true, 1},
			{CO, 3, true, 0.01},
			{CO2, 5, true, 0.01},
			{O2, 7, true, 0.01},
			{NO, 9, true, 1},
			{RPM, 11, false, 1},
			{Oil, 13, false, 1},
			{Lambda, 15, true, 0.01},
		},
		StatusOff: -1, CheckSum: false, Timeout: nanhuaTimeout,
		PumpCmd: 0x01, StopCmd: 0x02,
	},
}

// Specs returns every known spec (models and firmware variants).
func Specs() []Spec {
	out := append([]Spec(nil), specs...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out
}

// Lookup finds the spec of a model and firmware variant ("" = default).
func Lookup(model, firmware string) (Spec, error) {
	known := map[string][]string{}
	for _, s := range specs {
		if s.Model == model && s.Firmware == firmware {
			return s, nil
		}
		known[s.Model] = append(known[s.Model], fmt.Sprintf("%q", s.Firmware))
	}
	if v, ok := known[model]; ok {
		return Spec{}, fmt.Errorf("nanhua: %s has no firmware variant %q (known: %v)", model, firmware, v)
	}
	return Spec{}, fmt.Errorf("nanhua: unknown model %q", model)
}
