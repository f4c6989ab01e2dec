//go:build linux

package ptypair

import (
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Pair is a pseudo-terminal pair: Master is what a simulator reads and writes, SlavePath is what
// a driver opens as if it were /dev/ttyUSB0.
type Pair struct {
	Master    *os.File
	SlavePath string
	// slave stays open for the life of the pair: with no slave open, reads on the master fail
	// with EIO between two clients.
	slave *os.File
}

// Open opens a pty pair with its slave in raw mode and its master non-blocking.
func Open() (*Pair, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("ptypair: open pty: %w", err)
	}
	if err := makeRaw(int(s.Fd())); err != nil {
		m.Close()
		s.Close()
		return nil, fmt.Errorf("ptypair: raw mode on %s: %w", s.Name(), err)
	}
	nm, err := nonblocking(m)
	if err != nil {
		s.Close()
		return nil, err
	}
	return &Pair{Master: nm, SlavePath: s.Name(), slave: s}, nil
}

// Close closes both ends. A client still holding the slave open sees a hang-up.
func (p *Pair) Close() error {
	err := p.Master.Close()
	p.slave.Close()
	return err
}

// nonblocking re-opens f's descriptor in non-blocking mode so the runtime poller manages it,
// whatever mode the pty library left it in.
func nonblocking(f *os.File) (*os.File, error) {
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("ptypair: dup pty master: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ptypair: non-blocking pty master: %w", err)
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "/dev/ptmx"), nil
}

// makeRaw puts the terminal fd in raw 8N1 mode, like cfmakeraw(3), and ignores the modem
// lines (CLOCAL: a pty has none).
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
