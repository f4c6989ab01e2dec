package buffer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// writeOp is one caller's write waiting for the group commit.
type writeOp struct {
	fn   func(*Tx) error
	tx   *Tx // the Tx of the run that counted (the last one)
	err  error
	wake chan bool // true: you lead the next commit; false: your result is ready
}

// write runs fn in a read-write transaction that is committed (and fsynced) before it returns,
// sharing the transaction with writes that arrive while an earlier commit is in progress.
//
// This is group commit without a timer: the first writer commits at once; writers arriving
// during its fsync queue up and the next leader commits them all in one transaction. A lone
// writer thus pays no batching delay (bbolt's DB.Batch waits MaxBatchDelay, 10 ms, for company
// on every call, which on a gateway that mostly appends one record at a time would cost more
// than the fsync itself), while many writers share one fsync. Like DB.Batch, fn may run more
// than once: when one write of a batch fails, the batch is rolled back, the failing write is
// re-run alone and the rest are retried; so fn must only have effects through the Tx.
func (db *DB) write(fn func(*Tx) error) (*Tx, error) {
	op := &writeOp{fn: fn, wake: make(chan bool, 1)}
	g := &db.gc
	g.mu.Lock()
	g.queue = append(g.queue, op)
	if g.busy {
		g.mu.Unlock()
		if lead := <-op.wake; !lead {
			return op.tx, op.err
		}
		g.mu.Lock()
	} else {
		g.busy = true
	}
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()

	db.commit(batch)

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].wake <- true
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return op.tx, op.err
}

func (db *DB) commit(batch []*writeOp) {
	for len(batch) > 0 {
		failed := -1
		err := db.boltUpdate(func(btx *bolt.Tx) (bool, error) {
			appended := false
			for i, op := range batch {
				op.tx = &Tx{db: db, tx: btx}
				if err := safeCall(op.fn, op.tx); err != nil {
					failed = i
					return false, err
				}
				appended = appended || op.tx.signal
			}
			return appended, nil
		})
		if failed >= 0 {
			op := batch[failed]
			batch = slices.Delete(batch, failed, failed+1)
			op.err = db.boltUpdate(func(btx *bolt.Tx) (bool, error) {
				op.tx = &Tx{db: db, tx: btx}
				err := safeCall(op.fn, op.tx)
				return op.tx.signal, err
			})
			op.wake <- false // buffered: the leader's own op is never waited on, so this cannot block
			continue
		}
		for _, op := range batch {
			op.err = err
			op.wake <- false
		}
		return
	}
}

func safeCall(fn func(*Tx) error, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("buffer: write panicked: %v", p)
		}
	}()
	return fn(tx)
}

// storageError explains a failed write; bbolt rolled the transaction back, so nothing stored
// earlier is affected.
func (db *DB) storageError(what string, err error) error {
	if diskFull(err) {
		return fmt.Errorf("buffer: %s: the disk holding %s is full; nothing stored was lost, free some space (old logs, updates) and retry: %w", what, db.path, err)
	}
	return fmt.Errorf("buffer: %s: cannot write %s; nothing stored was lost: %w", what, db.path, err)
}

// IsDiskFull reports whether err, from any write of the store (Append, Update and what is
// built on them), failed because the disk holding the file is full: the caller can say so
// (the API answers 503) instead of reporting an internal error.
func IsDiskFull(err error) bool { return err != nil && diskFull(err) }

// diskFull reports whether err means the disk (or the process's file size limit) is full.
// bbolt formats some of its I/O errors with %s, which loses the errno, hence the text match.
func diskFull(err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{syscall.ENOSPC.Error(), syscall.EFBIG.Error(), syscall.EDQUOT.Error()} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// endTx counts the refusals of a finished transaction, committed or not.
func (db *DB) endTx(t *Tx) {
	if t == nil {
		return
	}
	for _, r := range t.refused {
		db.countRefusal(r.kind, r.reason)
	}
	t.refused = nil
}
