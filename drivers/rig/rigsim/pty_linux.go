//go:build linux

package rigsim

import (
	"fmt"
	"os"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// PTY is a pseudo-terminal pair for serving a simulator: Master is what the simulator reads
// and writes, SlavePath is what a driver opens as if it were /dev/ttyUSB0.
type PTY struct {
	Master    *os.File
	SlavePath string
	// slave stays open for the life of the PTY: with no slave open, reads on the master fail
	// with EIO between two clients.
	slave *os.File
}

// OpenPTY opens a pty in raw mode (no echo, no line editing, 8-bit clean: the rig protocols
// are binary). The master is non-blocking, so deadlines work and Close unblocks a Read.
func OpenPTY() (*PTY, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("rigsim: open pty: %w", err)
	}
	if err := MakeRaw(int(s.Fd())); err != nil {
		m.Close()
		s.Close()
		return nil, fmt.Errorf("rigsim: raw mode on %s: %w", s.Name(), err)
	}
	nm, err := nonblocking(m)
	if err != nil {
		s.Close()
		return nil, err
	}
	return &PTY{Master: nm, SlavePath: s.Name(), slave: s}, nil
}

// Close closes both ends.
func (p *PTY) Close() error {
	err := p.Master.Close()
	p.slave.Close()
	return err
}

// nonblocking re-opens f's descriptor in non-blocking mode so the runtime poller manages it.
func nonblocking(f *os.File) (*os.File, error) {
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("rigsim: dup pty master: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("rigsim: non-blocking pty master: %w", err)
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "/dev/ptmx"), nil
}

// MakeRaw puts the terminal fd in raw 8N1 mode, like cfmakeraw(3).
func MakeRaw(fd int) error {
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

// OpenRawFile opens a terminal device non-blocking in raw mode, as a driver-side port for
// tests and tools while no serial library is involved.
func OpenRawFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if err := MakeRaw(int(f.Fd())); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
