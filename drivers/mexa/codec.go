package mexa

import (
	"fmt"
	"time"

	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/frame"
)

// Title is the model's display name.
const Title = "HORIBA MEXA-584L"

// Commands.
const (
	CmdStatus    = 0x01
	CmdSubsystem = 0xAA
	CmdChannels  = 0x40
	CmdPEF       = 0x18
	CmdMeasure   = 0xA6
	CmdStandby   = 0xA7
	ACK          = 0x06
	NAK          = 0x15
	// NAKLen is the length of a refusal.
	NAKLen = 5
)

// Query is one request kind: its frame, reply length and the pause before reading.
type Query struct {
	Cmd   byte
	Param []byte
	Len   int
	Delay time.Duration
}

// The query table of rig-protocols.md §5.
var (
	QStatus    = Query{CmdStatus, nil, 16, 150 * time.Millisecond}
	QSubsystem = Query{CmdSubsystem, nil, 10, 240 * time.Millisecond}
	QChannels  = Query{CmdChannels, nil, 28, 290 * time.Millisecond}
	QPEF       = Query{CmdPEF, []byte{0, 0}, 6, 230 * time.Millisecond}
	QMeasure   = Query{CmdMeasure, nil, 4, 240 * time.Millisecond}
	QStandby   = Query{CmdStandby, nil, 4, 240 * time.Millisecond}
)

// Request builds `02 n cmd [param…] cs`.
func Request(cmd byte, param ...byte) []byte {
	b := []byte{0x02, byte(1 + len(param)), cmd}
	b = append(b, param...)
	return append(b, frame.TwoC(b))
}

// Frame returns q's request bytes.
func (q Query) Frame() []byte { return Request(q.Cmd, q.Param...) }

// CheckReply validates a reply to cmd of length n: NAK, lead byte, echo, zero sum.
func CheckReply(b []byte, cmd byte, n int) error {
	raw := append([]byte(nil), b...)
	if n < 3 {
		return &rig.FrameError{Model: Title, Frame: raw, Reason: fmt.Sprintf("reply length %d is below the 3-byte minimum", n)}
	}
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
	if s := frame.Sum(b); s != 0 {
		return &rig.ChecksumError{Model: Title, Frame: raw, Want: frame.TwoC(b[:n-1]), Got: b[n-1]}
	}
	if b[1] != cmd {
		return &rig.FrameError{Model: Title, Frame: raw, Reason: fmt.Sprintf("echo %02X, want %02X", b[1], cmd)}
	}
	return nil
}

// Options are the fitted options of subsystem byte 6.
type Options byte

const (
	OptO2  Options = 0x01
	OptNO  Options = 0x02
	OptRPM Options = 0x04
	OptOil Options = 0x08
)

// Subsystem is a decoded subsystem reply.
type Subsystem struct {
	Options   Options
	Measuring bool // byte 4 & 40
	Leak      bool // byte 5 & 02
	HangUp    bool // byte 5 & 08
	Filter    bool // byte 3 & 20
	Raw       []byte
}

// DecodeSubsystem parses the 10-byte subsystem reply.
func DecodeSubsystem(b []byte) (Subsystem, error) {
	if err := CheckReply(b, CmdSubsystem, QSubsystem.Len); err != nil {
		return Subsystem{}, err
	}
	return Subsystem{
		Options: Options(b[6]), Measuring: b[4]&0x40 != 0, Leak: b[5]&0x02 != 0,
		HangUp: b[5]&0x08 != 0, Filter: b[3]&0x20 != 0, Raw: append([]byte(nil), b...),
	}, nil
}

// Status is a decoded status reply.
type Status struct {
	WarmingUp bool // byte 3 & 08
	// CalError: any of bytes 9, 10, 11, 14 non-zero, byte 12 with the NO option, byte 13 with
	// the O2 option.
	CalError bool
	Raw      []byte
}

// DecodeStatus parses the 16-byte status reply; opts says which option bytes count.
func DecodeStatus(b []byte, opts Options) (Status, error) {
	if err := CheckReply(b, CmdStatus, QStatus.Len); err != nil {
		return Status{}, err
	}
	cal := b[9] != 0 || b[10] != 0 || b[11] != 0 || b[14] != 0 ||
		(opts&OptNO != 0 && b[12] != 0) || (opts&OptO2 != 0 && b[13] != 0)
	return Status{WarmingUp: b[3]&0x08 != 0, CalError: cal, Raw: append([]byte(nil), b...)}, nil
}

// Channels is a decoded channels reply. Optional channels are valid only when fitted.
type Channels struct {
	CO2Pct, COPct, HCppm, O2Pct, AFR, Lambda, NOppm, RPM, OilC float64
	RPMAlarm, OilAlarm                                         bool
	Raw                                                        []byte
}

// DecodeChannels parses the 28-byte channels reply.
func DecodeChannels(b []byte) (Channels, error) {
	if err := CheckReply(b, CmdChannels, QChannels.Len); err != nil {
		return Channels{}, err
	}
	w := func(off int, dec int, scale float64) float64 {
		return frame.Round(float64(frame.I16(b, off))*scale, dec)
	}
	return Channels{
		CO2Pct: w(5, 2, 0.01), COPct: w(7, 2, 0.01), HCppm: w(9, 0, 1), O2Pct: w(11, 2, 0.01),
		AFR: w(13, 1, 0.1), Lambda: w(15, 3, 0.001), NOppm: w(21, 0, 1), RPM: w(23, 0, 1), OilC: w(25, 0, 1),
		RPMAlarm: b[4]&0x01 != 0, OilAlarm: b[4]&0x02 != 0, Raw: append([]byte(nil), b...),
	}, nil
}

// Reading converts c to the common reading given the fitted options (without Time).
func (c Channels) Reading(opts Options) rig.Reading {
	r := rig.Reading{CO2Pct: rig.F(c.CO2Pct), COPct: rig.F(c.COPct), HCppm: rig.F(c.HCppm), Lambda: rig.F(c.Lambda)}
	if opts&OptO2 != 0 {
		r.O2Pct = rig.F(c.O2Pct)
	}
	if opts&OptNO != 0 {
		r.NOppm = rig.F(c.NOppm)
	}
	if opts&OptRPM != 0 {
		r.RPM = rig.F(c.RPM)
	}
	if opts&OptOil != 0 {
		r.OilC = rig.F(c.OilC)
	}
	if c.RPMAlarm {
		r.Flags = append(r.Flags, "rpm_alarm")
	}
	if c.OilAlarm {
		r.Flags = append(r.Flags, "oil_temp_alarm")
	}
	return r
}

// EncodeChannels builds a channels reply (simulator side).
func EncodeChannels(c Channels) []byte {
	b := make([]byte, QChannels.Len)
	b[0], b[1] = ACK, CmdChannels
	put := func(off int, v, scale float64) { frame.PutI16(b, off, frame.Round16(v/scale)) }
	put(5, c.CO2Pct, 0.01)
	put(7, c.COPct, 0.01)
	put(9, c.HCppm, 1)
	put(11, c.O2Pct, 0.01)
	put(13, c.AFR, 0.1)
	put(15, c.Lambda, 0.001)
	put(21, c.NOppm, 1)
	put(23, c.RPM, 1)
	put(25, c.OilC, 1)
	if c.RPMAlarm {
		b[4] |= 0x01
	}
	if c.OilAlarm {
		b[4] |= 0x02
	}
	b[len(b)-1] = frame.TwoC(b[:len(b)-1])
	return b
}

// DecodePEF parses the 6-byte PEF reply (int16 at 3, ÷1000).
func DecodePEF(b []byte) (float64, error) {
	if err := CheckReply(b, CmdPEF, QPEF.Len); err != nil {
		return 0, err
	}
	return frame.Round(float64(frame.I16(b, 3))*0.001, 3), nil
}

// Reply builds a reply of n bytes to cmd with the given body bytes from offset 2 (simulator
// side); the last byte makes the sum 0.
func Reply(cmd byte, n int, body map[int]byte) []byte {
	b := make([]byte, n)
	b[0], b[1] = ACK, cmd
	for off, v := range body {
		if off >= 2 && off < n-1 {
			b[off] = v
		}
	}
	b[n-1] = frame.TwoC(b[:n-1])
	return b
}
