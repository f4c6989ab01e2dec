package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/obdgw/obdgw/drivers/elm327/elm327sim"
	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/drivers/serialport/ptypair"
)

// simulator is one device simulator `obdgw sim NAME` can run. Rig simulators register here
// from their own files (registerSim in init), like commands do with register.
type simulator struct {
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

var simulators = map[string]simulator{}

func registerSim(name string, s simulator) {
	if _, dup := simulators[name]; dup {
		panic("obdgw: simulator registered twice: " + name)
	}
	simulators[name] = s
}

func init() {
	register(command{
		name:    "sim",
		summary: "run a device simulator on a pseudo-terminal (sim elm327, sim rig)",
		run:     runSim,
	})
	registerSim("elm327", simulator{summary: "ELM327 adapter with a simulated car", run: runSimELM327})
}

func simNames() string {
	var names []string
	for n := range simulators {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func runSim(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usageError("which simulator? (have %s; e.g. obdgw sim elm327 --scenario petrol)", simNames())
	}
	s, ok := simulators[args[0]]
	if !ok {
		return usageError("no simulator %q (have %s)", args[0], simNames())
	}
	return s.run(ctx, e, args[1:])
}

func runSimELM327(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "sim elm327", "[--scenario NAME|FILE] [--baud N] [--strict-baud] [--latency D] [--search-delay D]")
	scenario := fs.String("scenario", "petrol", "built-in scenario ("+strings.Join(elm327sim.Builtins(), ", ")+") or a YAML file")
	baud := fs.Int("baud", 0, "pace output at this serial rate (0: the scenario's)")
	strict := fs.Bool("strict-baud", false, "answer only a client whose serial rate is the adapter's (--baud, else the scenario's), as a real adapter does; other rates see noise")
	latency := fs.Duration("latency", 0, "ECU response time per request (default: the scenario's)")
	searchDelay := fs.Duration("search-delay", 0, "how long the automatic protocol search (ATSP0) takes (default: the scenario's faults.searching_delay); a protocol set directly answers at once")
	list := fs.Bool("list", false, "list the built-in scenarios and exit")
	if err := fs.Parse(args); err != nil {
		return usageError("%v", err)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	if *list {
		for _, n := range elm327sim.Builtins() {
			sc, _ := elm327sim.Builtin(n)
			fmt.Fprintf(e.stdout, "%-14s %s\n", n, sc.Description)
		}
		return nil
	}
	if *baud < 0 {
		return usageError("--baud %d: want a positive serial rate, or 0 for the scenario's", *baud)
	}
	sc, err := elm327sim.Load(*scenario)
	if err != nil {
		return usageError("--scenario: %v", err)
	}
	if *searchDelay < 0 {
		return usageError("--search-delay %v: must not be negative", *searchDelay)
	}
	opts := elm327sim.Options{Baud: *baud, Log: e.log, SearchDelay: *searchDelay}
	latencySet := false
	fs.Visit(func(f *flag.Flag) { latencySet = latencySet || f.Name == "latency" })
	if latencySet {
		if *latency < 0 {
			return usageError("--latency %v: must not be negative", *latency)
		}
		opts.Latency, opts.NoLatency = *latency, *latency == 0
	}
	// The pair keeps its slave open for the whole run: a client that closes and reopens the
	// path finds the same adapter (state and all), and the master never reads EIO in between.
	p, err := ptypair.Open()
	if err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("open a pseudo-terminal: %w", err)}
	}
	defer p.Close()
	master := p.Master
	// The path is the first line of stdout so scripts can read it: `read -r dev < <(obdgw sim elm327)`.
	if _, err := fmt.Fprintln(e.stdout, p.SlavePath); err != nil {
		return err
	}
	if f, ok := e.stdout.(*os.File); ok {
		f.Sync()
	}
	if *strict {
		if _, err := serialport.PTYBaud(master); err != nil {
			return usageError("--strict-baud: %v", err)
		}
		opts.HostBaud = func() int { b, _ := serialport.PTYBaud(master); return b }
	}
	sim := elm327sim.New(sc, opts)
	e.log.Info("elm327 simulator ready", "sim", sim.String(), "address", "serial://"+p.SlavePath)
	errc := make(chan error, 1)
	go func() { errc <- sim.Serve(ctx, master) }()
	select {
	case <-ctx.Done():
		master.Close() // ends Serve's pending read
		<-errc
		st := sim.Stats()
		e.log.Info("elm327 simulator stopped", "requests", st.Requests, "clears", st.Clears)
		return nil
	case err := <-errc:
		if err == nil {
			return nil
		}
		if errors.Is(err, elm327sim.ErrDisconnected) {
			return &exitError{code: exitFailure, err: fmt.Errorf("link dropped on purpose (scenario fault disconnect_after): %w", err)}
		}
		return &exitError{code: exitFailure, err: err}
	}
}
