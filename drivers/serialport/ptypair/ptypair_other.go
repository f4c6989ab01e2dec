//go:build !linux

package ptypair

import (
	"errors"
	"os"
)

// Pair is a pseudo-terminal pair (Linux only for now).
type Pair struct {
	Master    *os.File
	SlavePath string
}

var errLinux = errors.New("ptypair: pseudo-terminal simulation needs Linux")

// Open is only implemented on Linux, the gateway's platform.
func Open() (*Pair, error) { return nil, errLinux }

// Close does nothing.
func (p *Pair) Close() error { return nil }
