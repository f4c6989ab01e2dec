// Package version carries the build's version stamp. Release builds (make build, make cross)
// set it with the linker:
//
//	go build -ldflags "-X github.com/obdgw/obdgw/firmware/version.Version=v1.2.3 \
//	    -X github.com/obdgw/obdgw/firmware/version.Commit=abc1234"
//
// A plain `go build` or `go install` leaves them unset; then what the Go toolchain recorded in
// the binary is used: the module version (go install …@v1.2.3) and the VCS revision of the
// source tree the binary was built from (with "-dirty" when it had uncommitted changes).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set with -ldflags -X at build time; otherwise filled from the build info at start.
var (
	Version = "dev"
	Commit  = "unknown"
)

func init() {
	if bi, ok := debug.ReadBuildInfo(); ok {
		Version, Commit = fromBuildInfo(bi, Version, Commit)
	}
}

// fromBuildInfo fills what the linker did not set: the module version unless it is the
// toolchain's "(devel)", and the VCS revision (12 characters, "-dirty" when modified).
func fromBuildInfo(bi *debug.BuildInfo, version, commit string) (string, string) {
	if version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	if commit == "unknown" {
		var rev string
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if dirty {
				rev += "-dirty"
			}
			commit = rev
		}
	}
	return version, commit
}

// String is the one-line version report printed by `obdgw version`.
func String() string {
	return fmt.Sprintf("obdgw %s (commit %s, %s, %s/%s)", Version, Commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
