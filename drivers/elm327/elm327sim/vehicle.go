package elm327sim

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// answer is what ECU e sends back for request data: nothing (it keeps quiet), or one message
// (CAN, reassembled payload) or several (legacy protocols send one line per message).
func (s *Sim) answer(e *ecu, data []byte) [][]byte {
	svc := data[0]
	key := strings.ToUpper(hex.EncodeToString(data))
	if nrc, ok := e.negative[key]; ok {
		return [][]byte{{0x7F, svc, nrc}}
	}
	if nrc, ok := e.negative[fmt.Sprintf("%02X", svc)]; ok {
		return [][]byte{{0x7F, svc, nrc}}
	}
	old := legacy(s.v.proto)
	switch svc {
	case 0x01:
		pids := data[1:]
		if len(pids) == 0 || len(pids) > 6 {
			return nil
		}
		// Several PIDs in one request work on CAN only, and not on every ECU (elm327-obd.md §16).
		if len(pids) > 1 && (old || s.v.faults.NoMultiPID) {
			return nil
		}
		resp := []byte{0x41}
		for _, p := range pids {
			if v, ok := e.mode01(p); ok {
				resp = append(append(resp, p), v...)
			}
		}
		if len(resp) == 1 {
			return nil
		}
		return [][]byte{resp}
	case 0x02:
		// 02 PID FRAME: the frame byte is required (python-OBD omits it — elm327-obd.md §11).
		if len(data) != 3 || data[2] != 0 || e.ffDTC == nil {
			return nil
		}
		pid := data[1]
		var v []byte
		switch {
		case pid == 0x00:
			set := map[byte]bool{0x02: true}
			for p := range e.ffPIDs {
				set[p] = true
			}
			v = bitmap(set, 0)
		case pid == 0x02:
			v = e.ffDTC[:]
		default:
			var ok bool
			if v, ok = e.ffPIDs[pid]; !ok {
				return nil
			}
		}
		return [][]byte{append([]byte{0x42, pid, 0x00}, v...)}
	case 0x03, 0x07, 0x0A:
		if len(data) != 1 {
			return nil
		}
		list := e.stored
		switch svc {
		case 0x07:
			list = e.pending
		case 0x0A:
			list = e.permanent
		}
		if !old {
			m := []byte{svc | 0x40, byte(len(list))}
			for _, d := range list {
				m = append(m, d[0], d[1])
			}
			return [][]byte{m}
		}
		// Legacy: no count byte, three codes per message, 00 00 padding (elm327-obd.md §13).
		var msgs [][]byte
		for i := 0; i == 0 || i < len(list); i += 3 {
			m := []byte{svc | 0x40}
			for j := i; j < i+3; j++ {
				if j < len(list) {
					m = append(m, list[j][0], list[j][1])
				} else {
					m = append(m, 0, 0)
				}
			}
			msgs = append(msgs, m)
		}
		return msgs
	case 0x04:
		if len(data) != 1 {
			return nil
		}
		e.clear()
		return [][]byte{{0x44}}
	case 0x09:
		if len(data) != 2 {
			return nil
		}
		return e.mode09(data[1], old)
	}
	return nil
}

// clear is what service 04 does to an ECU: stored and pending codes and the freeze frame go,
// the monitors restart (every supported monitor incomplete), the since-clear counters reset.
// Permanent codes stay: only the ECU itself erases them after passing drive cycles.
func (e *ecu) clear() {
	e.stored, e.pending, e.ffDTC, e.ffPIDs = nil, nil, nil, nil
	if r := e.readiness; r != nil {
		r[0] = 0
		r[1] = r[1]&0x0F | (r[1]&0x07)<<4
		r[3] = r[2]
	}
	for _, p := range []byte{0x21, 0x31, 0x4D, 0x4E} {
		if v, ok := e.pids[p]; ok {
			for i := range v {
				v[i] = 0
			}
		}
	}
}

func (e *ecu) mode01(pid byte) ([]byte, bool) {
	if pid%0x20 == 0 {
		if pid > 0 && !e.anyAbove(pid) {
			return nil, false
		}
		set := map[byte]bool{}
		for p := range e.pids {
			set[p] = true
		}
		return bitmap(set, pid), true
	}
	v, ok := e.pids[pid]
	return v, ok
}

func (e *ecu) anyAbove(pid byte) bool {
	for p := range e.pids {
		if p > pid {
			return true
		}
	}
	return false
}

// bitmap is the supported-PID answer for base (00, 20, …): bit 7 of the first byte is PID
// base+1; the last bit says the next bitmap exists (elm327-obd.md §15).
func bitmap(set map[byte]bool, base byte) []byte {
	out := make([]byte, 4)
	above := false
	for p := range set {
		if int(p) > int(base)+0x20 {
			above = true
		}
	}
	for i := 1; i <= 0x20; i++ {
		p := int(base) + i
		if p > 0xFF {
			break
		}
		if set[byte(p)] || (i == 0x20 && above) {
			out[(i-1)/8] |= 0x80 >> ((i - 1) % 8)
		}
	}
	return out
}

func (e *ecu) mode09(pid byte, old bool) [][]byte {
	var items [][]byte // the data items of the PID
	switch pid {
	case 0x02:
		if e.vin != nil {
			items = [][]byte{e.vin}
		}
	case 0x04:
		items = e.calids
	case 0x06:
		items = e.cvns
	case 0x0A:
		if e.ecuName != nil {
			items = [][]byte{e.ecuName}
		}
	case 0x08, 0x0B:
		spark := e.readiness == nil || e.readiness[1]&0x08 == 0
		if e.iupr != nil && (pid == 0x08) == spark {
			items = [][]byte{e.iupr}
		}
	}
	switch {
	case pid == 0x00:
		set := map[byte]bool{}
		for _, p := range []byte{0x02, 0x04, 0x06, 0x08, 0x0A, 0x0B} {
			if len(e.mode09(p, old)) > 0 {
				set[p] = true
				if old && p < 0x08 {
					set[p-1] = true // message-count PIDs 01/03/05 of legacy vehicles
				}
			}
		}
		if len(set) == 0 {
			return nil
		}
		return [][]byte{append([]byte{0x49, 0x00}, bitmap(set, 0)...)}
	case old && (pid == 0x01 || pid == 0x03 || pid == 0x05):
		msgs := e.mode09(pid+1, old)
		if len(msgs) == 0 {
			return nil
		}
		return [][]byte{{0x49, pid, byte(len(msgs))}}
	case len(items) == 0:
		return nil
	}
	n := len(items)
	if pid == 0x08 || pid == 0x0B {
		n = len(e.iupr) / 2
	}
	if !old {
		m := []byte{0x49, pid, byte(n)}
		for _, it := range items {
			m = append(m, it...)
		}
		return [][]byte{m}
	}
	// Legacy: 4 data bytes per message with a sequence number; the VIN is padded in front with
	// three 00 bytes to fill five messages (elm327-obd.md §6).
	var all []byte
	if pid == 0x02 {
		all = []byte{0, 0, 0}
	}
	for _, it := range items {
		all = append(all, it...)
	}
	for len(all)%4 != 0 {
		all = append(all, 0)
	}
	var msgs [][]byte
	for i := 0; i < len(all); i += 4 {
		msgs = append(msgs, append([]byte{0x49, pid, byte(i/4 + 1)}, all[i:i+4]...))
	}
	return msgs
}

// format renders one message of ECU e as the adapter prints it under the current ATH/ATS
// settings: CAN frames (ISO-TP single or first + consecutive frames, padding, sequence wrap)
// or a legacy line (header and checksum with headers on) (elm327-obd.md §6).
func (s *Sim) format(e *ecu, msg []byte) []line {
	hx := func(b []byte) string {
		sep := ""
		if s.spaces {
			sep = " "
		}
		parts := make([]string, len(b))
		for i, c := range b {
			parts[i] = fmt.Sprintf("%02X", c)
		}
		return strings.Join(parts, sep)
	}
	sep := ""
	if s.spaces {
		sep = " "
	}
	if legacy(s.v.proto) {
		if !s.headers {
			return []line{{hx(msg), true}}
		}
		h := []byte{0x48, 0x6B, e.idBytes[0]}
		if s.v.proto != 3 {
			h = []byte{0x80 | byte(len(msg)), 0xF1, e.idBytes[0]} // KWP format byte carries the length
		}
		fr := append(h, msg...)
		var sum byte
		for _, c := range fr {
			sum += c
		}
		return []line{{hx(append(fr, sum)), true}}
	}
	header := e.id
	if len(e.idBytes) == 4 {
		header = hx(e.idBytes)
	}
	pad := func(f []byte) []byte {
		if e.pad < 0 {
			return f
		}
		for len(f) < 8 {
			f = append(f, byte(e.pad))
		}
		return f
	}
	if len(msg) <= 7 {
		if !s.headers {
			return []line{{hx(msg), true}}
		}
		return []line{{header + sep + hx(pad(append([]byte{byte(len(msg))}, msg...))), true}}
	}
	var out []line
	if !s.headers {
		out = append(out, line{fmt.Sprintf("%03X", len(msg)), false})
	}
	first := msg[:6]
	rest := msg[6:]
	if s.headers {
		out = append(out, line{header + sep + hx(append([]byte{0x10 | byte(len(msg)>>8), byte(len(msg))}, first...)), true})
	} else {
		out = append(out, line{"0:" + sep + hx(first), true})
	}
	for seq := 1; len(rest) > 0; seq++ {
		n := min(7, len(rest))
		chunk := rest[:n]
		rest = rest[n:]
		if s.headers {
			out = append(out, line{header + sep + hx(pad(append([]byte{0x20 | byte(seq&0x0F)}, chunk...))), true})
		} else {
			out = append(out, line{fmt.Sprintf("%X:", seq&0x0F) + sep + hx(chunk), true})
		}
	}
	return out
}
