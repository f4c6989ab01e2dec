//go:build !linux

package buffer

import "os"

func fdatasync(f *os.File) error { return f.Sync() }

func unlock(f *os.File) {}
