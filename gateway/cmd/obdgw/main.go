// Command obdgw is the workshop OBD and emission gateway: one binary with subcommands.
//
// Each subcommand lives in its own file (cmd_<name>.go) and registers itself in init; main only
// parses the global flags, builds the logger, installs the signal context and maps errors to
// exit codes. It never exits 0 on failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand.
type command struct {
	name    string
	summary string // one line for `obdgw help`
	// run executes the command. args are the arguments after the command name. Errors are
	// printed as one line on stderr; wrap them in exitError to choose the exit code.
	run func(ctx context.Context, e *env, args []string) error
}

// env is what a command gets from main.
type env struct {
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
}

var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("obdgw: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// Exit codes. 0 success, 1 failure, 2 usage; commands may use others through exitError.
// systemd does not restart the daemon after 2 or 7 (RestartPreventExitStatus): a restart
// cannot fix either.
const (
	exitFailure = 1
	exitUsage   = 2
	// exitNeedsPerson: the state file cannot be used and was left in place; a person
	// restores a backup or starts a new store (see `obdgw run`'s message).
	exitNeedsPerson = 7
)

// exitError carries an exit code with an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError reports a command-line mistake (exit code 2).
func usageError(format string, a ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, a...)}
}

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
}

func runMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("obdgw", flag.ContinueOnError)
	fs.SetOutput(stderr)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logJSON := fs.Bool("log-json", false, "log as JSON lines (for journald or a collector)")
	fs.Usage = func() { printHelp(stderr) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 || rest[0] == "help" || rest[0] == "-h" || rest[0] == "--help" {
		printHelp(stdout)
		if len(rest) == 0 {
			return exitUsage
		}
		return 0
	}
	cmd, ok := commands[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "obdgw: unknown command %q (run 'obdgw help' for the list)\n", rest[0])
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "obdgw: --log-level: %v\n", err)
		return exitUsage
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(stderr, hopts)
	if *logJSON {
		h = slog.NewJSONHandler(stderr, hopts)
	}
	e := &env{stdout: stdout, stderr: stderr, log: slog.New(h)}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, e, rest[1:])
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "obdgw %s: %v\n", cmd.name, err)
	var ee *exitError
	if errors.As(err, &ee) && ee.code != 0 {
		return ee.code
	}
	return exitFailure
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "obdgw — workshop OBD and emission gateway")
	fmt.Fprintln(w, "\nUsage: obdgw [--log-level LEVEL] [--log-json] COMMAND [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nExit codes: 0 success, 1 failure, 2 usage or configuration error, 7 the state file\ncannot be used and needs a person (obdgw restore, or obdgw run --new-store then obdgw salvage).")
	fmt.Fprintln(w, "\nRun 'obdgw COMMAND -h' for a command's flags.")
}

// newFlags returns a flag set for a subcommand that prints its usage to e.stderr.
func newFlags(e *env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("obdgw "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: obdgw %s %s\n", name, strings.TrimSpace(usage))
		fs.PrintDefaults()
	}
	return fs
}
