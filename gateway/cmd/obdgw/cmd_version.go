package main

import (
	"context"
	"fmt"

	"github.com/obdgw/obdgw/firmware/version"
)

func init() {
	register(command{
		name:    "version",
		summary: "print the version stamp",
		run: func(ctx context.Context, e *env, args []string) error {
			if err := newFlags(e, "version", "").Parse(args); err != nil {
				return usageError("%v", err)
			}
			_, err := fmt.Fprintln(e.stdout, version.String())
			return err
		},
	})
}
