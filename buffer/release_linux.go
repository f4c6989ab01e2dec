//go:build linux

package buffer

import (
	"golang.org/x/sys/unix"

	bolt "go.etcd.io/bbolt"
)

// releaseMapped drops this process's page-table entries for the store file's memory map
// (madvise MADV_DONTNEED), so that pages read once (records drained long ago, the whole file
// read by the check at Open) stop counting in the gateway's resident set.
//
// This is safe only because of how bbolt maps the file: read-only and shared (PROT_READ,
// MAP_SHARED, see bbolt's mmap in bolt_unix.go; we never set Options.MmapFlags or Mlock), and
// it writes through the file descriptor, never through the map. The mapped pages are then
// clean page-cache pages: after MADV_DONTNEED the next access maps the same page from the page
// cache again (or reads it from the file), so no data can be lost or seen stale. On a private
// or anonymous mapping MADV_DONTNEED would zero memory, which is why the range is taken from
// bbolt itself, inside a read transaction: bbolt remaps only under its mmap lock, which waits
// for every read transaction to end, so the range cannot be unmapped or reused while tx is
// open. tx.Size() (the file size this transaction sees) never exceeds the mapping.
func releaseMapped(tx *bolt.Tx) error {
	info := tx.DB().Info()
	size := uintptr(tx.Size())
	if info == nil || info.Data == 0 || size == 0 {
		return nil
	}
	// A raw syscall rather than unix.Madvise: the address comes from bbolt as a uintptr, and
	// turning it back into a slice would need an unsafe conversion for nothing.
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, info.Data, size, unix.MADV_DONTNEED); e != 0 {
		return e
	}
	return nil
}
