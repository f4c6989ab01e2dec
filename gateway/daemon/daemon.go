package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/drivers/elm327"
	"github.com/obdgw/obdgw/drivers/indicator"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/firmware/version"
	"github.com/obdgw/obdgw/gateway/api"
	"github.com/obdgw/obdgw/gateway/audit"
	"github.com/obdgw/obdgw/gateway/bay"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/console"
	"github.com/obdgw/obdgw/gateway/ehrhttp"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/events"
	"github.com/obdgw/obdgw/gateway/imrecord"
	"github.com/obdgw/obdgw/gateway/update"
	"github.com/obdgw/obdgw/gateway/uplink"
	"github.com/obdgw/obdgw/gateway/waste"
	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/gateway/workorder"
	"github.com/obdgw/obdgw/obd"
)

// StoreFile is the name of the one bbolt file in the state directory.
const StoreFile = "obdgw.db"

// Options adjust a daemon beyond its configuration. The zero value is what `obdgw run` uses.
type Options struct {
	Logger *slog.Logger     // nil discards
	Now    func() time.Time // nil = time.Now
	// Listener, when set, is used for the API and console instead of listening on
	// cfg.API.Listen (tests and the demo pass a loopback listener on a free port).
	Listener net.Listener
	// AllowPlainBroker permits a tcp:// broker URL (the demo's in-process broker; tests).
	// Production configurations use TLS.
	AllowPlainBroker bool
	// Dial opens a bay's adapter; nil uses elm327.OpenContext on the configured address.
	Dial func(ctx context.Context, b config.Bay) (bay.Conn, error)
	// Poll is the bays' retry and heartbeat interval (0 = 2 s).
	Poll time.Duration
	// OpenRig opens a bay's emission rig for a self-test; nil opens the configured address
	// with serialport.Open and wraps it as the configured model with rig.Open.
	OpenRig func(b config.Bay) (rig.Rig, error)
	// UpdateStatus, when set, is the state of signed updates: reported in the retained
	// status and on /healthz (nil: the gateway does not update itself).
	UpdateStatus func() *wire.UpdateStatus

	// readTimeout and writeTimeout replace the HTTP server's (0: 30 s and 1 min); tests
	// shorten them.
	readTimeout, writeTimeout time.Duration
}

// timeouts: a client has readTimeout to send its request, writeTimeout to take the answer.
func (o Options) timeouts() (read, write time.Duration) {
	read, write = 30*time.Second, time.Minute
	if o.readTimeout > 0 {
		read = o.readTimeout
	}
	if o.writeTimeout > 0 {
		write = o.writeTimeout
	}
	return read, write
}

// Daemon is a running gateway. Build it with New, run it once with Run, which closes the store
// when it returns.
type Daemon struct {
	cfg    *config.Config
	o      Options
	log    *slog.Logger
	db     *buffer.DB
	bus    *events.Bus
	wo     *workorder.Store
	tests  *imrecord.Store // judged self-tests, and the M-station record at settlement
	waste  *waste.Ledger   // the waste ledger, and the waste record at settlement
	reg    *prometheus.Registry
	up     *cloud.Uplink     // nil when no broker is configured
	ehr    *ehrhttp.Delivery // nil unless uplink.transport is ehr-https
	bays   []*bay.Supervisor
	byName map[string]*bay.Supervisor
	runs   *emission.Runs
	api    *api.Server
	mux    *http.ServeMux
	ln     net.Listener

	mu    sync.Mutex
	ready bool
	// workCtx is Run's context while Run takes work that outlives a request (a requested
	// scan, a self-test and the goroutine that stores its result); nil before Run and once it
	// is shutting down. work counts that work: Run waits for it before closing the store.
	workCtx context.Context
	work    sync.WaitGroup
}

// ErrNotRunning: background work (a requested scan, a self-test) is taken only while Run runs.
var ErrNotRunning = errors.New("daemon: gateway not running (starting or shutting down)")

// New opens the store and builds every component; nothing runs until Run. On error nothing
// is left open.
func New(cfg *config.Config, o Options) (_ *Daemon, err error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &Daemon{cfg: cfg, o: o, log: log, bus: events.New(o.Now), byName: map[string]*bay.Supervisor{}}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("daemon: state directory %s: %w", cfg.StateDir, err)
	}
	d.db, err = buffer.Open(filepath.Join(cfg.StateDir, StoreFile), buffer.Options{
		GatewayID:  cfg.GatewayID,
		MaxRecords: cfg.Records.MaxOutboxRecords,
		Now:        o.Now,
		Logger:     log.With("component", "buffer"),
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			d.db.Close()
		}
	}()
	store := d.db.Info()
	if store.New {
		// Anything this gateway had not delivered is not in this file: say so where people
		// look (the log, /healthz, the metrics, the retained status).
		log.Warn(fmt.Sprintf("starting on a new, empty store (incarnation %s)", store.Incarnation), "path", d.db.Path(), "incarnation", store.Incarnation)
	} else {
		log.Info("store opened", "path", d.db.Path(), "incarnation", store.Incarnation)
	}
	topic := wire.Topic{Province: cfg.Company.Province, CompanyCode: cfg.Company.Code, Gateway: cfg.GatewayID}
	if err := topic.Validate(); err != nil {
		return nil, fmt.Errorf("daemon: company/gateway settings do not make a valid topic: %w", err)
	}
	known := map[string]bool{}
	for _, b := range cfg.Bays {
		known[b.Name] = true
	}
	d.tests = imrecord.NewStore(d.db, imrecord.Options{Events: d.bus, Logger: log.With("component", "selftest"), OBD: cfg.Emission.OBD})
	d.waste = waste.New(d.db, waste.Options{CompanyCode: cfg.Company.Code, DueDays: cfg.Waste.DueDays, Codes: cfg.Waste.Codes.Map(), Now: o.Now})
	d.wo = workorder.New(d.db, workorder.Options{
		Company:     cfg.Company.Name,
		CompanyCode: cfg.Company.Code,
		Province:    cfg.Company.Province,
		GatewayID:   cfg.GatewayID,
		KnownBay:    func(n string) bool { return known[n] },
		IM:          d.tests.Record,
		Waste:       d.waste.Hook,
		Events:      d.bus,
		Now:         o.Now,
		Logger:      log.With("component", "workorder"),
	})
	// One registry for the whole gateway: /metrics answers with or without a broker.
	d.reg = prometheus.NewRegistry()
	storeInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "obdgw_store_info",
		Help: "The state file in use: its incarnation (the middle of record ids) and whether this run started on a new, empty one. Always 1.",
	}, []string{"incarnation", "new"})
	storeInfo.WithLabelValues(store.Incarnation, strconv.FormatBool(store.New)).Set(1)
	d.reg.MustRegister(cloud.OutboxCollector(d.db), storeInfo, bayCollector{func() []*bay.Supervisor { return d.bays }}, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var mqttBox cloud.Outbox = d.db
	if cfg.EHRHTTPS() {
		if d.ehr, err = newEHRDelivery(cfg, d.db, d.reg, log.With("component", "ehr"), o.Now); err != nil {
			return nil, err
		}
		mqttBox = ehrhttp.Except(d.db, wire.KindEHR) // the ehr records go over HTTPS
	}
	if cfg.Broker.URL != "" {
		uo := uplink.Options(topic, version.Version, cloud.UplinkOptions{
			Broker:       cfg.Broker.URL,
			AllowPlain:   o.AllowPlainBroker,
			CAFile:       cfg.Broker.CAFile,
			CertFile:     cfg.Broker.CertFile,
			KeyFile:      cfg.Broker.KeyFile,
			Username:     cfg.Broker.Username,
			PasswordFile: cfg.Broker.PasswordFile,
			InFlight:     cfg.Broker.Inflight,
			Delivery:     cloud.Delivery(cfg.Broker.Delivery),
			DrainRate:    cfg.Broker.DrainRate,
			Registry:     d.reg,
			Logger:       log.With("component", "uplink"),
			Now:          o.Now,
		})
		d.up, err = cloud.NewUplink(mqttBox, uplink.WithStatus(uo, topic, version.Version, store, o.UpdateStatus))
		if err != nil {
			return nil, err
		}
	}
	d.runs = emission.NewRuns(log.With("component", "emission"))
	d.buildBays()
	_, answerTimeout := o.timeouts()
	var tokens []api.Token
	for _, t := range cfg.API.Tokens {
		role, err := api.ParseRole(t.Role)
		if t.Role == "" {
			role, err = api.DefaultRole, nil
		}
		if err != nil {
			return nil, fmt.Errorf("daemon: api.tokens %q: %w", t.Name, err)
		}
		tokens = append(tokens, api.Token{Name: t.Name, Secret: t.Secret, Role: role})
	}
	d.api = api.New(api.Options{
		Store:          d.wo,
		Bays:           &bays{d: d},
		SelfTests:      selfTests{d: d},
		Outbox:         d.db,
		Tokens:         tokens,
		AnonymousReads: cfg.API.AnonymousReads,
		MaxBodyBytes:   cfg.API.MaxBodyBytes,
		AnswerTimeout:  answerTimeout,
		Events:         d.bus,
		Uplink:         d.uplinkStatus,
		Audit:          audit.New(d.db, audit.Options{Now: o.Now}),
		Waste:          d.waste,
		Logger:         log.With("component", "api"),
	})
	d.mux = http.NewServeMux()
	d.mux.Handle(api.Prefix+"/", d.api.Handler())
	d.mux.HandleFunc("GET /healthz", d.healthz)
	// The metrics tell the outbox depth and the uplink's state: the API's read rule applies.
	d.mux.Handle("GET /metrics", d.api.Guard(promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{Registry: d.reg})))
	if cfg.Console.Enabled {
		d.mux.Handle("/", console.Handler())
	}
	return d, nil
}

func (d *Daemon) uplinkStatus() any {
	if d.ehr != nil {
		return d.ehrStatus()
	}
	if d.up == nil {
		return map[string]any{"connected": false, "configured": false, "last_error": "no broker configured (broker.url)"}
	}
	return d.up.Status()
}

// buildBays makes one supervisor per configured bay, with its status light when pins are set.
func (d *Daemon) buildBays() {
	var hostOK bool
	var hostErr error
	mem := bay.NewMemory(d.db, bay.MemoryOptions{Logger: d.log.With("component", "obd-memory"), Now: d.o.Now})
	for _, b := range d.cfg.Bays {
		b := b
		var light *indicator.Light
		if b.LEDs != nil && (b.LEDs.Green != "" || b.LEDs.Red != "") {
			if !hostOK && hostErr == nil {
				if _, err := host.Init(); err != nil {
					hostErr = err
				} else {
					hostOK = true
				}
			}
			green, red := d.pin(b.Name, b.LEDs.Green, hostErr), d.pin(b.Name, b.LEDs.Red, hostErr)
			light = indicator.New(b.Name, green, red, 0)
		}
		dial := d.o.Dial
		if dial == nil {
			// The adapter tries the protocol this bay's last car talked before searching
			// (a search takes seconds on K-line), and, for an address without ?baud=, the
			// rate it answered at last time first; the bay remembers what it found.
			dial = func(ctx context.Context, cb config.Bay) (bay.Conn, error) {
				ad, err := elm327.OpenContext(ctx, cb.OBD, elm327.Options{Logger: d.log.With("bay", cb.Name), Protocol: mem.Protocol(cb.Name), Baud: mem.Baud(cb.Name)})
				if err == nil {
					mem.SetProtocol(cb.Name, ad.Profile().ProtocolNum)
					mem.SetBaud(cb.Name, ad.Baud())
				}
				return ad, err
			}
		}
		s := bay.New(bay.Options{
			Name:    b.Name,
			Address: b.OBD,
			Dial:    func(ctx context.Context) (bay.Conn, error) { return dial(ctx, b) },
			Scan: func(ctx context.Context, a obd.Adapter) (*obd.Report, error) {
				// Each step as it starts goes to the console as "scan.step" (which step, how many).
				return obd.Scan(ctx, a, obd.ScanOptions{Memory: mem, Now: d.o.Now,
					OnStep: func(p obd.StepProgress) { d.bus.Publish("scan.step", b.Name, p) }})
			},
			OnScan: d.onScan,
			Light:  light,
			Events: d.bus,
			Logger: d.log.With("component", "bay"),
			Now:    d.o.Now,
			Poll:   d.o.Poll,
		})
		d.bays = append(d.bays, s)
		d.byName[b.Name] = s
	}
}

func (d *Daemon) pin(bayName, name string, hostErr error) gpio.PinOut {
	if name == "" {
		return nil
	}
	if hostErr != nil {
		d.log.Warn("status light disabled: no GPIO on this machine", "bay", bayName, "pin", name, "err", hostErr)
		return nil
	}
	p := gpioreg.ByName(name)
	if p == nil {
		d.log.Warn("status light pin not found; check bays[].leds in the config", "bay", bayName, "pin", name)
		return nil
	}
	return p
}

// onScan attaches a finished scan to the matching open work order (same VIN, else the bay's
// open order). An ambiguous match is left for the technician and announced; a bay order with
// another VIN keeps the scan unattached and shows the conflict (the store announces it as
// "workorder.vin_conflict").
func (d *Daemon) onScan(bayName string, r *obd.Report) {
	// The store announces where the scan went ("scan.stored"); an ambiguous match is left
	// for the technician to choose.
	if _, err := d.wo.AddScan(bayName, "automatic scan on connection", *r); err != nil {
		var amb *workorder.AmbiguousError
		var mm *workorder.VINMismatchError
		switch {
		case errors.As(err, &amb):
			d.bus.Publish("scan.ambiguous", bayName, amb)
		case errors.As(err, &mm):
			// Kept, shown on the order and the bay: a person decides.
		default:
			d.log.Warn("scan not stored", "bay", bayName, "err", err)
		}
	}
}

func (d *Daemon) healthz(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	ready := d.ready
	d.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	body := map[string]any{"ready": ready, "version": version.Version, "store": d.db.Info()}
	if d.o.UpdateStatus != nil {
		if u := d.o.UpdateStatus(); u != nil {
			body["update"] = u
		}
	}
	json.NewEncoder(w).Encode(body)
}

// Health is what the update health gate looks at: ready (the buffer is open and the API
// listens) and the uplink's state.
func (d *Daemon) Health() update.Probe {
	d.mu.Lock()
	p := update.Probe{Ready: d.ready}
	d.mu.Unlock()
	if d.up == nil {
		p.NoBroker = true
		return p
	}
	st := d.up.Status()
	p.Connected, p.UplinkErr = st.Connected, st.LastError
	return p
}

// StoreInfo describes the state file in use (its incarnation is part of every record id).
func (d *Daemon) StoreInfo() buffer.StoreInfo { return d.db.Info() }

// Store returns the work-order store (the demo drives a visit through it).
func (d *Daemon) Store() *workorder.Store { return d.wo }

// Addr returns the address the API listens on, once Run has started listening.
func (d *Daemon) Addr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ln == nil {
		return ""
	}
	return d.ln.Addr().String()
}

// Bay returns the supervisor of a bay, or nil.
func (d *Daemon) Bay(name string) *bay.Supervisor { return d.byName[name] }

// Run is the daemon's whole lifetime: it serves until ctx ends, then shuts down in order: stop
// taking requests, stop the bays, let the uplink finish its in-flight exchange, wait for the
// work requests started (scans, self-tests and the storing of their results), close the
// store. Every goroutine the daemon started has ended when Run returns, and the store is
// closed also when Run fails; a Daemon runs once. ready is called once the API listens and
// every component has started (for sd_notify READY=1).
func (d *Daemon) Run(ctx context.Context, ready func()) error {
	ln := d.o.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", d.cfg.API.Listen)
		if err != nil {
			d.db.Close()
			return fmt.Errorf("daemon: listen on %s (api.listen): %w", d.cfg.API.Listen, err)
		}
	}
	d.mu.Lock()
	d.ln = ln
	d.mu.Unlock()
	// Past api.max_connections a new connection waits in the kernel's queue, not on one of the
	// gateway's descriptors (the uplink and the buffer file need theirs).
	if n := d.cfg.API.MaxConnections; n > 0 {
		ln = netutil.LimitListener(ln, n)
	}
	// Streams (events, live values) hang on their own base context so that shutdown ends them
	// instead of waiting for a tablet to hang up.
	streams, stopStreams := context.WithCancel(context.Background())
	defer stopStreams()
	readTimeout, writeTimeout := d.o.timeouts()
	srv := &http.Server{
		Handler: d.mux,
		// A client has ReadTimeout to send its whole request and WriteTimeout to take the
		// answer. The API restarts the write deadline when its answer begins (a long clear
		// may use it up first) and lifts it for its event streams (http.ResponseController).
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return streams },
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.mu.Lock()
	d.workCtx = ctx
	d.mu.Unlock()
	var wg sync.WaitGroup
	errc := make(chan error, 3+len(d.bays))
	if d.up != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.up.Run(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("daemon: uplink: %w", err)
			}
		}()
	}
	if d.ehr != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.ehr.Run(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("daemon: ehr delivery: %w", err)
			}
		}()
	}
	for _, s := range d.bays {
		wg.Add(1)
		go func() { defer wg.Done(); s.Run(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); d.publishOutboxStats(ctx) }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("daemon: http: %w", err)
		}
	}()
	d.mu.Lock()
	d.ready = true
	d.mu.Unlock()
	d.log.Info("gateway ready", "listen", ln.Addr().String(), "bays", len(d.bays), "broker", d.cfg.Broker.URL, "version", version.Version)
	if ready != nil {
		ready()
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		d.log.Error("gateway stopping after a failure", "err", runErr)
	}
	d.mu.Lock()
	d.ready = false
	d.mu.Unlock()
	stopStreams()
	shut, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	srv.Shutdown(shut)
	srv.Close() // cuts connections still open after the grace period
	cancel()
	wg.Wait()
	// No new work from here on; the work under way ends with ctx, and a self-test judged
	// just before still has its result stored before the store closes.
	d.mu.Lock()
	d.workCtx = nil
	d.mu.Unlock()
	d.work.Wait()
	if err := d.db.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("daemon: close store: %w", err)
	}
	d.log.Info("gateway stopped")
	return runErr
}

// publishOutboxStats announces the outbox's depth when it changes (checked every 2 s), so the
// console's outbox page and status pill follow deliveries without polling.
func (d *Daemon) publishOutboxStats(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	lastDepth, lastDead := -1, -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := d.db.Stats()
		if st.Depth == lastDepth && st.DeadLetters == lastDead {
			continue
		}
		lastDepth, lastDead = st.Depth, st.DeadLetters
		d.bus.Publish("outbox.stats", "", map[string]any{"depth": st.Depth, "bytes": st.Bytes,
			"oldest_age_s": st.OldestAge.Seconds(), "dead_letters": st.DeadLetters})
	}
}

// startWork takes on work that outlives a request: it returns Run's context, to end the work
// with, and done, to call when it has ended. Run waits for every done before it closes the
// store.
func (d *Daemon) startWork() (ctx context.Context, done func(), err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.workCtx == nil || d.workCtx.Err() != nil {
		return nil, nil, ErrNotRunning
	}
	d.work.Add(1)
	return d.workCtx, d.work.Done, nil
}

// bays adapts the supervisors to the API.
type bays struct{ d *Daemon }

func (b *bays) get(name string) (*bay.Supervisor, error) {
	s := b.d.byName[name]
	if s == nil {
		return nil, fmt.Errorf("%w: %q", api.ErrNoBay, name)
	}
	return s, nil
}

func (b *bays) status(s *bay.Supervisor) api.BayStatus {
	st := s.Status()
	out := api.BayStatus{Name: st.Name, State: string(st.State), Adapter: st.Adapter, Error: st.LastError}
	if out.Adapter == "" {
		out.Adapter = st.Address
	}
	if st.VIN != "" || st.LastScan != nil {
		v := &api.Vehicle{VIN: st.VIN}
		if st.LastScan != nil {
			v.MIL = st.LastScan.MIL
		}
		out.Vehicle = v
	}
	if st.LastScan != nil {
		if raw, err := json.Marshal(st.LastScan); err == nil {
			out.LastScan = raw
		}
	}
	for _, cb := range b.d.cfg.Bays {
		if cb.Name == st.Name && cb.Rig != nil {
			out.Rig = cb.Rig.Model
		}
	}
	if orders, _, err := b.d.wo.List(workorder.Filter{Bay: st.Name, Status: workorder.Open}); err == nil && len(orders) == 1 {
		out.Order = orders[0].ID
		out.VINConflict = orders[0].VINConflict
	}
	return out
}

func (b *bays) List() []api.BayStatus {
	out := make([]api.BayStatus, 0, len(b.d.bays))
	for _, s := range b.d.bays {
		out = append(out, b.status(s))
	}
	return out
}

func (b *bays) Status(name string) (api.BayStatus, error) {
	s, err := b.get(name)
	if err != nil {
		return api.BayStatus{}, err
	}
	return b.status(s), nil
}

func (b *bays) Scan(ctx context.Context, name string) error {
	s, err := b.get(name)
	if err != nil {
		return err
	}
	switch s.Status().State {
	case bay.Ready:
	case bay.Scanning:
		return api.ErrBayBusy
	case bay.Absent:
		return api.ErrNoAdapter
	default:
		return fmt.Errorf("%w (%s)", api.ErrNoVehicle, s.Status().State)
	}
	// The scan outlives the HTTP request (202 Accepted); its result arrives as an event and
	// through OnScan. It ends with the gateway, which waits for it.
	wctx, done, err := b.d.startWork()
	if err != nil {
		return err
	}
	go func() {
		defer done()
		sctx, cancel := context.WithTimeout(wctx, 2*time.Minute)
		defer cancel()
		if _, err := s.ScanNow(sctx); err != nil {
			b.d.log.Warn("requested scan failed", "bay", name, "err", err)
		}
	}()
	return nil
}

func (b *bays) ClearDTCs(ctx context.Context, name string, req api.ClearRequest) (api.ClearResult, error) {
	s, err := b.get(name)
	if err != nil {
		return api.ClearResult{}, err
	}
	if st := s.Status().State; st != bay.Ready {
		if st == bay.Scanning {
			return api.ClearResult{}, api.ErrBayBusy
		}
		if st == bay.Absent {
			return api.ClearResult{}, api.ErrNoAdapter
		}
		return api.ClearResult{}, fmt.Errorf("%w (%s)", api.ErrNoVehicle, st)
	}
	out, err := s.ClearDTCs(ctx, obd.Confirmation{VIN: req.VIN, ConfirmedBy: "api:" + req.RequestID, At: b.d.o.Now(), WorkOrder: req.Order})
	res := api.ClearResult{Bay: name, VIN: req.VIN, Order: req.Order}
	if out.Before != nil {
		if id, ok := b.keep(name, req.Order, "before clearing fault codes", out.Before); ok {
			res.ScanBefore = id
		}
	}
	if errors.Is(err, bay.ErrVINMismatch) {
		return res, fmt.Errorf("%w: %v", api.ErrVINMismatch, err)
	}
	if err != nil {
		return res, err
	}
	res.Cleared = true
	if out.After != nil {
		res.MILAfter = out.After.MIL
		if id, ok := b.keep(name, req.Order, "after clearing fault codes", out.After); ok {
			res.ScanAfter = id
		}
	}
	return res, nil
}

// keep stores a scan taken around a clear (workorder.Store.KeepScan).
func (b *bays) keep(bayName, order, note string, r *obd.Report) (string, bool) {
	id, err := b.d.wo.KeepScan(order, bayName, note, *r)
	if err != nil {
		b.d.log.Warn("scan around a clear", "bay", bayName, "order", order, "stored_as", id, "err", err)
	}
	return id, id != ""
}

// LivePIDs streams the PIDs a viewer picked, keyed by their hex digits (api.LivePicker).
func (b *bays) LivePIDs(ctx context.Context, name string, pids []byte) (<-chan api.LiveValues, error) {
	s, err := b.get(name)
	if err != nil {
		return nil, err
	}
	in := s.WatchPIDs(ctx, pids)
	out := make(chan api.LiveValues)
	go func() {
		defer close(out)
		for l := range in {
			select {
			case out <- api.LiveValues(l.Values):
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

var _ api.LivePicker = (*bays)(nil)

func (b *bays) Live(ctx context.Context, name string) (<-chan api.LiveValues, error) {
	s, err := b.get(name)
	if err != nil {
		return nil, err
	}
	in := s.Watch(ctx)
	out := make(chan api.LiveValues)
	go func() {
		defer close(out)
		for l := range in {
			v := api.LiveValues{}
			for k, p := range map[string]*float64{"rpm": l.RPM, "coolant_c": l.CoolantC, "speed_kmh": l.SpeedKmh} {
				if p != nil {
					v[k] = *p
				}
			}
			select {
			case out <- v:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
