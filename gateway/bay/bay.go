package bay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/obdgw/obdgw/drivers/indicator"
	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/gateway/events"
	"github.com/obdgw/obdgw/obd"
)

// State is where a bay's adapter and vehicle are.
type State string

// The states a bay moves through.
const (
	Absent      State = "absent"       // no adapter at the configured address
	Connecting  State = "connecting"   // adapter found, initialising
	IgnitionOff State = "ignition_off" // adapter answers, no vehicle does
	Ready       State = "ready"        // vehicle answering
	Scanning    State = "scanning"     // full scan running
	Fault       State = "fault"        // adapter present but failing (see Status.LastError)
)

// Conn is an initialised adapter the supervisor owns; *elm327.Adapter is one.
type Conn interface {
	obd.Adapter
	Close() error
}

// Options configure a Supervisor. Name and Dial are required.
type Options struct {
	Name    string // bay name as configured ("bay1")
	Address string // adapter address, shown in the status
	// Dial opens and initialises the adapter. An error wrapping serialport.ErrNotFound means
	// "nothing plugged in"; one wrapping obd.ErrNoVehicle means "adapter there, car silent".
	Dial func(ctx context.Context) (Conn, error)
	// Scan runs the full workshop scan; nil means obd.Scan with default options.
	Scan func(ctx context.Context, a obd.Adapter) (*obd.Report, error)
	// OnScan is called (from the supervisor's goroutine) after every successful scan, e.g. to
	// attach it to the matching work order.
	OnScan func(bay string, r *obd.Report)

	Light  *indicator.Light // optional status light
	Events *events.Bus      // optional; nil publishes nothing
	Logger *slog.Logger     // nil discards
	Now    func() time.Time // nil = time.Now

	Poll time.Duration // retry / heartbeat interval; 0 = 2 s
	// LivePeriod is the shortest time between two rounds of live sampling while watched; 0 =
	// 200 ms. A round asks every watched PID (several per request where the adapter proved
	// multi-PID requests work) and takes what the adapter takes, so a slow adapter sets the
	// rate, not this period.
	LivePeriod time.Duration
	KeepScans  int // scans kept in memory; 0 = 5
}

// Status is a snapshot for the API and console. It never carries owner data.
type Status struct {
	Name      string       `json:"name"`
	Address   string       `json:"address,omitempty"`
	State     State        `json:"state"`
	Adapter   string       `json:"adapter,omitempty"` // adapter description once connected
	Profile   *obd.Profile `json:"profile,omitempty"`
	VIN       string       `json:"vin,omitempty"` // VIN read in the last scan of this connection
	LastError string       `json:"last_error,omitempty"`
	Since     time.Time    `json:"since"` // when the state last changed
	LastScan  *obd.Report  `json:"last_scan,omitempty"`
	Watchers  int          `json:"watchers"`
	Counters  Counters     `json:"counters"`
}

// Counters count what a bay did since the gateway started, for /metrics and the console.
type Counters struct {
	Connects     uint64  `json:"connects"`      // vehicle connections opened (a reconnect after a lost link counts)
	Scans        uint64  `json:"scans"`         // scans that finished
	ScanFailures uint64  `json:"scan_failures"` // scans that ended with an error
	ScanSeconds  float64 `json:"scan_seconds"`  // time spent in scans, finished or failed
}

// Live is one sample of the live values shown on the console.
type Live struct {
	Time     time.Time `json:"time"`
	RPM      *float64  `json:"rpm,omitempty"`
	CoolantC *float64  `json:"coolant_c,omitempty"`
	SpeedKmh *float64  `json:"speed_kmh,omitempty"`
	// Values holds every watched PID the car answered, keyed by its two hex digits ("0C").
	Values map[string]float64 `json:"values,omitempty"`
	Error  string             `json:"error,omitempty"`
}

// DefaultLivePIDs are what Watch samples: engine speed, coolant temperature, vehicle speed.
var DefaultLivePIDs = []byte{0x0C, 0x05, 0x0D}

// maxLivePIDs bounds one multi-PID request (J1979 allows six PIDs per Mode 01 request).
const maxLivePIDs = 6

// ClearOutcome is what a confirmed clear did, with the scans taken around it.
type ClearOutcome struct {
	Before  *obd.Report     `json:"before"`
	Result  obd.ClearResult `json:"result"`
	After   *obd.Report     `json:"after,omitempty"`
	Warning string          `json:"warning,omitempty"`
}

var (
	// ErrNotConnected: the bay has no vehicle answering right now.
	ErrNotConnected = errors.New("bay: no vehicle connected (plug the adapter in and switch the ignition on)")
	// ErrVINMismatch: a clear was confirmed for another vehicle than the one in the bay.
	ErrVINMismatch = errors.New("bay: the confirmed VIN is not the VIN of the car in this bay; nothing was cleared")
	// ErrStopped: the supervisor has stopped.
	ErrStopped = errors.New("bay: supervisor stopped")
)

// Supervisor runs one bay. Create with New, start with Run.
type Supervisor struct {
	o    Options
	log  *slog.Logger
	reqs chan request

	mu       sync.Mutex
	st       Status
	scans    []*obd.Report
	watchers map[chan Live][]byte // each watcher's PIDs
	done     chan struct{}
	// lastLiveEvent is when a live sample last went to the notice board.
	lastLiveEvent time.Time
}

type request struct {
	kind    string // "scan", "clear" or "query"
	confirm obd.Confirmation
	query   obd.Request
	reply   chan reply
}

type reply struct {
	scan  *obd.Report
	clear ClearOutcome
	resps []obd.Response
	err   error
}

// New returns a supervisor; it does nothing until Run.
func New(o Options) *Supervisor {
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.LivePeriod <= 0 {
		o.LivePeriod = 200 * time.Millisecond
	}
	if o.KeepScans <= 0 {
		o.KeepScans = 5
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Scan == nil {
		o.Scan = func(ctx context.Context, a obd.Adapter) (*obd.Report, error) {
			return obd.Scan(ctx, a, obd.ScanOptions{Now: o.Now})
		}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Supervisor{o: o, log: log.With("bay", o.Name), reqs: make(chan request),
		watchers: map[chan Live][]byte{}, done: make(chan struct{})}
	s.st = Status{Name: o.Name, Address: o.Address, State: Absent, Since: o.Now()}
	return s
}

// String names the bay for logs.
func (s *Supervisor) String() string { return fmt.Sprintf("bay %s (%s)", s.o.Name, s.o.Address) }

// Status returns a snapshot.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Watchers = len(s.watchers)
	return st
}

// Scans returns the kept scans, newest first.
func (s *Supervisor) Scans() []*obd.Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*obd.Report, len(s.scans))
	for i, r := range s.scans {
		out[len(s.scans)-1-i] = r
	}
	return out
}

// ScanNow asks the supervisor to run a full scan now and waits for it.
func (s *Supervisor) ScanNow(ctx context.Context) (*obd.Report, error) {
	r, err := s.ask(ctx, request{kind: "scan"})
	return r.scan, err
}

// ClearDTCs clears fault codes on the car in the bay after an explicit confirmation naming
// it. It scans first (the "before" snapshot) and refuses when the car's VIN is not the one
// confirmed, sends 04 once — never retried — and scans again afterwards. The caller must make
// sure a confirmation is used once (the API rejects a repeated request id).
func (s *Supervisor) ClearDTCs(ctx context.Context, c obd.Confirmation) (ClearOutcome, error) {
	if strings.TrimSpace(c.VIN) == "" || strings.TrimSpace(c.ConfirmedBy) == "" {
		return ClearOutcome{}, obd.ErrNotConfirmed
	}
	r, err := s.ask(ctx, request{kind: "clear", confirm: c})
	return r.clear, err
}

// Query lends the bay's adapter for one request (an emission self-test reading engine speed
// over OBD while the supervisor keeps owning the adapter). It makes the Supervisor an
// obd.Adapter. Service 04 is refused: clearing codes goes through ClearDTCs only.
func (s *Supervisor) Query(ctx context.Context, req obd.Request) ([]obd.Response, error) {
	if req.Service == 0x04 {
		return nil, fmt.Errorf("bay: service 04 (clear fault codes) only through a confirmed clear: %w", obd.ErrNotConfirmed)
	}
	r, err := s.ask(ctx, request{kind: "query", query: req})
	return r.resps, err
}

var _ obd.Adapter = (*Supervisor)(nil)

// Watch streams live values until ctx ends. While at least one watcher is attached the
// supervisor samples engine speed, coolant temperature and vehicle speed.
func (s *Supervisor) Watch(ctx context.Context) <-chan Live {
	return s.WatchPIDs(ctx, DefaultLivePIDs)
}

// WatchPIDs streams the Mode 01 PIDs a viewer picked until ctx ends. The supervisor samples
// the union of every watcher's PIDs in each round; each watcher receives its own PIDs in
// Live.Values (and the three named fields when it watches them). A PID the car does not
// answer is absent from Values.
func (s *Supervisor) WatchPIDs(ctx context.Context, pids []byte) <-chan Live {
	ch := make(chan Live, 4)
	s.mu.Lock()
	s.watchers[ch] = append([]byte(nil), pids...)
	s.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-s.done:
		}
		s.mu.Lock()
		delete(s.watchers, ch)
		s.mu.Unlock()
		close(ch)
	}()
	return ch
}

func (s *Supervisor) ask(ctx context.Context, r request) (reply, error) {
	r.reply = make(chan reply, 1)
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return reply{}, ctx.Err()
	case <-s.done:
		return reply{}, ErrStopped
	}
	select {
	case rep := <-r.reply:
		return rep, rep.err
	case <-ctx.Done():
		// The request runs to its end in the supervisor; the caller just stops waiting.
		return reply{}, ctx.Err()
	}
}

// Run supervises the bay until ctx ends. It returns nil on cancellation, once everything it
// started (the status light's blinking included) has stopped.
func (s *Supervisor) Run(ctx context.Context) error {
	defer close(s.done)
	if s.o.Light != nil {
		lit := make(chan struct{})
		go func() { defer close(lit); s.o.Light.Run(ctx) }()
		defer func() { <-lit }()
	}
	for ctx.Err() == nil {
		conn, err := s.connect(ctx)
		if err != nil {
			s.idle(ctx, s.o.Poll)
			continue
		}
		s.session(ctx, conn)
		conn.Close()
	}
	return nil
}

// idle waits for d while refusing requests (nothing is connected).
func (s *Supervisor) idle(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case r := <-s.reqs:
			r.reply <- reply{err: s.notConnectedErr()}
		}
	}
}

func (s *Supervisor) notConnectedErr() error {
	st := s.Status()
	switch st.State {
	case IgnitionOff:
		return fmt.Errorf("%w: the adapter answers but the car does not (is the ignition on?)", ErrNotConnected)
	case Absent:
		return fmt.Errorf("%w: no adapter at %s (is it plugged in?)", ErrNotConnected, s.o.Address)
	}
	if st.LastError != "" {
		return fmt.Errorf("%w: %s", ErrNotConnected, st.LastError)
	}
	return ErrNotConnected
}

func (s *Supervisor) connect(ctx context.Context) (Conn, error) {
	if s.Status().State == Absent {
		// Only show "connecting" once the last attempt found something; an empty bay stays
		// quietly absent.
	} else {
		s.setState(Connecting, "")
	}
	conn, err := s.o.Dial(ctx)
	switch {
	case err == nil:
		s.mu.Lock()
		s.st.Counters.Connects++
		s.mu.Unlock()
		return conn, nil
	case ctx.Err() != nil:
		return nil, err
	case errors.Is(err, serialport.ErrNotFound):
		s.setState(Absent, "")
	case errors.Is(err, obd.ErrNoVehicle):
		s.setState(IgnitionOff, err.Error())
	default:
		s.setState(Fault, err.Error())
	}
	return nil, err
}

// session runs one vehicle connection: scan once, then serve requests, heartbeats and live
// sampling until the vehicle or the adapter goes away.
func (s *Supervisor) session(ctx context.Context, conn Conn) {
	prof := ""
	var profile *obd.Profile
	if p, ok := conn.(obd.Profiler); ok {
		pp := p.Profile()
		profile = &pp
		prof = strings.TrimSpace(pp.Device + " " + pp.Version)
	} else if str, ok := conn.(fmt.Stringer); ok {
		prof = str.String()
	}
	s.mu.Lock()
	s.st.Adapter, s.st.Profile, s.st.VIN = prof, profile, ""
	s.mu.Unlock()
	s.setState(Ready, "")
	if _, err := s.scan(ctx, conn); err != nil && s.lost(err) {
		return
	}
	beat := time.NewTicker(s.o.Poll)
	defer beat.Stop()
	live := time.NewTicker(s.o.LivePeriod)
	defer live.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-s.reqs:
			var rep reply
			switch r.kind {
			case "scan":
				rep.scan, rep.err = s.scan(ctx, conn)
			case "clear":
				rep.clear, rep.err = s.clear(ctx, conn, r.confirm)
			case "query":
				rep.resps, rep.err = conn.Query(ctx, r.query)
			}
			r.reply <- rep
			if rep.err != nil && s.lost(rep.err) {
				return
			}
		case <-live.C:
			if s.Status().Watchers == 0 {
				continue
			}
			if err := s.sampleLive(ctx, conn); err != nil && s.lost(err) {
				return
			}
		case <-beat.C:
			if s.Status().Watchers > 0 {
				continue // live sampling already proves the car is there
			}
			if _, err := conn.Query(ctx, obd.Req(0x01, 0x00)); err != nil && s.lost(err) {
				return
			}
		}
	}
}

// lost classifies an error during a session: true when the connection is over (ignition off,
// adapter unplugged) and the supervisor must start again.
func (s *Supervisor) lost(err error) bool {
	switch {
	case errors.Is(err, obd.ErrNoData):
		return false
	case errors.Is(err, obd.ErrNoVehicle):
		s.setState(IgnitionOff, err.Error())
		return true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.Is(err, obd.ErrNotConfirmed), errors.Is(err, ErrVINMismatch):
		return false
	}
	var ne *obd.NegativeResponseError
	if errors.As(err, &ne) {
		return false
	}
	s.setState(Fault, err.Error())
	return true
}

func (s *Supervisor) scan(ctx context.Context, conn Conn) (*obd.Report, error) {
	s.setState(Scanning, "")
	s.light(indicator.Busy)
	began := time.Now()
	r, err := s.o.Scan(ctx, conn)
	s.mu.Lock()
	s.st.Counters.ScanSeconds += time.Since(began).Seconds()
	if err != nil {
		s.st.Counters.ScanFailures++
	} else {
		s.st.Counters.Scans++
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("scan failed", "err", err)
		s.events("scan.failed", map[string]string{"error": err.Error()})
		if !errors.Is(err, obd.ErrNoVehicle) {
			s.setState(Ready, "scan failed: "+err.Error())
		}
		return nil, err
	}
	s.mu.Lock()
	s.scans = append(s.scans, r)
	if len(s.scans) > s.o.KeepScans {
		s.scans = s.scans[len(s.scans)-s.o.KeepScans:]
	}
	s.st.LastScan = r
	s.st.VIN = r.VIN
	s.mu.Unlock()
	s.setState(Ready, "")
	s.log.Info("scan done", "vin", r.VIN, "elapsed_ms", r.ElapsedMS)
	s.events("scan.done", map[string]any{"vin": r.VIN, "mil": r.MIL})
	if s.o.OnScan != nil {
		s.o.OnScan(s.o.Name, r)
	}
	return r, nil
}

func (s *Supervisor) clear(ctx context.Context, conn Conn, c obd.Confirmation) (ClearOutcome, error) {
	var out ClearOutcome
	before, err := s.scan(ctx, conn)
	if err != nil {
		return out, fmt.Errorf("bay: scan before clearing failed, nothing was cleared: %w", err)
	}
	out.Before = before
	if before.VIN == "" {
		return out, fmt.Errorf("%w: the car reports no VIN, so the confirmation cannot be checked", ErrVINMismatch)
	}
	if !strings.EqualFold(strings.TrimSpace(c.VIN), before.VIN) {
		return out, fmt.Errorf("%w (confirmed %s, car reports %s)", ErrVINMismatch, strings.ToUpper(strings.TrimSpace(c.VIN)), before.VIN)
	}
	s.log.Warn("clearing fault codes on operator confirmation", "vin", before.VIN, "confirmed_by", c.ConfirmedBy, "work_order", c.WorkOrder)
	res, err := obd.ClearDTCs(ctx, conn, c)
	out.Result = res
	s.events("dtcs.cleared", map[string]any{"vin": before.VIN, "ecus": res.Cleared, "error": errString(err)})
	if err != nil {
		return out, err
	}
	after, err := s.scan(ctx, conn)
	if err != nil {
		out.Warning = "codes cleared, but the scan afterwards failed: " + err.Error()
		return out, nil
	}
	out.After = after
	return out, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (s *Supervisor) sampleLive(ctx context.Context, conn Conn) error {
	l := Live{Time: s.o.Now(), Values: map[string]float64{}}
	s.mu.Lock()
	var pids []byte
	seen := map[byte]bool{}
	for _, w := range s.watchers {
		for _, p := range w {
			if !seen[p] {
				seen[p] = true
				pids = append(pids, p)
			}
		}
	}
	s.mu.Unlock()
	slices.Sort(pids) // the same requests every round, whatever order the viewers came in
	multi := false
	if p, ok := conn.(obd.Profiler); ok {
		multi = p.Profile().MultiPID
	}
	firstErr := s.readPIDs(ctx, conn, pids, multi, l.Values)
	for p, dst := range map[byte]**float64{0x0C: &l.RPM, 0x05: &l.CoolantC, 0x0D: &l.SpeedKmh} {
		if v, ok := l.Values[fmt.Sprintf("%02X", p)]; ok {
			*dst = &v
		}
	}
	if firstErr != nil {
		l.Error = firstErr.Error()
	}
	s.mu.Lock()
	for ch, w := range s.watchers {
		select {
		case ch <- l.only(w):
		default: // a slow viewer skips a sample
		}
	}
	// The notice board hears at most one sample a second: its followers want the values, not
	// the adapter's rate (viewers of the live stream get every round).
	publish := l.Time.Sub(s.lastLiveEvent) >= time.Second || l.Time.Before(s.lastLiveEvent)
	if publish {
		s.lastLiveEvent = l.Time
	}
	s.mu.Unlock()
	if publish {
		s.events("live", l.only(DefaultLivePIDs))
	}
	return firstErr
}

// readPIDs asks pids, up to six per request when the adapter does multi-PID requests (a batch
// the car refuses is asked again one PID at a time), and puts what the car answered into out.
// "No data" is an answer; the first other error is returned.
func (s *Supervisor) readPIDs(ctx context.Context, conn Conn, pids []byte, multi bool, out map[string]float64) error {
	var firstErr error
	keep := func(err error) {
		if err != nil && !errors.Is(err, obd.ErrNoData) && firstErr == nil {
			firstErr = err
		}
	}
	one := func(pid byte) {
		resps, err := conn.Query(ctx, obd.Req(0x01, pid))
		keep(err)
		for _, r := range resps {
			if v, ok := liveValue(pid, r.Data); ok {
				out[fmt.Sprintf("%02X", pid)] = v
				break
			}
		}
	}
	for i := 0; i < len(pids); i += maxLivePIDs {
		chunk := pids[i:min(i+maxLivePIDs, len(pids))]
		if !multi || len(chunk) == 1 {
			for _, p := range chunk {
				one(p)
			}
			continue
		}
		resps, err := conn.Query(ctx, obd.Req(0x01, chunk...))
		if err != nil && !errors.Is(err, obd.ErrNoData) && s.lostConn(err) {
			return err
		}
		got := 0
		for _, r := range resps {
			vals, _ := obd.ParseMultiPID(chunk, r.Data) // what decoded before a fault is kept
			for _, v := range vals {
				k := fmt.Sprintf("%02X", byte(v.PID))
				if _, dup := out[k]; !dup {
					out[k] = v.Value
					got++
				}
			}
		}
		if got == 0 {
			// Some ECUs and clones refuse batches (elm327-obd.md §16): one PID per request.
			for _, p := range chunk {
				one(p)
			}
		}
	}
	return firstErr
}

// lostConn: errors after which asking again in the same round is pointless.
func (s *Supervisor) lostConn(err error) bool {
	return errors.Is(err, obd.ErrNoVehicle) || errors.Is(err, obd.ErrAdapterLost) || ctxErr(err)
}

func ctxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// only is the sample as a watcher of pids sees it.
func (l Live) only(pids []byte) Live {
	out := Live{Time: l.Time, Error: l.Error, Values: map[string]float64{}}
	for _, p := range pids {
		k := fmt.Sprintf("%02X", p)
		if v, ok := l.Values[k]; ok {
			out.Values[k] = v
			switch p {
			case 0x0C:
				out.RPM = &v
			case 0x05:
				out.CoolantC = &v
			case 0x0D:
				out.SpeedKmh = &v
			}
		}
	}
	return out
}

// liveValue decodes one live PID's answer ("41 PID data…") with the obd package's formula.
func liveValue(pid byte, d []byte) (float64, bool) {
	if len(d) < 3 || d[0] != 0x41 || d[1] != pid {
		return 0, false
	}
	v, err := obd.DecodePID(pid, d[2:])
	if err != nil {
		return 0, false
	}
	return v.Value, true
}

func (s *Supervisor) setState(st State, lastErr string) {
	s.mu.Lock()
	changed := s.st.State != st || (lastErr != "" && s.st.LastError != lastErr)
	if s.st.State != st {
		s.st.Since = s.o.Now()
	}
	s.st.State = st
	s.st.LastError = lastErr
	vin := s.st.VIN
	s.mu.Unlock()
	if !changed {
		return
	}
	s.log.Info("bay state", "state", string(st), "detail", lastErr)
	s.events("bay.state", map[string]string{"state": string(st), "detail": lastErr, "vin": vin})
	switch st {
	case Ready:
		s.light(indicator.Ready)
	case Scanning, Connecting:
		s.light(indicator.Busy)
	case Fault, IgnitionOff:
		s.light(indicator.Fault)
	case Absent:
		s.light(indicator.Off)
	}
}

func (s *Supervisor) light(st indicator.State) {
	if s.o.Light != nil {
		s.o.Light.Set(st)
	}
}

func (s *Supervisor) events(typ string, data any) {
	s.o.Events.Publish(typ, s.o.Name, data)
}
