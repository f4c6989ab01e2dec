package elm327

// The conformance corpus: adapter sessions taken from public sources
// (testdata/sessions/*.txt, format in testdata/sessions/README.md), each played back through
// the driver by a replayer that answers every command with the text recorded for it, and a
// full obd.Scan asserting what the source says the car carries.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/obdgw/obdgw/obd"
)

// session is one corpus file.
type session struct {
	file     string
	sources  int
	licence  string // the "# licence:" line's licence, checked by permissive
	protocol byte
	headers  bool
	replies  map[string][]string // command → the replies recorded for it, in order
	expect   [][]string          // "expect" lines, split into fields
}

func loadSession(path string) (*session, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := &session{file: filepath.Base(path), replies: map[string][]string{}}
	var cmd string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		bad := func(why string) error { return fmt.Errorf("%s:%d: %s: %q", s.file, n, why, line) }
		switch {
		case line == "":
		case strings.HasPrefix(line, "# source:"):
			s.sources++
		case strings.HasPrefix(line, "# licence:"):
			lic, _, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(line, "# licence:")), "(")
			if !permissive(strings.TrimSpace(lic)) {
				return nil, bad("licence not one that allows copying into this Apache-2.0 repository")
			}
			s.licence = strings.TrimSpace(lic)
		case strings.HasPrefix(line, "#"):
		case fields[0] == "protocol" && len(fields) == 2 && len(fields[1]) == 1 && validProtocol(fields[1]):
			s.protocol = strings.ToUpper(fields[1])[0]
		case fields[0] == "headers" && len(fields) == 2 && (fields[1] == "on" || fields[1] == "off"):
			s.headers = fields[1] == "on"
		case fields[0] == "expect" && len(fields) >= 2:
			s.expect = append(s.expect, fields[1:])
		case fields[0] == ">" && len(fields) == 2:
			cmd = strings.ToUpper(fields[1])
			s.replies[cmd] = append(s.replies[cmd], "")
		case fields[0] == "<":
			if cmd == "" {
				return nil, bad("reply before any command")
			}
			text, err := strconv.Unquote(strings.TrimSpace(strings.TrimPrefix(line, "<")))
			if err != nil {
				return nil, bad("reply is not a Go-quoted string")
			}
			q := s.replies[cmd]
			q[len(q)-1] += text
		default:
			return nil, bad("unknown line")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	switch {
	case s.sources == 0:
		return nil, fmt.Errorf("%s: no '# source:' line naming where the session comes from", s.file)
	case s.licence == "":
		return nil, fmt.Errorf("%s: no '# licence:' line naming the source's licence", s.file)
	case s.protocol == 0:
		return nil, fmt.Errorf("%s: no protocol line", s.file)
	case len(s.replies) == 0 || len(s.expect) == 0:
		return nil, fmt.Errorf("%s: a session needs commands and expectations", s.file)
	}
	return s, nil
}

// permissive says whether a licence (an SPDX identifier, or several joined by " OR ") lets
// a short excerpt be copied into this Apache-2.0 repository with attribution. Copyleft and
// non-commercial licences (GPL, AGPL, LGPL, CC-BY-NC-SA ...) do not.
func permissive(lic string) bool {
	for _, l := range strings.Split(lic, " OR ") {
		switch strings.TrimSpace(l) {
		case "MIT", "BSD-2-Clause", "BSD-3-Clause", "0BSD", "Apache-2.0", "ISC", "CC0-1.0", "Unlicense":
			return true
		}
	}
	return false
}

// replay answers each command on c with its recorded reply (the last one repeats), and NO
// DATA to commands the session does not have, as a car that does not answer them.
func (s *session) replay(c io.ReadWriteCloser, sent *[]string, mu *sync.Mutex) {
	buf := make([]byte, 64)
	var line []byte
	used := map[string]int{}
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		for _, ch := range buf[:n] {
			if ch != '\r' {
				line = append(line, ch)
				continue
			}
			cmd := string(line)
			line = line[:0]
			mu.Lock()
			*sent = append(*sent, cmd)
			mu.Unlock()
			reply := "NO DATA\r\r>"
			if q := s.replies[cmd]; len(q) > 0 {
				reply = q[min(used[cmd], len(q)-1)]
				used[cmd]++
			}
			if _, err := c.Write([]byte(reply)); err != nil {
				return
			}
		}
	}
}

// replayAdapter is an Adapter on the replayer, set up as the connect would have left it for
// the session's protocol and header setting (the connect itself is tested elsewhere).
func replayAdapter(t *testing.T, s *session) (*Adapter, func() []string) {
	a, b := net.Pipe()
	var mu sync.Mutex
	var sent []string
	done := make(chan struct{})
	go func() { defer close(done); s.replay(b, &sent, &mu) }()
	t.Cleanup(func() { a.Close(); b.Close(); <-done })
	o := Options{}
	o.defaults()
	ad := &Adapter{opts: o, log: o.Logger, learned: map[string]learnedCount{}, noHint: map[string]bool{}}
	ad.setPort(pipePort{Conn: a, name: "replay:" + s.file})
	ad.f = format{protocol: s.protocol, headers: s.headers}
	ad.prof = obd.Profile{Device: "replay:" + s.file, Version: "ELM327 v1.5", ProtocolNum: string(s.protocol)}
	return ad, func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(sent) }
}

func TestCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "sessions", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Errorf("the corpus has %d sessions, want at least 20", len(files))
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			s, err := loadSession(path)
			if err != nil {
				t.Fatal(err)
			}
			synctest.Test(t, func(t *testing.T) {
				a, sent := replayAdapter(t, s)
				rep, err := obd.Scan(context.Background(), a, obd.ScanOptions{Lang: "en"})
				if rep == nil {
					// Only a scan that learnt nothing (no vehicle) returns no report.
					checkScanError(t, s, err)
					checkQueries(t, s, a)
					return
				}
				scanned := sent()
				checkSession(t, s, rep, err, scanned)
				checkQueries(t, s, a)
				if slices.Contains(scanned, "04") {
					t.Error("the scan sent 04")
				}
			})
		})
	}
}

// checkSession asserts each expectation of s on the report (see testdata/sessions/README.md).
func checkSession(t *testing.T, s *session, rep *obd.Report, scanErr error, sent []string) {
	t.Helper()
	ecu := func(id string) *obd.ECUReport {
		if id == "_" {
			id = ""
		}
		for i := range rep.ECUs {
			if rep.ECUs[i].ID == id {
				return &rep.ECUs[i]
			}
		}
		return nil
	}
	codes := func(l []obd.DTC) []string {
		if l == nil {
			return nil
		}
		out := []string{}
		for _, d := range l {
			id := d.ECU
			if id == "" {
				id = "_"
			}
			out = append(out, id+":"+d.Code)
		}
		return out
	}
	wantCodes := func(f []string) []string {
		if len(f) == 1 && f[0] == "-" {
			return []string{}
		}
		return f
	}
	wantErr := false
	for _, x := range s.expect {
		key, args := x[0], x[1:]
		switch key {
		case "vin":
			if args[0] == "-" {
				args[0] = ""
			}
			if rep.VIN != args[0] {
				t.Errorf("VIN %q, want %q", rep.VIN, args[0])
			}
		case "calid", "cvn", "name":
			e := ecu(args[0])
			if e == nil {
				t.Errorf("no ECU %s in %+v", args[0], rep.ECUs)
				continue
			}
			got := map[string][]string{"calid": e.CALIDs, "cvn": e.CVNs, "name": {e.Name}}[key]
			if want := args[1:]; !slices.Equal(got, want) {
				t.Errorf("ECU %s %s %q, want %q", args[0], key, got, want)
			}
		case "stored", "pending", "permanent":
			got := codes(map[string][]obd.DTC{"stored": rep.DTCs.Stored, "pending": rep.DTCs.Pending, "permanent": rep.DTCs.Permanent}[key])
			if want := wantCodes(args); got == nil || !slices.Equal(got, want) {
				t.Errorf("%s DTCs %q, want %q", key, got, want)
			}
		case "mil":
			got := "unknown"
			if rep.MIL != nil {
				got = map[bool]string{true: "on", false: "off"}[*rep.MIL]
			}
			if got != args[0] {
				t.Errorf("MIL %s, want %s", got, args[0])
			}
		case "dtccount":
			e := ecu(args[0])
			if e == nil || e.Readiness == nil || strconv.Itoa(e.Readiness.DTCCount) != args[1] {
				t.Errorf("ECU %s readiness %+v, want %s confirmed codes", args[0], e, args[1])
			}
		case "incomplete":
			if rep.Readiness == nil {
				t.Errorf("readiness unknown, want incomplete %q", args)
			} else if want := wantCodes(args); !slices.Equal(rep.Readiness.Incomplete, want) {
				t.Errorf("incomplete monitors %q, want %q", rep.Readiness.Incomplete, want)
			}
		case "unread":
			if !rep.IsUnread(args[0]) {
				t.Errorf("%s read, want it unread: %+v", args[0], rep.Unread)
			}
		case "live":
			pid, _ := strconv.ParseUint(args[0], 16, 8)
			want, _ := strconv.ParseFloat(args[1], 64)
			found := false
			for _, v := range rep.Live {
				found = found || int(v.PID) == int(pid) && v.Value == want
			}
			if !found {
				t.Errorf("live PID %s = %s missing from %+v", args[0], args[1], rep.Live)
			}
		case "odometer":
			want, _ := strconv.ParseFloat(args[0], 64)
			if rep.OdometerKM == nil || *rep.OdometerKM != want {
				t.Errorf("odometer %v, want %v", rep.OdometerKM, want)
			}
		case "note":
			part := strings.Join(args, " ")
			found := false
			for _, st := range rep.Steps {
				found = found || slices.ContainsFunc(st.Notes, func(n string) bool { return strings.Contains(n, part) })
			}
			if !found {
				t.Errorf("no step notes %q: %+v", part, rep.Steps)
			}
		case "step":
			found := false
			for _, st := range rep.Steps {
				if st.Name == args[0] {
					found = true
					if st.Status != args[1] {
						t.Errorf("step %s %s (%s; notes %q), want %s", st.Name, st.Status, st.Error, st.Notes, args[1])
					}
				}
			}
			if !found {
				t.Errorf("no step %s", args[0])
			}
		case "ecu":
			if ecu(args[0]) == nil {
				t.Errorf("ECU %s missing from %+v", args[0], rep.ECUs)
			}
		case "supported01", "unsupported01":
			e := ecu(args[0])
			if e == nil {
				t.Errorf("no ECU %s", args[0])
				continue
			}
			for _, p := range args[1:] {
				if slices.Contains(e.Supported01, p) != (key == "supported01") {
					t.Errorf("ECU %s supported PIDs %q: %s %s", args[0], e.Supported01, key, p)
				}
			}
		case "notsent":
			if slices.Contains(sent, args[0]) {
				t.Errorf("the scan sent %s: %q", args[0], sent)
			}
		case "query":
			// checked by checkQueries after the scan
		case "error":
			wantErr = true
			if part := strings.Join(args, " "); scanErr == nil || !strings.Contains(scanErr.Error(), part) {
				t.Errorf("scan error %v, want one saying %q", scanErr, part)
			}
		default:
			t.Errorf("%s: unknown expectation %q", s.file, x)
		}
	}
	if scanErr != nil && !wantErr {
		t.Errorf("scan: %v", scanErr)
	}
	if errors.Is(scanErr, obd.ErrNoVehicle) && !wantErr {
		t.Errorf("scan found no vehicle")
	}
}

// checkQueries sends the "expect query" requests one by one after the scan and compares
// what Query returns: "nodata", "error <words>", or the answers as ECU:hex ("_" for none).
func checkQueries(t *testing.T, s *session, a *Adapter) {
	t.Helper()
	for _, x := range s.expect {
		if x[0] != "query" || len(x) < 3 {
			continue
		}
		b, ok := hexBytes(x[1])
		if !ok || len(b) == 0 {
			t.Errorf("bad query %q", x)
			continue
		}
		rs, err := a.Query(context.Background(), obd.Req(b[0], b[1:]...))
		switch want := x[2:]; want[0] {
		case "nodata":
			if !errors.Is(err, obd.ErrNoData) {
				t.Errorf("%s: %v, %v; want NO DATA", x[1], rs, err)
			}
		case "error":
			part := strings.Join(want[1:], " ")
			if err == nil || errors.Is(err, obd.ErrNoData) || !strings.Contains(strings.ToLower(err.Error()), part) {
				t.Errorf("%s: %v, %v; want an error saying %q", x[1], rs, err, part)
			}
		default:
			var got []string
			for _, r := range rs {
				id := r.ECU
				if id == "" {
					id = "_"
				}
				got = append(got, fmt.Sprintf("%s:%X", id, r.Data))
			}
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("%s: %q, %v; want %q", x[1], got, err, want)
			}
		}
	}
}

// checkScanError asserts the "expect error" of a session whose scan returned no report; every
// other expectation needs a report.
func checkScanError(t *testing.T, s *session, err error) {
	t.Helper()
	want := false
	for _, x := range s.expect {
		switch x[0] {
		case "error":
			want = true
			if part := strings.Join(x[1:], " "); err == nil || !strings.Contains(err.Error(), part) {
				t.Errorf("scan error %v, want one saying %q", err, part)
			}
		case "query":
		default:
			t.Errorf("no report to check %q against: scan: %v", x, err)
		}
	}
	if !want {
		t.Errorf("scan returned no report: %v", err)
	}
}

// TestSessionLicence: a session must name its source's licence, and only licences that allow
// copying into this Apache-2.0 repository are accepted.
func TestSessionLicence(t *testing.T) {
	const body = "protocol 6\nheaders off\nexpect vin -\n> 0902\n< \"NO DATA\\r\\r>\"\n"
	for _, c := range []struct {
		licence string
		ok      bool
	}{
		{"# licence: MIT (LICENSE @ 0123)\n", true},
		{"# licence: MIT OR Apache-2.0 (LICENSE-MIT, LICENSE-APACHE @ 0123)\n", true},
		{"# licence: Apache-2.0 (LICENSE @ 0123)\n", true},
		{"# licence: GPL-2.0-only (COPYING @ 0123)\n", false},
		{"# licence: AGPL-3.0-only (LICENSE @ 0123)\n", false},
		{"# licence: CC-BY-NC-SA-4.0 (LICENSE @ 0123)\n", false},
		{"# licence: no licence file\n", false},
		{"", false},
	} {
		path := filepath.Join(t.TempDir(), "s.txt")
		if err := os.WriteFile(path, []byte("# source: https://example.org x.c @ 0123\n"+c.licence+body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := loadSession(path)
		if (err == nil) != c.ok {
			t.Errorf("%q: err %v, want ok %v", c.licence, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "licence") {
			t.Errorf("%q: error %q does not name the licence", c.licence, err)
		}
	}
}
