package update

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// Probe is one look at the gateway's health for the trial gate.
type Probe struct {
	Ready     bool   // the daemon serves: the buffer is open, the API listens
	Connected bool   // the uplink is connected to the broker
	UplinkErr string // the uplink's last error when not connected
	// NoBroker: the configuration names no broker, so the uplink is not part of health.
	NoBroker bool
}

// Healthy reports whether p proves a trial version good, given the uplink's error before the
// update: the uplink must be connected, unless it was failing before the update and fails
// now for the same reason (a broker that refused connections still refuses them).
func (p Probe) Healthy(uplinkBefore string) bool {
	if !p.Ready {
		return false
	}
	if p.NoBroker || p.Connected {
		return true
	}
	return uplinkBefore != "" && p.UplinkErr != "" && errorClass(p.UplinkErr) == errorClass(uplinkBefore)
}

// errorClass reduces an uplink error to its cause, so the same outage compares equal across
// two versions whose messages differ in detail.
func errorClass(msg string) string {
	m := strings.ToLower(msg)
	for _, c := range []string{"connection refused", "no route to host", "network is unreachable", "no such host", "i/o timeout", "timeout", "certificate", "tls", "not authorized", "bad user name or password", "connection reset"} {
		if strings.Contains(m, c) {
			return c
		}
	}
	return m
}

// ErrTrialFailed: the trial version did not become healthy in time; it is marked bad and
// the gateway must restart into the current version.
var ErrTrialFailed = errors.New("update: trial version did not become healthy")

// WatchTrial gates the trial version running: it probes every poll until the probe is healthy
// — then the trial becomes current and the version it replaces previous — or until timeout
// has passed since the call — then it marks the trial bad and returns ErrTrialFailed, and the
// caller exits for a restart. It returns nil at once when version is not on trial, and
// ctx.Err() when ctx ends first (a stop during the trial counts as one of its starts).
func WatchTrial(ctx context.Context, dir, version string, timeout, poll time.Duration, probe func() Probe) error {
	st, err := ReadState(dir)
	if err != nil {
		return err
	}
	if st.Trial == nil || st.Trial.Version != version {
		return nil
	}
	before := st.Trial.UplinkBefore
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	var last Probe
	for {
		last = probe()
		if last.Healthy(before) {
			return Modify(dir, func(s *State) error {
				if s.Trial == nil || s.Trial.Version != version {
					return nil
				}
				if s.Current != version {
					s.Previous, s.Current = s.Current, version
				}
				s.Trial = nil
				prune(dir, s)
				return nil
			})
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			why := fmt.Sprintf("not healthy within %s (%s)", timeout, last.describe())
			if err := Modify(dir, func(s *State) error { s.markBad(version, why); return nil }); err != nil {
				return err
			}
			return fmt.Errorf("%w: %s %s", ErrTrialFailed, version, why)
		case <-tick.C:
		}
	}
}

func (p Probe) describe() string {
	switch {
	case !p.Ready:
		return "not ready"
	case !p.Connected && p.UplinkErr != "":
		return "uplink: " + p.UplinkErr
	case !p.Connected:
		return "uplink not connected"
	}
	return "healthy"
}

// prune removes installed binaries other than the current and previous versions (an SD card
// is small), with their recorded hashes.
func prune(dir string, s *State) {
	for v := range s.SHA256 {
		if v == s.Current || v == s.Previous {
			continue
		}
		if err := os.Remove(BinaryPath(dir, v)); err == nil || errors.Is(err, fs.ErrNotExist) {
			delete(s.SHA256, v)
		}
	}
}

// Report is the update part of the gateway's status (the retained MQTT status, /healthz).
type Report struct {
	Current  string   `json:"current,omitempty"`
	Trial    string   `json:"trial,omitempty"`
	Bad      []string `json:"bad,omitempty"`
	Failure  string   `json:"last_failure,omitempty"`
	Checked  string   `json:"last_check,omitempty"`
	CheckErr string   `json:"last_error,omitempty"`
}

// Status reads dir's state as a Report; running is this process's version.
func Status(dir, running string) (Report, error) {
	st, err := ReadState(dir)
	if err != nil {
		return Report{Current: running}, err
	}
	r := Report{Current: running, Bad: st.Bad, CheckErr: st.LastError}
	if st.Trial != nil {
		r.Trial = st.Trial.Version
	}
	if n := len(st.Bad); n > 0 {
		r.Failure = st.Bad[n-1] + ": " + st.Failures[st.Bad[n-1]]
	}
	if !st.LastCheck.IsZero() {
		r.Checked = st.LastCheck.Format(time.RFC3339)
	}
	return r, nil
}
