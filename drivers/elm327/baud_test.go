package elm327

import (
	"testing"

	"github.com/obdgw/obdgw/drivers/serialport"
)

// TestProbesBaud: only a serial or USB address that names no rate is searched; a configured
// rate is never overridden, and TCP and Bluetooth links have no rate to find.
func TestProbesBaud(t *testing.T) {
	for _, tc := range []struct {
		addr string
		opts Options
		want bool
	}{
		{"serial:///dev/ttyUSB0", Options{}, true},
		{"/dev/ttyUSB0", Options{}, true},
		{"usb://0403:6001?serial=A5XK3RJT", Options{}, true},
		{"serial:///dev/ttyUSB0?baud=9600", Options{}, false},
		{"usb://0403:6001?baud=115200", Options{}, false},
		{"serial:///dev/ttyUSB0", Options{PortOptions: []serialport.Option{serialport.WithBaud(9600)}}, false},
		{"serial:///dev/rfcomm0", Options{}, false},
		{"/dev/rfcomm1", Options{}, false},
		{"tcp://127.0.0.1:35000", Options{}, false},
		{"bogus://x", Options{}, false},
	} {
		if got := probesBaud(tc.addr, tc.opts); got != tc.want {
			t.Errorf("%s: probe %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// TestCleanText: a prompt counts only after text an adapter could have printed; noise from a
// wrong rate does not, even when it holds a '>'.
func TestCleanText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"?\r\r", true},
		{"7F7F\r?\r\r", true},
		{"\x00?\r\r", true},
		{"", false},
		{"\r\r", false},
		{"\xf8\x80\x00", false},
		{"?\r\xe0", false},
	} {
		if got := cleanText([]byte(tc.in)); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
}
