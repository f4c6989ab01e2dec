package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/obdgw/obdgw/drivers/elm327"
	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/obd"
)

// Exit codes of `obdgw scan` beyond 0/1/2, so a script can tell what to fix.
const (
	exitNoDevice   = 3 // the port does not exist, is busy, or may not be opened
	exitNotAdapter = 4 // something answers, but not like an ELM327 (or nothing answers)
	exitNoVehicle  = 5 // the adapter works, no ECU answers (ignition off, not seated)
)

func init() {
	register(command{
		name:    "scan",
		summary: "full OBD scan through an ELM327 adapter: VIN, fault codes, readiness (scan --port ADDR)",
		run:     runScan,
	})
}

func runScan(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "scan", "--port ADDR [--json] [--lang zh|en] [--timeout D] [--protocol N] [--state FILE]\n\n"+
		"ADDR is serial:///dev/ttyUSB0, usb://VID:PID, tcp://HOST:PORT or a device path ('obdgw ports' lists them).\n"+
		"Exit codes: 0 scanned, 1 failed (also: MIL, readiness or fault codes could not be read), 2 usage, 3 no such/busy device, 4 not an ELM327, 5 no vehicle (ignition off?).")
	port := fs.String("port", "", "adapter address (required)")
	asJSON := fs.Bool("json", false, "print the report as JSON instead of text")
	lang := fs.String("lang", "zh", "language of the text report and fault descriptions: zh or en")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long (connect, protocol search and scan)")
	protocol := fs.String("protocol", "", "ELM protocol number to try first (e.g. 6); default: the one this adapter's last car talked, then CAN 11/500 and 29/500, then the automatic search")
	statePath := fs.String("state", "", "file keeping the protocol each adapter's last car talked (default $"+scanStateEnv+", else $XDG_STATE_HOME/obdgw/scan.json or ~/.local/state/obdgw/scan.json)")
	if err := fs.Parse(args); err != nil {
		return usageError("%v", err)
	}
	switch {
	case fs.NArg() > 0:
		return usageError("unexpected argument %q", fs.Arg(0))
	case *port == "":
		return usageError("--port is required (e.g. --port serial:///dev/ttyUSB0; 'obdgw ports' lists the serial ports)")
	case *lang != "zh" && *lang != "en":
		return usageError("--lang %q: want zh or en", *lang)
	case *timeout <= 0:
		return usageError("--timeout %v: must be positive", *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	progress := func(format string, a ...any) { fmt.Fprintf(e.stderr, format+"\n", a...) }
	// The protocol remembered for this adapter: a state file that cannot be read costs only
	// the search it would have saved.
	path, err := scanStatePath(*statePath)
	var state scanState
	if err == nil {
		state, err = loadScanState(path)
	}
	if err != nil {
		e.log.Warn("scan state ignored: the protocol search may take longer", "err", err)
	}
	if p := state.protocol(*port); *protocol == "" && p != "" {
		*protocol = p
		progress("trying protocol %s first: this adapter's last car talked it (%s)", p, path)
	}
	progress("connecting to %s …", *port)
	t0 := time.Now()
	ad, err := elm327.OpenContext(ctx, *port, elm327.Options{
		Logger: e.log, Protocol: *protocol,
		Progress: func(msg string) {
			progress("adapter says %q: searching for the car's protocol (up to 30 s) …", strings.TrimSpace(msg))
		},
		BaudProgress: func(msg string) { progress("%s", msg) },
	})
	if err != nil {
		return scanOpenError(*port, err, ctx)
	}
	defer ad.Close()
	p := ad.Profile()
	if path != "" && state.remember(*port, p.ProtocolNum) {
		if err := state.save(path); err != nil {
			e.log.Warn("scan state not saved: the next scan may search for the protocol again", "err", err)
		}
	}
	progress("connected in %.1f s: %s, protocol %s (%s), %.1f V, count hint %v, multi-PID %v, timing %s",
		time.Since(t0).Seconds(), p.Version, p.ProtocolNum, p.Protocol, p.VoltageV, yesNo(p.CountHint), yesNo(p.MultiPID),
		timingName(p.AdaptiveTiming))
	progress("scanning …")
	rep, err := obd.Scan(ctx, ad, obd.ScanOptions{Lang: *lang, Logger: slog.New(&stepHandler{w: e.stderr})})
	if err != nil {
		if rep == nil {
			if errors.Is(err, obd.ErrNoVehicle) {
				return &exitError{code: exitNoVehicle, err: fmt.Errorf("no ECU answered: is the ignition on and the adapter seated in the OBD socket? (%v)", err)}
			}
			return &exitError{code: exitFailure, err: fmt.Errorf("scan failed: %w", err)}
		}
		// A partial report is still worth printing; the error follows it.
		progress("scan incomplete: %v", err)
	}
	if werr := writeReport(e.stdout, rep, *asJSON, *lang); werr != nil {
		return werr
	}
	if err != nil {
		if errors.Is(err, obd.ErrNoVehicle) {
			return &exitError{code: exitNoVehicle, err: fmt.Errorf("the car stopped answering during the scan (ignition switched off? adapter pulled?): %v", err)}
		}
		if errors.Is(err, obd.ErrAdapterLost) {
			return &exitError{code: exitFailure, err: fmt.Errorf("the link to the adapter broke during the scan and did not come back (unplugged? Bluetooth out of range?); the report above is partial: reseat the adapter and scan again: %v", err)}
		}
		return &exitError{code: exitFailure, err: fmt.Errorf("scan incomplete (the report above is partial): %w", err)}
	}
	if len(rep.Unread) > 0 {
		// A scan that could not read the MIL, readiness or fault codes has not shown a clean
		// car: say so in the exit code, as any failed read.
		return &exitError{code: exitFailure, err: fmt.Errorf("the car's %s could not be read (%s); the report above shows them as unknown: reseat the adapter and scan again", unreadItems(rep.Unread), unreadSteps(rep.Unread))}
	}
	return nil
}

// unreadItems lists the unread items, "mil, readiness, dtcs_stored".
func unreadItems(us []obd.Unread) string {
	var out []string
	for _, u := range us {
		out = append(out, u.Item)
	}
	return strings.Join(out, ", ")
}

// unreadSteps names the steps that did not read them, each once, with the first one's reason
// (the adapter's error; the report above has every one).
func unreadSteps(us []obd.Unread) string {
	var steps []string
	for _, u := range us {
		if !slices.Contains(steps, u.Step+" "+u.Status) {
			steps = append(steps, u.Step+" "+u.Status)
		}
	}
	return "step " + strings.Join(steps, ", ") + ": " + oneLine(errors.New(us[0].Reason))
}

func writeReport(w io.Writer, rep *obd.Report, asJSON bool, lang string) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(w, lang)
}

// scanOpenError turns a failed connect into one line that says what to check, with an exit
// code per cause.
func scanOpenError(addr string, err error, ctx context.Context) error {
	var te *elm327.TimeoutError
	switch {
	case errors.Is(err, serialport.ErrNotFound):
		return &exitError{code: exitNoDevice, err: fmt.Errorf("no device at %s: is the adapter plugged in? ('obdgw ports' lists the serial ports): %v", addr, oneLine(err))}
	case errors.Is(err, serialport.ErrBusy):
		return &exitError{code: exitNoDevice, err: fmt.Errorf("%s is in use by another program: close it (another obdgw, a terminal program, ModemManager) and try again: %v", addr, oneLine(err))}
	case errors.Is(err, serialport.ErrPermission):
		return &exitError{code: exitNoDevice, err: fmt.Errorf("no permission to open %s: add this user to the dialout group (or run the service as obdgw): %v", addr, oneLine(err))}
	case errors.Is(err, obd.ErrNoVehicle):
		return &exitError{code: exitNoVehicle, err: fmt.Errorf("the adapter works but no ECU answers: is the ignition on and the adapter seated in the OBD socket? (%v)", oneLine(err))}
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return &exitError{code: exitFailure, err: fmt.Errorf("gave up connecting to %s: --timeout reached", addr)}
	case errors.As(err, &te), strings.Contains(err.Error(), "no prompt"):
		return &exitError{code: exitNotAdapter, err: fmt.Errorf("the device at %s does not answer like an ELM327 adapter (no '>' prompt): is it the OBD adapter, powered by the car, at the right baud rate (leave ?baud= out of the address and the usual rates are tried)? (%v)", addr, oneLine(err))}
	}
	return &exitError{code: exitFailure, err: fmt.Errorf("connect to %s: %v", addr, oneLine(err))}
}

// oneLine keeps an error on one line: the driver's errors may quote raw adapter output.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.NewReplacer("\r", " ", "\n", " ").Replace(err.Error())), " ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// timingName says which adaptive timing the adapter runs with (obd.Profile.AdaptiveTiming).
func timingName(t int) string {
	switch t {
	case 1:
		return "normal (ATAT1)"
	case 2:
		return "aggressive (ATAT2)"
	}
	return "unknown (ATAT1 refused)"
}

// stepHandler prints the scan's per-step debug records as progress lines.
type stepHandler struct{ w io.Writer }

func (h *stepHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *stepHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "obd scan step" {
		return nil
	}
	f := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		f[a.Key] = fmt.Sprint(a.Value.Resolve().Any())
		return true
	})
	ms, _ := strconv.ParseFloat(f["ms"], 64)
	_, err := fmt.Fprintf(h.w, "  %-18s %-14s %3s requests %6.0f ms\n", f["step"], f["status"], f["requests"], ms)
	return err
}
func (h *stepHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *stepHandler) WithGroup(string) slog.Handler      { return h }
