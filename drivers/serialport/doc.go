// Package serialport opens the byte links an OBD adapter or an emission rig sits behind and
// gives them one shape, Port: a serial device (USB-serial chip, Bluetooth rfcomm), a USB device
// found by its VID:PID and serial number, or a TCP socket (Wi-Fi dongles).
//
// Addresses are URLs:
//
//	serial:///dev/ttyUSB0?baud=38400
//	usb://0403:6001?serial=A5XK3RJT&baud=38400
//	tcp://192.168.0.10:35000
//	/dev/rfcomm0                      (a bare path is a serial device)
//
// Reads honour deadlines: a read past its deadline returns an error wrapping
// os.ErrDeadlineExceeded, never (0, nil) as go.bug.st/serial does on its own read timeout.
// Open failures wrap ErrNotFound, ErrBusy or ErrPermission (go-serial's PortError has no Unwrap
// and a missing device is a bare ENOENT, so they are translated here) so callers can tell the
// user what to check. A device that disappears while open surfaces as ErrDisconnected.
//
// List enumerates the serial ports of the machine with their USB identity, which is what
// `obdgw ports` prints.
package serialport
