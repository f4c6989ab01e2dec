package update

import (
	"fmt"
	"time"
)

// MaxStarts is how many times a trial version may start without becoming healthy: the next
// start rolls it back (a crash loop).
const MaxStarts = 3

// EnvLaunched is set by the launcher for the binary it executes (to that binary's version),
// so the start is counted once.
const EnvLaunched = "OBDGW_UPDATE_LAUNCHED"

// EnvTrial is set (to "1") beside EnvLaunched when the executed version runs on trial.
const EnvTrial = "OBDGW_UPDATE_TRIAL"

// Launch is the launcher's decision at process start.
type Launch struct {
	// Exec is the binary to execute instead of the running one ("" = go on with this one).
	Exec string
	// Version is the version to run: Exec's, or the running one.
	Version string
	// Trial says the version runs on trial: the caller gates it on health (WatchTrial).
	Trial bool
	// RolledBack names a trial version given up at this start, and Why says why.
	RolledBack, Why string
}

// Prepare decides what this start of the gateway runs, and records it in dir's state: the
// current version, or the trial version (counting the start), or — when the trial has
// started MaxStarts times without becoming healthy, or its binary is missing or corrupt — the
// current version again, with the trial marked bad. running is the version of this process.
//
// The packaged binary is run (Launch.Exec empty) when nothing newer than it is installed. An
// error means the state or the binary it names cannot be trusted: the caller runs the
// packaged binary and logs it.
func Prepare(dir, running string, now time.Time) (Launch, error) {
	var l Launch
	var binErr error
	err := Modify(dir, func(s *State) error {
		l = Launch{}
		if t := s.Trial; t != nil {
			switch {
			case !Newer(t.Version, running) && t.Version != running:
				// The package itself moved past the trial version: nothing to try.
				s.Trial = nil
			case t.Starts >= MaxStarts:
				l.RolledBack, l.Why = t.Version, fmt.Sprintf("did not become healthy in %d starts", t.Starts)
			default:
				if err := checkBinary(dir, s, t.Version); err != nil {
					l.RolledBack, l.Why = t.Version, err.Error()
					break
				}
				t.Starts++
				if t.Started.IsZero() {
					t.Started = now.UTC()
				}
				l.Version, l.Trial = t.Version, true
			}
			if l.RolledBack != "" {
				s.markBad(l.RolledBack, l.Why)
				prune(dir, s)
			}
		}
		if l.Version == "" {
			if s.Current == "" || !Newer(s.Current, running) {
				l.Version = running
				return nil
			}
			if err := checkBinary(dir, s, s.Current); err != nil {
				binErr = err
				l.Version = running
				return nil
			}
			l.Version = s.Current
		}
		return nil
	})
	if err != nil {
		return Launch{Version: running}, err
	}
	if l.Version != running {
		l.Exec = BinaryPath(dir, l.Version)
	}
	return l, binErr
}
