package serialport

import (
	"errors"
	"io"
	"time"
)

// Port is a byte link to a device: the subset of net.Conn a driver needs.
//
// Contract: Read blocks until at least one byte arrives, the read deadline passes (an error
// wrapping os.ErrDeadlineExceeded) or the port is closed (an error wrapping net.ErrClosed). A
// zero deadline means no deadline; a deadline already in the past makes Read fail at once.
// Write writes all of p or returns an error. Close unblocks pending reads and may be called
// from another goroutine than the reader. String names the device for logs
// ("/dev/ttyUSB0@38400").
//
// A Port is meant for one reader and one writer at a time (one driver owns it).
type Port interface {
	io.ReadWriteCloser
	SetReadDeadline(t time.Time) error
	String() string
}

var (
	// ErrNotFound: no such device (unplugged, wrong path, Bluetooth not bound).
	ErrNotFound = errors.New("serialport: device not found")
	// ErrBusy: another program holds the device.
	ErrBusy = errors.New("serialport: device busy")
	// ErrPermission: the user may not open the device (add it to the dialout group).
	ErrPermission = errors.New("serialport: permission denied")
	// ErrDisconnected: the device went away while open (USB unplugged, Bluetooth dropped, the
	// other end of a socket closed). Reopen it.
	ErrDisconnected = errors.New("serialport: device disconnected")
)
