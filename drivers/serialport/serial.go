package serialport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.bug.st/serial"
)

// pollSlice caps each underlying read so a deadline moved by SetReadDeadline from another
// goroutine takes effect within this time, even while a read with no deadline is blocked.
const pollSlice = 250 * time.Millisecond

// serialPort adapts a go-serial port to Port. go-serial has no deadlines, only a per-Read
// timeout that ends in (0, nil); each Read here sets that timeout from the deadline and turns
// an expired one into os.ErrDeadlineExceeded.
type serialPort struct {
	p    serial.Port
	name string

	mu       sync.Mutex
	deadline time.Time

	closed atomic.Bool
}

func (s *serialPort) String() string { return s.name }

func (s *serialPort) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	return nil
}

func (s *serialPort) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		if s.closed.Load() {
			return 0, s.closedError()
		}
		s.mu.Lock()
		dl := s.deadline
		s.mu.Unlock()
		slice := pollSlice
		if !dl.IsZero() {
			left := time.Until(dl)
			if left <= 0 {
				return 0, &DeadlineError{Device: s.name}
			}
			slice = min(left, pollSlice)
		}
		if err := s.p.SetReadTimeout(slice); err != nil {
			return 0, s.ioError("read", err)
		}
		n, err := s.p.Read(b)
		if n > 0 {
			return n, nil
		}
		if err != nil {
			return 0, s.ioError("read", err)
		}
		// (0, nil) is go-serial's timeout: loop to re-check the deadline.
	}
}

func (s *serialPort) Write(b []byte) (int, error) {
	if s.closed.Load() {
		return 0, s.closedError()
	}
	written := 0
	for written < len(b) {
		n, err := s.p.Write(b[written:])
		written += n
		if err != nil {
			if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) {
				continue
			}
			return written, s.ioError("write", err)
		}
		if n == 0 {
			return written, s.ioError("write", io.ErrShortWrite)
		}
	}
	return written, nil
}

func (s *serialPort) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	if err := s.p.Close(); err != nil {
		return fmt.Errorf("serialport: close %s: %w", s.name, err)
	}
	return nil
}

func (s *serialPort) closedError() error {
	return fmt.Errorf("serialport: %s: %w", s.name, net.ErrClosed)
}

// ioError classifies a read or write failure. go-serial reports a USB device pulled mid-read
// as PortClosed (the tty turns readable with zero bytes) and the kernel says EIO or ENXIO:
// those become ErrDisconnected unless we closed the port ourselves.
func (s *serialPort) ioError(op string, err error) error {
	if s.closed.Load() {
		return s.closedError()
	}
	var pe *serial.PortError
	if errors.As(err, &pe) && pe.Code() == serial.PortClosed ||
		errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV) ||
		errors.Is(err, syscall.EBADF) {
		return fmt.Errorf("serialport: %s %s: %w (unplugged? %v)", op, s.name, ErrDisconnected, err)
	}
	return fmt.Errorf("serialport: %s %s: %w", op, s.name, err)
}

// DeadlineError is a read that reached its deadline. It wraps os.ErrDeadlineExceeded and is a
// net.Error with Timeout() true, like the error of a net.Conn.
type DeadlineError struct{ Device string }

func (e *DeadlineError) Error() string {
	return "serialport: read " + e.Device + ": " + os.ErrDeadlineExceeded.Error()
}
func (e *DeadlineError) Unwrap() error   { return os.ErrDeadlineExceeded }
func (e *DeadlineError) Timeout() bool   { return true }
func (e *DeadlineError) Temporary() bool { return true }

// tcpPort is a Wi-Fi adapter's socket. net.Conn already has the Port semantics; only String
// and the disconnect classification are added.
type tcpPort struct {
	net.Conn
	name   string
	closed atomic.Bool
}

func (t *tcpPort) String() string { return t.name }

func (t *tcpPort) Read(b []byte) (int, error) {
	n, err := t.Conn.Read(b)
	if err != nil && n == 0 {
		return 0, t.ioError("read", err)
	}
	return n, nil
}

func (t *tcpPort) Write(b []byte) (int, error) {
	n, err := t.Conn.Write(b)
	if err != nil {
		return n, t.ioError("write", err)
	}
	return n, nil
}

func (t *tcpPort) Close() error {
	t.closed.Store(true)
	return t.Conn.Close()
}

func (t *tcpPort) ioError(op string, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) || t.closed.Load() {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("serialport: %s %s: %w (adapter closed the connection: %v)", op, t.name, ErrDisconnected, err)
	}
	return fmt.Errorf("serialport: %s %s: %w", op, t.name, err)
}
