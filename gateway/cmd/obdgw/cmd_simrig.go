package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	_ "github.com/obdgw/obdgw/drivers/fga4100/fga4100sim" // the simulators register by model name
	_ "github.com/obdgw/obdgw/drivers/mexa/mexasim"
	_ "github.com/obdgw/obdgw/drivers/mqw50a/mqw50asim"
	_ "github.com/obdgw/obdgw/drivers/nanhua/nanhuasim"
	_ "github.com/obdgw/obdgw/drivers/opacity/opacitysim"
	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
	"github.com/obdgw/obdgw/drivers/serialport/ptypair"
)

func init() {
	registerSim("rig", simulator{summary: "emission rig (gas analyzer or opacimeter) with scripted readings", run: runSimRig})
}

// runSimRig is `obdgw sim rig --model MODEL [--fault LIST] [--warmup D]`: it serves a simulated
// instrument on a pty, prints the slave path as the first line of stdout and runs until killed.
func runSimRig(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "sim rig", "--model MODEL [--fault LIST] [--warmup D]")
	model := fs.String("model", "", "instrument model ("+strings.Join(rigsim.Names(), ", ")+")")
	faults := fs.String("fault", "", "faults to inject: checksum=N (every Nth data reply), burst=N, busy=N, garbage=N, unplug=N|DURATION, close (unplug closes the line)")
	warmup := fs.Duration("warmup", 0, "report warming up for this long after start")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	if *model == "" {
		return usageError("--model is required (one of %s)", strings.Join(rigsim.Names(), ", "))
	}
	sm, ok := rigsim.Lookup(rig.NormalizeModel(*model))
	if !ok {
		return usageError("no simulator for --model %q (have %s)", *model, strings.Join(rigsim.Names(), ", "))
	}
	f, err := rigsim.ParseFaults(*faults)
	if err != nil {
		return usageError("--fault: %v", err)
	}
	if *warmup < 0 {
		return usageError("--warmup must not be negative")
	}
	srv, err := sm.New(rigsim.Config{WarmUp: *warmup, Faults: f, Log: e.log})
	if err != nil {
		return err
	}
	p, err := ptypair.Open()
	if err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("open a pseudo-terminal: %w", err)}
	}
	defer p.Close()
	// The path is the first line of stdout so scripts can read it: `read -r dev < <(obdgw sim rig --model nha506)`.
	if _, err := fmt.Fprintln(e.stdout, p.SlavePath); err != nil {
		return err
	}
	if out, ok := e.stdout.(*os.File); ok {
		out.Sync()
	}
	baud := 0
	if m, ok := rig.Lookup(sm.Name); ok {
		baud = m.Baud
	}
	e.log.Info("rig simulator ready", "model", sm.Name, "instrument", sm.Title, "device", p.SlavePath,
		"read_with", fmt.Sprintf("obdgw rig read --port %s --model %s", p.SlavePath, sm.Name), "baud", baud)
	err = srv.Serve(ctx, p.Master)
	switch {
	case ctx.Err() != nil:
		e.log.Info("rig simulator stopped")
		return nil
	case errors.Is(err, rigsim.ErrUnplugged):
		return &exitError{code: exitFailure, err: fmt.Errorf("line closed on purpose (--fault unplug,close): %w", err)}
	}
	return err
}
