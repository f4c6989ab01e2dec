//go:build linux

package buffer

import (
	"bufio"
	"bytes"
	"os"
	"strconv"

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
// or anonymous mapping MADV_DONTNEED would zero memory, so the range must never reach past
// bbolt's map into a neighbouring one: it is taken inside a read transaction (bbolt remaps
// only under its mmap lock, which waits for every read transaction to end, so the map cannot
// move while tx is open), and its length is the smaller of what this transaction uses
// (tx.Size(), from a checksummed meta page) and the length of the mapping that the kernel
// lists at that address (/proc/self/maps), which also covers a damaged file whose meta page
// claims more pages than are mapped.
func releaseMapped(tx *bolt.Tx) error {
	info := tx.DB().Info()
	size := uint64(tx.Size())
	if info == nil || info.Data == 0 || size == 0 {
		return nil
	}
	mapped, ok := mappingLen(uint64(info.Data))
	if !ok {
		return nil
	}
	size = min(size, mapped)
	// A raw syscall rather than unix.Madvise: the address comes from bbolt as a uintptr, and
	// turning it back into a slice would need an unsafe conversion for nothing.
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, info.Data, uintptr(size), unix.MADV_DONTNEED); e != 0 {
		return e
	}
	return nil
}

// mappingLen returns the length of the mapping that starts exactly at addr, from
// /proc/self/maps ("start-end perms …", hexadecimal).
func mappingLen(addr uint64) (uint64, bool) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		dash := bytes.IndexByte(line, '-')
		sp := bytes.IndexByte(line, ' ')
		if dash <= 0 || sp <= dash {
			continue
		}
		start, err := strconv.ParseUint(string(line[:dash]), 16, 64)
		if err != nil || start != addr {
			continue
		}
		end, err := strconv.ParseUint(string(line[dash+1:sp]), 16, 64)
		if err != nil || end <= start {
			return 0, false
		}
		return end - start, true
	}
	return 0, false
}
