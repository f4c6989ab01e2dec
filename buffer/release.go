package buffer

import (
	"time"

	bolt "go.etcd.io/bbolt"
)

// releaser drops the pages of the memory map (releaseMapped) after every releaseEvery bytes
// read through it. bbolt maps the whole file and every page read stays in the resident set
// until the kernel needs the memory: reading a large outbox once (the check at Open, a long
// drain) would otherwise make the gateway look as large as its outbox file. The pages are
// clean page cache; what is read again soon (branch pages, meta) comes back from the page
// cache at the cost of a minor fault.
type releaser struct{ n int }

const (
	releaseEvery = 2 << 20          // bytes read between releases
	releaseTick  = time.Millisecond // while bbolt's own check reads the file
)

// readMapped is releaser.read for the DB's long-lived readers (PeekAfter), which may run
// concurrently.
func (db *DB) readMapped(tx *bolt.Tx, n int) {
	if db.mapped.Add(int64(n)) >= releaseEvery {
		db.mapped.Store(0)
		releaseMapped(tx)
	}
}

func (r *releaser) read(tx *bolt.Tx, n int) {
	if r.n += n; r.n >= releaseEvery {
		r.n = 0
		releaseMapped(tx) // best effort: a failure only leaves pages resident
	}
}
