package main

import (
	"context"
	"errors"
	"flag"

	"github.com/obdgw/obdgw/gateway/demo"
)

func init() {
	register(command{
		name:    "demo",
		summary: "run a simulated workshop: adapters, broker, receiver, console and a scripted visit",
		run:     runDemo,
	})
}

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "demo", "[--exit-after-visit] [--listen 127.0.0.1:8080] [--state DIR]")
	exit := fs.Bool("exit-after-visit", false, "exit 0 once the visit's record is delivered, after printing it as JSON")
	listen := fs.String("listen", "", "console address (default 127.0.0.1:8080, or a free port when taken)")
	state := fs.String("state", "", "keep the demo's files in DIR instead of a temporary directory")
	fast := fs.Bool("fast", false, "no serial pacing or ECU latency in the simulated cars")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError("%v", err)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	_, err := demo.Run(ctx, demo.Options{
		Stdout: e.stdout, Stderr: e.stderr, Logger: e.log,
		Listen: *listen, StateDir: *state, ExitAfterVisit: *exit, Fast: *fast,
	})
	if err != nil && ctx.Err() != nil && !*exit {
		return nil // interrupted after the visit: a normal end
	}
	return err
}
