//go:build !linux

package rigsim

import (
	"errors"
	"os"
)

// PTY is a pseudo-terminal pair (Linux only for now).
type PTY struct {
	Master    *os.File
	SlavePath string
}

// OpenPTY is only implemented on Linux, the gateway's platform.
func OpenPTY() (*PTY, error) { return nil, errors.New("rigsim: pty simulation needs Linux") }

// Close does nothing.
func (p *PTY) Close() error { return nil }

// OpenRawFile is only implemented on Linux.
func OpenRawFile(path string) (*os.File, error) {
	return nil, errors.New("rigsim: raw terminal files need Linux")
}
