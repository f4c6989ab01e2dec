package serialport

import (
	"fmt"
	"os"
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

// PTYBaud returns the line rate the program on a pseudo-terminal's slave end set, read
// through the master (on Linux a pty pair has one set of line settings). Simulators use it
// to answer only a client at their own rate, as a real UART does.
func PTYBaud(master *os.File) (int, error) {
	t, err := unix.IoctlGetTermios(int(master.Fd()), unix.TCGETS)
	if err != nil {
		return 0, fmt.Errorf("serialport: line settings of %s: %w", master.Name(), err)
	}
	b, ok := speeds[t.Cflag&unix.CBAUD]
	if !ok {
		return 0, fmt.Errorf("serialport: %s: unknown line rate code %#o", master.Name(), t.Cflag&unix.CBAUD)
	}
	return b, nil
}

var speeds = map[uint32]int{
	unix.B1200: 1200, unix.B2400: 2400, unix.B4800: 4800, unix.B9600: 9600, unix.B19200: 19200,
	unix.B38400: 38400, unix.B57600: 57600, unix.B115200: 115200, unix.B230400: 230400,
	unix.B460800: 460800, unix.B500000: 500000, unix.B921600: 921600, unix.B1000000: 1000000,
	unix.B2000000: 2000000,
}
