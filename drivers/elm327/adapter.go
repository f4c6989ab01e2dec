package elm327

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/obd"
)

// Options tunes an Adapter. The zero value works.
type Options struct {
	// Logger receives warnings (stale bytes, reconnects, clone quirks) and, at debug level,
	// every exchange. nil discards.
	Logger *slog.Logger
	// Protocol is the ELM protocol number last seen on this vehicle ("6"); the adapter tries
	// it first and falls back to the automatic search (ATSP A6). Empty: automatic search.
	Protocol string
	// ATTimeout bounds AT commands (default 1 s); ResetTimeout bounds ATZ (default 3 s).
	ATTimeout    time.Duration
	ResetTimeout time.Duration
	// SearchTimeout bounds the first 0100 while the adapter searches for a protocol, and is
	// granted again whenever SEARCHING... or BUS INIT: arrives (default 30 s).
	SearchTimeout time.Duration
	// QueryTimeout bounds an OBD request (default 5 s; an ELM waits ST, about 200 ms, after
	// each frame, and K-line ECUs are slow).
	QueryTimeout time.Duration
	// DrainWait is how long to listen for stale bytes before each command. The default (0)
	// takes only what has already arrived, without waiting: a fixed wait before every
	// command cost about a third of a full scan, and late frames the adapter keeps until
	// the next command are dropped by the parser anyway. Set it for a link known to
	// deliver chatter just after a prompt.
	DrainWait time.Duration
	// Reopen opens the link again after it broke (USB unplugged, Bluetooth dropped). Open
	// sets it to reopen the same address; with New and no Reopen a broken link stays broken.
	Reopen func(ctx context.Context) (serialport.Port, error)
	// PortOptions are passed to serialport.Open by Open and the default Reopen.
	PortOptions []serialport.Option
	// Progress, when set, is told about a protocol search in progress ("SEARCHING...",
	// "BUS INIT: ..."), so a user waiting up to 30 s sees that something is happening. It is
	// called from the goroutine running Open or Query and must not block.
	Progress func(msg string)
	// Baud is the rate to try first when Open searches for one (an address without ?baud=):
	// the rate this adapter answered at last time (Adapter.Baud). 0: 38400 first.
	Baud int
	// BaudProgress, when set, is told in a sentence for people each time Open tries another
	// baud rate, and which rate answered. Same rules as Progress.
	BaudProgress func(msg string)
	// Now is the clock for log rate limiting (default time.Now).
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ATTimeout, time.Second)
	def(&o.ResetTimeout, 3*time.Second)
	def(&o.SearchTimeout, 30*time.Second)
	def(&o.QueryTimeout, 5*time.Second)
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Adapter is an initialised ELM327-compatible adapter. Query is serialised internally; Close
// and Profile may be called from any goroutine.
type Adapter struct {
	opts Options
	log  *slog.Logger
	baud int // the rate Open found, 0 when it did not search

	mu       sync.Mutex // held for a whole exchange
	port     serialport.Port
	f        format
	leftover []byte
	learned  map[string]learnedCount
	noHint   map[string]bool
	timing   int // adaptive timing in force: 0 (refused), 1 (ATAT1) or 2 (ATAT2, proven)

	lastWarn   time.Time
	suppressed int

	pmu    sync.Mutex // guards prof and cur (read by Profile, String and Close)
	prof   obd.Profile
	cur    serialport.Port
	closed atomic.Bool
}

type learnedCount struct{ frames, ecus int }

var (
	_ obd.Adapter  = (*Adapter)(nil)
	_ obd.Profiler = (*Adapter)(nil)
)

// Open opens the adapter at addr (see serialport.Open) and initialises it. A serial or USB
// address without ?baud= is tried at the usual ELM327 rates, 38400 first, until one draws a
// prompt (see openPort). An adapter that cannot reach the car returns an error wrapping
// obd.ErrNoVehicle (ignition off); the port is closed then, so the caller simply calls Open
// again later.
func Open(addr string, opts Options) (*Adapter, error) {
	return OpenContext(context.Background(), addr, opts)
}

// OpenContext is Open with a context that bounds the initialisation (the protocol search can
// take up to Options.SearchTimeout).
func OpenContext(ctx context.Context, addr string, opts Options) (*Adapter, error) {
	opts.defaults()
	p, popts, baud, err := openPort(ctx, addr, opts)
	if err != nil {
		return nil, fmt.Errorf("elm327: %w", err)
	}
	if opts.Reopen == nil {
		opts.Reopen = func(context.Context) (serialport.Port, error) { return serialport.Open(addr, popts...) }
	}
	a, err := NewContext(ctx, p, opts)
	if err != nil {
		p.Close()
		return nil, err
	}
	a.baud = baud
	return a, nil
}

// Baud is the rate Open found by trying rates (see Options.Baud), 0 when the address named
// its rate or the link has none (TCP, Bluetooth).
func (a *Adapter) Baud() int { return a.baud }

// New initialises the adapter behind an open port. On error the port is left open (the caller
// owns it).
func New(port serialport.Port, opts Options) (*Adapter, error) {
	return NewContext(context.Background(), port, opts)
}

// NewContext is New with a context bounding the initialisation.
func NewContext(ctx context.Context, port serialport.Port, opts Options) (*Adapter, error) {
	opts.defaults()
	if opts.Protocol != "" && !validProtocol(opts.Protocol) {
		return nil, fmt.Errorf("elm327: remembered protocol %q is not an ELM protocol number 1–9 or A–C", opts.Protocol)
	}
	a := &Adapter{opts: opts, log: opts.Logger}
	a.setPort(port)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.initialise(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

func validProtocol(p string) bool {
	return len(p) == 1 && strings.Contains("123456789ABC", strings.ToUpper(p))
}

func (a *Adapter) setPort(p serialport.Port) {
	a.port = p
	a.pmu.Lock()
	a.cur = p
	a.pmu.Unlock()
}

// Close closes the port. A Query in progress ends with an error.
func (a *Adapter) Close() error {
	a.closed.Store(true)
	a.pmu.Lock()
	p := a.cur
	a.cur = nil
	a.pmu.Unlock()
	if p != nil {
		return p.Close()
	}
	return nil
}

// Profile returns what the adapter proved it can do at the last initialisation.
func (a *Adapter) Profile() obd.Profile {
	a.pmu.Lock()
	defer a.pmu.Unlock()
	return a.prof
}

// String names the adapter for logs: "/dev/ttyUSB0@38400 ELM327 v1.5".
func (a *Adapter) String() string {
	p := a.Profile()
	if p.Version == "" {
		return p.Device
	}
	return p.Device + " " + p.Version
}

var (
	reVoltage  = regexp.MustCompile(`^([0-9]{1,2}(?:\.[0-9]{1,2})?)V?$`)
	reProtoNum = regexp.MustCompile(`^A?([0-9A-C])$`)
	reVersion  = regexp.MustCompile(`V([0-9]+)\.([0-9]+)`)
)

// initialise runs the connect sequence (design: domain reference §3) and records the profile.
// Callers hold a.mu.
func (a *Adapter) initialise(ctx context.Context) error {
	a.f = format{}
	a.leftover = nil
	a.learned = map[string]learnedCount{}
	a.noHint = map[string]bool{}
	p := obd.Profile{Device: a.port.String()}
	clone := []string{}

	// 0: resync. "7F7F" draws "?" and a prompt; a bare CR would repeat the last command.
	if _, err := a.exchange(ctx, "7F7F", a.opts.ATTimeout); err != nil {
		if isLinkError(err) || ctx.Err() != nil {
			return a.initErr("7F7F", err)
		}
		a.log.Info("elm327: no prompt for the resync probe; resetting anyway", "device", p.Device)
	}
	// 1: reset. The first line may be junk from a baud probe; find the banner.
	lines, err := a.exchange(ctx, "ATZ", a.opts.ResetTimeout)
	if err != nil {
		return a.initErr("ATZ", err)
	}
	banner := findBanner(lines)
	// 2–5: echo (still on: the reply may carry it), linefeeds, spaces off; headers on. Clones
	// answer oddly ("ATH0OK", split replies); anything containing OK is fine, and a refusal
	// is tolerated because the parser reads every format.
	for _, c := range []string{"ATE0", "ATL0", "ATS0", "ATH1"} {
		ok, err := a.expectOK(ctx, c)
		if err != nil {
			return a.initErr(c, err)
		}
		if !ok {
			clone = append(clone, c+" refused")
		}
		if c == "ATH1" {
			a.f.headers = ok
		}
	}
	// 6: adaptive timing; "?" means unsupported. ATAT2 comes later, once the ECUs are known.
	a.timing = 0
	if ok, err := a.expectOK(ctx, "ATAT1"); err != nil {
		return a.initErr("ATAT1", err)
	} else if !ok {
		clone = append(clone, "ATAT1 refused")
	} else {
		a.timing = 1
	}
	// 7: protocol.
	sp := "ATSP0"
	if a.opts.Protocol != "" {
		sp = "ATSPA" + strings.ToUpper(a.opts.Protocol)
	}
	if ok, err := a.expectOK(ctx, sp); err != nil {
		return a.initErr(sp, err)
	} else if !ok {
		clone = append(clone, sp+" refused")
	}
	// 8: supply voltage; clones may answer "12.1" or nothing.
	if lines, err := a.exchange(ctx, "ATRV", a.opts.ATTimeout); err != nil {
		if isLinkError(err) || ctx.Err() != nil {
			return a.initErr("ATRV", err)
		}
		clone = append(clone, "ATRV timed out")
	} else if v, ok := parseVoltage(lines); ok {
		p.VoltageV = v
		if v < 6 {
			a.log.Warn("elm327: supply voltage low: is the adapter powered by the car?", "device", p.Device, "volts", v)
		}
	} else {
		clone = append(clone, fmt.Sprintf("ATRV answered %q", lines))
	}
	// 9: the first request starts the protocol search.
	search, err := a.exchange(ctx, "0100", a.opts.SearchTimeout)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && !isLinkError(err) {
			return fmt.Errorf("elm327: 0100: no answer during the protocol search: %w: %w", obd.ErrNoVehicle, err)
		}
		return a.initErr("0100", err)
	}
	// 10: protocol number ("A6": automatic, found 6); clones may add lines around it.
	if lines, err := a.exchange(ctx, "ATDPN", a.opts.ATTimeout); err != nil {
		if isLinkError(err) {
			return a.initErr("ATDPN", err)
		}
	} else {
		for _, l := range lines {
			if m := reProtoNum.FindStringSubmatch(normalise(l)); m != nil {
				p.ProtocolNum = m[1]
			}
		}
	}
	if p.ProtocolNum != "" {
		a.f.protocol = p.ProtocolNum[0]
	}
	// The 0100 answer is parsed now that the protocol is known.
	first, perr := parseReply(search, a.f, "0100")
	if perr != nil {
		var e *Error
		if errors.As(perr, &e) {
			switch e.Code {
			case CodeNoData, CodeBusInitError, CodeCANError, CodeBusError, CodeBusBusy, CodeFBError:
				return noVehicle(e)
			}
			return e
		}
		return fmt.Errorf("elm327: 0100 at connect: %w", perr)
	}
	if lines, err := a.exchange(ctx, "ATDP", a.opts.ATTimeout); err == nil && len(lines) > 0 {
		p.Protocol = strings.TrimPrefix(strings.TrimPrefix(lines[len(lines)-1], "AUTO, "), "AUTO,")
	} else if isLinkError(err) {
		return a.initErr("ATDP", err)
	}
	if lines, err := a.exchange(ctx, "ATI", a.opts.ATTimeout); err == nil {
		p.Version = findBanner(lines)
	} else if isLinkError(err) {
		return a.initErr("ATI", err)
	}
	if p.Version == "" {
		p.Version = banner
	}
	if banner != "" && p.Version != banner {
		clone = append(clone, fmt.Sprintf("ATZ banner %q differs from ATI %q", banner, p.Version))
	}
	if lines, err := a.exchange(ctx, "STI", a.opts.ATTimeout); err == nil {
		if len(lines) > 0 && classify(normalise(lines[0])) == 0 {
			p.STN = lines[0]
		}
	} else if isLinkError(err) {
		return a.initErr("STI", err)
	}
	if strings.Contains(strings.ToUpper(p.Version), "V2.1") && p.STN == "" {
		clone = append(clone, "v2.1 banner (no genuine ELM327 v2.1 behaves like one)")
	}

	// Probe the count suffix with as many frames as 0100 just gave ("01002" for two ECUs):
	// the first ECU's answer must come again, and every other ECU's too, which proves the
	// adapter counts rather than stopping at the first frame. Asking for them all, rather
	// than "01001", lets the adapter return at once without leaving frames behind.
	a.learn("0100", first)
	digit := first.frames
	if digit < 1 || digit > 0xF {
		digit = 1
	}
	probe := fmt.Sprintf("0100%X", digit)
	//
	// On CAN the probe also proves aggressive adaptive timing (ATAT2, domain §8): the adapter
	// waits less for each answer, and every ECU that answered the patient search must still
	// make it in time. If one does not, the probe is asked again under ATAT1, which tells a
	// slow ECU from an adapter that mishandles the digit, and ATAT1 stays.
	if a.f.can() && a.timing == 1 {
		ok, err := a.expectOK(ctx, "ATAT2")
		if err != nil {
			return a.initErr("ATAT2", err)
		}
		if ok {
			a.timing = 2
		}
	}
	works, refused, err := a.probeCount(ctx, probe, first.responses)
	if err != nil {
		return a.initErr(probe, err)
	}
	if !works && a.timing == 2 {
		keep := false
		if refused {
			// "?" or NO DATA to the digit: ATAT1 would change nothing there. Without the
			// digit every request waits out the timeout, so ATAT2 saves the most: 0100
			// without a digit must still bring every ECU.
			if keep, err = a.probeAll(ctx, first.responses); err != nil {
				return a.initErr("0100", err)
			}
		}
		if !keep {
			if ok, err := a.expectOK(ctx, "ATAT1"); err != nil {
				return a.initErr("ATAT1", err)
			} else if ok {
				a.timing = 1
			}
		}
		if !refused && a.timing == 1 {
			if works, _, err = a.probeCount(ctx, probe, first.responses); err != nil {
				return a.initErr(probe, err)
			}
			if works {
				a.log.Info("elm327: an ECU answers too slowly for aggressive adaptive timing; keeping ATAT1", "device", p.Device)
			}
		}
	}
	p.CountHint = works
	p.AdaptiveTiming = a.timing
	if !p.CountHint && p.STN == "" { // an OBDLink LX refuses it too (obd-java-api #67)
		if v := reVersion.FindStringSubmatch(strings.ToUpper(p.Version)); v != nil && atLeast13(v[1], v[2]) {
			clone = append(clone, "claims v1.3+ but the count suffix does not work")
		}
	}
	// Probe multi-PID (CAN only): "01 00 xx" with a PID of known width the ECU supports.
	if a.f.can() {
		ok, err := a.probeMultiPID(ctx, first.responses, p.CountHint)
		if err != nil && isLinkError(err) {
			return a.initErr("multi-PID probe", err)
		}
		p.MultiPID = ok
	}
	p.Clone = len(clone) > 0
	if p.Clone {
		a.log.Info("elm327: adapter behaves like a clone", "device", p.Device, "signs", strings.Join(clone, "; "))
	}
	a.pmu.Lock()
	a.prof = p
	a.pmu.Unlock()
	a.log.Info("elm327: adapter ready", "device", p.Device, "version", p.Version, "stn", p.STN,
		"protocol", p.ProtocolNum, "volts", p.VoltageV, "count_hint", p.CountHint, "multi_pid", p.MultiPID, "adaptive_timing", p.AdaptiveTiming)
	return nil
}

func (a *Adapter) initErr(cmd string, err error) error {
	var te *TimeoutError
	if errors.As(err, &te) && te.Raw == "" {
		return fmt.Errorf("elm327: no prompt after %s on %s (is the adapter powered? is the baud rate right?): %w", cmd, a.port, err)
	}
	if isLinkError(err) {
		return fmt.Errorf("elm327: %s on %s: %w: %w", cmd, a.port, ErrDisconnected, err)
	}
	return fmt.Errorf("elm327: %s on %s: %w", cmd, a.port, err)
}

func isLinkError(err error) bool {
	var ie *ioError
	return errors.As(err, &ie)
}

// expectOK sends an AT command and reports whether the reply contains OK.
func (a *Adapter) expectOK(ctx context.Context, cmd string) (bool, error) {
	lines, err := a.exchange(ctx, cmd, a.opts.ATTimeout)
	if err != nil {
		if isLinkError(err) || ctx.Err() != nil {
			return false, err
		}
		var te *TimeoutError
		if errors.As(err, &te) && te.Raw == "" {
			return false, err
		}
		return false, nil
	}
	for _, l := range lines {
		if strings.Contains(normalise(l), "OK") {
			return true, nil
		}
	}
	return false, nil
}

// probeCount sends the count-suffix probe (0100 with the digit for every frame the search's
// 0100 gave) and reports whether every ECU of first answered it, the first one alike, and
// whether the adapter refused the digit with an error string. Only a link failure is an
// error.
func (a *Adapter) probeCount(ctx context.Context, probe string, first []obd.Response) (works, refused bool, err error) {
	lines, err := a.exchange(ctx, probe, a.opts.QueryTimeout)
	if err != nil {
		if isLinkError(err) || ctx.Err() != nil {
			return false, false, err
		}
		return false, false, nil
	}
	r, perr := parseReply(lines, a.f, probe)
	if perr == nil && len(r.responses) >= len(first) && len(r.responses) > 0 && sameData(r.responses[0], first) {
		return true, false, nil
	}
	var e *Error
	if errors.As(perr, &e) {
		// "?" never reached the bus, and NO DATA came after the timeout: nothing to wait for.
		return false, true, nil
	}
	// The adapter returned before every ECU had answered (or cut an answer); the others may
	// still be answering: let them finish so their frames are drained, not mistaken for the
	// next answer.
	a.waitQuiet(300 * time.Millisecond)
	return false, false, nil
}

// probeAll sends 0100 without a count digit and reports whether every ECU of first answered
// it (the adapter waited out its timeout: under ATAT2 that proves every ECU answers within
// the aggressive wait). Only a link failure is an error.
func (a *Adapter) probeAll(ctx context.Context, first []obd.Response) (bool, error) {
	lines, err := a.exchange(ctx, "0100", a.opts.QueryTimeout)
	if err != nil {
		if isLinkError(err) || ctx.Err() != nil {
			return false, err
		}
		return false, nil
	}
	r, perr := parseReply(lines, a.f, "0100")
	if perr == nil {
		all := true
		for _, f := range first {
			all = all && slices.ContainsFunc(r.responses, func(x obd.Response) bool { return x.ECU == f.ECU })
		}
		if all {
			return true, nil
		}
	}
	a.waitQuiet(300 * time.Millisecond) // a slower ECU may still be answering
	return false, nil
}

// relaxTiming goes back from ATAT2 to ATAT1 after an ECU that is sure to answer did not
// within the aggressive wait. It is done once per connection.
func (a *Adapter) relaxTiming(ctx context.Context, cmd string) error {
	a.log.Info("elm327: an ECU answered too slowly for aggressive adaptive timing; back to ATAT1", "cmd", cmd)
	ok, err := a.expectOK(ctx, "ATAT1")
	if err != nil {
		return err
	}
	a.timing = 0
	if ok {
		a.timing = 1
	}
	a.pmu.Lock()
	a.prof.AdaptiveTiming = a.timing
	a.pmu.Unlock()
	return nil
}

// waitQuiet reads until nothing arrives for d, keeping what came for the next drain.
func (a *Adapter) waitQuiet(d time.Duration) {
	buf := make([]byte, 256)
	for i := 0; i < 64; i++ {
		a.port.SetReadDeadline(time.Now().Add(d))
		n, err := a.port.Read(buf)
		a.leftover = append(a.leftover, buf[:n]...)
		if err != nil || n == 0 {
			break
		}
	}
	a.port.SetReadDeadline(time.Time{})
}

func atLeast13(major, minor string) bool {
	ma, _ := strconv.Atoi(major)
	mi, _ := strconv.Atoi(minor)
	return ma > 1 || ma == 1 && mi >= 3
}

func findBanner(lines []string) string {
	for _, l := range lines {
		if strings.Contains(strings.ToUpper(l), "ELM327") || strings.Contains(strings.ToUpper(l), "ELM329") {
			if i := strings.Index(strings.ToUpper(l), "ELM32"); i > 0 {
				l = l[i:] // junk before the banner ("?ATZ\rELM327" run together)
			}
			return strings.TrimSpace(l)
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if classify(normalise(lines[i])) == 0 {
			return lines[i]
		}
	}
	return ""
}

func parseVoltage(lines []string) (float64, bool) {
	for _, l := range lines {
		if m := reVoltage.FindStringSubmatch(normalise(l)); m != nil {
			v, err := strconv.ParseFloat(m[1], 64)
			return v, err == nil
		}
	}
	return 0, false
}

// bitmapHas reports whether a 41 00 answer names pid (01–20) as supported.
func bitmapHas(d []byte, pid byte) bool {
	if len(d) < 6 || pid < 1 || pid > 0x20 {
		return false
	}
	bits := uint32(d[2])<<24 | uint32(d[3])<<16 | uint32(d[4])<<8 | uint32(d[5])
	return bits&(1<<(32-uint(pid))) != 0
}

func sameData(r obd.Response, rs []obd.Response) bool {
	for _, x := range rs {
		if string(x.Data) == string(r.Data) && x.ECU == r.ECU {
			return true
		}
	}
	return false
}

// pidWidth is the data length of PIDs used to probe multi-PID support (J1979).
var pidWidth = map[byte]int{0x01: 4, 0x04: 1, 0x05: 1, 0x0C: 2, 0x0D: 1, 0x0F: 1, 0x10: 2, 0x11: 1, 0x1C: 1, 0x1F: 2}

func (a *Adapter) probeMultiPID(ctx context.Context, all []obd.Response, countHint bool) (bool, error) {
	r := all[0]
	if len(r.Data) < 6 || r.Data[0] != 0x41 || r.Data[1] != 0x00 {
		return false, nil
	}
	var pid byte
	for _, c := range []byte{0x0C, 0x05, 0x0D, 0x04, 0x11, 0x0F, 0x10, 0x1F, 0x1C, 0x01} {
		if bitmapHas(r.Data, c) {
			pid = c
			break
		}
	}
	if pid == 0 {
		return false, nil
	}
	cmd := fmt.Sprintf("0100%02X", pid)
	line := cmd
	if countHint {
		// Each ECU's 0100 bitmap says what it will answer: the bitmap again, plus the PID
		// when it supports it. One that does not batch answers less, which only costs the
		// adapter's timeout.
		var x []obd.Expect
		for _, e := range all {
			n := 6
			if bitmapHas(e.Data, pid) {
				n += 1 + pidWidth[pid]
			}
			x = append(x, obd.Expect{Len: n})
		}
		if d := expectedFrames(x, a.f); d >= 1 && d <= 0xF {
			line += fmt.Sprintf("%X", d)
		}
	}
	lines, err := a.exchange(ctx, line, a.opts.QueryTimeout)
	if err != nil {
		return false, err
	}
	rep, err := parseReply(lines, a.f, line)
	if err != nil {
		return false, nil
	}
	for _, x := range rep.responses {
		d := x.Data
		if x.ECU == r.ECU && len(d) == 2+4+1+pidWidth[pid] && d[0] == 0x41 && d[1] == 0x00 && d[6] == pid {
			return true, nil
		}
	}
	return false, nil
}
