package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/drivers/serialport"
)

func fakePorts(t *testing.T, ports []serialport.PortInfo, err error) {
	old := listPorts
	listPorts = func() ([]serialport.PortInfo, error) { return ports, err }
	t.Cleanup(func() { listPorts = old })
}

var twoPorts = []serialport.PortInfo{
	{Path: "/dev/ttyUSB0", USB: true, VID: "0403", PID: "6001", Serial: "A5XK3RJT", Manufacturer: "FTDI", Product: "FT232R USB UART"},
	{Path: "/dev/rfcomm0"},
}

func TestPortsTable(t *testing.T) {
	fakePorts(t, twoPorts, nil)
	var out, errb bytes.Buffer
	if code := runMain([]string{"ports"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want header and two rows, got:\n%s", out.String())
	}
	for _, want := range []string{"/dev/ttyUSB0", "0403:6001", "A5XK3RJT", "FTDI FT232R USB UART", "usb://0403:6001?serial=A5XK3RJT"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
	if !strings.Contains(lines[2], "serial:///dev/rfcomm0") {
		t.Errorf("row %q lacks the serial address", lines[2])
	}
}

func TestPortsJSON(t *testing.T) {
	fakePorts(t, twoPorts, nil)
	var out, errb bytes.Buffer
	if code := runMain([]string{"ports", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got []map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if len(got) != 2 || got[0]["vid"] != "0403" || got[0]["serial"] != "A5XK3RJT" || got[0]["addr"] != "usb://0403:6001?serial=A5XK3RJT" || got[1]["path"] != "/dev/rfcomm0" {
		t.Errorf("json = %v", got)
	}
}

func TestPortsEmptyAndFailure(t *testing.T) {
	fakePorts(t, nil, nil)
	var out, errb bytes.Buffer
	if code := runMain([]string{"ports"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "plugged in") {
		t.Errorf("empty: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	runMain([]string{"ports", "--json"}, &out, &errb)
	if strings.TrimSpace(out.String()) != "[]" {
		t.Errorf("empty json = %q, want []", out.String())
	}
	fakePorts(t, nil, errors.New("serialport: list ports: boom"))
	errb.Reset()
	if code := runMain([]string{"ports"}, &out, &errb); code != exitFailure || !strings.Contains(errb.String(), "boom") {
		t.Errorf("failure: exit %d, stderr %q", code, errb.String())
	}
	if code := runMain([]string{"ports", "extra"}, &out, &errb); code != exitUsage {
		t.Errorf("extra argument: exit %d, want usage", code)
	}
}

// TestPortsRealMachine runs the real enumerator: it must not fail on a machine with no
// serial hardware (a CI container).
func TestPortsRealMachine(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runMain([]string{"ports", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got []serialport.PortInfo
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
}
