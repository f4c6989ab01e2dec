//go:build !linux

package serialport

import "strings"

// isPTY reports whether path looks like a pseudo-terminal (no modem lines).
func isPTY(path string) bool {
	return strings.HasPrefix(path, "/dev/pts/") || strings.HasPrefix(path, "/dev/ttys")
}
