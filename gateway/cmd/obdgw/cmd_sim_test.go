package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/serialport"
)

// syncBuffer is a bytes.Buffer safe for the command goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSimServesAcrossReopen runs the sim command in-process and talks to it through the real
// serialport package twice: a client that closes and reopens finds the adapter again.
func TestSimServesAcrossReopen(t *testing.T) {
	var out, errb syncBuffer
	e := &env{stdout: &out, stderr: &errb, log: slog.New(slog.NewTextHandler(&errb, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- commands["sim"].run(ctx, e, []string{"elm327", "--scenario", "diesel", "--baud", "1000000"})
	}()
	var path string
	for deadline := time.Now().Add(10 * time.Second); path == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if l, _, ok := strings.Cut(out.String(), "\n"); ok {
			path = l
		}
	}
	if !strings.HasPrefix(path, "/dev/") {
		cancel()
		t.Fatalf("no device path on stdout: %q (stderr %s)", out.String(), errb.String())
	}
	for i := 0; i < 2; i++ {
		p, err := serialport.Open("serial://" + path)
		if err != nil {
			t.Fatalf("round %d: open: %v", i, err)
		}
		p.Write([]byte("ATI\r"))
		p.SetReadDeadline(time.Now().Add(5 * time.Second))
		var got []byte
		buf := make([]byte, 64)
		for !bytes.Contains(got, []byte(">")) {
			n, err := p.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				t.Fatalf("round %d: read: %v (got %q)", i, err, got)
			}
		}
		p.Close()
		if !bytes.Contains(got, []byte("ELM327 v2.1")) {
			t.Errorf("round %d: ATI answered %q", i, got)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("sim returned %v after its context ended, want nil (exit 0)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sim did not stop")
	}
}

func TestSimUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sim"}, "which simulator"},
		{[]string{"sim", "frobnicator"}, `no simulator "frobnicator"`},
		{[]string{"sim", "elm327", "--scenario", "nope"}, `no built-in scenario "nope"`},
		{[]string{"sim", "elm327", "--baud", "-5"}, "--baud"},
		{[]string{"sim", "elm327", "--latency", "-1s"}, "--latency"},
		{[]string{"sim", "elm327", "--search-delay", "-1s"}, "--search-delay -1s: must not be negative"},
	} {
		var out, errb bytes.Buffer
		if code := runMain(c.args, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), exitUsage, c.want)
		}
	}
	bad := t.TempDir() + "/bad.yaml"
	os.WriteFile(bad, []byte("protocol: \"6\"\necus:\n  - id: 7E8\n    dtcs: {stored: [Q1234]}\n"), 0o644)
	var out, errb bytes.Buffer
	if code := runMain([]string{"sim", "elm327", "--scenario", bad}, &out, &errb); code != exitUsage ||
		!strings.Contains(errb.String(), "ecus[0].dtcs.stored[0]") || strings.Count(errb.String(), "\n") != 1 {
		t.Errorf("bad scenario file: exit %d, stderr %q", code, errb.String())
	}
}

func TestSimList(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runMain([]string{"sim", "elm327", "--list"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, n := range []string{"petrol", "diesel", "kline", "ignition-off", "clone-v15"} {
		if !strings.Contains(out.String(), n+" ") {
			t.Errorf("--list lacks %s:\n%s", n, out.String())
		}
	}
}
