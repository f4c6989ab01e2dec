package elm327

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/serialport"
)

// This file holds a small scripted adapter for the protocol tests: it reads CR-terminated
// command lines from one end of a net.Pipe and writes scripted replies, recording every
// command. (The full vehicle simulator lives in elm327sim; this one only scripts exchanges.)

// pipePort gives a net.Pipe end the serialport.Port shape.
type pipePort struct {
	net.Conn
	name string
}

func (p pipePort) String() string { return p.name }

var _ serialport.Port = pipePort{}

// step is one piece of a reply: bytes to write, or a pause before the next piece, or a hang-up.
type step struct {
	data   string
	pause  time.Duration
	hangup bool
}

func w(s string) step            { return step{data: s} }
func pause(d time.Duration) step { return step{pause: d} }
func hangup() step               { return step{hangup: true} }
func say(s string) []step        { return []step{w(s)} }
func ok() []step                 { return say("OK\r\r>") }
func splitReply(s ...string) []step {
	var out []step
	for i, p := range s {
		if i > 0 {
			out = append(out, pause(5*time.Millisecond))
		}
		out = append(out, w(p))
	}
	return out
}

// script answers commands. Each command has a queue of replies; the last one repeats.
type script struct {
	t       *testing.T
	mu      sync.Mutex
	replies map[string][][]step
	got     []string
	echo    bool // on after ATZ until ATE0, as on a real ELM
}

// genuine is a genuine ELM327 v1.5 on an 11-bit CAN car with one engine ECU.
func genuine() map[string][][]step {
	return map[string][][]step{
		"7F7F":   {say("?\r\r>")},
		"ATZ":    {say("\r\rELM327 v1.5\r\r>")},
		"ATE0":   {ok()},
		"ATL0":   {ok()},
		"ATS0":   {ok()},
		"ATH1":   {ok()},
		"ATAT1":  {ok()},
		"ATSP0":  {ok()},
		"ATSP6":  {ok()},
		"ATRV":   {say("12.4V\r\r>")},
		"0100":   {say("SEARCHING...\r7E806410 0BE3FA813\r\r>")},
		"ATDPN":  {say("A6\r\r>")},
		"ATDP":   {say("AUTO, ISO 15765-4 (CAN 11/500)\r\r>")},
		"ATI":    {say("ELM327 v1.5\r\r>")},
		"STI":    {say("?\r\r>")},
		"ATAT2":  {ok()},
		"01001":  {say("7E8064100BE3FA813\r\r>")},
		"01000C": {say("7E8100941 00BE3FA813\r7E8210C0CE400000000\r\r>")},
		// The probe with the count digit: two frames (the bitmap and 0C make 9 bytes).
		"01000C2": {say("7E8100941 00BE3FA813\r7E8210C0CE400000000\r\r>")},
		"010C":    {say("7E804410C0CE4\r\r>")},
		"010C1":   {say("7E804410C0CE4\r\r>")},
		"010D":    {say("7E803410D00\r\r>")},
		"010D1":   {say("7E803410D00\r\r>")},
	}
}

func newScript(t *testing.T, replies map[string][][]step) *script {
	return &script{t: t, replies: replies}
}

// start serves the script on a new pipe and returns the adapter's end.
func (s *script) start() serialport.Port {
	a, b := net.Pipe()
	done := s.startOn(b)
	s.t.Cleanup(func() { a.Close(); b.Close(); <-done })
	return pipePort{Conn: a, name: "/dev/ttyUSB0@38400"}
}

// startOn serves the script on c (a pipe end or a pty master) until c fails.
func (s *script) startOn(c io.ReadWriteCloser) chan struct{} {
	done := make(chan struct{})
	go s.serve(c, done)
	return done
}

func (s *script) set(cmd string, r ...[]step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies[cmd] = r
}

func (s *script) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func (s *script) count(cmd string) int {
	n := 0
	for _, c := range s.commands() {
		if c == cmd {
			n++
		}
	}
	return n
}

func (s *script) serve(c io.ReadWriteCloser, done chan struct{}) {
	defer close(done)
	buf := make([]byte, 64)
	var line []byte
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		for _, ch := range buf[:n] {
			if ch == '\n' {
				s.t.Errorf("adapter sent a line feed (commands end with CR only)")
				continue
			}
			if ch != '\r' {
				line = append(line, ch)
				continue
			}
			cmd := string(line)
			line = line[:0]
			if strings.TrimSpace(cmd) == "" {
				// A bare CR repeats the previous command on a real ELM327.
				s.t.Errorf("adapter sent a bare CR")
				continue
			}
			if !s.answer(c, cmd) {
				return
			}
		}
	}
}

func (s *script) answer(c io.ReadWriteCloser, cmd string) bool {
	s.mu.Lock()
	s.got = append(s.got, cmd)
	q := s.replies[cmd]
	var r []step
	if len(q) > 0 {
		r = q[0]
		if len(q) > 1 {
			s.replies[cmd] = q[1:]
		}
	}
	echo := s.echo
	switch cmd {
	case "ATZ":
		s.echo = true
	case "ATE0":
		s.echo = false
	}
	s.mu.Unlock()
	if echo {
		if _, err := c.Write([]byte(cmd + "\r")); err != nil {
			return false
		}
	}
	if r == nil {
		r = say("?\r\r>")
	}
	for _, st := range r {
		switch {
		case st.hangup:
			c.Close()
			return false
		case st.pause > 0:
			time.Sleep(st.pause)
		default:
			if _, err := c.Write([]byte(st.data)); err != nil {
				return false
			}
		}
	}
	return true
}

// logBuf collects log output for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testOptions(lb *logBuf) Options {
	o := Options{}
	if lb != nil {
		o.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return o
}

func newAdapter(t *testing.T, s *script, o Options) *Adapter {
	t.Helper()
	a, err := NewContext(context.Background(), s.start(), o)
	if err != nil {
		t.Fatalf("init: %v\ncommands: %q", err, s.commands())
	}
	t.Cleanup(func() { a.Close() })
	return a
}
