package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// What `obdgw scan` remembers between runs: the ELM protocol each adapter's last car talked,
// by the address given to --port, so the next scan through that adapter tries it first
// (elm327.Options.Protocol) rather than searching. It is a small JSON file only this user may
// read (0600), in the user's state directory; nothing in it is needed: a file that cannot be
// read or makes no sense is ignored with a warning, and written afresh after the next connect.

// scanStateEnv names the state file instead of the default place (--state names it first).
const scanStateEnv = "OBDGW_SCAN_STATE"

// scanStateVersion is the layout of the file; another version is ignored like a bad file.
const scanStateVersion = 1

// scanState is the state file's content.
type scanState struct {
	Version  int                    `json:"version"`
	Adapters map[string]scanAdapter `json:"adapters"`
}

// scanAdapter is what is kept of one adapter address.
type scanAdapter struct {
	// Protocol is the ELM protocol number its last car talked ("6").
	Protocol string `json:"protocol"`
}

// scanStatePath is where the state file is: flag (--state), else $OBDGW_SCAN_STATE, else
// obdgw/scan.json in $XDG_STATE_HOME (an absolute path, as the XDG base directory
// specification asks), else in ~/.local/state.
func scanStatePath(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if p := os.Getenv(scanStateEnv); p != "" {
		return p, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "obdgw", "scan.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory: set --state, $%s or $XDG_STATE_HOME: %w", scanStateEnv, err)
	}
	return filepath.Join(home, ".local", "state", "obdgw", "scan.json"), nil
}

// loadScanState reads the state file at path. A file that does not exist yet is an empty
// state; any other problem is an error naming the file, and the state is empty.
func loadScanState(path string) (scanState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return scanState{}, nil
	}
	if err != nil {
		return scanState{}, err
	}
	st, err := parseScanState(b)
	if err != nil {
		return scanState{}, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// maxScanState bounds the file read: a few adapters take a few hundred bytes.
const maxScanState = 1 << 20

// parseScanState decodes a state file, refusing what obdgw does not write: another version,
// an empty address, or a protocol that is not an ELM protocol number 1–9 or A–C.
func parseScanState(b []byte) (scanState, error) {
	if len(b) > maxScanState {
		return scanState{}, fmt.Errorf("%d bytes, more than a state file holds (%d)", len(b), maxScanState)
	}
	var st scanState
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&st); err != nil {
		return scanState{}, fmt.Errorf("not a scan state file: %w", err)
	}
	if dec.More() {
		return scanState{}, errors.New("not a scan state file: more after the JSON object")
	}
	if st.Version != scanStateVersion {
		return scanState{}, fmt.Errorf("version %d, want %d", st.Version, scanStateVersion)
	}
	for addr, a := range st.Adapters {
		if addr == "" {
			return scanState{}, errors.New("an adapter with an empty address")
		}
		if !elmProtocol(a.Protocol) {
			return scanState{}, fmt.Errorf("adapter %q: protocol %q is not an ELM protocol number 1–9 or A–C", addr, a.Protocol)
		}
	}
	return st, nil
}

func elmProtocol(p string) bool {
	return len(p) == 1 && strings.Contains("123456789ABC", p)
}

// protocol is the protocol remembered for the adapter at addr, "" when none.
func (st scanState) protocol(addr string) string { return st.Adapters[addr].Protocol }

// remember keeps p (from ATDPN: "6", or "A6" for automatic, found 6) for addr and reports
// whether that changed anything.
func (st *scanState) remember(addr, p string) bool {
	p = strings.TrimPrefix(strings.ToUpper(p), "A")
	if !elmProtocol(p) || st.protocol(addr) == p {
		return false
	}
	if st.Adapters == nil {
		st.Adapters = map[string]scanAdapter{}
	}
	st.Version = scanStateVersion
	st.Adapters[addr] = scanAdapter{Protocol: p}
	return true
}

// save writes the state to path whole or not at all (a new file renamed over the old), only
// for this user (0600, its directory 0700 when created).
func (st scanState) save(path string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".scan-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // gone once renamed
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
