package update

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// DirName is the directory under the state directory that holds everything of updates.
const DirName = "update"

// Dir returns the update directory of a state directory.
func Dir(stateDir string) string { return filepath.Join(stateDir, DirName) }

// State is update/state.json: what is installed, what is on trial, what failed.
type State struct {
	// Current is the version the gateway runs ("" = the packaged binary).
	Current string `json:"current,omitempty"`
	// Previous is the version Current replaced.
	Previous string `json:"previous,omitempty"`
	// Trial is a version installed and not yet proven healthy.
	Trial *Trial `json:"trial,omitempty"`
	// Bad lists versions rolled back; they are never installed again.
	Bad []string `json:"bad,omitempty"`
	// Failures says why each bad version was rolled back.
	Failures map[string]string `json:"failures,omitempty"`
	// SHA256 holds the hash of each installed binary, checked before it is executed.
	SHA256 map[string]string `json:"sha256,omitempty"`
	// LastCheck is when the repository was last asked, LastError what went wrong then.
	LastCheck time.Time `json:"last_check,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// Available is the newest version the last check found for this gateway.
	Available string `json:"available,omitempty"`
}

// Trial is a version on probation.
type Trial struct {
	Version string `json:"version"`
	// Started is when it first started; Starts counts its starts without becoming healthy.
	Started time.Time `json:"started,omitzero"`
	Starts  int       `json:"starts"`
	// UplinkBefore is the uplink's error when the version was installed ("" = connected): a
	// trial whose broker fails the same way is not blamed for it.
	UplinkBefore string `json:"uplink_before,omitempty"`
}

// IsBad reports whether v was rolled back before.
func (s *State) IsBad(v string) bool { return slices.Contains(s.Bad, v) }

// markBad rolls the trial back: its version joins Bad with the reason, and Current stays.
func (s *State) markBad(v, why string) {
	if !s.IsBad(v) {
		s.Bad = append(s.Bad, v)
	}
	if s.Failures == nil {
		s.Failures = map[string]string{}
	}
	s.Failures[v] = why
	if s.Trial != nil && s.Trial.Version == v {
		s.Trial = nil
	}
}

// BinaryPath is where version v is installed.
func BinaryPath(dir, v string) string { return filepath.Join(dir, "bin", "obdgw-"+v) }

func statePath(dir string) string { return filepath.Join(dir, "state.json") }

// ErrCorruptState: the state file cannot be read as a State (SetAsideState moves it away).
var ErrCorruptState = errors.New("corrupt")

// ReadState reads dir's state file; a missing file is the zero State.
func ReadState(dir string) (State, error) {
	var s State
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("update: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("update: %s is %w: %v", statePath(dir), ErrCorruptState, err)
	}
	for _, v := range append([]string{s.Current, s.Previous}, s.Bad...) {
		if v != "" && !ValidVersion(v) {
			return State{}, fmt.Errorf("update: %s is %w: version %q", statePath(dir), ErrCorruptState, clip(v))
		}
	}
	if s.Trial != nil && !ValidVersion(s.Trial.Version) {
		return State{}, fmt.Errorf("update: %s is %w: trial version %q", statePath(dir), ErrCorruptState, clip(s.Trial.Version))
	}
	return s, nil
}

// SetAsideState renames a corrupt state file to state.json.corrupt (replacing an older one),
// so updates start afresh: the packaged binary runs, and the next check installs again.
func SetAsideState(dir string) error {
	if err := os.Rename(statePath(dir), statePath(dir)+".corrupt"); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	return nil
}

// Modify changes dir's state file under an exclusive lock (the daemon, its launcher and the
// update command may each change it): f gets the current state; when f returns nil the
// result is written atomically.
func Modify(dir string, f func(*State) error) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "state.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("update: lock %s: %w", lock.Name(), err)
	}
	s, err := ReadState(dir)
	if err != nil {
		return err
	}
	if err := f(&s); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	return writeAtomic(statePath(dir), append(b, '\n'), 0o600)
}

// writeAtomic writes a file by writing a temporary file beside it, syncing and renaming it,
// so a power cut leaves the old or the new file, never half of one.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("update: write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("update: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("update: sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// fileSHA256 hashes a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkBinary says why the installed binary of v cannot be run, or nil.
func checkBinary(dir string, s *State, v string) error {
	p := BinaryPath(dir, v)
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("update: binary of %s: %w", v, err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o100 == 0 {
		return fmt.Errorf("update: binary of %s: %s is not an executable file", v, p)
	}
	want := s.SHA256[v]
	if want == "" {
		return fmt.Errorf("update: binary of %s: no hash recorded in %s", v, statePath(dir))
	}
	got, err := fileSHA256(p)
	if err != nil {
		return fmt.Errorf("update: binary of %s: %w", v, err)
	}
	if got != want {
		return fmt.Errorf("update: binary of %s is corrupt: sha256 %s, installed as %s", v, got, want)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
