//go:build !linux

package serialport

import (
	"errors"
	"os"
	"strings"
)

// isPTY reports whether path looks like a pseudo-terminal (no modem lines).
func isPTY(path string) bool {
	return strings.HasPrefix(path, "/dev/pts/") || strings.HasPrefix(path, "/dev/ttys")
}

// PTYBaud is not available here: a pty's line rate cannot be read through its master.
func PTYBaud(master *os.File) (int, error) {
	return 0, errors.New("serialport: a pseudo-terminal's line rate cannot be read on this system")
}
