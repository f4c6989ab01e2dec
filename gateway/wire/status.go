package wire

import (
	"encoding/json"
	"fmt"
	"time"
)

// State of a gateway as its retained status message says it.
type State string

const (
	Online  State = "online"
	Offline State = "offline" // the last will, or a clean shutdown
)

// Status is the retained message on Topic.Status. The broker publishes the offline form as the
// gateway's last will when the link dies without a DISCONNECT; the gateway publishes the online
// form after every connect and the offline form before a clean shutdown.
//
// Incarnation, NewStore and Update came later and are optional: a status without them (an older
// gateway) still parses, and the gateway omits them when it has nothing to say.
type Status struct {
	State   State     `json:"state"`
	Gateway string    `json:"gateway"`
	Version string    `json:"version"`
	At      time.Time `json:"at"` // when the gateway composed it (for the will: when that session began)
	// Incarnation is the incarnation of the gateway's state file, the middle part of its
	// record ids "<gateway>-<incarnation>-<seq>".
	Incarnation string `json:"incarnation,omitempty"`
	// NewStore: the gateway started this run on a new, empty state file (created, or
	// started with --new-store after the old one could not be used). Records it had not
	// delivered may be missing until the old file is salvaged.
	NewStore bool `json:"new_store,omitempty"`
	// Update is the state of signed updates (docs/update.md), present only when the gateway
	// updates itself; a status without it is as valid as before.
	Update *UpdateStatus `json:"update,omitempty"`
}

// UpdateStatus reports a gateway's updates: the version on trial, the versions rolled back
// (never tried again) and why the last one was.
type UpdateStatus struct {
	Trial       string   `json:"trial,omitempty"`
	Bad         []string `json:"bad,omitempty"`
	LastFailure string   `json:"last_failure,omitempty"`
}

// MaxBadVersions bounds UpdateStatus.Bad.
const MaxBadVersions = 32

func (u *UpdateStatus) validate() error {
	if len(u.Trial) > 64 {
		return fieldErr("update.trial", "%d bytes, at most 64", len(u.Trial))
	}
	if len(u.Bad) > MaxBadVersions {
		return fieldErr("update.bad", "%d versions, at most %d", len(u.Bad), MaxBadVersions)
	}
	for _, v := range u.Bad {
		if v == "" || len(v) > 64 {
			return fieldErr("update.bad", "%q: want a version of 1 to 64 bytes", clip(v))
		}
	}
	if len(u.LastFailure) > 1024 {
		return fieldErr("update.last_failure", "%d bytes, at most 1024", len(u.LastFailure))
	}
	return nil
}

// MarshalStatus encodes a status message.
func MarshalStatus(s Status) ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s.At = s.At.UTC()
	return json.Marshal(s)
}

// Validate names the field that is wrong.
func (s Status) Validate() error {
	if s.State != Online && s.State != Offline {
		return fieldErr("state", "%q: want online or offline", clip(string(s.State)))
	}
	if err := checkLevel("gateway", s.Gateway, 64); err != nil {
		return fieldErr("gateway", "%v", err)
	}
	if s.Version == "" {
		return fieldErr("version", "empty")
	}
	if s.At.IsZero() {
		return fieldErr("at", "missing")
	}
	if s.Incarnation != "" && !IsIncarnation(s.Incarnation) {
		return fieldErr("incarnation", "%q: want %d characters of lowercase base32", clip(s.Incarnation), IncarnationLen)
	}
	if s.Update != nil {
		return s.Update.validate()
	}
	return nil
}

// ParseStatus decodes and validates a status message.
func ParseStatus(b []byte) (Status, error) {
	var s Status
	if err := decodeStrict(b, &s, "at"); err != nil {
		return s, fmt.Errorf("wire: status: %w", err)
	}
	return s, s.Validate()
}
