package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/obdgw/obdgw/firmware/version"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/update"
)

func init() {
	register(command{
		name:    "update",
		summary: "signed updates: status, check (what the repository offers), apply (install it)",
		run:     runUpdate,
	})
}

const updateUsage = "status|check|apply [--config FILE] [--json]"

func runUpdate(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usageError("want a subcommand: %s", updateUsage)
	}
	sub := args[0]
	fs := newFlags(e, "update "+sub, "[--config FILE] [--json]")
	path := fs.String("config", "/etc/obdgw/obdgw.yaml", "the YAML configuration (its update section)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError("%v", err)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	if cfg.Update == nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("%s has no update section: this gateway does not update itself (see docs/update.md)", *path)}
	}
	u := &updates{e: e, cfg: cfg, dir: update.Dir(cfg.StateDir)}
	if sub != "status" {
		if err := sameOwner(cfg.StateDir); err != nil {
			return err
		}
	}
	st, err := update.ReadState(u.dir)
	if err != nil {
		return err
	}
	// The version the gateway runs: the installed current one when newer than this binary.
	running := version.Version
	if update.Newer(st.Current, running) {
		running = st.Current
	}
	out := func(v any, text string) error {
		if *asJSON {
			enc := json.NewEncoder(e.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		}
		fmt.Fprint(e.stdout, text)
		return nil
	}
	switch sub {
	case "status":
		return out(st, formatState(st, running))
	case "check":
		a, err := u.client(running).Check(ctx)
		if err != nil {
			return err
		}
		return out(a, formatAvailable(a, cfg.GatewayID, running))
	case "apply":
		// A running gateway records its own uplink error in the trial before it restarts.
		a, installed, err := u.client(running).Install(ctx, "")
		if err != nil {
			return err
		}
		text := formatAvailable(a, cfg.GatewayID, running)
		if installed {
			if daemonRunning(cfg) {
				text += fmt.Sprintf("installed %s; the running gateway restarts into it on trial\n", a.Version)
			} else {
				text += fmt.Sprintf("installed %s; the gateway starts it on trial at its next start\n", a.Version)
			}
		}
		return out(map[string]any{"available": a, "installed": installed}, text)
	}
	return usageError("unknown subcommand %q: want %s", sub, updateUsage)
}

// sameOwner refuses to write into a state directory another user owns (root running `obdgw
// update apply` would leave files the daemon's user cannot replace).
func sameOwner(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil // not created yet: the daemon's user creates it
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) == os.Geteuid() {
		return nil
	}
	if u, err := user.LookupId(strconv.Itoa(int(st.Uid))); err == nil {
		return fmt.Errorf("%s belongs to %s: run this as that user (sudo -u %s obdgw update ...)", dir, u.Username, u.Username)
	}
	return fmt.Errorf("%s belongs to user id %d: run this as that user", dir, st.Uid)
}

func formatState(st update.State, running string) string {
	var b strings.Builder
	orNone := func(s string) string {
		if s == "" {
			return "(none)"
		}
		return s
	}
	fmt.Fprintf(&b, "running:    %s\n", running)
	fmt.Fprintf(&b, "current:    %s\n", orNone(st.Current))
	fmt.Fprintf(&b, "previous:   %s\n", orNone(st.Previous))
	if st.Trial != nil {
		fmt.Fprintf(&b, "trial:      %s (%d starts)\n", st.Trial.Version, st.Trial.Starts)
	} else {
		fmt.Fprintf(&b, "trial:      (none)\n")
	}
	fmt.Fprintf(&b, "bad:        %s\n", orNone(strings.Join(st.Bad, ", ")))
	for _, v := range st.Bad {
		fmt.Fprintf(&b, "  %s: %s\n", v, st.Failures[v])
	}
	if st.LastCheck.IsZero() {
		fmt.Fprintf(&b, "last check: never\n")
	} else {
		fmt.Fprintf(&b, "last check: %s\n", st.LastCheck.Format(time.RFC3339))
	}
	if st.LastError != "" {
		fmt.Fprintf(&b, "last error: %s\n", st.LastError)
	}
	return b.String()
}

func formatAvailable(a update.Available, gateway, running string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "repository offers %s %s (rollout %d %%); this gateway runs %s\n", a.Target, a.Version, a.Rollout, running)
	switch {
	case !a.Newer:
		fmt.Fprintf(&b, "up to date\n")
	case a.Bad:
		fmt.Fprintf(&b, "%s was rolled back on this gateway before: it is never installed again\n", a.Version)
	case !a.InRollout:
		fmt.Fprintf(&b, "gateway %s is not in the rollout of %s yet\n", gateway, a.Version)
	default:
		fmt.Fprintf(&b, "gateway %s is in the rollout: %s is available\n", gateway, a.Version)
	}
	return b.String()
}

// daemonRunning asks the gateway's /healthz on its API address (a wildcard listen address is
// asked on loopback).
func daemonRunning(cfg *config.Config) bool {
	host, port, err := net.SplitHostPort(cfg.API.Listen)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
