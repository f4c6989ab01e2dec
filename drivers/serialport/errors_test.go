package serialport

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"
)

func TestMapOpenError(t *testing.T) {
	tests := []struct {
		name string
		in   error
		want error // nil: none of the sentinels
		hint string
	}{
		{"enoent", syscall.ENOENT, ErrNotFound, "plugged in"},
		{"enodev", syscall.ENODEV, ErrNotFound, "plugged in"},
		{"enxio", syscall.ENXIO, ErrNotFound, "plugged in"},
		{"path error", &fs.PathError{Op: "open", Path: "/dev/x", Err: syscall.ENOENT}, ErrNotFound, "plugged in"},
		{"ebusy", syscall.EBUSY, ErrBusy, "another program"},
		{"go-serial busy", &serial.PortError{}, ErrBusy, "another program"}, // the zero code is PortBusy
		{"eacces", syscall.EACCES, ErrPermission, "dialout"},
		{"eperm", syscall.EPERM, ErrPermission, "dialout"},
		{"wrapped eacces", fmt.Errorf("x: %w", syscall.EACCES), ErrPermission, "dialout"},
		{"other", syscall.EIO, nil, ""},
	}
	for _, tc := range tests {
		err := mapOpenError("serial:///dev/ttyUSB0", tc.in)
		for _, s := range []error{ErrNotFound, ErrBusy, ErrPermission} {
			if errors.Is(err, s) != (s == tc.want) {
				t.Errorf("%s: errors.Is(%v, %v) = %v", tc.name, err, s, !(s == tc.want))
			}
		}
		if !errors.Is(err, tc.in) && !errors.As(err, new(*serial.PortError)) {
			t.Errorf("%s: cause %v not kept in %v", tc.name, tc.in, err)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "serialport: open serial:///dev/ttyUSB0: ") || !strings.Contains(msg, tc.hint) {
			t.Errorf("%s: message %q lacks the address or the hint %q", tc.name, msg, tc.hint)
		}
	}
}

func fakeList(t *testing.T, ds []*enumerator.PortDetails) {
	t.Helper()
	old := listDetailed
	listDetailed = func(...func(vid, pid string) bool) ([]*enumerator.PortDetails, error) { return ds, nil }
	t.Cleanup(func() { listDetailed = old })
}

func TestResolveUSB(t *testing.T) {
	fakeList(t, []*enumerator.PortDetails{
		{Name: "/dev/ttyS0"},
		{Name: "/dev/ttyUSB0", IsUSB: true, VID: "0403", PID: "6001", SerialNumber: "A5XK3RJT", Product: "FT232R USB UART"},
		{Name: "/dev/ttyUSB1", IsUSB: true, VID: "0403", PID: "6001", SerialNumber: "B7QQ1"},
		{Name: "/dev/ttyUSB2", IsUSB: true, VID: "1a86", PID: "7523"},
	})
	tests := []struct {
		addr    string
		path    string
		wantErr error
		msg     string
	}{
		{"usb://0403:6001?serial=A5XK3RJT", "/dev/ttyUSB0", nil, ""},
		{"usb://0403:6001?serial=B7QQ1", "/dev/ttyUSB1", nil, ""},
		{"usb://1A86:7523", "/dev/ttyUSB2", nil, ""},
		{"usb://0403:6001", "", nil, "add ?serial="},
		{"usb://0403:6001?serial=NOPE", "", ErrNotFound, "attached: usb://0403:6001?serial=A5XK3RJT"},
		{"usb://10c4:ea60", "", ErrNotFound, "attached:"},
	}
	for _, tc := range tests {
		a, err := ParseAddr(tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		path, err := resolveUSB(a)
		if tc.path != "" {
			if err != nil || path != tc.path {
				t.Errorf("%s → %q, %v; want %s", tc.addr, path, err, tc.path)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s resolved to %s, want an error", tc.addr, path)
			continue
		}
		if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: %v, want %v", tc.addr, err, tc.wantErr)
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %q lacks %q", tc.addr, err, tc.msg)
		}
	}

	fakeList(t, nil)
	_, err := resolveUSB(Addr{Kind: "usb", VID: "0403", PID: "6001"})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no USB serial device") {
		t.Errorf("empty machine: %v", err)
	}
}

func TestPortInfoAddr(t *testing.T) {
	for _, tc := range []struct {
		p    PortInfo
		want string
	}{
		{PortInfo{Path: "/dev/ttyUSB0", USB: true, VID: "0403", PID: "6001", Serial: "A5XK3RJT"}, "usb://0403:6001?serial=A5XK3RJT"},
		{PortInfo{Path: "/dev/ttyUSB0", USB: true, VID: "1A86", PID: "7523"}, "usb://1A86:7523"},
		{PortInfo{Path: "/dev/rfcomm0"}, "serial:///dev/rfcomm0"},
	} {
		if got := tc.p.Addr(); got != tc.want {
			t.Errorf("%+v.Addr() = %q, want %q", tc.p, got, tc.want)
		}
	}
}

func TestIsPTY(t *testing.T) {
	if isPTY("/dev/null") {
		t.Error("/dev/null taken for a pty")
	}
	if isPTY(os.DevNull + "-missing") {
		t.Error("missing path taken for a pty")
	}
}
