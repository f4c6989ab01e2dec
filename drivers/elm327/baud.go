package elm327

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/obdgw/obdgw/drivers/serialport"
)

// probeBauds are the rates tried, in order, for an adapter whose address names none: an
// ELM327 boots at 38400 or 9600 (pin 6), clones use 115200 and others (elm327-obd.md §2,
// python-OBD's order).
var probeBauds = []int{38400, 9600, 230400, 115200, 57600, 19200}

// probeWait is how long each rate after the first has to answer the resync probe; the first
// gets the full AT timeout, as an adapter opened at a given rate does.
const probeWait = 300 * time.Millisecond

// openPort opens addr for OpenContext and returns the options that reopen it the same way and
// the rate found (0 when the rate was not searched or none answered). A serial or USB address
// without ?baud= (and no PortOptions) is probed: at each rate of probeBauds, Options.Baud
// first when set, the resync command "7F7F" must draw a clean prompt. An address that names
// its rate is opened at that rate, never overridden; TCP and Bluetooth (rfcomm) links have no
// rate to find. When no rate answers, the port is opened at 38400 and the initialisation
// reports what is wrong, as without the probe.
func openPort(ctx context.Context, addr string, opts Options) (serialport.Port, []serialport.Option, int, error) {
	if !probesBaud(addr, opts) {
		p, err := serialport.Open(addr, opts.PortOptions...)
		return p, opts.PortOptions, 0, err
	}
	order := probeBauds
	if opts.Baud > 0 {
		order = []int{opts.Baud}
		for _, b := range probeBauds {
			if b != opts.Baud {
				order = append(order, b)
			}
		}
	}
	for i, baud := range order {
		popts := []serialport.Option{serialport.WithBaud(baud)}
		p, err := serialport.Open(addr, popts...)
		if err != nil {
			return nil, nil, 0, err // missing, busy or forbidden at any rate
		}
		wait := probeWait
		if i == 0 || baud == probeBauds[0] {
			wait = opts.ATTimeout
		}
		ok, err := answersPrompt(ctx, p, wait)
		if ok {
			if baud != probeBauds[0] {
				sep := "?"
				if strings.Contains(addr, "?") {
					sep = "&"
				}
				opts.Logger.Info("elm327: adapter found by trying baud rates; name the rate in its address to skip the search", "device", p.String(), "address", fmt.Sprintf("%s%sbaud=%d", addr, sep, baud))
				if opts.BaudProgress != nil {
					opts.BaudProgress(fmt.Sprintf("the adapter answers at %d baud (add ?baud=%d to its address to skip this search)", baud, baud))
				}
			}
			return p, popts, baud, nil
		}
		p.Close()
		if err != nil {
			return nil, nil, 0, err
		}
		if ctx.Err() != nil {
			return nil, nil, 0, ctx.Err()
		}
		if i+1 < len(order) && opts.BaudProgress != nil {
			opts.BaudProgress(fmt.Sprintf("no answer at %d baud; trying %d …", baud, order[i+1]))
		}
	}
	opts.Logger.Info("elm327: no baud rate drew a prompt; initialising at the boot rate", "address", addr, "tried", order)
	popts := []serialport.Option{serialport.WithBaud(probeBauds[0])}
	p, err := serialport.Open(addr, popts...)
	return p, popts, 0, err
}

// probesBaud reports whether addr leaves the rate to be found.
func probesBaud(addr string, opts Options) bool {
	if len(opts.PortOptions) > 0 {
		return false
	}
	a, err := serialport.ParseAddr(addr)
	if err != nil || a.Baud != 0 {
		return false
	}
	switch a.Kind {
	case "usb":
		return true
	case "serial":
		// An rfcomm device is a Bluetooth link: the rate inside the dongle is fixed and the
		// host's setting does not reach it (§2).
		return !strings.HasPrefix(path.Base(a.Path), "rfcomm")
	}
	return false
}

// answersPrompt sends the resync probe and reports whether a prompt came back within wait
// after nothing but text: an adapter at another rate sends noise, which might hold a '>' by
// chance but not a clean line before it. An error is returned only for a broken link.
func answersPrompt(ctx context.Context, p serialport.Port, wait time.Duration) (bool, error) {
	if _, err := p.Write([]byte("7F7F\r")); err != nil {
		return false, fmt.Errorf("elm327: baud probe on %s: %w", p, err)
	}
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	p.SetReadDeadline(deadline)
	defer p.SetReadDeadline(time.Time{})
	var got []byte
	buf := make([]byte, 128)
	for len(got) < 512 {
		n, err := p.Read(buf)
		got = append(got, buf[:n]...)
		if i := bytes.IndexByte(got, '>'); i >= 0 {
			return cleanText(got[:i]), nil
		}
		if err != nil {
			return false, nil // the deadline: nothing sensible at this rate
		}
	}
	return false, nil
}

// cleanText reports whether b is what an adapter prints before a prompt: printable ASCII,
// line ends and the NULs some clones send, with at least one printable character.
func cleanText(b []byte) bool {
	seen := false
	for _, c := range b {
		switch {
		case c == '\r' || c == '\n' || c == 0:
		case c >= ' ' && c < 0x7F:
			seen = true
		default:
			return false
		}
	}
	return seen
}
