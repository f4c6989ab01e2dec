package buffer

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data without its timestamps, as bbolt does for its own file.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// unlock drops the flock bbolt took on f. Closing f alone does not when bbolt panicked after
// mapping the file: the mapping keeps the open file, and with it the lock, alive.
func unlock(f *os.File) { syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
