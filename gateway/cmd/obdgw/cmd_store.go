package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/daemon"
)

// restore and salvage are what a person runs after `obdgw run` exited 7 (docs/delivery.md
// "When the state file is lost or damaged"). Both want the daemon stopped: the state file is
// locked while it runs.

func init() {
	register(command{
		name:    "restore",
		summary: "put a backup of the state file in place, after checking it (the daemon must be stopped)",
		run: func(ctx context.Context, e *env, args []string) error {
			fs := newFlags(e, "restore", "[--config FILE] [--force] BACKUP")
			path := fs.String("config", "/etc/obdgw/obdgw.yaml", "the YAML configuration: where the state file is")
			force := fs.Bool("force", false, "replace a state file that opens and passes its checks")
			if err := fs.Parse(args); err != nil {
				return usageError("%v", err)
			}
			if fs.NArg() != 1 {
				return usageError("want one backup file, got %d arguments", fs.NArg())
			}
			cfg, err := config.Load(*path)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			store := filepath.Join(cfg.StateDir, daemon.StoreFile)
			backup := fs.Arg(0)
			moved, err := buffer.Restore(backup, store, *force, buffer.Options{GatewayID: cfg.GatewayID, Logger: e.log})
			if err != nil {
				if errors.Is(err, buffer.ErrLocked) {
					return fmt.Errorf("%w (stop obdgw first: systemctl stop obdgw)", err)
				}
				return err
			}
			fmt.Fprintf(e.stdout, "restored %s to %s; it has a new incarnation, so new records never repeat an id given out after the backup was taken\n", backup, store)
			if moved != "" {
				fmt.Fprintf(e.stdout, "the state file it replaced is kept as %s (obdgw salvage --config %s %s takes its undelivered records)\n", moved, *path, moved)
			}
			return nil
		},
	})
	register(command{
		name:    "salvage",
		summary: "import what can be read of a damaged state file (undelivered records, work orders) into the current store",
		run: func(ctx context.Context, e *env, args []string) error {
			fs := newFlags(e, "salvage", "[--config FILE] [--into STATE] OLDFILE")
			path := fs.String("config", "/etc/obdgw/obdgw.yaml", "the YAML configuration: the gateway id and where the state file is")
			into := fs.String("into", "", "the store to import into (default: the state file of the configuration)")
			if err := fs.Parse(args); err != nil {
				return usageError("%v", err)
			}
			if fs.NArg() != 1 {
				return usageError("want one old state file, got %d arguments", fs.NArg())
			}
			cfg, err := config.Load(*path)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			target := *into
			if target == "" {
				target = filepath.Join(cfg.StateDir, daemon.StoreFile)
			}
			old := fs.Arg(0)
			if abs1, _ := filepath.Abs(old); abs1 != "" {
				if abs2, _ := filepath.Abs(target); abs1 == abs2 {
					return usageError("the old file and the store to import into are the same file (%s)", old)
				}
			}
			db, err := buffer.Open(target, buffer.Options{GatewayID: cfg.GatewayID, MaxRecords: cfg.Records.MaxOutboxRecords, Logger: e.log})
			if err != nil {
				if errors.Is(err, buffer.ErrLocked) {
					return fmt.Errorf("%w (stop obdgw first: systemctl stop obdgw)", err)
				}
				return err
			}
			defer db.Close()
			rep, err := buffer.Salvage(old, db)
			if err != nil {
				return err
			}
			from := rep.Incarnation
			if from == "" {
				from = "old"
			}
			fmt.Fprintf(e.stdout, "salvaged %s into %s (incarnation %s)\n", old, target, db.Info().Incarnation)
			fmt.Fprintf(e.stdout, "  undelivered records queued under new ids: %d\n", rep.Records)
			if rep.Refused > 0 {
				fmt.Fprintf(e.stdout, "  records the outbox refused (full or too large): %d\n", rep.Refused)
			}
			fmt.Fprintf(e.stdout, "  documents (work orders, scans, …) kept under %s: %d\n", buffer.SalvagedBucket(from, "…"), rep.Documents)
			fmt.Fprintf(e.stdout, "  dead letters (rejected by the receiver) left in the old file: %d\n", rep.DeadLetters)
			if len(rep.Unreadable) == 0 {
				fmt.Fprintln(e.stdout, "  could not read: nothing")
			} else {
				fmt.Fprintf(e.stdout, "  could not read:\n    %s\n", strings.Join(rep.Unreadable, "\n    "))
			}
			return nil
		},
	})
}
