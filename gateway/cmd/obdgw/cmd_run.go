package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
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
		summary: "run the gateway daemon: bays, work orders, uplink, API, console (exit 2 on a bad config, 7 on an unusable state file)",
		run: func(ctx context.Context, e *env, args []string) error {
			fs := newFlags(e, "run", "--config FILE [--new-store]")
			path := fs.String("config", "/etc/obdgw/obdgw.yaml", "the YAML configuration (see obdgw.example.yaml)")
			check := fs.Bool("check-config", false, "only check the configuration and the files it names (secrets, certificates), then exit: 0 when it would start, 2 with every problem")
			newStore := fs.Bool("new-store", false, "if the state file cannot be used, move it aside to obdgw.db.old-<UTC time> and start a new, empty store (then: obdgw salvage)")
			if err := fs.Parse(args); err != nil {
				return usageError("%v", err)
			}
			if fs.NArg() > 0 {
				return usageError("unexpected arguments: %s", strings.Join(fs.Args(), " "))
			}
			if *check {
				return checkConfig(e, *path)
			}
			return runDaemon(ctx, e, *path, runFlags{newStore: *newStore}, runHooks{})
		},
	})
}

// runFlags are run's choices.
type runFlags struct {
	newStore bool // --new-store
}

// runHooks let tests observe the daemon.
type runHooks struct {
	listening func(addr string) // called once the daemon is ready
}

// runDaemon runs until ctx ends (SIGTERM, SIGINT) and returns nil only after a clean shutdown.
// A configuration error is exit code 2 (systemd's RestartPreventExitStatus=2: restarting cannot
// fix a bad key); a state file that cannot be used is exit code 7 (not restarted either: a
// person decides, see storeHelp); everything else that stops the daemon is exit code 1.
//
// gateway/daemon wires the parts (store, work orders, bays, uplink, API, console); this command
// adds what belongs to the process: the configuration file, systemd's READY/STOPPING
// notifications and the watchdog.
func runDaemon(ctx context.Context, e *env, path string, flags runFlags, hooks runHooks) error {
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
	storePath := filepath.Join(cfg.StateDir, daemon.StoreFile)
	d, err := daemon.New(cfg, opts)
	switch {
	case errors.Is(err, buffer.ErrCorrupt) && flags.newStore:
		moved, mvErr := buffer.MoveAside(storePath, time.Now())
		if mvErr != nil {
			return &exitError{code: exitNeedsPerson, err: fmt.Errorf("%w; --new-store could not move it aside: %w", err, mvErr)}
		}
		log.Warn("obdgw: the state file cannot be used; moved it aside and starting a new store: salvage its records with obdgw salvage", "moved_to", moved, "err", err)
		d, err = daemon.New(cfg, opts)
	case err == nil && flags.newStore:
		log.Info("obdgw: --new-store: the state file opens and passes its checks, kept it", "path", storePath)
	}
	if errors.Is(err, buffer.ErrCorrupt) {
		return &exitError{code: exitNeedsPerson, err: fmt.Errorf("%w\n%s", err, storeHelp(path, storePath))}
	}
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

// checkConfig loads the configuration as the daemon would (secret files, modes, certificates,
// rig models) without opening the store or any device, and says what it found.
func checkConfig(e *env, path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	fmt.Fprintf(e.stdout, "%s: configuration OK (gateway %s, %d bays, API on %s, state in %s)\n",
		cfg.File, cfg.GatewayID, len(cfg.Bays), cfg.API.Listen, cfg.StateDir)
	return nil
}

// storeHelp says what a person does about a state file the daemon refused.
func storeHelp(configPath, storePath string) string {
	return fmt.Sprintf(`The daemon will not start on this state file (exit code 7: needs a person). Records already
delivered are safe at the receiver; undelivered ones and the work orders are in the file.
  - With a backup of the state file:  obdgw restore --config %[1]s BACKUP
  - Without one: start a new, empty store; the file is kept as %[2]s.old-<UTC time>:
      obdgw run --config %[1]s --new-store
    then take what can be read out of the old file into the new store:
      obdgw salvage --config %[1]s %[2]s.old-<UTC time>
See docs/delivery.md, "When the state file is lost or damaged".`, configPath, storePath)
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
