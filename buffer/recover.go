package buffer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// What a person does with a store file that Open refused (docs/delivery.md "When the state
// file is lost or damaged"): move it aside and start a new store (MoveAside), put a backup in
// its place (Restore), and take what can still be read out of it (Salvage).

// MoveAside renames the store file at path to "<path>.old-<UTC time>" (never over an earlier
// one), with its sidecar beside it as "<that>.last", so that the next Open starts a new store.
// It returns where the file went ("" when there was no file, only a sidecar to move).
func MoveAside(path string, now time.Time) (string, error) {
	base := path + ".old-" + now.UTC().Format("20060102T150405Z")
	to := base
	for i := 2; ; i++ {
		_, err1 := os.Lstat(to)
		_, err2 := os.Lstat(SidecarPath(to))
		if errors.Is(err1, os.ErrNotExist) && errors.Is(err2, os.ErrNotExist) {
			break
		}
		to = base + "-" + strconv.Itoa(i)
	}
	moved := ""
	if err := os.Rename(path, to); err == nil {
		moved = to
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("buffer: move %s aside: %w", path, err)
	}
	if err := os.Rename(SidecarPath(path), SidecarPath(to)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return moved, fmt.Errorf("buffer: move %s aside: %w", SidecarPath(path), err)
	}
	// The count of unfinished checks belonged to the old file.
	os.Remove(path + ".checking")
	os.Remove(SidecarPath(path) + ".tmp")
	if err := syncDir(filepath.Dir(path)); err != nil {
		return moved, fmt.Errorf("buffer: move %s aside: %w", path, err)
	}
	return moved, nil
}

// ErrGoodStore: Restore found a state file that opens and passes its checks, and was not told
// to replace it.
var ErrGoodStore = errors.New("buffer: a good store file is in place")

// Restore puts a copy of the store file backup at path, after checking that the copy opens
// and passes every check Open makes. A state file at path that opens fine is only replaced
// when force is set (ErrGoodStore otherwise); a replaced or refused one is moved aside
// (MoveAside). It returns where the old file went ("" if there was none).
//
// The restored store gets a new incarnation: the backup is older than the file it replaces,
// whose later records may have been delivered under the sequence numbers the backup would
// hand out again. The backup's own records keep their ids, so the receiver de-duplicates those
// it already has.
func Restore(backup, path string, force bool, opts Options) (movedTo string, err error) {
	if fi, err := os.Stat(backup); err != nil {
		return "", fmt.Errorf("buffer: restore: %w", err)
	} else if fi.IsDir() || fi.Size() == 0 {
		return "", fmt.Errorf("buffer: restore: %s is not a store file (empty or a directory)", backup)
	}
	if _, err := os.Stat(path); err == nil {
		db, err := Open(path, opts)
		switch {
		case err == nil:
			db.Close()
			if !force {
				return "", fmt.Errorf("%w: %s opens and passes its checks; give --force to replace it with %s", ErrGoodStore, path, backup)
			}
		case errors.Is(err, ErrLocked):
			return "", err
		case !errors.Is(err, ErrCorrupt):
			return "", fmt.Errorf("buffer: restore: %w", err)
		}
	}
	tmp := path + ".restore"
	cleanup := func() {
		os.Remove(tmp)
		os.Remove(SidecarPath(tmp))
		os.Remove(tmp + ".checking")
	}
	cleanup()
	if err := copyFile(backup, tmp); err != nil {
		cleanup()
		return "", fmt.Errorf("buffer: restore: copy %s: %w", backup, err)
	}
	db, err := Open(tmp, opts)
	if err != nil {
		cleanup()
		return "", fmt.Errorf("buffer: restore: the backup %s cannot be used: %w", backup, err)
	}
	err = db.renewIncarnation()
	db.Close()
	if err != nil {
		cleanup()
		return "", fmt.Errorf("buffer: restore: %w", err)
	}
	if movedTo, err = MoveAside(path, db.now()); err != nil {
		cleanup()
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return movedTo, fmt.Errorf("buffer: restore: %w", err)
	}
	if err := os.Rename(SidecarPath(tmp), SidecarPath(path)); err != nil {
		return movedTo, fmt.Errorf("buffer: restore: %w", err)
	}
	return movedTo, syncDir(filepath.Dir(path))
}

// renewIncarnation gives the store a new incarnation and rewrites the sidecar.
func (db *DB) renewIncarnation() error {
	inc, err := newIncarnation()
	if err != nil {
		return err
	}
	var s sidecar
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(keyIncarnation, []byte(inc)); err != nil {
			return err
		}
		if err := putU64(meta, keyCreated, uint64(db.now().UnixNano())); err != nil {
			return err
		}
		s = sidecar{incarnation: inc, txid: uint64(tx.ID()), next: getU64(meta, keyNext)}
		return nil
	})
	if err != nil {
		return err
	}
	db.inc, db.created = inc, db.now()
	db.sideMu.Lock()
	defer db.sideMu.Unlock()
	if db.side != nil {
		db.side.Close()
	}
	db.side, err = createSidecar(db.path, s)
	db.sideTx = s.txid
	return err
}

// salvageOutbox reads the records of a damaged outbox in seq order. Where a page cannot be
// read, it seeks past it: keys are sequence numbers, so it probes ever further ahead (1, 2, 4,
// … past the last good one) until the cursor lands on a page it can read, and names the range
// it had to skip.
func salvageOutbox(ob *bolt.Bucket, rep *SalvageReport) []Record {
	var recs []Record
	c := ob.Cursor()
	// step runs one cursor move and the read of its record; ok is false when it faulted.
	step := func(move func() ([]byte, []byte)) (k []byte, rec Record, bad error, ok bool) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if p := recover(); p != nil {
				ok = false
			}
		}()
		k, v := move()
		if k == nil {
			return nil, rec, nil, true
		}
		seq, good := keySeq(k)
		if !good {
			return append([]byte{}, k...), rec, fmt.Errorf("key %x is not a sequence number", k), true
		}
		r, err := decodeRecordOpt(seq, v, false)
		if err != nil {
			return append([]byte{}, k...), rec, err, true
		}
		r.Payload = append([]byte{}, r.Payload...)
		return append([]byte{}, k...), r, nil, true
	}
	last := uint64(0)
	k, r, bad, ok := step(c.First)
	for {
		if !ok {
			// The page after seq last is unreadable: probe further ahead.
			found := false
			for d := uint64(1); d != 0 && last+d > last; d *= 2 {
				target := last + d
				k, r, bad, ok = step(func() ([]byte, []byte) { return c.Seek(seqKey(target)) })
				if ok {
					rep.Unreadable = append(rep.Unreadable, fmt.Sprintf("outbox records after seq %d up to seq %d: unreadable page", last, target-1))
					found = true
					break
				}
			}
			if !found {
				rep.Unreadable = append(rep.Unreadable, fmt.Sprintf("outbox records after seq %d: unreadable page", last))
				return recs
			}
		}
		if k == nil {
			return recs
		}
		if seq, good := keySeq(k); good {
			last = seq
		}
		if bad != nil {
			rep.Unreadable = append(rep.Unreadable, fmt.Sprintf("outbox record %x: %v", k, bad))
		} else {
			recs = append(recs, r)
		}
		k, r, bad, ok = step(c.Next)
	}
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}

// SalvageReport says what Salvage took from a damaged file and what it could not read.
type SalvageReport struct {
	Incarnation string   // of the damaged file, "" if unreadable or from before incarnations
	Records     int      // undelivered records imported into the outbox under new ids
	Documents   int      // documents copied (work orders, scans, …) under SalvagedBucket
	DeadLetters int      // records the receiver had rejected, left in the old file
	Unreadable  []string // what could not be read, one line each
	Refused     int      // records the outbox refused (full, too large)
}

// SalvagedBucket is the document bucket that Salvage copies an old file's bucket into: the
// old documents are kept apart from the live ones, whose ids (work order numbers) they may
// repeat.
func SalvagedBucket(from, bucket string) string { return "salvaged." + from + "/" + bucket }

// Salvage reads the damaged store file old (read-only, as far as it can: a bucket or value
// that fails to read is skipped and named in the report) and imports into db its undelivered
// records, appended to the outbox under db's new ids, and its documents, under
// SalvagedBucket(<old incarnation or "old">, bucket). The old file is not changed.
//
// An undelivered record may have reached the receiver before the file was damaged (its receipt
// lost): under its new id it is stored there a second time.
func Salvage(old string, db *DB) (rep SalvageReport, err error) {
	bdb, err := openBolt(old, 5*time.Second, true)
	if err != nil {
		return rep, fmt.Errorf("buffer: salvage: bbolt cannot open %s at all (nothing can be read from it): %w", old, err)
	}
	defer bdb.Close()
	type doc struct {
		bucket, key string
		value       []byte
	}
	var recs []Record
	var docs []doc
	err = bdb.View(func(tx *bolt.Tx) error {
		protect := func(what string, fn func() error) {
			defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
			defer func() {
				if p := recover(); p != nil {
					rep.Unreadable = append(rep.Unreadable, fmt.Sprintf("%s: reading faulted: %v", what, p))
				}
			}()
			if err := fn(); err != nil {
				rep.Unreadable = append(rep.Unreadable, fmt.Sprintf("%s: %v", what, err))
			}
		}
		protect("meta", func() error {
			if meta := tx.Bucket(bucketMeta); meta != nil {
				if inc := string(meta.Get(keyIncarnation)); isIncarnation(inc) {
					rep.Incarnation = inc
				}
			}
			return nil
		})
		protect("outbox", func() error {
			ob := tx.Bucket(bucketOutbox)
			if ob == nil {
				return errors.New("bucket missing")
			}
			recs = salvageOutbox(ob, &rep)
			return nil
		})
		protect("dead letters", func() error {
			if d := tx.Bucket(bucketDead); d != nil {
				rep.DeadLetters = d.Stats().KeyN
			}
			return nil
		})
		protect("documents", func() error {
			d := tx.Bucket(bucketDocs)
			if d == nil {
				return nil
			}
			return d.ForEachBucket(func(name []byte) error {
				protect("documents "+string(name), func() error {
					return d.Bucket(name).ForEach(func(k, v []byte) error {
						if v != nil {
							docs = append(docs, doc{string(name), string(k), append([]byte{}, v...)})
						}
						return nil
					})
				})
				return nil
			})
		})
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("buffer: salvage %s: %w", old, err)
	}
	from := rep.Incarnation
	if from == "" {
		from = "old"
	}
	// One transaction per record, so that one the outbox refuses does not take the others.
	for _, r := range recs {
		if _, err := db.Append(context.Background(), r.Kind, r.Topic, r.Payload); err != nil {
			if errors.Is(err, ErrFull) || errors.Is(err, ErrTooLarge) {
				rep.Refused++
				continue
			}
			return rep, fmt.Errorf("buffer: salvage: import record %s: %w", r.ID, err)
		}
		rep.Records++
	}
	if len(docs) > 0 {
		err := db.Update(func(tx *Tx) error {
			for _, d := range docs {
				if err := tx.Put(SalvagedBucket(from, d.bucket), d.key, d.value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return rep, fmt.Errorf("buffer: salvage: import documents: %w", err)
		}
		rep.Documents = len(docs)
	}
	return rep, nil
}
