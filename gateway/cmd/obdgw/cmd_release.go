package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/obdgw/obdgw/gateway/update"
)

func init() {
	register(command{
		name:    "release",
		summary: "publish a signed release into a TUF repository (--init creates keys and root)",
		run:     runRelease,
	})
}

func runRelease(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "release", "--repo DIR --keys DIR [--init] [--refresh] [--version v1.2.3 [--rollout PERCENT] BINARIES...]")
	repo := fs.String("repo", "", "the repository directory a static HTTPS server serves")
	keys := fs.String("keys", "", "the directory of the signing keys (mode 0600; never served, keep it offline)")
	initRepo := fs.Bool("init", false, "create the keys and an empty repository (its root.json goes onto every box)")
	refresh := fs.Bool("refresh", false, "re-sign targets, snapshot and timestamp with new expiry dates (run it from cron)")
	ver := fs.String("version", "", "the version of the binaries, e.g. v1.2.3")
	rollout := fs.Int("rollout", 100, "the percentage of gateways that take this version (1-100)")
	if err := fs.Parse(args); err != nil {
		return usageError("%v", err)
	}
	if *repo == "" || *keys == "" {
		return usageError("--repo and --keys are required")
	}
	if abs, _ := filepath.Abs(*keys); abs != "" {
		if r, _ := filepath.Abs(*repo); r != "" && (abs == r || filepath.Dir(abs) == r) {
			return usageError("--keys %s is inside the served repository: keep the signing keys out of it", *keys)
		}
	}
	if *ver == "" && fs.NArg() > 0 {
		return usageError("binaries given without --version")
	}
	if *ver != "" && fs.NArg() == 0 {
		return usageError("--version %s given without binaries (name them obdgw-linux-arm64, obdgw-linux-armv7, …)", *ver)
	}
	if !*initRepo && !*refresh && *ver == "" {
		return usageError("nothing to do: give --init, --refresh or --version with binaries")
	}
	p := &update.Publisher{Repo: *repo, Keys: *keys}
	if *initRepo {
		if err := p.Init(); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "created keys in %s and an empty repository in %s; put %s on every box (update.root_file)\n",
			*keys, *repo, filepath.Join(*repo, "root.json"))
	}
	if *ver != "" {
		if err := p.Publish(update.Release{Version: *ver, Rollout: *rollout, Binaries: fs.Args()}); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "published %s (rollout %d %%): %d binaries\n", *ver, *rollout, fs.NArg())
	} else if *refresh {
		if err := p.Refresh(); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "re-signed targets, snapshot and timestamp\n")
	}
	return nil
}
