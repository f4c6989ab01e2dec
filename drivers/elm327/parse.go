package elm327

// The pure half of the driver: turning the lines an ELM327 printed into obd.Responses. No I/O
// here, so every format is table-tested on literal lines (parse_test.go).

import (
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/obdgw/obdgw/obd"
)

// format says how to read data lines: which protocol the adapter is on and whether headers
// are shown (ATH1).
type format struct {
	protocol byte // ELM protocol number as a character '1'…'C'; 0 = unknown, guess per line
	headers  bool
}

func (f format) legacy() bool { return f.protocol >= '1' && f.protocol <= '5' }
func (f format) can29() bool  { return f.protocol == '7' || f.protocol == '9' || f.protocol == 'B' }
func (f format) can() bool    { return f.protocol >= '6' && f.protocol <= 'C' && f.protocol != 'A' }

// reply is a parsed answer.
type reply struct {
	responses []obd.Response
	frames    int // data lines (CAN frames or legacy messages) seen: what the count suffix counts
	// stale counts consecutive frames skipped at the start of the answer because no first
	// frame of theirs is in it: the tail of an earlier answer that a too-small count digit
	// cut off, which the adapter prints in front of the next one (elm327-obd.md §7).
	stale int
	// need is set with the error for a CAN answer that a count digit cut short: the frames the
	// whole answer takes (each complete message as it came, the cut one by the length its
	// first frame announced), and from the ECUs it came from.
	need int
	from []string
	// strays are legacy messages that answer another service (a 41 line among the 49 lines
	// of a VIN), taken out before the ECU's lines were joined.
	strays []obd.Response
}

// reasonOnlyStray is the FrameError reason of an answer made only of frames that answer
// another request; Query turns it into NO DATA once no retry rule applies.
const reasonOnlyStray = "only frames that answer another request"

// cmdService is the service byte of an OBD command line ("0902", "09023"), 0 when the line
// is not one.
func cmdService(cmd string) byte {
	if len(cmd) < 2 {
		return 0
	}
	b, ok := hexBytes(cmd[:2])
	if !ok {
		return 0
	}
	return b[0]
}

// keepService splits one ECU's legacy messages into those that answer service svc (its
// positive or negative answers) and the others; svc 0 keeps everything.
func keepService(msgs [][]byte, svc byte) (kept, stray [][]byte) {
	for _, m := range msgs {
		if svc == 0 || len(m) > 0 && (m[0] == svc|0x40 || m[0] == 0x7F) {
			kept = append(kept, m)
			continue
		}
		stray = append(stray, m)
	}
	return kept, stray
}

// cleanLines splits raw adapter output into trimmed, non-empty lines. It drops NUL bytes, the
// prompt, Bluetooth module chatter (lines starting with '+') and an echo of cmd.
func cleanLines(raw []byte, cmd string) []string {
	s := strings.ReplaceAll(string(raw), "\x00", "")
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' || r == '>' })
	out := make([]string, 0, len(fields))
	ncmd := normalise(cmd)
	for _, l := range fields {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "+") {
			continue
		}
		if ncmd != "" && len(out) == 0 && normalise(l) == ncmd {
			continue // echo (on after ATZ until ATE0 takes effect)
		}
		out = append(out, l)
	}
	return out
}

// parseReply reads the lines of one answer. NO DATA alone gives an *Error wrapping
// obd.ErrNoData; any other adapter error string gives its *Error. Progress lines
// (SEARCHING..., BUS INIT: ...OK) are skipped.
func parseReply(lines []string, f format, cmd string) (reply, error) {
	var data []string
	noData := false
	for _, l := range lines {
		n := normalise(l)
		switch {
		case strings.HasPrefix(n, "SEARCHING"):
			continue
		case strings.HasPrefix(n, "BUSINIT") && !strings.Contains(n, "ERROR"):
			continue
		}
		if c := classify(n); c != 0 {
			if c == CodeNoData {
				noData = true
				continue
			}
			return reply{}, newError(c, cmd, strings.Join(lines, "\r"))
		}
		data = append(data, n)
	}
	if len(data) == 0 {
		if noData {
			return reply{}, newError(CodeNoData, cmd, strings.Join(lines, "\r"))
		}
		return reply{}, &FrameError{Command: cmd, Line: strings.Join(lines, "\r"), Reason: "empty answer"}
	}
	if f.headers && f.protocol == 0 {
		f.protocol = guessProtocol(data[0])
	}
	var (
		r   reply
		err error
	)
	switch {
	case !f.headers:
		r, err = parseHeadersOff(data, f, cmdService(cmd))
	case f.legacy():
		r, err = parseLegacy(data, cmdService(cmd))
	default:
		r, err = parseCAN(data, f)
	}
	if fe, ok := err.(*FrameError); ok {
		fe.Command = cmd
	}
	return r, err
}

// guessProtocol picks a protocol family from a headers-on line when the adapter has not said
// yet (the first 0100 of a search): an odd digit count is an 11-bit CAN identifier, 18DA/18DB
// a 29-bit one, anything else a legacy three-byte header.
func guessProtocol(n string) byte {
	switch {
	case len(n)%2 == 1:
		return '6'
	case len(n) >= 10 && (strings.HasPrefix(n, "18DA") || strings.HasPrefix(n, "18DB")):
		return '7'
	}
	return '3'
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}

func hexBytes(s string) ([]byte, bool) {
	if len(s)%2 != 0 || !isHex(s) {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	return b, err == nil
}

// canFrame is one CAN line with headers: identifier and the 8 (or fewer) data bytes.
type canFrame struct {
	id   string
	data []byte
	line string
}

// splitCANLine splits a normalised headers-on CAN line. 11-bit identifiers are three hex
// digits (so the line has an odd digit count); 29-bit ones are eight.
func splitCANLine(n string, f format) (canFrame, error) {
	if !isHex(n) {
		return canFrame{}, &FrameError{Line: n, Reason: "not a hex line"}
	}
	idLen := 3
	switch {
	case len(n)%2 == 1:
		idLen = 3
	case f.can29():
		idLen = 8
	default:
		return canFrame{}, &FrameError{Line: n, Reason: "cannot tell the CAN identifier (even digit count on an 11-bit protocol)"}
	}
	if len(n) < idLen+2 {
		return canFrame{}, &FrameError{Line: n, Reason: "CAN line too short"}
	}
	b, ok := hexBytes(n[idLen:])
	if !ok || len(b) > 8 {
		return canFrame{}, &FrameError{Line: n, Reason: "bad CAN data bytes"}
	}
	return canFrame{id: n[:idLen], data: b, line: n}, nil
}

// isotp reassembles ISO 15765-2 messages of one sender.
type isotp struct {
	msgs    [][]byte // completed messages, in order
	cur     []byte   // message being assembled
	want    int      // its total length
	nextSeq byte     // next consecutive-frame sequence number
	lastCF  []byte   // the last consecutive frame, to drop an immediate repeat
	seenSF  []string // single frames already taken, to drop repeats
}

// add feeds one frame (PCI byte first). Frames repeated by the adapter are dropped.
func (t *isotp) add(fr []byte, line string) error {
	if len(fr) == 0 {
		return &FrameError{Line: line, Reason: "CAN frame without PCI byte"}
	}
	switch fr[0] >> 4 {
	case 0: // single frame
		n := int(fr[0] & 0x0F)
		if n == 0 || n > 7 {
			return &FrameError{Line: line, Reason: fmt.Sprintf("single frame length %d out of range", n)}
		}
		if n > len(fr)-1 {
			return &FrameError{Line: line, Reason: fmt.Sprintf("single frame says %d bytes, carries %d", n, len(fr)-1)}
		}
		key := hex.EncodeToString(fr[:1+n])
		for _, s := range t.seenSF {
			if s == key {
				return nil // the same frame twice (python-OBD #100)
			}
		}
		t.seenSF = append(t.seenSF, key)
		t.msgs = append(t.msgs, append([]byte(nil), fr[1:1+n]...))
	case 1: // first frame
		if len(fr) < 2 {
			return &FrameError{Line: line, Reason: "first frame too short"}
		}
		n := int(fr[0]&0x0F)<<8 | int(fr[1])
		if n < 8 {
			return &FrameError{Line: line, Reason: fmt.Sprintf("first frame length %d too small", n)}
		}
		if t.cur != nil && t.want == n && len(t.cur) == len(fr)-2 && string(t.cur) == string(fr[2:]) && t.nextSeq == 1 {
			return nil // repeated first frame
		}
		if t.cur != nil {
			return &FrameError{Line: line, Reason: fmt.Sprintf("new first frame while %d of %d bytes of the previous message are missing", t.want-len(t.cur), t.want)}
		}
		t.cur = append([]byte(nil), fr[2:]...)
		t.want = n
		t.nextSeq = 1
		t.lastCF = nil
		t.complete()
	case 2: // consecutive frame
		seq := fr[0] & 0x0F
		if t.cur == nil {
			if t.lastCF != nil && string(t.lastCF) == string(fr) {
				return nil // repeat of the frame that completed the message
			}
			return &FrameError{Line: line, Reason: "consecutive frame without a first frame"}
		}
		if t.lastCF != nil && string(t.lastCF) == string(fr) {
			return nil // repeated frame
		}
		if seq != t.nextSeq {
			return &FrameError{Line: line, Reason: fmt.Sprintf("consecutive frame %X where %X was expected (a frame was lost)", seq, t.nextSeq)}
		}
		t.nextSeq = (t.nextSeq + 1) & 0x0F // F wraps to 0
		t.lastCF = append([]byte(nil), fr...)
		t.cur = append(t.cur, fr[1:]...)
		t.complete()
	case 3: // flow control: the adapter's own business
	default:
		return &FrameError{Line: line, Reason: fmt.Sprintf("unknown PCI type %X", fr[0]>>4)}
	}
	return nil
}

// complete moves the current message to msgs once it has its length, cutting padding.
func (t *isotp) complete() {
	if t.cur != nil && len(t.cur) >= t.want {
		t.msgs = append(t.msgs, t.cur[:t.want])
		t.cur = nil
	}
}

// cutShort describes an answer with a message cut short (reply.need, reply.from).
func cutShort(groups map[string]*isotp, order []string, f format) reply {
	var x []obd.Expect
	for _, id := range order {
		g := groups[id]
		for _, m := range g.msgs {
			x = append(x, obd.Expect{Len: len(m)})
		}
		if g.cur != nil {
			x = append(x, obd.Expect{Len: g.want})
		}
	}
	return reply{need: expectedFrames(x, f), from: order}
}

// parseCAN reads headers-on CAN lines: frames grouped by identifier (ECUs in the order they
// first answered), each group reassembled.
func parseCAN(lines []string, f format) (reply, error) {
	var order []string
	groups := map[string]*isotp{}
	frames, stale := 0, 0
	lead := true
	for _, l := range lines {
		fr, err := splitCANLine(l, f)
		if err != nil {
			return reply{}, err
		}
		g := groups[fr.id]
		if lead && g == nil && len(fr.data) > 0 && fr.data[0]>>4 == 2 {
			stale++
			continue
		}
		lead = false
		if g == nil {
			g = &isotp{}
			groups[fr.id] = g
			order = append(order, fr.id)
		}
		frames++
		if err := g.add(fr.data, l); err != nil {
			return reply{}, err
		}
	}
	var r reply
	r.frames, r.stale = frames, stale
	for _, id := range order {
		g := groups[id]
		if g.cur != nil {
			return cutShort(groups, order, f), &FrameError{Line: strings.Join(lines, "\r"), Reason: fmt.Sprintf("incomplete message from %s: %d of %d bytes", id, len(g.cur), g.want)}
		}
		for _, m := range dropPending(g.msgs) {
			r.responses = append(r.responses, obd.Response{ECU: id, Data: m})
		}
	}
	if len(r.responses) == 0 {
		if stale > 0 {
			return reply{}, &FrameError{Line: strings.Join(lines, "\r"), Reason: "consecutive frame without a first frame"}
		}
		return reply{}, &FrameError{Line: strings.Join(lines, "\r"), Reason: "no complete message"}
	}
	return r, nil
}

// parseLegacy reads headers-on J1850 / ISO 9141 / KWP lines: three header bytes (priority or
// format, target, source), data, checksum. Lines are grouped by source address and each
// ECU's lines joined (joinLegacy). Lines of another service than svc's (0: any) are set
// aside as strays.
func parseLegacy(lines []string, svc byte) (reply, error) {
	var order []string
	groups := map[string][][]byte{}
	for _, l := range lines {
		b, ok := hexBytes(l)
		if !ok {
			return reply{}, &FrameError{Line: l, Reason: "not a hex line"}
		}
		if len(b) < 5 {
			return reply{}, &FrameError{Line: l, Reason: "legacy line too short for header, data and checksum"}
		}
		src := fmt.Sprintf("%02X", b[2])
		if _, ok := groups[src]; !ok {
			order = append(order, src)
		}
		groups[src] = append(groups[src], b[3:len(b)-1])
	}
	r := reply{frames: len(lines)}
	for _, src := range order {
		kept, stray := keepService(groups[src], svc)
		for _, m := range stray {
			r.strays = append(r.strays, obd.Response{ECU: src, Data: m})
		}
		if len(kept) == 0 {
			continue
		}
		d, err := joinLegacy(dropPending(kept))
		if err != nil {
			return reply{}, err
		}
		r.responses = append(r.responses, obd.Response{ECU: src, Data: d})
	}
	if len(r.responses) == 0 {
		return r, &FrameError{Line: strings.Join(lines, "\r"), Reason: reasonOnlyStray}
	}
	return r, nil
}

// dropPending removes "7F sid 78" (response pending) messages of an ECU that went on to
// answer: the adapter keeps listening after one, and the real answer follows. When nothing
// followed, the pending message is kept so the caller sees what the ECU said.
func dropPending(msgs [][]byte) [][]byte {
	pending := func(m []byte) bool { return len(m) >= 3 && m[0] == 0x7F && m[2] == 0x78 }
	var out [][]byte
	for _, m := range msgs {
		if !pending(m) {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return msgs
	}
	return out
}

// joinLegacy joins the messages of one ECU into one response by plain concatenation, each
// message keeping its own service byte (and, for Mode 09, its PID and sequence byte): a
// legacy VIN reads "49 02 01 00 00 00 4C 49 02 02 4B 36 41 44 …" and a Mode 03 answer
// "43 04 20 01 71 03 00 43 24 63 00 00 00 00". The obd decoders recognise this legacy form
// (every message starts again with its service byte). Mode 09 messages are put in sequence
// order and a repeated sequence number is dropped.
func joinLegacy(msgs [][]byte) ([]byte, error) {
	if len(msgs) == 1 {
		return msgs[0], nil
	}
	first := msgs[0]
	for _, m := range msgs[1:] {
		if m[0] != first[0] {
			return nil, &FrameError{Line: strings.ToUpper(hex.EncodeToString(m)), Reason: "lines of different services from one ECU"}
		}
	}
	if first[0] == 0x49 {
		for _, m := range msgs {
			if len(m) < 3 || m[1] != first[1] {
				return nil, &FrameError{Line: strings.ToUpper(hex.EncodeToString(m)), Reason: "mixed Mode 09 lines"}
			}
		}
		sorted := append([][]byte(nil), msgs...)
		sort.SliceStable(sorted, func(i, j int) bool { return sorted[i][2] < sorted[j][2] })
		var out []byte
		prev := -1
		for _, m := range sorted {
			if int(m[2]) == prev {
				continue // the same message twice
			}
			prev = int(m[2])
			out = append(out, m...)
		}
		return out, nil
	}
	var out []byte
	for _, m := range msgs {
		out = append(out, m...)
	}
	return out, nil
}

// parseHeadersOff reads output without headers (ATH0). On CAN a multi-frame message is a
// byte-count line ("014") followed by "0:", "1:", … lines, possibly run together on one
// line; single frames are bare data. The ECU cannot be named. Legacy lines of another
// service than svc's (0: any) are set aside as strays.
func parseHeadersOff(lines []string, f format, svc byte) (reply, error) {
	var expanded []string
	for _, l := range lines {
		expanded = append(expanded, expandIndexed(l)...)
	}
	var r reply
	var cur []byte
	want, next := -1, 0
	flush := func(line string) error {
		if want < 0 {
			return nil
		}
		if len(cur) < want {
			return &FrameError{Line: line, Reason: fmt.Sprintf("incomplete message: %d of %d bytes", len(cur), want)}
		}
		r.responses = append(r.responses, obd.Response{Data: cur[:want]})
		cur, want = nil, -1
		return nil
	}
	var legacy [][]byte
	for i, l := range expanded {
		switch {
		case len(l) == 3 && isHex(l) && i+1 < len(expanded) && strings.HasPrefix(expanded[i+1], "0:"):
			if err := flush(l); err != nil {
				return reply{}, err
			}
			var n int
			fmt.Sscanf(l, "%X", &n)
			if n == 0 {
				return reply{}, &FrameError{Line: l, Reason: "byte count 0"}
			}
			want, next, cur = n, 0, nil
		case len(l) >= 2 && l[1] == ':':
			if want < 0 && r.frames == 0 && len(r.responses) == 0 && len(legacy) == 0 {
				r.stale++ // the tail of an earlier answer, cut off by a count digit
				continue
			}
			if want < 0 {
				return reply{}, &FrameError{Line: l, Reason: "indexed line without a byte count"}
			}
			idx := int(hexVal(l[0]))
			if idx != next {
				return reply{}, &FrameError{Line: l, Reason: fmt.Sprintf("frame %X where %X was expected", idx, next)}
			}
			next = (next + 1) & 0x0F
			b, ok := hexBytes(l[2:])
			if !ok {
				return reply{}, &FrameError{Line: l, Reason: "bad data bytes"}
			}
			cur = append(cur, b...)
			r.frames++
		default:
			if err := flush(l); err != nil {
				return reply{}, err
			}
			b, ok := hexBytes(l)
			if !ok || len(b) == 0 {
				return reply{}, &FrameError{Line: l, Reason: "not a hex line"}
			}
			r.frames++
			if f.legacy() {
				legacy = append(legacy, b)
				continue
			}
			r.responses = append(r.responses, obd.Response{Data: b})
		}
	}
	if err := flush(strings.Join(lines, "\r")); err != nil {
		return reply{}, err
	}
	kept, stray := keepService(legacy, svc)
	for _, m := range stray {
		r.strays = append(r.strays, obd.Response{Data: m})
	}
	if len(kept) > 0 {
		d, err := joinLegacy(kept)
		if err != nil {
			return reply{}, err
		}
		r.responses = append(r.responses, obd.Response{Data: d})
	}
	if len(r.responses) == 0 && len(r.strays) > 0 {
		return r, &FrameError{Line: strings.Join(lines, "\r"), Reason: reasonOnlyStray}
	}
	return r, nil
}

// expandIndexed splits a run-together headers-off line ("0140:4902014C4B361:4144…") at its
// "N:" markers into "014", "0:…", "1:…".
func expandIndexed(l string) []string {
	if !strings.Contains(l, ":") {
		return []string{l}
	}
	var colons []int
	for i := 0; i < len(l); i++ {
		if l[i] == ':' {
			colons = append(colons, i)
		}
	}
	if colons[0] == 0 {
		return []string{l}
	}
	var out []string
	if p := l[:colons[0]-1]; p != "" {
		out = append(out, p)
	}
	for k, c := range colons {
		end := len(l)
		if k+1 < len(colons) {
			end = colons[k+1] - 1
		}
		if end < c+1 {
			end = c + 1
		}
		out = append(out, l[c-1:c+1]+l[c+1:end])
	}
	return out
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0xFF
}
