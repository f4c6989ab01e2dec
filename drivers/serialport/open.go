package serialport

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.bug.st/serial"
)

// DefaultBaud is the rate an ELM327 boots at (pin 6 high); clones over USB use it too.
const DefaultBaud = 38400

// Option tunes Open.
type Option func(*options)

type options struct {
	baud        int
	dialTimeout time.Duration
}

// WithBaud sets the serial rate when the address does not carry ?baud=. An address's own
// baud wins, so a configured URL is never silently overridden.
func WithBaud(baud int) Option { return func(o *options) { o.baud = baud } }

// WithDialTimeout bounds the TCP connect of tcp:// addresses (default 5 s).
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

// Addr is a parsed device address.
type Addr struct {
	Kind   string // "serial", "usb" or "tcp"
	Path   string // serial: device path
	VID    string // usb: vendor ID, 4 upper-case hex digits
	PID    string // usb: product ID
	Serial string // usb: serial number, empty = any
	Host   string // tcp: host:port
	Baud   int    // serial and usb: 0 = not given
}

// ParseAddr parses a device address (see the package comment for the forms).
func ParseAddr(addr string) (Addr, error) {
	if addr == "" {
		return Addr{}, errors.New("serialport: empty device address (want e.g. serial:///dev/ttyUSB0, usb://0403:6001 or tcp://127.0.0.1:35000)")
	}
	if strings.HasPrefix(addr, "/") {
		return Addr{Kind: "serial", Path: addr}, nil
	}
	toParse := addr
	if rest, ok := strings.CutPrefix(addr, "usb://"); ok {
		// url.Parse rejects "0403:ea60" as a host with a non-numeric port, so the colon of
		// VID:PID is swapped for a dash before parsing.
		host, query, _ := strings.Cut(rest, "?")
		toParse = "usb://" + strings.ReplaceAll(host, ":", "-") + "?" + query
	}
	u, err := url.Parse(toParse)
	if err != nil {
		return Addr{}, fmt.Errorf("serialport: bad device address %q: %w", addr, err)
	}
	if u.Scheme == "" {
		return Addr{}, fmt.Errorf("serialport: %q is not a device address (want serial:///dev/ttyUSB0, usb://0403:6001, tcp://127.0.0.1:35000 or a /dev path)", addr)
	}
	a := Addr{Kind: u.Scheme}
	q := u.Query()
	if b := q.Get("baud"); b != "" {
		n, err := strconv.Atoi(b)
		if err != nil || n <= 0 {
			return Addr{}, fmt.Errorf("serialport: bad baud %q in %q (want a positive number such as 38400)", b, addr)
		}
		a.Baud = n
	}
	switch u.Scheme {
	case "serial":
		if u.Host != "" {
			// serial://dev/ttyUSB0 would open /ttyUSB0 on host "dev".
			return Addr{}, fmt.Errorf("serialport: %q names a host: want serial:///dev/ttyUSB0 (three slashes)", addr)
		}
		a.Path = u.Path
		if a.Path == "" {
			a.Path = u.Opaque
		}
		if a.Path == "" {
			return Addr{}, fmt.Errorf("serialport: no device path in %q (want serial:///dev/ttyUSB0)", addr)
		}
	case "usb":
		vid, pid, ok := strings.Cut(u.Host, "-")
		if !ok || !isHex4(vid) || !isHex4(pid) {
			return Addr{}, fmt.Errorf("serialport: bad USB id in %q (want usb://VID:PID such as usb://0403:6001)", addr)
		}
		a.VID, a.PID = strings.ToUpper(vid), strings.ToUpper(pid)
		a.Serial = q.Get("serial")
	case "tcp":
		if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
			if err == nil {
				err = errors.New("no port")
			}
			return Addr{}, fmt.Errorf("serialport: bad TCP address %q in %q (want tcp://host:port): %w", u.Host, addr, err)
		}
		if u.Path != "" && u.Path != "/" {
			return Addr{}, fmt.Errorf("serialport: %q has a path after host:port (want tcp://host:port)", addr)
		}
		a.Host = u.Host
	default:
		return Addr{}, fmt.Errorf("serialport: unknown scheme %q in %q (want serial://, usb:// or tcp://, or a /dev path)", u.Scheme, addr)
	}
	// A misspelt option (?buad=9600) must not be ignored silently.
	for _, key := range slices.Sorted(maps.Keys(q)) {
		if known := key == "baud" && a.Kind != "tcp" || key == "serial" && a.Kind == "usb"; !known {
			return Addr{}, fmt.Errorf("serialport: unknown option %q in %q (serial:// and usb:// take ?baud=, usb:// also ?serial=; tcp:// takes none)", key, addr)
		}
	}
	return a, nil
}

func isHex4(s string) bool {
	if len(s) != 4 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// Open opens the device at addr. Errors wrap ErrNotFound, ErrBusy or ErrPermission when the
// device is missing, held by another program or not accessible.
func Open(addr string, opts ...Option) (Port, error) {
	o := options{baud: DefaultBaud, dialTimeout: 5 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	a, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	baud := a.Baud
	if baud == 0 {
		baud = o.baud
	}
	switch a.Kind {
	case "tcp":
		c, err := net.DialTimeout("tcp", a.Host, o.dialTimeout)
		if err != nil {
			return nil, mapDialError(addr, err)
		}
		return &tcpPort{Conn: c, name: "tcp://" + a.Host}, nil
	case "usb":
		path, err := resolveUSB(a)
		if err != nil {
			return nil, err
		}
		return openSerial(path, addr, baud)
	default:
		return openSerial(a.Path, addr, baud)
	}
}

func openSerial(path, addr string, baud int) (Port, error) {
	mode := &serial.Mode{BaudRate: baud}
	if !isPTY(path) {
		// A real UART: raise DTR and RTS as terminal programs do. A pty has no modem lines and
		// the ioctls fail on it, so there InitialStatusBits stays nil.
		mode.InitialStatusBits = &serial.ModemOutputBits{DTR: true, RTS: true}
	}
	p, err := serial.Open(path, mode)
	if err != nil {
		return nil, mapOpenError(addr, err)
	}
	return &serialPort{p: p, name: fmt.Sprintf("%s@%d", path, baud)}, nil
}

// OpenError is an Open failure: the address, the class (ErrNotFound, ErrBusy, ErrPermission or
// nil) and the underlying error, with a hint of what to check.
type OpenError struct {
	Addr  string
	Kind  error // ErrNotFound, ErrBusy, ErrPermission, or nil for anything else
	Err   error // what the OS or go-serial said
	Hint  string
	label string
}

func (e *OpenError) Error() string {
	s := "serialport: open " + e.Addr + ": "
	if e.label != "" {
		s += e.label
		if e.Err != nil {
			s += ": " + e.Err.Error()
		}
	} else if e.Err != nil {
		s += e.Err.Error()
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Unwrap exposes both the class sentinel and the cause to errors.Is / errors.As.
func (e *OpenError) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

func newOpenError(addr string, kind, cause error) *OpenError {
	e := &OpenError{Addr: addr, Kind: kind, Err: cause}
	switch kind {
	case ErrNotFound:
		e.label = "device not found"
		e.Hint = "is the adapter plugged in and the path right? 'obdgw ports' lists what is attached; for Bluetooth, is rfcomm bound?"
	case ErrBusy:
		e.label = "device busy"
		e.Hint = "another program holds it: stop ModemManager, a terminal program or a second obdgw"
	case ErrPermission:
		e.label = "permission denied"
		e.Hint = "add the service user to the dialout group or fix the udev rule"
	}
	return e
}

// mapOpenError translates what go-serial or the OS returned from an open into an OpenError
// of the right class. go-serial returns *PortError without Unwrap, and bare errnos for
// anything it does not classify itself (ENOENT for a missing device).
func mapOpenError(addr string, err error) error {
	var pe *serial.PortError
	if errors.As(err, &pe) {
		switch pe.Code() {
		case serial.PortBusy:
			return newOpenError(addr, ErrBusy, err)
		case serial.PermissionDenied:
			return newOpenError(addr, ErrPermission, err)
		case serial.PortNotFound:
			return newOpenError(addr, ErrNotFound, err)
		case serial.InvalidSerialPort:
			e := newOpenError(addr, nil, err)
			e.Hint = "the path is not a serial device"
			return e
		case serial.InvalidSpeed:
			e := newOpenError(addr, nil, err)
			e.Hint = "check ?baud= (38400 for most ELM327 adapters)"
			return e
		}
		return newOpenError(addr, nil, err)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ENOENT, syscall.ENODEV, syscall.ENXIO:
			return newOpenError(addr, ErrNotFound, err)
		case syscall.EBUSY:
			return newOpenError(addr, ErrBusy, err)
		case syscall.EACCES, syscall.EPERM:
			return newOpenError(addr, ErrPermission, err)
		}
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		return newOpenError(addr, ErrNotFound, err)
	case errors.Is(err, os.ErrPermission):
		return newOpenError(addr, ErrPermission, err)
	}
	return newOpenError(addr, nil, err)
}

// mapDialError classifies a failed TCP connect: nobody listening is "not found" (the Wi-Fi
// dongle is off or the box is on the wrong network).
func mapDialError(addr string, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) && (errno == syscall.ECONNREFUSED || errno == syscall.EHOSTUNREACH || errno == syscall.ENETUNREACH) {
		e := newOpenError(addr, ErrNotFound, err)
		e.Hint = "is the Wi-Fi adapter powered and this box on its network?"
		return e
	}
	e := newOpenError(addr, nil, err)
	e.Hint = "is the Wi-Fi adapter powered and this box on its network?"
	return e
}
