package elm327

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/obdgw/obdgw/drivers/lograte"
	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/obd"
)

// Options tunes an Adapter. The zero value works.
type Options struct {
	// Logger receives warnings (stale bytes, reconnects, clone quirks) and, at debug level,
	// every exchange. nil discards.
	Logger *slog.Logger
	// Protocol is the ELM protocol number last seen on this vehicle or bay ("6"). The connect
	// tries it first, directly (ATSP6 and a 0100 that must draw a positive answer), then the
	// protocols most cars talk, CAN 11/500 and CAN 29/500, the same way, and only then the
	// automatic search (ATSP0). Empty: the quick ones, then the search.
	Protocol string
	// NoQuick leaves out the direct tries of CAN 11/500 and CAN 29/500 before the automatic
	// search; a remembered Protocol is still tried first.
	NoQuick bool
	// QuickTimeout bounds the 0100 of each protocol tried directly before the search (default
	// 2 s): on the car's protocol an ECU answers within the adapter's own timeout (≈ 200 ms);
	// BUS INIT: extends it as in the search, for a remembered K-line protocol.
	QuickTimeout time.Duration
	// ATTimeout bounds AT commands (default 1 s); ResetTimeout bounds ATZ (default 3 s).
	ATTimeout    time.Duration
	ResetTimeout time.Duration
	// SearchTimeout bounds the first 0100 while the adapter searches for a protocol, and is
	// granted again whenever SEARCHING... or BUS INIT: arrives (default 30 s) — but never
	// beyond the request's own deadline plus one SearchTimeout, so an adapter repeating
	// SEARCHING... for ever cannot hold the connect.
	SearchTimeout time.Duration
	// ConnectTimeout bounds the connect as a whole, every step of it (default twice
	// SearchTimeout, what the search may take with its progress lines, plus 30 s); a
	// connect that runs out fails with ErrConnectTimeout naming its step.
	ConnectTimeout time.Duration
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
	// InitProgress, when set, is told the name of each initialisation step as it starts
	// ("reset", "echo off", "protocol search", "count digit"; see initSteps), so a user can
	// see where a slow connect is; an error that ends the connect names its step the same
	// way. It is called from the goroutine running Open, or Query when that re-initialises,
	// and must not block.
	InitProgress func(step string)
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
	def(&o.QuickTimeout, 2*time.Second)
	def(&o.ConnectTimeout, 2*o.SearchTimeout+30*time.Second)
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
	timing   int            // adaptive timing in force: 0 (refused), 1 (ATAT1) or 2 (ATAT2, proven)
	silent   int            // OBD requests in a row that drew nothing at all before their deadline
	strays   []obd.Response // frames the last Query dropped as answers to another request

	limit lograte.Limiter // warnings of a babbling adapter

	pmu    sync.Mutex // guards prof and cur (read by Profile, String and Close)
	prof   obd.Profile
	cur    serialport.Port
	closed atomic.Bool
}

type learnedCount struct{ frames, ecus int }

var (
	_ obd.Adapter       = (*Adapter)(nil)
	_ obd.Profiler      = (*Adapter)(nil)
	_ obd.StrayReporter = (*Adapter)(nil)
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
