package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/api"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/daemon"
)

func init() {
	register(command{
		name:    "backup",
		summary: "copy the state file (work orders, outbox) to FILE, consistently, while the gateway runs or not",
		run: func(ctx context.Context, e *env, args []string) error {
			fs := newFlags(e, "backup", "[--config FILE] BACKUP_FILE")
			path := fs.String("config", "/etc/obdgw/obdgw.yaml", "the gateway's configuration: where its state is, its API address and token")
			if err := fs.Parse(args); err != nil {
				return usageError("%v", err)
			}
			if fs.NArg() != 1 {
				return usageError("want one backup file name, e.g. obdgw backup /var/backups/obdgw-$(date +%%F).db")
			}
			cfg, err := config.Load(*path)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			return backup(ctx, e, cfg, fs.Arg(0))
		},
	})
}

// backup asks the running gateway for a consistent copy over its API (the gateway holds the
// file's lock); when no gateway answers on its address, it copies the file directly.
func backup(ctx context.Context, e *env, cfg *config.Config, dest string) error {
	if len(cfg.API.Tokens) == 0 {
		return &exitError{code: exitUsage, err: errors.New("backup: the configuration has no API token to ask the gateway with (api.tokens)")}
	}
	url := "http://" + dialAddr(cfg.API.Listen) + api.Prefix + "/backup"
	var answered bool // the gateway's API answered: its error is the error
	n, err := buffer.WriteBackup(dest, func(w io.Writer) (int64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+backupToken(cfg.API.Tokens))
		resp, err := (&http.Client{Timeout: time.Hour}).Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		answered = true
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return 0, fmt.Errorf("the gateway answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
		}
		return io.Copy(w, resp.Body)
	})
	switch {
	case err == nil:
		fmt.Fprintf(e.stdout, "backup: %s (%d bytes) from the running gateway at %s\n", dest, n, cfg.API.Listen)
		return nil
	case answered:
		return fmt.Errorf("backup: %w", err)
	}
	// No gateway answering: copy the file itself. If a gateway does hold it (its API is
	// unreachable for another reason), the copy is refused as locked, with both reasons.
	apiErr := err
	state := filepath.Join(cfg.StateDir, daemon.StoreFile)
	n, err = buffer.BackupFile(state, dest)
	if err != nil {
		return fmt.Errorf("backup: the gateway's API at %s did not answer (%v), and copying %s directly failed: %w", cfg.API.Listen, apiErr, state, err)
	}
	fmt.Fprintf(e.stdout, "backup: %s (%d bytes) copied from %s (no gateway running)\n", dest, n, state)
	return nil
}

// dialAddr turns a listen address into one to connect to: a wildcard host means this box.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// backupToken is the token the copy is asked with: the first manager's (the copy holds owner
// data, so only a manager may take it), else the first token, whose refusal names the role.
func backupToken(ts []config.Token) string {
	for _, t := range ts {
		if t.Role == "manager" {
			return t.Secret
		}
	}
	return ts[0].Secret
}
