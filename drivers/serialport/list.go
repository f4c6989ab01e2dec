package serialport

import (
	"fmt"
	"net/url"
	"strings"

	"go.bug.st/serial/enumerator"
)

// PortInfo describes one serial port of the machine.
type PortInfo struct {
	Path         string `json:"path"`
	USB          bool   `json:"usb"`
	VID          string `json:"vid,omitempty"` // upper-case hex, "0403"
	PID          string `json:"pid,omitempty"`
	Serial       string `json:"serial,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Product      string `json:"product,omitempty"`
}

// Addr returns the most stable address for the port: usb://VID:PID?serial=… when the device
// has a serial number (it survives replugging into another socket), else serial://path.
func (p PortInfo) Addr() string {
	if p.USB && p.VID != "" && p.PID != "" {
		a := "usb://" + p.VID + ":" + p.PID
		if p.Serial != "" {
			a += "?serial=" + url.QueryEscape(p.Serial)
		}
		return a
	}
	return "serial://" + p.Path
}

// listDetailed is the enumerator; a variable so tests can present USB devices a CI machine
// does not have.
var listDetailed = enumerator.GetDetailedPortsList

// List returns the serial ports of the machine with their USB identity where known.
func List() ([]PortInfo, error) {
	ds, err := listDetailed()
	if err != nil {
		return nil, fmt.Errorf("serialport: list ports: %w", err)
	}
	out := make([]PortInfo, 0, len(ds))
	for _, d := range ds {
		if d == nil || d.Name == "" {
			continue
		}
		out = append(out, PortInfo{
			Path: d.Name, USB: d.IsUSB,
			VID: strings.ToUpper(d.VID), PID: strings.ToUpper(d.PID),
			Serial: d.SerialNumber, Manufacturer: d.Manufacturer, Product: d.Product,
		})
	}
	return out, nil
}

// resolveUSB finds the device path of a usb:// address. No match or several matches are
// errors that list what is attached, so the user can fix the address.
func resolveUSB(a Addr) (string, error) {
	addr := "usb://" + a.VID + ":" + a.PID
	if a.Serial != "" {
		addr += "?serial=" + a.Serial
	}
	ports, err := List()
	if err != nil {
		return "", newOpenError(addr, nil, err)
	}
	var match []PortInfo
	var seen []string
	for _, p := range ports {
		if !p.USB {
			continue
		}
		seen = append(seen, p.Addr()+" ("+p.Path+")")
		if p.VID == a.VID && p.PID == a.PID && (a.Serial == "" || p.Serial == a.Serial) {
			match = append(match, p)
		}
	}
	switch len(match) {
	case 0:
		e := newOpenError(addr, ErrNotFound, nil)
		if len(seen) == 0 {
			e.Hint = "no USB serial device is attached; is the adapter plugged in?"
		} else {
			e.Hint = "attached: " + strings.Join(seen, ", ")
		}
		return "", e
	case 1:
		return match[0].Path, nil
	default:
		paths := make([]string, len(match))
		for i, m := range match {
			paths[i] = m.Addr() + " (" + m.Path + ")"
		}
		e := newOpenError(addr, nil, fmt.Errorf("%d devices match", len(match)))
		e.Hint = "add ?serial= to pick one: " + strings.Join(paths, ", ")
		return "", e
	}
}
