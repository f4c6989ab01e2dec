// Package version carries the build's version stamp, set by the linker:
//
//	go build -ldflags "-X github.com/obdgw/obdgw/firmware/version.Version=v1.2.3 \
//	    -X github.com/obdgw/obdgw/firmware/version.Commit=abc1234"
package version

import (
	"fmt"
	"runtime"
)

// Set with -ldflags -X at build time.
var (
	Version = "dev"
	Commit  = "unknown"
)

// String is the one-line version report printed by `obdgw version`.
func String() string {
	return fmt.Sprintf("obdgw %s (commit %s, %s, %s/%s)", Version, Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
