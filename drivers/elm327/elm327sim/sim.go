package elm327sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a Sim beyond its scenario.
type Options struct {
	// Baud overrides the scenario's pacing rate. 0 keeps the scenario's; a negative value turns
	// pacing off (output as fast as the link takes it).
	Baud int
	// Latency overrides the scenario's ECU latency when positive; NoLatency makes it zero.
	Latency   time.Duration
	NoLatency bool
	// Timeout, when positive, replaces the modelled response timeout (the wait after the last
	// frame without a satisfied count digit, and before NO DATA).
	Timeout time.Duration
	// SearchDelay, when positive, replaces the scenario's faults.searching_delay for the
	// automatic protocol search (ATSP0, or ATSP A<n> naming another protocol than the car's):
	// a real adapter may search for several seconds, while a protocol selected directly
	// (ATSP6 on a CAN 11/500 car) answers at once.
	SearchDelay time.Duration
	// Log receives one debug line per command (nil → discard).
	Log *slog.Logger
	// HostBaud, when set, reports the rate the host set on its end of the line (for a pty,
	// serialport.PTYBaud reads it through the master; 0 when it cannot be read). When it differs from the adapter's rate (Baud, else
	// the scenario's), the simulator sees and sends only garbage, as a UART at the wrong rate
	// does: no command is understood and no prompt comes back.
	HostBaud func() int
}

// Stats is what a Sim counted since it was created.
type Stats struct {
	Commands   []string // normalised commands in the order received (bare CR repeats shown as repeated)
	Requests   int      // OBD requests (not AT/ST commands)
	Clears     int      // service 04 requests that reached the vehicle
	Stopped    int      // OBD requests interrupted by an early byte from the host (STOPPED)
	BareCRs    int      // empty commands, which the chip answers by repeating the previous one
	BytesIn    int
	BytesOut   int
	Wire       time.Duration // BytesIn+BytesOut at 10 bits per byte at the pacing rate
	ECULatency time.Duration // ECU response time of the requests that were answered
	Search     time.Duration // protocol searches, bus inits and resets
	// TimeoutWaits counts answered requests after which the adapter waited out its response
	// timeout for more frames (no count digit, or too large a one); Waited is the time spent.
	// NoDataWaits counts requests nobody answered (NO DATA after the timeout).
	TimeoutWaits int
	NoDataWaits  int
	Waited       time.Duration
	// Garbled counts bytes the host sent at a rate other than the adapter's (Options.HostBaud).
	Garbled int
	// WaitedAfter lists the commands after which the adapter waited out its timeout for
	// more frames (the TimeoutWaits), in order.
	WaitedAfter []string
}

// Bound is the lower bound of the exchange so far: bytes on the wire, ECU latency and
// searches. Timeout waits are not in it: a driver that uses the count digit avoids them.
func (st Stats) Bound() time.Duration { return st.Wire + st.ECULatency + st.Search }

// ErrDisconnected is returned by Serve when the disconnect_after fault dropped the link.
var ErrDisconnected = errors.New("elm327sim: link dropped mid-reply (disconnect_after fault)")

// errStopped unwinds an OBD request interrupted by a byte from the host.
var errStopped = errors.New("elm327sim: stopped")

// Sim is a simulated ELM327 with a vehicle behind it. Serve may be called again after it
// returns (a new client on the same pty); the adapter and vehicle state carry over, as they do
// on a dongle that stays powered by the car. Stats may be called from any goroutine; Serve
// must not run twice at the same time.
type Sim struct {
	v       *vehicle
	err     error
	baud    int
	latency time.Duration
	timeout time.Duration
	search  time.Duration // the automatic search (Options.SearchDelay, else faults.searching_delay)
	log     *slog.Logger

	hostBaud func() int

	mu      sync.Mutex
	stats   Stats
	serving atomic.Bool

	// Adapter state, owned by the Serve goroutine.
	echo, lf, spaces, headers bool
	at                        int
	st                        byte
	auto                      bool // ATSP0 / ATSP A<n>: search when the protocol is unknown
	spProto                   int  // protocol set by ATSP/ATTP (with auto: tried first); 0 none
	found                     bool // the vehicle's protocol is known
	connected                 bool // a bus session is open
	last                      string
	txHeader                  string
	replies                   int
	stale                     []string // frames beyond a too-small count digit, printed before the next answer
	cut                       bool
	due                       time.Time
	pending                   []byte
	obdRequests               int  // OBD requests taken, for the stall_after fault
	stalled                   bool // the stall_after fault fired: nothing is answered again

	ctx context.Context
	w   io.Writer
	in  chan []byte
}

// New returns a simulator for scenario. An invalid scenario makes Serve return the validation
// error (Parse and Builtin have already checked theirs).
func New(scenario Scenario, opts Options) *Sim {
	v, err := compile(scenario)
	s := &Sim{v: v, err: err, log: opts.Log}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err != nil {
		return s
	}
	s.baud = v.baud
	if opts.Baud != 0 {
		s.baud = opts.Baud
	}
	s.latency = v.latency
	if opts.Latency > 0 {
		s.latency = opts.Latency
	}
	if opts.NoLatency {
		s.latency = 0
	}
	s.timeout = opts.Timeout
	s.search = v.faults.SearchingDelay
	if opts.SearchDelay > 0 {
		s.search = opts.SearchDelay
	}
	s.hostBaud = opts.HostBaud
	s.reset()
	return s
}

// Stats returns a copy of the counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Commands = append([]string(nil), s.stats.Commands...)
	st.WaitedAfter = append([]string(nil), s.stats.WaitedAfter...)
	return st
}

// String names the simulator for logs: "elm327sim petrol (ELM327 v1.5, protocol 6, 38400 baud)".
func (s *Sim) String() string {
	if s.err != nil {
		return "elm327sim (invalid scenario)"
	}
	rate := fmt.Sprintf("%d baud", s.baud)
	if s.baud < 0 {
		rate = "unpaced"
	}
	return fmt.Sprintf("elm327sim %s (%s, protocol %X, %s)", s.v.name, s.v.version, s.v.proto, rate)
}

// Baud is the pacing rate in use (negative: unpaced).
func (s *Sim) Baud() int { return s.baud }

func (s *Sim) count(f func(st *Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// reset is ATZ/ATWS: power-on defaults (echo on — PP 09 — headers off, spaces on, adaptive
// timing 1, ST 32, automatic protocol). The simulator does not keep an ATSP protocol across a
// reset as a genuine chip's EEPROM would; drivers set it again after ATZ anyway.
func (s *Sim) reset() {
	s.echo, s.lf, s.spaces, s.headers = true, false, true, false
	s.at, s.st = 1, 0x32
	s.auto, s.spProto, s.found, s.connected = true, 0, false, false
	s.txHeader = ""
	s.stale = nil
}

// Serve answers commands read from rw until ctx ends (nil), rw reports end of file (nil), a
// read or write fails (the error), or the disconnect_after fault fires (ErrDisconnected).
// The reading goroutine it starts ends when rw's Read returns, so close rw after Serve if it
// may block forever.
func (s *Sim) Serve(ctx context.Context, rw io.ReadWriter) error {
	if s.err != nil {
		return s.err
	}
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("elm327sim: Serve is already running on this Sim")
	}
	defer s.serving.Store(false)
	in := make(chan []byte, 16)
	errc := make(chan error, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := rw.Read(buf)
			if n > 0 {
				select {
				case in <- append([]byte(nil), buf[:n]...):
				case <-done:
					return
				}
			}
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	s.ctx, s.w, s.in = ctx, rw, in
	s.cut = false
	for {
		if i := bytes.IndexByte(s.pending, '\r'); i >= 0 {
			raw := append([]byte(nil), s.pending[:i]...)
			s.pending = append(s.pending[:0], s.pending[i+1:]...)
			if err := s.command(raw); err != nil {
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					return nil
				}
				return err
			}
			continue
		}
		if len(s.pending) > 4096 { // a runaway line without CR: keep the tail like a small chip buffer
			s.pending = append(s.pending[:0], s.pending[len(s.pending)-64:]...)
		}
		select {
		case b := <-in:
			if s.hostBaud != nil {
				if hb := s.hostBaud(); hb != s.baud {
					if err := s.garble(b, hb); err != nil {
						return err
					}
					continue
				}
			}
			s.pending = append(s.pending, b...)
		case err := <-errc:
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return fmt.Errorf("elm327sim: read: %w", err)
		case <-ctx.Done():
			return nil
		}
	}
}

// garble answers bytes sent at the wrong rate hb: the chip reads them as framing errors and
// noise, and what it sends back reaches the host as noise too. The noise never holds a prompt
// or a line end, so a host can only time out.
func (s *Sim) garble(b []byte, hb int) error {
	s.count(func(st *Stats) { st.BytesIn += len(b); st.Garbled += len(b) })
	s.log.Debug("elm327sim: host at the wrong rate", "host_baud", hb, "adapter_baud", s.baud, "bytes", len(b))
	noise := make([]byte, (len(b)+1)/2)
	for i := range noise {
		noise[i] = []byte{0xF8, 0x80, 0x00, 0xE0, 0xFE}[i%5]
	}
	_, err := s.w.Write(noise)
	return err
}

// normalize drops spaces and control characters and upper-cases, as the ELM does (elm327-obd.md §1).
func normalize(raw []byte) string {
	var b strings.Builder
	for _, c := range raw {
		if c <= ' ' || c >= 0x7F {
			continue
		}
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
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

func (s *Sim) eol() string {
	if s.lf || s.v.faults.CRLF {
		return "\r\n"
	}
	return "\r"
}

func (s *Sim) wireTime(n int) time.Duration {
	if s.baud <= 0 {
		return 0
	}
	return time.Duration(n) * 10 * time.Second / time.Duration(s.baud)
}

// delay pushes the next output back by d (ECU latency, a search, a timeout wait, bytes on
// the wire). Within a command the schedule holds as a UART's does: output a late timer or a
// slow write held back goes out at once after, so the simulator's own delays do not add up
// over the lines of an answer. Each command starts the clock anew (command).
func (s *Sim) delay(d time.Duration) {
	s.due = s.due.Add(d)
}

// poll moves whatever the host has sent into pending without blocking.
func (s *Sim) poll() bool {
	for {
		select {
		case b := <-s.in:
			s.pending = append(s.pending, b...)
		default:
			return len(s.pending) > 0
		}
	}
}

// sleepUntil waits for the pacing clock. With intr, a byte from the host ends the wait with
// errStopped (an ELM stops an OBD request on any received byte — elm327-obd.md §1).
func (s *Sim) sleepUntil(t time.Time, intr bool) error {
	for {
		if intr && s.poll() {
			return errStopped
		}
		d := time.Until(t)
		if d <= 0 {
			return nil
		}
		tm := time.NewTimer(d)
		select {
		case <-tm.C:
			return nil
		case <-s.ctx.Done():
			tm.Stop()
			return s.ctx.Err()
		case b := <-s.in:
			tm.Stop()
			s.pending = append(s.pending, b...)
		}
	}
}

// emit writes p at the pacing rate.
func (s *Sim) emit(p string, intr bool) error {
	if p == "" {
		return nil
	}
	if s.cut {
		s.raw(p[:len(p)/2])
		return ErrDisconnected
	}
	d := s.wireTime(len(p))
	s.delay(d)
	if err := s.sleepUntil(s.due, intr); err != nil {
		return err
	}
	s.count(func(st *Stats) { st.BytesOut += len(p); st.Wire += d })
	return s.raw(p)
}

func (s *Sim) raw(p string) error {
	if !s.v.faults.SplitWrites {
		_, err := io.WriteString(s.w, p)
		return err
	}
	for len(p) > 0 {
		n := min(3, len(p))
		if _, err := io.WriteString(s.w, p[:n]); err != nil {
			return err
		}
		p = p[n:]
		if len(p) > 0 {
			time.Sleep(time.Millisecond) // lets the reader see separate chunks
		}
	}
	return nil
}

// reply writes lines, the empty line and the prompt.
func (s *Sim) reply(lines ...string) error {
	eol := s.eol()
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString(eol)
	}
	b.WriteString(eol)
	b.WriteString(">")
	return s.emit(b.String(), false)
}

func (s *Sim) command(raw []byte) error {
	if now := time.Now(); s.due.Before(now) {
		s.due = now // the chip sat idle until the command's CR came in
	}
	d := s.wireTime(len(raw) + 1)
	s.count(func(st *Stats) { st.BytesIn += len(raw) + 1; st.Wire += d })
	// The chip acts once the CR has arrived; the host's bytes took this long on the wire.
	s.delay(d)
	cmd := normalize(raw)
	if cmd == "" {
		// A bare CR repeats the previous command, AT or OBD (elm327-obd.md §1) — a driver that sends
		// one after a service 04 would clear the codes again, and Stats.Clears shows it.
		cmd = s.last
		s.count(func(st *Stats) { st.BareCRs++ })
	}
	s.last = cmd
	s.count(func(st *Stats) {
		st.Commands = append(st.Commands, cmd)
		if len(st.Commands) > 100000 {
			st.Commands = append(st.Commands[:0], st.Commands[50000:]...)
		}
	})
	s.log.Debug("elm327sim: command", "cmd", cmd)
	if s.stalled {
		return nil
	}
	if n := s.v.faults.StallAfter; n > 0 && isHex(cmd) && len(cmd) >= 2 && cmd[:2] != "7F" {
		if s.obdRequests++; s.obdRequests > n {
			s.stalled = true
			s.log.Debug("elm327sim: stalled (stall_after fault)", "requests", n)
			return nil
		}
	}
	if s.echo {
		if err := s.emit(strings.Map(func(r rune) rune {
			if r == '\n' || r == 0 {
				return -1
			}
			return r
		}, string(raw))+s.eol(), false); err != nil {
			return err
		}
	}
	if n := s.v.faults.DisconnectAfter; n > 0 && s.replies == n {
		s.cut = true
	}
	s.replies++
	if s.v.faults.BTChatter && s.replies%4 == 0 {
		if err := s.emit("+DISC:SUCCESS"+s.eol(), false); err != nil {
			return err
		}
	}
	if s.v.faults.NULBytes {
		if err := s.emit("\x00", false); err != nil {
			return err
		}
	}
	if len(s.stale) > 0 {
		lines := strings.Join(s.stale, s.eol()) + s.eol()
		s.stale = nil
		if err := s.emit(lines, false); err != nil {
			return err
		}
	}
	if cmd == "" {
		return s.emit(">", false)
	}
	if n := s.v.faults.LVResetAfter; n > 0 && s.replies == n+1 {
		s.reset()
		return s.reply("LV RESET")
	}
	for _, u := range s.v.unsupp {
		if strings.HasPrefix(cmd, u) {
			return s.reply("?")
		}
	}
	switch {
	case strings.HasPrefix(cmd, "AT"):
		return s.atCommand(cmd[2:])
	case strings.HasPrefix(cmd, "ST"):
		if cmd == "STI" && s.v.stn != "" {
			return s.reply(s.v.stn)
		}
		return s.reply("?")
	case isHex(cmd):
		err := s.obdCommand(cmd)
		if errors.Is(err, errStopped) {
			// The interrupting byte is consumed; the rest stays for the next command.
			s.pending = s.pending[1:]
			s.count(func(st *Stats) { st.Stopped++ })
			return s.emit("STOPPED"+s.eol()+s.eol()+">", false)
		}
		return err
	default:
		return s.reply("?")
	}
}

var protoNames = map[int]string{
	1: "SAE J1850 PWM", 2: "SAE J1850 VPW", 3: "ISO 9141-2", 4: "ISO 14230-4 (KWP 5BAUD)",
	5: "ISO 14230-4 (KWP FAST)", 6: "ISO 15765-4 (CAN 11/500)", 7: "ISO 15765-4 (CAN 29/500)",
	8: "ISO 15765-4 (CAN 11/250)", 9: "ISO 15765-4 (CAN 29/250)", 10: "SAE J1939 (CAN 29/250)",
	11: "USER1 CAN (11* /125)", 12: "USER2 CAN (11* /50)",
}

func isCAN(p int) bool  { return p >= 6 && p <= 12 }
func is29(p int) bool   { return p == 7 || p == 9 || p == 10 }
func legacy(p int) bool { return p >= 1 && p <= 5 }

// okPrefixes are AT commands the simulator accepts without modelling them (filters, flow
// control, memory, low power): a driver may send them and must get OK.
var okPrefixes = []string{"CAF", "CFC", "CRA", "CF", "CM", "FC", "M0", "M1", "AL", "NL", "CTM", "LP", "AR", "V0", "V1", "KW", "SW", "IIA", "SI", "FI", "BI", "DM1", "JE", "JS", "CSM", "CEA", "TA", "SR"}

func (s *Sim) atCommand(c string) error {
	onOff := func(v *bool) error {
		*v = c[1] == '1'
		return s.reply("OK")
	}
	switch {
	case c == "Z" || c == "WS":
		s.reset()
		d := s.v.resetDelay
		s.delay(d)
		s.count(func(st *Stats) { st.Search += d })
		eol := s.eol()
		banner := eol + eol + s.v.version + eol + eol + ">"
		if s.v.faults.NULBytes {
			banner = "\x00\x00\x00\x00" + banner // an OBDLink SX banner starts like this (elm327-obd.md §10)
		}
		return s.emit(banner, false)
	case c == "D":
		s.echo, s.lf, s.spaces, s.headers = true, false, true, false
		s.at, s.st, s.txHeader = 1, 0x32, ""
		return s.reply("OK")
	case c == "E0" || c == "E1":
		if s.v.faults.EchoAfterReset && c == "E0" {
			return s.reply("OK") // a clone that acknowledges and keeps echoing
		}
		return onOff(&s.echo)
	case c == "L0" || c == "L1":
		return onOff(&s.lf)
	case c == "S0" || c == "S1":
		return onOff(&s.spaces)
	case c == "H0" || c == "H1":
		return onOff(&s.headers)
	case c == "AT0" || c == "AT1" || c == "AT2":
		s.at = int(c[2] - '0')
		return s.reply("OK")
	case strings.HasPrefix(c, "SP") || strings.HasPrefix(c, "TP"):
		arg := c[2:]
		auto := strings.HasPrefix(arg, "A")
		arg = strings.TrimPrefix(arg, "A")
		if len(arg) != 1 || !isHex(arg) || arg[0] > 'C' {
			return s.reply("?")
		}
		p := int(hexVal(arg[0]))
		s.auto = auto || p == 0
		s.spProto = p
		s.found = !s.auto
		s.connected = false
		return s.reply("OK")
	case c == "DPN":
		p := s.spProto
		if s.auto {
			p = 0
			if s.found {
				p = s.v.proto
			}
			return s.reply(fmt.Sprintf("A%X", p))
		}
		return s.reply(fmt.Sprintf("%X", p))
	case c == "DP":
		if s.auto {
			if s.found {
				return s.reply("AUTO, " + protoNames[s.v.proto])
			}
			return s.reply("AUTO")
		}
		return s.reply(protoNames[s.spProto])
	case c == "RV":
		return s.reply(fmt.Sprintf("%.1fV", s.v.voltage))
	case c == "I":
		return s.reply(s.v.version)
	case c == "@1":
		return s.reply(s.v.desc)
	case c == "PC":
		s.connected = false
		return s.reply("OK")
	case c == "IGN":
		if s.v.faults.IgnitionOff {
			return s.reply("OFF")
		}
		return s.reply("ON")
	case strings.HasPrefix(c, "ST") && len(c) == 4 && isHex(c[2:]):
		s.st = hexVal(c[2])<<4 | hexVal(c[3])
		if s.st == 0 {
			s.st = 0x32
		}
		return s.reply("OK")
	case strings.HasPrefix(c, "SH") && (len(c) == 5 || len(c) == 8 || len(c) == 10) && isHex(c[2:]):
		s.txHeader = c[2:]
		return s.reply("OK")
	}
	for _, p := range okPrefixes {
		if strings.HasPrefix(c, p) {
			return s.reply("OK")
		}
	}
	return s.reply("?")
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

// stWait is how long the chip waits for more frames after the last one (or for the first).
// ATST sets the maximum (4 ms units). With adaptive timing the chip learns the ECUs' response
// time and waits less; the datasheet gives no formula, so this model (inferred) waits twice
// the ECU latency plus 30 ms with ATAT1 and the latency plus 10 ms with ATAT2.
func (s *Sim) stWait() time.Duration {
	if s.timeout > 0 {
		return s.timeout
	}
	st := time.Duration(s.st) * 4 * time.Millisecond
	switch s.at {
	case 1:
		st = min(st, 2*s.latency+30*time.Millisecond)
	case 2:
		st = min(st, s.latency+10*time.Millisecond)
	}
	return st
}

// line is one output line; frame marks CAN frames and legacy messages, which the
// response-count digit counts (the headers-off byte-count line is not one).
type line struct {
	text  string
	frame bool
}

func (s *Sim) obdCommand(cmd string) error {
	raw := cmd
	count := 0
	if len(cmd)%2 == 1 {
		digit := cmd[len(cmd)-1]
		switch {
		case s.v.faults.NoCountHint:
			switch s.v.faults.NoCountHintReply {
			case "ignore":
				cmd = cmd[:len(cmd)-1]
			case "NO DATA":
				return s.noData()
			default:
				return s.reply("?")
			}
		case digit == '0' || len(cmd) == 1:
			return s.reply("?")
		default:
			count = int(hexVal(digit))
			cmd = cmd[:len(cmd)-1]
		}
	}
	data := make([]byte, len(cmd)/2)
	for i := range data {
		data[i] = hexVal(cmd[2*i])<<4 | hexVal(cmd[2*i+1])
	}
	// More than 7 data bytes do not fit a frame; 7F is the resync probe (`7F 7F`), not a
	// service — both draw "?" (elm327-obd.md §1).
	if len(data) > 7 || data[0] == 0x7F {
		return s.reply("?")
	}
	s.count(func(st *Stats) { st.Requests++ })
	if len(s.pending) > 0 || s.poll() {
		return errStopped // e.g. the LF of a CR LF arrived while the request started
	}
	if !s.connected {
		ok, err := s.connect()
		if !ok || err != nil {
			return err
		}
	}
	afterConnect := !(len(data) == 2 && data[0] == 0x01 && data[1] == 0x00)
	if w := s.v.faults.FailAfterConnect; w != "" && afterConnect {
		return s.reply(w)
	}
	// The connect's probes (0100 with or without a PID) still work, so the adapter connects.
	probe := len(data) >= 2 && data[0] == 0x01 && data[1] == 0x00
	if s.v.faults.Garbage && !probe {
		return s.emit("\x1b[2J\x1b]0;owned\x07\x00GAR\x7fBAGE\r\x1b[31m7E8 4\x1b[0m\x00\r\r>", false)
	}
	if s.v.faults.Flood && !probe {
		return s.flood()
	}
	if data[0] == 0x04 && len(data) == 1 {
		s.count(func(st *Stats) { st.Clears++ })
	}
	// Each ECU's lines, grouped by when they come: ECUs with the same delay answer together
	// (a wave); a slow ECU's wave comes later.
	type wave struct {
		at  time.Duration // after the scenario latency
		per [][]line
	}
	var waves []wave
	for _, e := range s.targets() {
		msgs := s.answer(e, data)
		if len(msgs) == 0 {
			continue
		}
		var ls []line
		for _, m := range msgs {
			ls = append(ls, s.format(e, m)...)
		}
		i := 0
		for i < len(waves) && waves[i].at <= e.delay {
			i++
		}
		if i > 0 && waves[i-1].at == e.delay {
			waves[i-1].per = append(waves[i-1].per, ls)
		} else {
			waves = slices.Insert(waves, i, wave{at: e.delay, per: [][]line{ls}})
		}
	}
	// The adapter waits stWait for the first answer and after each one for more: a wave
	// that comes later than that is missed (the adapter is back at its prompt).
	prev := time.Duration(0)
	for i, w := range waves {
		if w.at-prev > s.stWait() {
			waves = waves[:i]
			break
		}
		prev = w.at
	}
	if len(waves) == 0 {
		return s.noData()
	}
	s.delay(s.latency)
	var late []line
	if s.v.faults.LateSecondECU {
		var first bool
		for wi := range waves {
			var kept [][]line
			for _, ls := range waves[wi].per {
				if !first {
					first = true
					kept = append(kept, ls)
					continue
				}
				late = append(late, ls...)
			}
			waves[wi].per = kept
		}
	}
	eol := s.eol()
	trail := ""
	if s.v.trailSpace && s.spaces {
		trail = " "
	}
	frames := 0
	at := time.Duration(0)
emit:
	for _, w := range waves {
		var lines []line
		if s.v.interleave && s.headers {
			for i := 0; ; i++ {
				any := false
				for _, ls := range w.per {
					if i < len(ls) {
						lines = append(lines, ls[i])
						any = true
					}
				}
				if !any {
					break
				}
			}
		} else {
			for _, ls := range w.per {
				lines = append(lines, ls...)
			}
		}
		for i, l := range lines {
			if count > 0 && frames == count {
				// The chip returns once it has the frames it was told to expect; the rest stay in
				// its buffer and show up in front of the next answer (inferred, elm327-obd.md §7).
				for _, r := range lines[i:] {
					s.stale = append(s.stale, r.text)
				}
				continue emit
			}
			if i == 0 {
				s.delay(w.at - at) // this wave's ECUs answer later
				at = w.at
			}
			if l.frame {
				frames++
			}
			if err := s.emit(l.text+trail+eol, true); err != nil {
				return err
			}
		}
	}
	s.count(func(st *Stats) { st.ECULatency += s.latency + at })
	if count == 0 || frames < count {
		w := s.stWait()
		s.delay(w)
		s.count(func(st *Stats) {
			st.TimeoutWaits++
			st.Waited += w
			if len(st.WaitedAfter) < 10000 {
				st.WaitedAfter = append(st.WaitedAfter, raw)
			}
		})
	}
	if err := s.emit(eol+">", true); err != nil {
		return err
	}
	if len(late) > 0 {
		var b strings.Builder
		for _, l := range late {
			b.WriteString(l.text + trail + eol)
		}
		s.delay(2 * time.Millisecond)
		return s.emit(b.String(), false)
	}
	return nil
}

// flood is the flood fault: frames without end, stopped by a byte from the host (errStopped,
// which command answers with STOPPED) or after a mebibyte, when the prompt comes at last.
func (s *Sim) flood() error {
	l := "7E8 10 14 49 02 01 31 44 34" + s.eol()
	for sent := 0; sent < 1<<20; sent += len(l) {
		if err := s.emit(l, true); err != nil {
			return err
		}
	}
	return s.emit(s.eol()+">", true)
}

func (s *Sim) noData() error {
	w := s.stWait()
	s.delay(w)
	s.count(func(st *Stats) { st.NoDataWaits++; st.Waited += w })
	eol := s.eol()
	return s.emit("NO DATA"+eol+eol+">", true)
}

// connect opens the bus session for the first request: a protocol search after ATSP0
// (SEARCHING...), a K-line init, or the failure a car with the ignition off produces.
func (s *Sim) connect() (bool, error) {
	eol := s.eol()
	d := s.v.faults.SearchingDelay
	if s.v.faults.SearchingForever {
		// Never a prompt, whatever the host sends; only the end of Serve stops it.
		for {
			if err := s.emit("SEARCHING..."+eol, false); err != nil {
				return false, err
			}
			s.delay(20 * time.Millisecond)
			if err := s.sleepUntil(s.due, false); err != nil {
				return false, err
			}
		}
	}
	if s.v.faults.IgnitionOff || len(s.v.ecus) == 0 {
		if s.auto {
			if err := s.emit("SEARCHING..."+eol, true); err != nil {
				return false, err
			}
			s.delay(s.search)
			s.count(func(st *Stats) { st.Search += s.search })
			return false, s.emit("UNABLE TO CONNECT"+eol+eol+">", true)
		}
		if isCAN(s.spProto) {
			return false, s.reply("CAN ERROR")
		}
		return false, s.reply("BUS INIT: ...ERROR")
	}
	switch {
	case s.auto && !s.found && s.spProto != s.v.proto:
		if err := s.emit("SEARCHING..."+eol, true); err != nil {
			return false, err
		}
		s.delay(s.search)
		s.count(func(st *Stats) { st.Search += s.search })
		s.found = true
	case s.spProto != 0 && s.spProto != s.v.proto && !s.auto:
		switch {
		case isCAN(s.spProto) && isCAN(s.v.proto) && is29(s.spProto) != is29(s.v.proto):
			return false, s.noData() // right bit rate, wrong ID length: nobody answers
		case isCAN(s.spProto):
			return false, s.reply("CAN ERROR") // no CAN bus at this rate on the socket
		default:
			// A K-line or J1850 init that nobody answers fails only after the init's time.
			s.delay(d)
			s.count(func(st *Stats) { st.Search += d })
			return false, s.reply("BUS INIT: ...ERROR")
		}
	default:
		s.found = true
		if legacy(s.v.proto) {
			s.delay(d)
			s.count(func(st *Stats) { st.Search += d })
			if err := s.emit("BUS INIT: ...OK"+eol, true); err != nil {
				return false, err
			}
		}
	}
	s.connected = true
	return true, nil
}

// targets are the ECUs a request reaches: all for the functional address (the default), one
// for a physical header set with ATSH.
func (s *Sim) targets() []*ecu {
	h := s.txHeader
	if h == "" || h == "7DF" || h == "18DB33F1" || len(h) == 6 {
		return s.v.ecus
	}
	for _, e := range s.v.ecus {
		switch {
		case len(h) == 3 && len(e.id) == 3:
			// Physical request IDs are the response IDs minus 8 (7E0 → 7E8).
			if fmt.Sprintf("%03X", hexNum(h)+8) == e.id {
				return []*ecu{e}
			}
		case len(h) == 8 && len(e.id) == 8:
			if h[:4] == "18DA" && h[4:6] == e.id[6:8] {
				return []*ecu{e}
			}
		}
	}
	return nil
}

func hexNum(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n<<4 | int(hexVal(s[i]))
	}
	return n
}
