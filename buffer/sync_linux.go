package buffer

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data without its timestamps, as bbolt does for its own file.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
