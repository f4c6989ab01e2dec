package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	// The driver packages register their models with drivers/rig.
	_ "github.com/obdgw/obdgw/drivers/fga4100" // fga4100
	_ "github.com/obdgw/obdgw/drivers/mexa"    // mexa584l
	_ "github.com/obdgw/obdgw/drivers/mqw50a"  // mqw50a
	_ "github.com/obdgw/obdgw/drivers/nanhua"  // nha503, nha506, fla502, mqw511
	_ "github.com/obdgw/obdgw/drivers/opacity" // nht6, nht1l, mqy200, fty100
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/frame"
	"github.com/obdgw/obdgw/drivers/serialport"
)

// exitRigSilent: the port opened but the instrument never answered (wrong model, baud, cable).
const exitRigSilent = 6

func init() {
	register(command{
		name:    "rig",
		summary: "talk to an emission rig: rig read (live readings), rig models",
		run:     runRig,
	})
}

func runRig(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usageError("which action? rig read --port ADDR --model MODEL, or rig models")
	}
	switch args[0] {
	case "read":
		return runRigRead(ctx, e, args[1:])
	case "models":
		return runRigModels(e, args[1:])
	}
	return usageError("unknown rig action %q (have read, models)", args[0])
}

func runRigModels(e *env, args []string) error {
	fs := newFlags(e, "rig models", "")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tINSTRUMENT\tKIND\tLINK\tDRIVER")
	for _, m := range rig.Models() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d 8N1\tdrivers/%s\n", m.Name, m.Title, m.Kind, m.Baud, m.Family)
	}
	return tw.Flush()
}

func runRigRead(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "rig read", "--port ADDR --model MODEL [--json] [--count N] [--interval D]")
	port := fs.String("port", "", "device address: /dev/ttyUSB0, serial:///dev/ttyUSB0?baud=9600, usb://VID:PID, tcp://host:port")
	model := fs.String("model", "", "instrument model ("+strings.Join(rig.ModelNames(), ", ")+")")
	firmware := fs.String("firmware", "", "firmware variant of the model's frame spec (e.g. nha503: pre-1.0.4)")
	asJSON := fs.Bool("json", false, "print one JSON object per reading (keys carry the unit: hc_ppm, co_pct, …)")
	count := fs.Int("count", 0, "stop after N readings (0: until interrupted)")
	interval := fs.Duration("interval", time.Second, "time between readings")
	timeout := fs.Duration("timeout", 0, "reply deadline per request (0: the model's own)")
	maxErrors := fs.Int("max-errors", 3, "give up after this many failed readings in a row")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	switch {
	case fs.NArg() > 0:
		return usageError("unexpected argument %q", fs.Arg(0))
	case *port == "":
		return usageError("--port is required (run 'obdgw ports' to list serial ports)")
	case *model == "":
		return usageError("--model is required (one of %s)", strings.Join(rig.ModelNames(), ", "))
	case *count < 0, *interval < 0, *timeout < 0, *maxErrors < 1:
		return usageError("--count, --interval and --timeout must not be negative, --max-errors at least 1")
	}
	m, ok := rig.Lookup(*model)
	if !ok {
		return usageError("unknown --model %q (one of %s)", *model, strings.Join(rig.ModelNames(), ", "))
	}
	p, err := serialport.Open(*port, serialport.WithBaud(m.Baud))
	if err != nil {
		return rigOpenError(*port, err)
	}
	r, err := m.Open(p, rig.Options{Log: e.log, Firmware: *firmware, Timeout: *timeout})
	if err != nil {
		p.Close()
		return usageError("%v", err)
	}
	defer r.Close()
	e.log.Info("reading rig", "rig", r.String())

	enc := json.NewEncoder(e.stdout)
	got, failed := 0, 0
	for *count == 0 || got < *count {
		if got+failed > 0 {
			if err := frame.Sleep(ctx, *interval); err != nil {
				return nil // interrupted: a clean stop
			}
		}
		rd, err := r.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, rig.ErrLinkLost) {
				return &exitError{code: exitNoDevice, err: fmt.Errorf("lost %s: is the cable still plugged in? (%v)", *port, oneLine(err))}
			}
			if got == 0 && errors.Is(err, rig.ErrNoReply) {
				return &exitError{code: exitRigSilent, err: fmt.Errorf("the %s at %s does not answer: check --model (%s), the link speed (%d 8N1, or ?baud= in the address) and the cable (null-modem or straight, per the instrument's manual): %v", m.Title, *port, m.Name, m.Baud, oneLine(err))}
			}
			failed++
			fmt.Fprintf(e.stderr, "reading failed (%d in a row): %v\n", failed, oneLine(err))
			if failed >= *maxErrors {
				hint := ""
				if got == 0 {
					// Never one good reading: most likely the wrong model or link speed.
					hint = fmt.Sprintf(" (no reading succeeded: check --model %s, the link speed %d 8N1 and the cable)", m.Name, m.Baud)
				}
				return &exitError{code: exitFailure, err: fmt.Errorf("%d readings in a row failed%s, last: %v", failed, hint, oneLine(err))}
			}
			continue
		}
		failed = 0
		got++
		if *asJSON {
			if err := enc.Encode(rd); err != nil {
				return err
			}
			continue
		}
		if err := writeReading(e.stdout, rd); err != nil {
			return err
		}
	}
	return nil
}

// writeReading prints one human-readable line: the channels the instrument has, with units.
func writeReading(w io.Writer, r rig.Reading) error {
	var b strings.Builder
	b.WriteString(r.Time.Format("15:04:05.0"))
	ch := func(label string, v *float64, format string) {
		if v != nil {
			fmt.Fprintf(&b, "  "+label+" "+format, *v)
		}
	}
	ch("HC", r.HCppm, "%.0f ppm")
	ch("CO", r.COPct, "%.3g %%")
	ch("CO2", r.CO2Pct, "%.2f %%")
	ch("O2", r.O2Pct, "%.2f %%")
	ch("NO", r.NOppm, "%.0f ppm")
	ch("λ", r.Lambda, "%.3f")
	ch("N", r.OpacityPct, "%.1f %%")
	ch("k", r.KM1, "%.2f m⁻¹")
	ch("", r.RPM, "%.0f r/min")
	ch("oil", r.OilC, "%.1f °C")
	if r.WarmingUp {
		b.WriteString("  [warming up]")
	}
	if len(r.Flags) > 0 {
		fmt.Fprintf(&b, "  [%s]", strings.Join(r.Flags, ", "))
	}
	_, err := fmt.Fprintln(w, strings.ReplaceAll(b.String(), "   ", "  "))
	return err
}

// rigOpenError maps an open failure to an exit code; serialport's message already says what
// to check (plugged in, path, dialout group, another program holding the port).
func rigOpenError(addr string, err error) error {
	if errors.Is(err, serialport.ErrNotFound) || errors.Is(err, serialport.ErrBusy) || errors.Is(err, serialport.ErrPermission) {
		return &exitError{code: exitNoDevice, err: fmt.Errorf("cannot open the rig's port: %w", err)}
	}
	return &exitError{code: exitFailure, err: fmt.Errorf("cannot open the rig's port %s: %w", addr, err)}
}

// flagError keeps -h a clean exit (main maps flag.ErrHelp to 0) and makes the rest usage errors.
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError("%v", err)
}
