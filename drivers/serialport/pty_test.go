package serialport_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/hack/testenv"
)

// newPTY opens a real pseudo-terminal in raw mode and returns its master and the slave path.
// Raw mode is set through termios rather than by running stty: a child process costs a
// SIGCHLD, which a 386 test binary under qemu-i386 does not survive (see
// testenv.NoChildProcesses).
func newPTY(t *testing.T) (master *os.File, slavePath string) {
	t.Helper()
	p := testenv.PTY(t)
	return p.Master, p.SlavePath
}

func openPTY(t *testing.T, addr string) serialport.Port {
	t.Helper()
	p, err := serialport.Open(addr)
	if err != nil {
		t.Fatalf("Open(%q): %v", addr, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func readFull(t *testing.T, r io.Reader, n int) string {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return string(buf)
}

func TestPTYReadWrite(t *testing.T) {
	m, path := newPTY(t)
	for _, addr := range []string{path, "serial://" + path + "?baud=115200"} {
		p := openPTY(t, addr)
		if _, err := m.Write([]byte("ELM327 v1.5\r\r>")); err != nil {
			t.Fatal(err)
		}
		if got := readFull(t, p, 14); got != "ELM327 v1.5\r\r>" {
			t.Errorf("%s: read %q", addr, got)
		}
		if _, err := p.Write([]byte("ATZ\r")); err != nil {
			t.Fatal(err)
		}
		if got := readFull(t, m, 4); got != "ATZ\r" {
			t.Errorf("%s: master read %q", addr, got)
		}
		p.Close()
	}
	p := openPTY(t, "serial://"+path+"?baud=9600")
	if want := path + "@9600"; p.String() != want {
		t.Errorf("String() = %q, want %q", p.String(), want)
	}
}

func TestPTYDeadline(t *testing.T) {
	m, path := newPTY(t)
	p := openPTY(t, path)

	p.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := p.Read(make([]byte, 8))
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past deadline = %d, %v; want 0 and os.ErrDeadlineExceeded", n, err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("deadline error %v is not a net.Error with Timeout()", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("deadline error %q does not name the device", err)
	}

	// A deadline already past fails at once, even with data waiting.
	m.Write([]byte("x"))
	p.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := p.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read with past deadline: %v", err)
	}

	// Clearing the deadline reads the waiting byte.
	p.SetReadDeadline(time.Time{})
	if got := readFull(t, p, 1); got != "x" {
		t.Errorf("read %q after clearing deadline", got)
	}

	// Data that arrives before the deadline is returned, not an error.
	go func() {
		time.Sleep(20 * time.Millisecond)
		m.Write([]byte("41 0C\r"))
	}()
	p.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got := readFull(t, p, 6); got != "41 0C\r" {
		t.Errorf("read %q", got)
	}
}

func TestPTYCloseUnblocksRead(t *testing.T) {
	_, path := newPTY(t)
	p, err := serialport.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(30 * time.Millisecond) // let the reader block
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v, want net.ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestOpenMissingDevice(t *testing.T) {
	for _, addr := range []string{"/dev/ttyUSB-obdgw-missing", "serial:///dev/ttyUSB-obdgw-missing?baud=38400"} {
		_, err := serialport.Open(addr)
		if !errors.Is(err, serialport.ErrNotFound) {
			t.Fatalf("Open(%q) = %v, want ErrNotFound", addr, err)
		}
		if !strings.Contains(err.Error(), "/dev/ttyUSB-obdgw-missing") || !strings.Contains(err.Error(), "plugged in") {
			t.Errorf("error %q does not name the device and what to check", err)
		}
	}
}

func TestOpenNotASerialDevice(t *testing.T) {
	f := t.TempDir() + "/plain"
	os.WriteFile(f, []byte("x"), 0o600)
	_, err := serialport.Open(f)
	if err == nil {
		t.Fatal("Open of a regular file succeeded")
	}
	if errors.Is(err, serialport.ErrNotFound) || errors.Is(err, serialport.ErrBusy) || errors.Is(err, serialport.ErrPermission) {
		t.Errorf("regular file misclassified: %v", err)
	}
	if !strings.Contains(err.Error(), "not a serial device") {
		t.Errorf("error %q does not say what is wrong", err)
	}
}

func TestOpenBadAddress(t *testing.T) {
	for _, addr := range []string{"", "ftp://x", "usb://0403", "usb://xyz:6001", "tcp://nohostport", "serial:///dev/x?baud=fast", "serial://"} {
		if _, err := serialport.Open(addr); err == nil || !strings.HasPrefix(err.Error(), "serialport: ") {
			t.Errorf("Open(%q) = %v, want a serialport: error", addr, err)
		}
	}
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in   string
		want serialport.Addr
	}{
		{"/dev/rfcomm0", serialport.Addr{Kind: "serial", Path: "/dev/rfcomm0"}},
		{"serial:///dev/ttyUSB0?baud=38400", serialport.Addr{Kind: "serial", Path: "/dev/ttyUSB0", Baud: 38400}},
		{"usb://0403:6001?serial=A5XK3RJT", serialport.Addr{Kind: "usb", VID: "0403", PID: "6001", Serial: "A5XK3RJT"}},
		{"usb://1a86:7523?baud=115200", serialport.Addr{Kind: "usb", VID: "1A86", PID: "7523", Baud: 115200}},
		{"tcp://127.0.0.1:35000", serialport.Addr{Kind: "tcp", Host: "127.0.0.1:35000"}},
		{"tcp://[::1]:35000", serialport.Addr{Kind: "tcp", Host: "[::1]:35000"}},
	}
	for _, tc := range tests {
		got, err := serialport.ParseAddr(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseAddr(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	addr := "tcp://" + ln.Addr().String()
	p, err := serialport.Open(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.String() != addr {
		t.Errorf("String() = %q, want %q", p.String(), addr)
	}
	c := <-accepted
	p.Write([]byte("0100\r"))
	if got := readFull(t, c, 5); got != "0100\r" {
		t.Errorf("server read %q", got)
	}
	c.Write([]byte("NO DATA\r\r>"))
	if got := readFull(t, p, 10); got != "NO DATA\r\r>" {
		t.Errorf("read %q", got)
	}
	p.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := p.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read past deadline = %v", err)
	}
	p.SetReadDeadline(time.Time{})
	c.Close()
	if _, err := p.Read(make([]byte, 4)); !errors.Is(err, serialport.ErrDisconnected) {
		t.Errorf("read after the adapter hung up = %v, want ErrDisconnected", err)
	}
}

func TestTCPRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = serialport.Open("tcp://"+addr, serialport.WithDialTimeout(2*time.Second))
	if !errors.Is(err, serialport.ErrNotFound) || !strings.Contains(err.Error(), addr) {
		t.Errorf("Open of a closed port = %v, want ErrNotFound naming %s", err, addr)
	}
}

// TestSocatPTYPair runs two serial ends joined by socat, the way go-serial itself is tested,
// and checks bytes cross in both directions through Open.
func TestSocatPTYPair(t *testing.T) {
	testenv.NoChildProcesses(t)
	socat := testenv.Program(t, "socat", "socat") // a host binary: fine under qemu-user too
	cmd := exec.Command(socat, "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	re := regexp.MustCompile(`PTY is (\S+)`)
	var paths []string
	sc := bufio.NewScanner(stderr)
	for len(paths) < 2 && sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			paths = append(paths, m[1])
		}
	}
	if len(paths) < 2 {
		t.Fatalf("socat did not report two ptys (got %v)", paths)
	}
	go io.Copy(io.Discard, stderr)
	a := openPTY(t, paths[0])
	b := openPTY(t, "serial://"+paths[1]+"?baud=38400")
	a.Write([]byte("7F7F\r"))
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got := readFull(t, b, 5); got != "7F7F\r" {
		t.Errorf("b read %q", got)
	}
	b.Write([]byte("?\r\r>"))
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got := readFull(t, a, 4); got != "?\r\r>" {
		t.Errorf("a read %q", got)
	}
	a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("idle read = %v, want deadline", err)
	}
}

// TestPTYHangup: the far end disappears (a USB adapter pulled out); a blocked Read returns
// ErrDisconnected rather than hanging or reporting a timeout.
func TestPTYHangup(t *testing.T) {
	m, path := newPTY(t)
	p := openPTY(t, path)
	done := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(30 * time.Millisecond)
	m.Close()
	select {
	case err := <-done:
		if !errors.Is(err, serialport.ErrDisconnected) {
			t.Errorf("Read after hang-up = %v, want ErrDisconnected", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not notice the hang-up")
	}
}

// FuzzParseAddr: device addresses come from configuration files and the command line.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"/dev/rfcomm0", "serial:///dev/ttyUSB0?baud=38400", "usb://0403:6001?serial=A5XK3RJT",
		"usb://1a86:7523", "tcp://127.0.0.1:35000", "tcp://[::1]:35000", "serial:", "usb://:", "usb://0403:6001?baud=-1", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := serialport.ParseAddr(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "serialport: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			return
		}
		switch a.Kind {
		case "serial":
			if a.Path == "" {
				t.Fatalf("%q: serial address without a path", s)
			}
		case "usb":
			if len(a.VID) != 4 || len(a.PID) != 4 {
				t.Fatalf("%q: bad USB id %+v", s, a)
			}
		case "tcp":
			if a.Host == "" {
				t.Fatalf("%q: tcp address without host", s)
			}
		default:
			t.Fatalf("%q: kind %q", s, a.Kind)
		}
		if a.Baud < 0 {
			t.Fatalf("%q: negative baud", s)
		}
	})
}
