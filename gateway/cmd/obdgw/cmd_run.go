package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/firmware/version"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/daemon"
)

func init() {
	register(command{
		name:    "run",
		summary: "run the gateway daemon: bays, work orders, uplink, API, console (exit 2 on a bad config)",
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
	listening func(addr string) // called once the daemon is ready
}

// runDaemon runs until ctx ends (SIGTERM, SIGINT) and returns nil only after a clean shutdown.
// A configuration error is exit code 2 (systemd's RestartPreventExitStatus=2: restarting cannot
// fix a bad key); everything else that stops the daemon is exit code 1.
//
// gateway/daemon wires the parts (store, work orders, bays, uplink, API, console); this command
// adds what belongs to the process: the configuration file, systemd's READY/STOPPING
// notifications and the watchdog.
func runDaemon(ctx context.Context, e *env, path string, hooks runHooks) error {
	log := e.log
	cfg, err := config.Load(path)
	if err != nil {
		return &exitError{code: configErrorCode(), err: err}
	}
	upd := launchUpdate(e, cfg)
	log.Info("obdgw: starting", "version", version.String(), "config", path, "gateway", cfg.GatewayID, "bays", len(cfg.Bays), "listen", cfg.API.Listen)
	opts := daemon.Options{Logger: log}
	if upd != nil {
		opts.UpdateStatus = upd.status
	}
	d, err := daemon.New(cfg, opts)
	if err != nil {
		if errors.Is(err, buffer.ErrLocked) {
			return fmt.Errorf("%w (is another obdgw running?)", err)
		}
		return err
	}
	if upd != nil {
		ctx = upd.run(ctx, d)
	}
	wdCtx, stopWatchdog := context.WithCancel(ctx)
	defer stopWatchdog()
	ready := func() {
		if _, err := sdNotify("READY=1\nSTATUS=serving on " + d.Addr()); err != nil {
			log.Warn("obdgw: sd_notify READY failed", "err", err)
		}
		if every, ok := watchdogInterval(); ok {
			go watchdog(wdCtx, every/2, d.Store().Check, log)
		}
		if hooks.listening != nil {
			hooks.listening(d.Addr())
		}
	}
	err = d.Run(ctx, ready)
	stopWatchdog()
	sdNotify("STOPPING=1")
	if err != nil {
		return err
	}
	if err := upd.stopped(); err != nil {
		return err
	}
	log.Info("obdgw: stopped cleanly")
	return nil
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
