package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/elm327/elm327sim"
	"github.com/obdgw/obdgw/hack/testenv"
)

// simOnPTY serves a simulated adapter with the named car on a real pty, unpaced.
func simOnPTY(t *testing.T, car string) (*elm327sim.Sim, string) {
	t.Helper()
	sc, err := elm327sim.Builtin(car)
	if err != nil {
		t.Fatal(err)
	}
	sc.Adapter.ResetDelay, sc.Faults.SearchingDelay = 0, 0
	p := testenv.PTY(t)
	sim := elm327sim.New(sc, elm327sim.Options{Baud: -1, NoLatency: true})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sim.Serve(ctx, p.Master); close(done) }()
	t.Cleanup(func() { cancel(); p.Master.Close(); <-done })
	return sim, "serial://" + p.SlavePath
}

// scanInProcess runs `obdgw scan` in this process and returns its error and stderr.
func scanInProcess(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stderr bytes.Buffer
	e := &env{stdout: io.Discard, stderr: &stderr, log: slog.New(slog.NewTextHandler(&stderr, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := runScan(ctx, e, args)
	return stderr.String(), err
}

// protocolsSet are the ATSP commands the simulator took after the first n commands.
func protocolsSet(sim *elm327sim.Sim, n int) []string {
	var sp []string
	for _, c := range sim.Stats().Commands[n:] {
		if strings.HasPrefix(c, "ATSP") {
			sp = append(sp, c)
		}
	}
	return sp
}

// TestScanStateRoundTrip: `obdgw scan` keeps the protocol the car talked in the state file
// (0600, JSON, by adapter address) and tries it first next time. The K-line car is not one of
// the protocols tried without it: the first scan tries CAN 11/500 and 29/500 and searches, the
// second sets KWP directly and searches no more.
func TestScanStateRoundTrip(t *testing.T) {
	sim, addr := simOnPTY(t, "kline")
	path := filepath.Join(t.TempDir(), "state", "scan.json")

	stderr, err := scanInProcess(t, "--port", addr, "--state", path, "--lang", "en")
	if err != nil {
		t.Fatalf("first scan: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, `adapter says "SEARCHING..."`) {
		t.Errorf("the search's progress was not shown:\n%s", stderr)
	}
	if got, want := protocolsSet(sim, 0), []string{"ATSP6", "ATSP7", "ATSP0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("first scan set %q, want %q", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no state file after a scan: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	var st struct {
		Version  int
		Adapters map[string]struct{ Protocol string }
	}
	if err := json.Unmarshal(b, &st); err != nil || st.Version != 1 || st.Adapters[addr].Protocol != "5" {
		t.Errorf("state file %s (%v): want version 1 and protocol 5 for %s", b, err, addr)
	}

	n := len(sim.Stats().Commands)
	stderr, err = scanInProcess(t, "--port", addr, "--state", path, "--lang", "en")
	if err != nil {
		t.Fatalf("second scan: %v\n%s", err, stderr)
	}
	if got := protocolsSet(sim, n); !reflect.DeepEqual(got, []string{"ATSP5"}) {
		t.Errorf("second scan set %q, want the remembered ATSP5 alone", got)
	}
	if !strings.Contains(stderr, "trying protocol 5 first") {
		t.Errorf("second scan does not say it tries the remembered protocol:\n%s", stderr)
	}
	// --protocol names the one to try first, over the file.
	n = len(sim.Stats().Commands)
	if stderr, err := scanInProcess(t, "--port", addr, "--state", path, "--protocol", "7", "--lang", "en"); err != nil {
		t.Fatalf("scan with --protocol: %v\n%s", err, stderr)
	}
	if got := protocolsSet(sim, n); !slices.Equal(got[:1], []string{"ATSP7"}) {
		t.Errorf("scan with --protocol 7 set %q first", got)
	}
}

// TestScanStateBadFile: a state file that cannot be used is ignored with a warning naming it,
// never fatal; the scan searches as without one, and the file is written afresh.
func TestScanStateBadFile(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		warn          string
	}{
		{"not JSON", "{\"version\": 1, \"adapters\": {", "not a scan state file"},
		{"another version", `{"version": 9, "adapters": {}}`, "version 9"},
		{"not a protocol", `{"version": 1, "adapters": {"ADDR": {"protocol": "Z"}}}`, `protocol \"Z\"`},
		{"binary", "\x00\x01\xff", "not a scan state file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, addr := simOnPTY(t, "kline")
			path := filepath.Join(t.TempDir(), "scan.json")
			if err := os.WriteFile(path, []byte(strings.ReplaceAll(tc.content, "ADDR", addr)), 0o600); err != nil {
				t.Fatal(err)
			}
			stderr, err := scanInProcess(t, "--port", addr, "--state", path, "--lang", "en")
			if err != nil {
				t.Fatalf("scan failed over a bad state file: %v\n%s", err, stderr)
			}
			if !strings.Contains(stderr, "level=WARN") || !strings.Contains(stderr, path) || !strings.Contains(stderr, tc.warn) {
				t.Errorf("no warning naming %s and %q:\n%s", path, tc.warn, stderr)
			}
			if got, want := protocolsSet(sim, 0), []string{"ATSP6", "ATSP7", "ATSP0"}; !reflect.DeepEqual(got, want) {
				t.Errorf("set %q, want %q", got, want)
			}
			if st, err := loadScanState(path); err != nil || st.protocol(addr) != "5" {
				t.Errorf("state file not written afresh: %+v, %v", st, err)
			}
		})
	}
}

// TestScanStateUnwritable: a state file that cannot be written is a warning, not a failure.
func TestScanStateUnwritable(t *testing.T) {
	_, addr := simOnPTY(t, "petrol")
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(blocker, "scan.json") // its directory is a file
	stderr, err := scanInProcess(t, "--port", addr, "--state", path, "--lang", "en")
	if err != nil {
		t.Fatalf("scan failed over an unwritable state file: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "scan state not saved") {
		t.Errorf("no warning about the state file:\n%s", stderr)
	}
}

// TestScanStatePath: --state, then $OBDGW_SCAN_STATE, then $XDG_STATE_HOME (absolute only),
// then ~/.local/state.
func TestScanStatePath(t *testing.T) {
	t.Setenv("HOME", "/home/tech")
	t.Setenv(scanStateEnv, "")
	t.Setenv("XDG_STATE_HOME", "")
	for _, tc := range []struct{ flag, env, xdg, want string }{
		{"/tmp/a.json", "/tmp/b.json", "/x", "/tmp/a.json"},
		{"", "/tmp/b.json", "/x", "/tmp/b.json"},
		{"", "", "/x", "/x/obdgw/scan.json"},
		{"", "", "relative", "/home/tech/.local/state/obdgw/scan.json"},
		{"", "", "", "/home/tech/.local/state/obdgw/scan.json"},
	} {
		t.Setenv(scanStateEnv, tc.env)
		t.Setenv("XDG_STATE_HOME", tc.xdg)
		if got, err := scanStatePath(tc.flag); err != nil || got != tc.want {
			t.Errorf("flag %q env %q XDG_STATE_HOME %q: %q, %v; want %q", tc.flag, tc.env, tc.xdg, got, err, tc.want)
		}
	}
}

// FuzzScanState: whatever the file holds, reading it never panics, and a state it accepts
// holds only valid protocols and survives a write and a read unchanged.
func FuzzScanState(f *testing.F) {
	f.Add([]byte(`{"version": 1, "adapters": {"serial:///dev/ttyUSB0": {"protocol": "6"}}}`))
	f.Add([]byte(`{"version": 1, "adapters": {"": {"protocol": "6"}}}`))
	f.Add([]byte(`{"version": 1} {}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseScanState(b)
		if err != nil {
			return
		}
		for addr, a := range st.Adapters {
			if addr == "" || !elmProtocol(a.Protocol) {
				t.Fatalf("accepted %q: %q", addr, a.Protocol)
			}
		}
		path := filepath.Join(t.TempDir(), "scan.json")
		if err := st.save(path); err != nil {
			t.Fatal(err)
		}
		again, err := loadScanState(path)
		if err != nil || !reflect.DeepEqual(normal(again), normal(st)) {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, st)
		}
	})
}

// normal treats no adapters and an empty map alike.
func normal(st scanState) scanState {
	if len(st.Adapters) == 0 {
		st.Adapters = nil
	}
	return st
}
