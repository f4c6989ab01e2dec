package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/firmware/version"
	"github.com/obdgw/obdgw/gateway/api"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/console"
	"github.com/obdgw/obdgw/gateway/events"
	"github.com/obdgw/obdgw/gateway/workorder"
)

func init() {
	register(command{
		name:    "run",
		summary: "run the gateway daemon (work orders, API, console; exit 2 on a bad config)",
		run: func(ctx context.Context, e *env, args []string) error {
			fs := newFlags(e, "run", "--config FILE")
			path := fs.String("config", "/etc/obdgw/obdgw.yaml", "the YAML configuration (see obdgw.example.yaml)")
			if err := fs.Parse(args); err != nil {
				return usageError("%v", err)
			}
			if fs.NArg() > 0 {
				return usageError("unexpected arguments: %s", strings.Join(fs.Args(), " "))
			}
			return runDaemon(ctx, e, *path, runHooks{})
		},
	})
}

// runHooks let tests observe the daemon.
type runHooks struct {
	listening func(addr net.Addr) // called once the API listens
}

// StoreFile is the name of the bbolt file in the state directory.
const StoreFile = "obdgw.db"

// runDaemon runs until ctx ends (SIGTERM, SIGINT) and returns nil only after a clean shutdown.
// A configuration error is exit code 2 (systemd's RestartPreventExitStatus=2: restarting cannot
// fix a bad key); everything else that stops the daemon is exit code 1.
func runDaemon(ctx context.Context, e *env, path string, hooks runHooks) error {
	log := e.log
	cfg, err := config.Load(path)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	log.Info("obdgw: starting", "version", version.String(), "config", path, "gateway", cfg.GatewayID, "bays", len(cfg.Bays), "listen", cfg.API.Listen)

	db, err := buffer.Open(filepath.Join(cfg.StateDir, StoreFile), buffer.Options{
		GatewayID: cfg.GatewayID, MaxRecords: cfg.Records.MaxOutboxRecords, LockTimeout: 5 * time.Second, Logger: log,
	})
	if err != nil {
		if errors.Is(err, buffer.ErrLocked) {
			return fmt.Errorf("open the state file: %w (is another obdgw running?)", err)
		}
		return fmt.Errorf("open the state file: %w", err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error("obdgw: closing the state file", "err", err)
		}
	}()

	bus := events.New(nil)
	bayNames := map[string]bool{}
	for _, b := range cfg.Bays {
		bayNames[b.Name] = true
	}
	store := workorder.New(db, workorder.Options{
		Company: cfg.Company.Name, CompanyCode: cfg.Company.Code, Province: cfg.Company.Province, GatewayID: cfg.GatewayID,
		KnownBay: func(name string) bool { return bayNames[name] },
		Events:   bus,
		Logger:   log,
		// HOOK(emission): IM: the M-station record builder of gateway/emission, so an emission
		// repair settled after a post-repair self-test also queues its "im" record.
	})

	// HOOK(bays): start one supervisor per cfg.Bays entry here (adapter, rig, status light from
	// cfg.Bays[i].LEDs) and pass them as api.Options.Bays; each calls store.AddScan with its
	// scans and publishes bay.state / scan.done on bus. Until then the API lists no bays.
	var bays api.Bays

	// HOOK(cloud): start the MQTT uplink from cfg.Broker over db (frame with wire.Frame), stop it
	// before db closes, and pass its status as api.Options.Uplink.
	var uplink func() any

	tokens := make([]api.Token, len(cfg.API.Tokens))
	for i, t := range cfg.API.Tokens {
		tokens[i] = api.Token{Name: t.Name, Secret: t.Secret}
	}
	a := api.New(api.Options{Store: store, Bays: bays, Outbox: db, Tokens: tokens, AnonymousReads: cfg.API.AnonymousReads,
		MaxBodyBytes: cfg.API.MaxBodyBytes, Events: bus, Uplink: uplink, Logger: log})
	mux := http.NewServeMux()
	mux.Handle(api.Prefix+"/", a.Handler())
	if cfg.Console.Enabled {
		mux.Handle("/", console.Handler()) // HOOK(console): the embedded console, same origin as the API
	}

	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("api: listen on %s: %w (is the port in use? change api.listen)", cfg.API.Listen, err)
	}
	// Streams (events, live values) hang on the base context so shutdown ends them instead of
	// waiting for the tablet to hang up.
	base, stopStreams := context.WithCancel(context.Background())
	defer stopStreams()
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("obdgw: API listening", "addr", ln.Addr().String(), "console", cfg.Console.Enabled)
	if hooks.listening != nil {
		hooks.listening(ln.Addr())
	}

	if _, err := sdNotify("READY=1\nSTATUS=serving on " + ln.Addr().String()); err != nil {
		log.Warn("obdgw: sd_notify READY failed", "err", err)
	}
	wdCtx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	if every, ok := watchdogInterval(); ok {
		go watchdog(wdCtx, every/2, func() error { return db.View(func(*buffer.Tx) error { return nil }) }, log)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("obdgw: stopping", "cause", context.Cause(ctx))
	case err := <-served:
		runErr = fmt.Errorf("api: server stopped: %w", err)
	}
	stopWatchdog()
	sdNotify("STOPPING=1")
	stopStreams()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && runErr == nil {
		runErr = fmt.Errorf("api: shutdown: %w", err)
	}
	if runErr == nil {
		log.Info("obdgw: stopped cleanly")
	}
	return runErr
}

// sdNotify sends a state to systemd's notification socket ($NOTIFY_SOCKET) as one datagram,
// reporting false without error when the daemon does not run under systemd (Type=notify).
func sdNotify(state string) (bool, error) {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return false, nil
	}
	if name[0] == '@' {
		name = "\x00" + name[1:] // abstract socket namespace
	} else if name[0] != '/' {
		return false, fmt.Errorf("sd_notify: NOTIFY_SOCKET %q is neither a path nor an abstract name", name)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sd_notify: %w", err)
	}
	return true, nil
}

// watchdogInterval reads WatchdogSec from the environment systemd sets (WATCHDOG_USEC, and
// WATCHDOG_PID when it is meant for one process).
func watchdogInterval() (time.Duration, bool) {
	usec, err := strconv.ParseUint(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec == 0 {
		return 0, false
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0, false
	}
	return time.Duration(usec) * time.Microsecond, true
}

// watchdog pings systemd every period while healthy() succeeds: a daemon whose state file
// stopped answering stops pinging and is restarted by systemd.
func watchdog(ctx context.Context, period time.Duration, healthy func() error, log *slog.Logger) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if err := healthy(); err != nil {
			log.Error("obdgw: unhealthy, not pinging the watchdog", "err", err)
		} else if _, err := sdNotify("WATCHDOG=1"); err != nil {
			log.Warn("obdgw: watchdog ping failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
