package serialport_test

import (
	"strings"
	"testing"

	"github.com/obdgw/obdgw/drivers/serialport"
)

// Addresses that look plausible but cannot mean what was written are refused when parsed, so
// the configuration (which uses ParseAddr) reports them at start-up instead of Open failing
// later with a misleading "not found".
func TestParseAddrRefuses(t *testing.T) {
	for addr, want := range map[string]string{
		"com3":                             `"com3" is not a device address`,
		"ttyUSB0":                          "is not a device address",
		"serial://dev/ttyUSB0":             "three slashes",
		"serial://ttyUSB0":                 "three slashes",
		"serial:///dev/ttyUSB0?buad=9600":  `unknown option "buad"`,
		"usb://0403:6001?serial=A&speed=1": `unknown option "speed"`,
		"tcp://127.0.0.1:35000?baud=38400": `unknown option "baud"`,
		"tcp://192.168.0.10:":              "want tcp://host:port",
		"tcp://192.168.0.10":               "want tcp://host:port",
		"tcp://192.168.0.10:35000/x":       "a path after host:port",
		"serial:///dev/ttyUSB0?baud=0":     "bad baud",
		"serial:///dev/ttyUSB0?baud=fast":  "bad baud",
		"usb://0403:60011":                 "bad USB id",
		"ftp://host/x":                     "unknown scheme",
	} {
		a, err := serialport.ParseAddr(addr)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "serialport: ") {
			t.Errorf("ParseAddr(%q) = %+v, %v; want an error containing %q", addr, a, err, want)
		}
	}
	// What the checks must not refuse: a hex PID url.Parse alone would take for a bad port, a
	// host-less tcp address (this box), a path-only tcp URL with its trailing slash.
	for _, addr := range []string{"usb://0403:ea60", "usb://10C4:EA60?serial=x&baud=9600", "tcp://:35000", "tcp://localhost:35000/", "serial:/dev/ttyS0", "/dev/ttyS0"} {
		if _, err := serialport.ParseAddr(addr); err != nil {
			t.Errorf("ParseAddr(%q): %v", addr, err)
		}
	}
}
