// Package testenv holds the test helpers every package shares: finding the outside programs a
// test needs (socat, mosquitto, qemu, chromium) with the project's rule that a missing program
// skips the test on a developer's machine but fails it in CI, the raw pseudo-terminal the
// simulator tests serve on, and the tiers that `go test -short` leaves out.
//
// The tiers, cheapest first: pure tests run always; tests over a real pty, against a real
// Mosquitto, in a real Chromium, or that build the obdgw binary are the slow tiers, which
// `go test -short ./...` skips so that the inner loop stays short. `make test` (and CI) runs
// everything: -short is never set there.
package testenv

import (
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/obdgw/obdgw/drivers/serialport/ptypair"
)

// InCI reports whether the tests run under CI (the CI environment variable is set), where a
// missing outside program is a failure, never a skip.
func InCI() bool { return os.Getenv("CI") != "" }

// Program returns the path of the first of names found on PATH (or at an absolute path given
// as a name). Without any of them the test is skipped with a message naming the Debian package
// to install, or, in CI, fails.
func Program(t testing.TB, pkg string, names ...string) string {
	t.Helper()
	SkipShort(t, names[0])
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := "needs " + names[0] + " (Debian package " + pkg + "): apt-get install " + pkg
	if InCI() {
		t.Fatal(msg + "; CI must install it (.ci/run)")
	}
	t.Skip(msg)
	return ""
}

// NoChildProcesses skips a test that starts a child process when the test binary is a 386
// one running under qemu-user (OBDGW_QEMU set), and only then. qemu-i386 (Debian's 7.2 at
// least) cannot deliver a signal to a Go 386 binary: the handler or the code it returns to
// runs with the wrong goroutine and the runtime crashes ("bad g in signal handler",
// "exitsyscall: syscall frame is no longer valid", SIGSEGV in the scheduler). hack/test.sh
// turns the runtime's own preemption signals off (GODEBUG=asyncpreemptoff=1), but a child's
// exit still sends SIGCHLD. Natively and under the arm emulators these tests run.
func NoChildProcesses(t testing.TB) {
	t.Helper()
	if runtime.GOARCH == "386" && os.Getenv("OBDGW_QEMU") != "" {
		t.Skip("starts a child process, whose SIGCHLD crashes a Go 386 binary under qemu-i386")
	}
}

// Slow tiers named by SkipShort.
const (
	TierPTY     = "pty"     // a real pseudo-terminal with a simulator on its master
	TierBroker  = "broker"  // a real Mosquitto
	TierBrowser = "browser" // a real Chromium
	TierBinary  = "binary"  // builds and runs the obdgw binary
)

// SkipShort skips the test under `go test -short`, naming the tier (TierPTY, TierBroker,
// TierBrowser, TierBinary, or the outside program) that makes it slow. Without -short it does
// nothing; CI never sets -short, so there the test always runs.
func SkipShort(t testing.TB, tier string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skips the " + tier + " tier (make test runs it)")
	}
}

// PTY opens a pseudo-terminal pair in raw mode (ptypair.Open) and closes it when the test
// ends; `go test -short` skips the test. Some qemu-user setups cannot open a pty: there, and
// only there (OBDGW_QEMU set), the test is skipped; anywhere else it fails.
func PTY(t testing.TB) *ptypair.Pair {
	t.Helper()
	SkipShort(t, TierPTY)
	p, err := ptypair.Open()
	if err != nil {
		if os.Getenv("OBDGW_QEMU") != "" {
			t.Skipf("pty unavailable under qemu-user: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
