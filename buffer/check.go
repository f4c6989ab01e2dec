package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// checkFile reads the whole file: first every bucket and value this package stores (decoding
// records), then bbolt's page-level consistency check.
//
// The walk comes first and runs with SetPanicOnFault: a damaged length or page id can point a
// read past the end of the memory map, which would otherwise kill the process with SIGSEGV at
// every start (a crash loop that never reaches the move-aside). bbolt's Check runs on a
// goroutine of its own that we cannot protect, so it only gets a file whose pages the walk
// has already read safely.
func checkFile(bdb *bolt.DB) (tally, error) {
	var tl tally
	err := bdb.View(func(tx *bolt.Tx) error {
		var err error
		tl, err = walk(tx)
		return err
	})
	if err != nil {
		return tl, &corruption{err: err}
	}
	// A damaged overflow count can send bbolt's check into a loop over billions of page ids;
	// bound it by time. On a timeout the check's read transaction is still open, so the
	// database cannot be closed: Open abandons it (see corruption.abandon).
	type result struct {
		n     int
		found []string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.err = bdb.View(func(tx *bolt.Tx) error {
			// Drain the whole channel: the checker goroutine blocks until it is read.
			for err := range tx.Check(bolt.WithKVStringer(lenStringer{})) {
				if r.n++; r.n <= 3 {
					r.found = append(r.found, err.Error())
				}
			}
			return nil
		})
		done <- r
	}()
	budget := checkBudget(bdb)
	deadline := time.NewTimer(budget)
	defer deadline.Stop()
	// bbolt's check reads every page through the memory map; drop the pages it has read as it
	// goes, or the whole file would count in the resident set at every start (see releaser).
	tick := time.NewTicker(releaseTick)
	defer tick.Stop()
	var r result
wait:
	for {
		select {
		case r = <-done:
			break wait
		case <-tick.C:
			bdb.View(func(tx *bolt.Tx) error { return releaseMapped(tx) })
		case <-deadline.C:
			return tl, &corruption{err: fmt.Errorf("bbolt's consistency check did not finish in %s", budget), abandon: true}
		}
	}
	bdb.View(func(tx *bolt.Tx) error { return releaseMapped(tx) })
	if r.err != nil {
		return tl, &corruption{err: r.err}
	}
	if r.n > 0 {
		msg := strings.Join(r.found, "; ")
		if r.n > 3 {
			msg += fmt.Sprintf("; and %d more", r.n-3)
		}
		return tl, &corruption{err: errors.New(msg)}
	}
	return tl, nil
}

// checkBudget is how long bbolt's check may take: generous for a slow SD card (a minute, plus
// a second per 4 MB), since only a damaged file comes near it.
var checkBudget = func(bdb *bolt.DB) time.Duration {
	size := int64(0)
	if fi, err := os.Stat(bdb.Path()); err == nil {
		size = fi.Size()
	}
	return time.Minute + time.Duration(size/(4<<20))*time.Second
}

// lenStringer names keys and values in bbolt's check messages by length only: on a damaged
// page the bytes themselves may lie outside the memory map, and Check's goroutine cannot
// recover from the fault that reading them would cause.
type lenStringer struct{}

func (lenStringer) KeyToString(k []byte) string   { return fmt.Sprintf("<%d-byte key>", len(k)) }
func (lenStringer) ValueToString(v []byte) string { return fmt.Sprintf("<%d-byte value>", len(v)) }

// checkGuarded runs checkFile under a marker file "<path>.checking" that counts the checks
// begun and not finished. Some damage can still crash the process inside bbolt's Check (on
// its own goroutine, out of our reach); without the marker the daemon would crash at every
// start. After two unfinished checks in a row the file is treated as corrupt (refused, and the
// marker kept so that it stays refused until a person acts), not after one, so that a power
// cut during a check does not on its own cost the outbox.
func checkGuarded(path string, bdb *bolt.DB, log *slog.Logger) (tally, error) {
	marker := path + ".checking"
	n := 0
	if b, err := os.ReadFile(marker); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if n >= 2 {
		return tally{}, &corruption{err: fmt.Errorf("the integrity check did not finish the last %d times (the process died in it)", n)}
	}
	// Best effort: on a full disk the marker cannot be written, and the store must still open
	// (its records are waiting to be sent), only without the crash-loop guard this time.
	werr := writeSynced(marker, []byte(strconv.Itoa(n+1)+"\n"))
	wrote := werr == nil
	if !wrote {
		log.Warn("buffer: cannot write the check marker, checking without it", "path", marker, "err", werr)
		os.Remove(marker)
	}
	tl, err := checkFile(bdb)
	if wrote {
		os.Remove(marker)
	}
	return tl, err
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// tally is what walk counted, to check the bookkeeping in the meta and bykind buckets against.
type tally struct {
	depth, bytes, dead uint64
	byKind             map[string]uint64 // outbox records by kind
	indexOK            bool              // the kinds buckets hold exactly one right entry per outbox record
}

// walk reads every value of the file's buckets (those that exist; a new file has none).
func walk(tx *bolt.Tx) (tl tally, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("reading the file faulted: %v", p)
		}
	}()
	var rel releaser
	// The kinds index is checked record by record (its entry exists with the right length)
	// and by count (no entries beyond those), not by building a map of it: a map of a large
	// outbox would cost megabytes of heap at every start.
	tl.indexOK = true
	tl.byKind = map[string]uint64{}
	kinds := tx.Bucket(bucketKinds)
	kindBuckets := map[string]*bolt.Bucket{}
	if ob := tx.Bucket(bucketOutbox); ob != nil {
		err := ob.ForEach(func(k, v []byte) error {
			rel.read(tx, len(k)+len(v))
			seq, ok := keySeq(k)
			if !ok {
				return fmt.Errorf("outbox key %x is not a sequence number", k)
			}
			r, err := decodeRecordOpt(seq, v, false)
			if err != nil {
				return &DecodeError{Bucket: string(bucketOutbox), Key: append([]byte{}, k...), Raw: rawCopy(v), Err: err}
			}
			tl.depth++
			tl.bytes += uint64(len(r.Payload))
			tl.byKind[r.Kind]++
			if !tl.indexOK || kinds == nil {
				tl.indexOK = false
				return nil
			}
			kb, ok := kindBuckets[r.Kind]
			if !ok {
				kb = kinds.Bucket([]byte(r.Kind))
				kindBuckets[r.Kind] = kb
			}
			var iv []byte
			if kb != nil {
				iv = kb.Get(k)
			}
			if plen, m := binary.Uvarint(iv); iv == nil || m <= 0 || plen != uint64(len(r.Payload)) {
				tl.indexOK = false
			}
			return nil
		})
		if err != nil {
			return tl, err
		}
	}
	if db := tx.Bucket(bucketDead); db != nil {
		err := db.ForEach(func(k, v []byte) error {
			rel.read(tx, len(k)+len(v))
			seq, ok := keySeq(k)
			if !ok {
				return fmt.Errorf("dead key %x is not a sequence number", k)
			}
			if _, err := decodeDeadOpt(seq, v, false); err != nil {
				return &DecodeError{Bucket: string(bucketDead), Key: append([]byte{}, k...), Raw: rawCopy(v), Err: err}
			}
			tl.dead++
			return nil
		})
		if err != nil {
			return tl, err
		}
	}
	if kb := tx.Bucket(bucketKinds); kb != nil {
		n := 0
		err := kb.ForEachBucket(func(kind []byte) error {
			return kb.Bucket(kind).ForEach(func(k, v []byte) error {
				rel.read(tx, len(k)+len(v))
				n++
				return nil
			})
		})
		if err != nil {
			return tl, err
		}
		if uint64(n) != tl.depth {
			tl.indexOK = false
		}
	}
	// Touch every key and value of every bucket, nested ones included, so that a bad length
	// faults here (recovered) rather than in bbolt's Check below.
	var sum byte
	var touch func(b *bolt.Bucket) error
	touch = func(b *bolt.Bucket) error {
		// Seeking every key also makes the binary searches read the keys of the branch
		// pages above it, which ForEach alone never looks at.
		seek := b.Cursor()
		return b.ForEach(func(k, v []byte) error {
			rel.read(tx, len(k)+len(v))
			for _, c := range k {
				sum ^= c
			}
			seek.Seek(k)
			if v == nil {
				if nb := b.Bucket(k); nb != nil {
					return touch(nb)
				}
			}
			for _, c := range v {
				sum ^= c
			}
			return nil
		})
	}
	err = tx.ForEach(func(name []byte, b *bolt.Bucket) error { return touch(b) })
	_ = sum
	if err != nil {
		return tl, err
	}
	return tl, nil
}

// Check runs bbolt's consistency check over the whole file (the check Open runs), for a
// health endpoint or an operator's command. It reads every page: expect it to take a while
// on a large file.
func (db *DB) Check() error {
	if _, err := checkFile(db.bolt); err != nil {
		return fmt.Errorf("buffer: check %s: %w", db.path, err)
	}
	return nil
}
