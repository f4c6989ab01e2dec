package serialport

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// isPTY reports whether path is a pseudo-terminal slave (a simulator or socat), which has no
// modem lines. Unix98 pty slaves use majors 136–143.
func isPTY(path string) bool {
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	if strings.HasPrefix(path, "/dev/pts/") {
		return true
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false
	}
	major := unix.Major(uint64(st.Rdev))
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && major >= 136 && major <= 143
}
