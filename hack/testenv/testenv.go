// Package testenv holds the test helpers every package shares: finding the outside programs a
// test needs (socat, mosquitto, qemu, chromium) with the project's rule that a missing program
// skips the test on a developer's machine but fails it in CI.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (the CI environment variable is set), where a
// missing outside program is a failure, never a skip.
func InCI() bool { return os.Getenv("CI") != "" }

// Program returns the path of the first of names found on PATH (or at an absolute path given
// as a name). Without any of them the test is skipped with a message naming the Debian package
// to install, or, in CI, fails.
func Program(t testing.TB, pkg string, names ...string) string {
	t.Helper()
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
