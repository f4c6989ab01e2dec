package obd

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// infoPayload strips the 49 PID [count] header of a Mode 09 answer. CAN answers are one
// message "49 PID NN" + items. Legacy answers are several 7-byte messages "49 PID seq" + 4
// bytes, which arrive concatenated; their payloads are joined and count is -1 (unknown).
func infoPayload(pid byte, data []byte) (payload []byte, count int, err error) {
	what := fmt.Sprintf("09%02X vehicle information", pid)
	if len(data) < 3 {
		return nil, 0, decodeErr(what, data, "need at least 3 bytes (49 %02X count), have %d", pid, len(data))
	}
	if data[0] != 0x49 || data[1] != pid {
		return nil, 0, decodeErr(what, data, "want 49 %02X at the start", pid)
	}
	if len(data) >= 14 && len(data)%7 == 0 && legacyInfo(pid, data) {
		for i := 0; i < len(data); i += 7 {
			payload = append(payload, data[i+3:i+7]...)
		}
		return payload, -1, nil
	}
	return data[3:], int(data[2]), nil
}

// withoutCount handles a CAN answer of pid whose ECU left out the item count byte
// ("49 04" + 16 characters, "49 06 00 00 F2 29"), as some ECUs do for the VIN (DecodeVIN).
// An answer whose count byte fits its length (NN items of size bytes after 49 PID NN) has a
// count; one that does not fit, but whose bytes after 49 PID are whole items, has none, and
// its items start right after the PID. So has a CALID answer (ascii) that starts with a
// printable character where the count would be: its last item may be shorter than 16, the
// ECU sending only its characters. It returns the payload and item count to use.
func withoutCount(data, p []byte, n, size int, ascii bool) ([]byte, int, bool) {
	if n < 0 || len(p) == n*size {
		return p, n, false
	}
	rest := len(data) - 2
	switch {
	case rest > 0 && rest%size == 0:
		return data[2:], rest / size, true
	case ascii && rest > 0 && data[2] >= 0x20 && data[2] <= 0x7E:
		return data[2:], (rest + size - 1) / size, true
	}
	return p, n, false
}

// legacyInfo reports whether data looks like concatenated legacy messages: every 7th byte
// restarts with 49 PID and the sequence numbers count up from 1.
func legacyInfo(pid byte, data []byte) bool {
	for i, seq := 0, byte(1); i < len(data); i, seq = i+7, seq+1 {
		if data[i] != 0x49 || data[i+1] != pid || data[i+2] != seq {
			return false
		}
	}
	return true
}

func trimPad(b []byte) []byte {
	for len(b) > 0 {
		switch b[len(b)-1] {
		case 0x00, 0x55, 0xAA, 0xCC, ' ':
			b = b[:len(b)-1]
			continue
		}
		break
	}
	return b
}

// asciiField renders a fixed-width ASCII field: stops at the first 00, replaces anything not
// printable so a broken ECU cannot inject control characters into a record.
func asciiField(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		if c < 0x20 || c > 0x7E {
			s.WriteRune('\uFFFD')
			continue
		}
		s.WriteByte(c)
	}
	return strings.TrimRight(s.String(), " ")
}

// DecodeCALIDs extracts the calibration IDs of one ECU's answer to 0904: NN × 16 ASCII bytes,
// each 00-padded. A short last item is kept and reported with a *DecodeError.
func DecodeCALIDs(data []byte) ([]string, error) {
	p, n, err := infoPayload(0x04, data)
	if err != nil {
		return nil, err
	}
	return fixedItems("0904 calibration ID", data, p, n, 16, asciiField)
}

// DecodeCVNs extracts the calibration verification numbers of one ECU's answer to 0906: NN × 4
// binary bytes, each rendered as 8 upper-case hex digits. Bytes are never stripped: a CVN may
// end in 00 or 0B or 20.
func DecodeCVNs(data []byte) ([]string, error) {
	p, n, err := infoPayload(0x06, data)
	if err != nil {
		return nil, err
	}
	return fixedItems("0906 CVN", data, p, n, 4, func(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) })
}

func fixedItems(what string, data, p []byte, n, size int, conv func([]byte) string) ([]string, error) {
	legacy, noCount := n < 0, false
	if legacy { // legacy: the count is not known, legacy payloads are padded with 00 at the front
		n = len(p) / size
	} else {
		p, n, noCount = withoutCount(data, p, n, size, size == 16)
	}
	out := make([]string, 0, n)
	var err error
	for i := 0; i < n; i++ {
		if noCount && len(p) < size && i == n-1 {
			out = append(out, conv(p)) // a CALID of fewer than 16 characters, no count byte
			p = nil
			break
		}
		if len(p) < size {
			err = decodeErr(what, data, "count byte says %d items of %d bytes, item %d has %d bytes", n, size, i+1, len(p))
			if len(p) > 0 && size > 4 {
				out = append(out, conv(p))
			}
			break
		}
		out = append(out, conv(p[:size]))
		p = p[size:]
	}
	if err == nil && len(p) > 0 && !legacy {
		// More than the count byte says: keep every whole item, and say the answer did not
		// add up, so the step is not taken for complete.
		for ; len(p) >= size; p = p[size:] {
			out = append(out, conv(p[:size]))
		}
		err = decodeErr(what, data, "count byte says %d items of %d bytes; the answer carries %d more bytes", n, size, len(data)-3-n*size)
	}
	return out, err
}

// ECUName is the answer to 090A: an acronym of up to 4 characters and a name of up to 15.
type ECUName struct {
	Acronym string `json:"acronym"`
	Name    string `json:"name"`
}

func (n ECUName) String() string {
	if n.Name == "" {
		return n.Acronym
	}
	return n.Acronym + "-" + n.Name
}

// DecodeECUName decodes one ECU's answer to 090A: 49 0A 01 + 20 bytes = acronym (4, 00-padded),
// '-', name (15, 00-padded).
func DecodeECUName(data []byte) (ECUName, error) {
	p, _, err := infoPayload(0x0A, data)
	if err != nil {
		return ECUName{}, err
	}
	if len(data) == 22 {
		p = data[2:] // 49 0A + 20 bytes: no count byte (see withoutCount)
	}
	if len(p) < 20 {
		return ECUName{}, decodeErr("090A ECU name", data, "need 20 name bytes, have %d", len(p))
	}
	return ECUName{Acronym: asciiField(p[:4]), Name: asciiField(p[5:20])}, nil
}

// IUPR item names, J1979 (inferred, elm327-obd.md §14).
var (
	iuprSpark = []string{"OBDCOND", "IGNCNTR", "CATCOMP1", "CATCOND1", "CATCOMP2", "CATCOND2",
		"O2SCOMP1", "O2SCOND1", "O2SCOMP2", "O2SCOND2", "EGRCOMP", "EGRCOND", "AIRCOMP", "AIRCOND",
		"EVAPCOMP", "EVAPCOND", "SO2SCOMP1", "SO2SCOND1", "SO2SCOMP2", "SO2SCOND2"}
	iuprCompression = []string{"OBDCOND", "IGNCNTR", "HCCATCOMP", "HCCATCOND", "NCATCOMP", "NCATCOND",
		"NADSCOMP", "NADSCOND", "PMCOMP", "PMCOND", "EGSCOMP", "EGSCOND", "EGRCOMP", "EGRCOND",
		"BPCOMP", "BPCOND"}
)

// IUPRItem is one in-use performance counter.
type IUPRItem struct {
	Name  string `json:"name"`
	Count uint16 `json:"count"`
}

// IUPRRatio is a monitor's in-use performance ratio: completions / conditions met.
type IUPRRatio struct {
	Monitor    string  `json:"monitor"` // the name without COMP/COND, e.g. "CAT1"
	Completion uint16  `json:"completion"`
	Condition  uint16  `json:"condition"`
	Ratio      float64 `json:"ratio"` // 0 when Condition is 0
}

// IUPR is one ECU's answer to 0908 (spark ignition) or 090B (compression ignition).
type IUPR struct {
	PID   HexByte    `json:"pid"`
	Items []IUPRItem `json:"items"`
}

// Ratios pairs the xxCOMP / xxCOND counters that follow OBDCOND and IGNCNTR.
func (u IUPR) Ratios() []IUPRRatio {
	out := []IUPRRatio{}
	for i := 2; i+1 < len(u.Items); i += 2 {
		c, d := u.Items[i], u.Items[i+1]
		mon := strings.Replace(c.Name, "COMP", "", 1)
		r := IUPRRatio{Monitor: mon, Completion: c.Count, Condition: d.Count}
		if d.Count != 0 {
			r.Ratio = float64(c.Count) / float64(d.Count)
		}
		out = append(out, r)
	}
	return out
}

// DecodeIUPR decodes an answer to 0908 or 090B: NN × 2-byte counters, named per J1979. Items
// beyond the known names are called ITEMnn.
func DecodeIUPR(pid byte, data []byte) (IUPR, error) {
	if pid != 0x08 && pid != 0x0B {
		return IUPR{}, fmt.Errorf("obd: IUPR is PID 08 or 0B of service 09, not %02X", pid)
	}
	p, n, err := infoPayload(pid, data)
	if err != nil {
		return IUPR{}, err
	}
	names := iuprSpark
	if pid == 0x0B {
		names = iuprCompression
	}
	if n < 0 {
		n = len(p) / 2
	} else {
		p, n, _ = withoutCount(data, p, n, 2, false)
	}
	u := IUPR{PID: HexByte(pid), Items: []IUPRItem{}}
	for i := 0; i < n; i++ {
		if len(p) < 2 {
			return u, decodeErr(fmt.Sprintf("09%02X IUPR", pid), data, "count byte says %d counters, only %d present", n, i)
		}
		name := fmt.Sprintf("ITEM%02d", i+1)
		if i < len(names) {
			name = names[i]
		}
		u.Items = append(u.Items, IUPRItem{Name: name, Count: uint16(p[0])<<8 | uint16(p[1])})
		p = p[2:]
	}
	return u, nil
}
