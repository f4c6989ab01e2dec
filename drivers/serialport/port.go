package serialport

import (
	"errors"
	"io"
	"time"
)

// Port is a byte link to a device: the subset of net.Conn a driver needs.
//
// Contract: Read blocks until at least one byte arrives, the read deadline passes (an error
// wrapping os.ErrDeadlineExceeded) or the port is closed. A zero deadline means no deadline.
// Write writes all of p or returns an error. Close unblocks pending reads. String names the
// device for logs ("/dev/ttyUSB0@38400").
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
)
