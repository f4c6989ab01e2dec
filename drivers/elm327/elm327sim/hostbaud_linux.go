package elm327sim

import (
	"os"

	"golang.org/x/sys/unix"
)

// PTYHostBaud returns an Options.HostBaud that reads the rate the host set on the slave end
// of a pseudo-terminal through its master (on Linux a pty pair has one set of line settings).
// It reports 0 when the rate cannot be read, which the simulator treats as a mismatch.
func PTYHostBaud(master *os.File) func() int {
	return func() int {
		t, err := unix.IoctlGetTermios(int(master.Fd()), unix.TCGETS)
		if err != nil {
			return 0
		}
		return speeds[t.Cflag&unix.CBAUD]
	}
}

var speeds = map[uint32]int{
	unix.B1200: 1200, unix.B2400: 2400, unix.B4800: 4800, unix.B9600: 9600, unix.B19200: 19200,
	unix.B38400: 38400, unix.B57600: 57600, unix.B115200: 115200, unix.B230400: 230400,
	unix.B460800: 460800, unix.B500000: 500000, unix.B921600: 921600, unix.B1000000: 1000000,
	unix.B2000000: 2000000,
}
