package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/obdgw/obdgw/firmware/version"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/daemon"
	"github.com/obdgw/obdgw/gateway/update"
	"github.com/obdgw/obdgw/gateway/wire"
)

// exitRestart asks systemd to start the gateway again (Restart=on-failure restarts every exit
// code but those in RestartPreventExitStatus): after an update was installed, or when the
// version on trial did not become healthy. 75 is EX_TEMPFAIL of sysexits.h.
const exitRestart = 75

// updatePoll is how often the daemon looks at the update state (an install by `obdgw update
// apply`) and at its health while on trial.
const updatePoll = time.Second

// updates is the part of `obdgw run` that belongs to signed updates (docs/update.md).
type updates struct {
	e     *env
	cfg   *config.Config
	dir   string
	trial bool // this process runs a version on trial

	mu  sync.Mutex
	err error // why the daemon stopped for a restart
}

// launchUpdate is the launcher step of `obdgw run`: when a newer verified version is current
// or on trial, it executes that binary with the same arguments and does not return. A
// missing or corrupt state file or binary runs this binary, with a warning. nil when the
// configuration has no update section.
func launchUpdate(e *env, cfg *config.Config) *updates {
	if cfg.Update == nil {
		return nil
	}
	u := &updates{e: e, cfg: cfg, dir: update.Dir(cfg.StateDir)}
	if os.Getenv(update.EnvLaunched) == version.Version {
		// Executed by the launcher, which counted this start already.
		os.Unsetenv(update.EnvLaunched)
		os.Unsetenv(update.EnvTrial)
		st, err := update.ReadState(u.dir)
		u.trial = err == nil && st.Trial != nil && st.Trial.Version == version.Version
		return u
	}
	l, err := update.Prepare(u.dir, version.Version, time.Now())
	if err != nil {
		e.log.Warn("obdgw: update state unusable, running the packaged binary", "version", version.Version, "err", err)
		if errors.Is(err, update.ErrCorruptState) {
			if err := update.SetAsideState(u.dir); err != nil {
				e.log.Warn("obdgw: cannot set the corrupt update state aside", "err", err)
			} else {
				e.log.Warn("obdgw: corrupt update state set aside, updates start afresh", "file", "state.json.corrupt")
			}
		}
	}
	if l.RolledBack != "" {
		e.log.Error("obdgw: update rolled back", "version", l.RolledBack, "why", l.Why)
	}
	if l.Exec != "" {
		e.log.Info("obdgw: starting the installed version", "version", l.Version, "trial", l.Trial, "path", l.Exec)
		env := append(os.Environ(), update.EnvLaunched+"="+l.Version)
		if l.Trial {
			env = append(env, update.EnvTrial+"=1")
		}
		err := syscall.Exec(l.Exec, append([]string{l.Exec}, os.Args[1:]...), env)
		e.log.Warn("obdgw: cannot start the installed version, running the packaged binary", "version", l.Version, "err", err)
		return u
	}
	u.trial = l.Trial
	return u
}

// configErrorCode is the exit code for a configuration the daemon refuses: 2 (systemd does not
// restart it), but exitRestart for a version the launcher started on trial, since the packaged
// binary accepted the same file: the restarts count towards the trial's rollback.
func configErrorCode() int {
	if os.Getenv(update.EnvLaunched) == version.Version && os.Getenv(update.EnvTrial) == "1" {
		return exitRestart
	}
	return exitUsage
}

func (u *updates) client(running string) *update.Client {
	return &update.Client{
		Dir:        u.dir,
		Repository: u.cfg.Update.Repository,
		RootFile:   u.cfg.Resolve(u.cfg.Update.RootFile),
		CAFile:     u.cfg.Resolve(u.cfg.Update.CAFile),
		Gateway:    u.cfg.GatewayID,
		Running:    running,
	}
}

// status is the update part of the retained status and of /healthz.
func (u *updates) status() *wire.UpdateStatus {
	r, err := update.Status(u.dir, version.Version)
	if err != nil || (r.Trial == "" && len(r.Bad) == 0) {
		return nil
	}
	if len(r.Bad) > wire.MaxBadVersions {
		r.Bad = r.Bad[len(r.Bad)-wire.MaxBadVersions:]
	}
	if len(r.Failure) > 1024 {
		r.Failure = r.Failure[:1024]
	}
	return &wire.UpdateStatus{Trial: r.Trial, Bad: r.Bad, LastFailure: r.Failure}
}

// run gates a trial version on health and checks the repository while the daemon runs. It
// returns the context the daemon runs under: it ends when the gateway must restart into
// another version, and then stopped() says why.
func (u *updates) run(ctx context.Context, d *daemon.Daemon) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	restart := func(err error) {
		u.mu.Lock()
		if u.err == nil {
			u.err = &exitError{code: exitRestart, err: err}
		}
		u.mu.Unlock()
		cancel()
	}
	go func() {
		if u.trial {
			err := update.WatchTrial(ctx, u.dir, version.Version, u.cfg.Update.HealthTimeout, updatePoll, d.Health)
			if errors.Is(err, update.ErrTrialFailed) {
				u.e.log.Error("obdgw: rolling back", "err", err)
				restart(err)
				return
			}
			if err != nil {
				return
			}
			u.e.log.Info("obdgw: update healthy, kept", "version", version.Version)
		}
		u.loop(ctx, d, restart)
	}()
	return ctx
}

// loop checks the repository every check_every (the first time once the uplink has tried
// to connect, so the error it had before an update is known) and restarts the gateway when
// a version was installed, by itself or by `obdgw update apply`.
func (u *updates) loop(ctx context.Context, d *daemon.Daemon, restart func(error)) {
	tick := time.NewTicker(updatePoll)
	defer tick.Stop()
	var next time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		p := d.Health()
		if st, err := update.ReadState(u.dir); err == nil && st.Trial != nil && st.Trial.Version != version.Version && st.Trial.Starts == 0 {
			// Installed by `obdgw update apply`: the uplink's error now is the one the trial
			// must not be blamed for.
			v := st.Trial.Version
			update.Modify(u.dir, func(s *update.State) error {
				if s.Trial != nil && s.Trial.Version == v && s.Trial.Starts == 0 {
					s.Trial.UplinkBefore = ""
					if !p.Connected {
						s.Trial.UplinkBefore = p.UplinkErr
					}
				}
				return nil
			})
			restart(fmt.Errorf("update: restarting into %s", v))
			return
		}
		if !p.Ready || (!p.NoBroker && !p.Connected && p.UplinkErr == "") || time.Now().Before(next) {
			continue
		}
		next = time.Now().Add(u.cfg.Update.CheckEvery)
		before := ""
		if !p.Connected {
			before = p.UplinkErr
		}
		a, installed, err := u.client(version.Version).Install(ctx, before)
		switch {
		case err != nil:
			u.e.log.Warn("obdgw: update check failed", "err", err)
		case installed:
			u.e.log.Info("obdgw: update installed, restarting into it", "version", a.Version)
			restart(fmt.Errorf("update: restarting into %s", a.Version))
			return
		case a.Bad:
			u.e.log.Info("obdgw: update available but rolled back here before, not installed", "version", a.Version)
		}
	}
}

// stopped is the error `obdgw run` ends with when it stopped for a restart, or nil.
func (u *updates) stopped() error {
	if u == nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}
