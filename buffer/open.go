package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// CorruptError reports a store file that Open refused to use: it cannot be read, fails its
// integrity check, or is behind its sidecar (ErrRolledBack). Open leaves the file where it is,
// byte for byte; only a person decides what happens to it (MoveAside, Restore, Salvage).
type CorruptError struct {
	Path string // the store file, left in place
	Err  error  // what was found
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("buffer: store file %s cannot be used: %v; it was left in place untouched: restore a backup, or move it aside, start a new store and salvage its records", e.Path, e.Err)
}

func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// corruption marks an error found while opening that means the file's content is bad, as
// opposed to a file we could not open at all (permissions, lock, missing directory).
type corruption struct {
	err     error
	abandon bool // the bbolt handle is stuck in a check and must not be closed
}

func (c *corruption) Error() string { return c.err.Error() }
func (c *corruption) Unwrap() error { return c.err }

// Open opens or creates the store file at path (mode 0600, its directory 0700 if missing).
//
// Only a missing file (with no sidecar, see SidecarPath) creates a new store. A file that is
// empty, that bbolt cannot open, that fails bbolt's consistency check or this package's own
// bookkeeping check, or that is behind its sidecar (rolled back to an older state:
// ErrRolledBack) is refused with a *CorruptError (errors.Is ErrCorrupt) and left in place
// untouched; Open never re-creates over it or moves it. A file locked by another process
// yields ErrLocked after Options.LockTimeout.
func Open(path string, opts Options) (*DB, error) {
	db := &DB{path: path, opts: opts, now: opts.Now, log: opts.Logger, signal: make(chan struct{}, 1)}
	if db.now == nil {
		db.now = time.Now
	}
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}
	db.ctr.since = db.now()
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = defaultLockTimeout
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("buffer: create the store directory: %w", err)
	}
	side, haveSide, sideErr := readSidecar(path)
	fi, statErr := os.Stat(path)
	switch {
	case errors.Is(statErr, os.ErrNotExist):
		if haveSide {
			return nil, db.refuse(fmt.Errorf("%w: the file is missing but %s records a store of incarnation %s that was there", ErrRolledBack, SidecarPath(path), side.incarnation))
		}
		db.isNew = true
	case statErr != nil:
		return nil, fmt.Errorf("buffer: open %s: %w", path, statErr)
	case fi.Size() == 0:
		// bbolt would quietly initialise it as a new store.
		return nil, db.refuse(errors.New("the file is empty (a power cut while it was being created, or a full disk)"))
	}
	if sideErr != nil {
		return nil, db.refuse(fmt.Errorf("%w (if the store file is known good, remove the sidecar)", sideErr))
	}
	bdb, err := openBolt(path, timeout, false)
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is held by another process (is another obdgw running? stop it first); gave up after %s: %w", ErrLocked, path, timeout, err)
	}
	var after sidecar
	if err == nil {
		var tl tally
		if !db.isNew {
			err = checkSize(bdb)
		}
		if err == nil {
			tl, err = checkGuarded(path, bdb, db.log)
		}
		if err == nil && haveSide {
			err = checkSidecar(bdb, side)
		}
		if err == nil {
			after, err = db.initBuckets(bdb, tl)
		}
		var c *corruption
		if err != nil && !(errors.As(err, &c) && c.abandon) {
			bdb.Close()
		}
	}
	if err != nil {
		var c *corruption
		if !errors.As(err, &c) {
			return nil, fmt.Errorf("buffer: open %s: %w", path, err)
		}
		return nil, db.refuse(c.err)
	}
	db.bolt = bdb
	db.inc = after.incarnation
	db.sideTx = after.txid
	if db.side, err = createSidecar(path, after); err != nil {
		db.log.Error("buffer: cannot write the store sidecar; a rollback of the file would go unnoticed", "path", SidecarPath(path), "err", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		// Records carry VINs and plate numbers: keep an older, looser file private too.
		if err := os.Chmod(path, 0o600); err != nil {
			db.log.Warn("buffer: cannot tighten store file mode", "path", path, "mode", fi.Mode().Perm(), "err", err)
		}
	}
	return db, nil
}

// refuse reports a store file that cannot be used; the file stays where it is.
func (db *DB) refuse(err error) error {
	db.log.Error("buffer: store file cannot be used, left in place", "path", db.path, "err", err)
	return &CorruptError{Path: db.path, Err: err}
}

// checkSize refuses a file shorter than the pages its meta page counts: bbolt grows the file
// before it commits, so a shorter one was cut (a copy that did not finish, a full disk).
func checkSize(bdb *bolt.DB) error {
	fi, err := os.Stat(bdb.Path())
	if err != nil {
		return err
	}
	if ps := int64(bdb.Info().PageSize); ps > 0 && fi.Size()%ps != 0 {
		return &corruption{err: fmt.Errorf("the file is truncated: %d bytes, not a whole number of %d-byte pages", fi.Size(), ps)}
	}
	return bdb.View(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			return &corruption{err: fmt.Errorf("the file is truncated: %d bytes, but its pages reach %d bytes", fi.Size(), tx.Size())}
		}
		return nil
	})
}

// checkSidecar compares the file with what its sidecar recorded after the last commit that
// added records: a file behind it has lost commits (bbolt fell back to its older meta page,
// or an older copy was put in its place).
func checkSidecar(bdb *bolt.DB, side sidecar) error {
	return bdb.View(func(tx *bolt.Tx) error {
		var inc string
		var next uint64
		if meta := tx.Bucket(bucketMeta); meta != nil {
			inc = string(meta.Get(keyIncarnation))
			next = getU64(meta, keyNext)
		}
		txid := uint64(tx.ID())
		switch {
		case inc != side.incarnation:
			if inc == "" {
				inc = "none"
			}
			return &corruption{err: fmt.Errorf("%w: the file has incarnation %s but its sidecar records %s: this is not the file last written here, or it lost its newest commits", ErrRolledBack, inc, side.incarnation)}
		case txid < side.txid || next < side.next:
			return &corruption{err: fmt.Errorf("%w: the file rolled back to an older state (transaction %d, next record %d) than its sidecar records (transaction %d, next record %d); its newest records and settlements are missing", ErrRolledBack, txid, next, side.txid, side.next)}
		}
		return nil
	})
}

// openBolt opens the file, turning the panics bbolt may raise on a mangled file into errors.
func openBolt(path string, timeout time.Duration, readOnly bool) (bdb *bolt.DB, err error) {
	var f *os.File
	// bbolt reads the meta and freelist pages through its memory map while opening; a damaged
	// page id can fault (see checkFile).
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if f != nil {
				// Release the flock of the half-opened database, so that another attempt
				// (--new-store, restore) in this process can open the path.
				unlock(f)
				f.Close()
			}
			bdb, err = nil, &corruption{err: fmt.Errorf("bbolt panicked: %v", p)}
		}
	}()
	bdb, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:  timeout,
		ReadOnly: readOnly,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			var err error
			f, err = os.OpenFile(name, flag, perm)
			return f, err
		},
	})
	if err != nil && isContentError(err) {
		err = &corruption{err: err}
	}
	return bdb, err
}

func isContentError(err error) bool {
	if errors.Is(err, bolt.ErrInvalid) || errors.Is(err, bolt.ErrVersionMismatch) || errors.Is(err, bolt.ErrChecksum) {
		return true
	}
	// bbolt reports a file shorter than its two meta pages with an untyped error.
	return strings.Contains(err.Error(), "file size too small")
}

// initBuckets creates the buckets of a new file and checks the bookkeeping of an old one. A
// file without an incarnation (new, or from an older obdgw) gets one; its records keep their
// ids. It returns what the sidecar is to record after this transaction.
func (db *DB) initBuckets(bdb *bolt.DB, tl tally) (after sidecar, err error) {
	err = bdb.Update(func(tx *bolt.Tx) error {
		// A file from before the bykind bucket (see storeFormat) gets its counts below.
		upgrade := tx.Bucket(bucketByKind) == nil && tx.Bucket(bucketMeta) != nil
		for _, name := range [][]byte{bucketMeta, bucketOutbox, bucketDead, bucketKinds, bucketByKind, bucketDocs} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keyFormat); {
		case v == nil:
			if err := meta.Put(keyFormat, []byte{storeFormat}); err != nil {
				return err
			}
		case len(v) != 1:
			return &corruption{err: fmt.Errorf("meta/format is %x", v)}
		case v[0] != storeFormat:
			return fmt.Errorf("the file has store format %d but this obdgw knows format %d (was obdgw downgraded? install the newer version)", v[0], storeFormat)
		}
		for _, k := range [][]byte{keyNext, keyDepth, keyBytes, keyDead} {
			if v := meta.Get(k); v != nil && len(v) != 8 {
				return &corruption{err: fmt.Errorf("meta/%s is %x, want 8 bytes", k, v)}
			}
		}
		// Depth, bytes, the counts by kind and the kinds index are kept in the same
		// transactions as the records, so they only disagree after damage the checks above
		// could not see (or a bug): rebuild them from the records rather than refuse a file
		// whose records all read fine.
		byKindOK := sameCounts(tx.Bucket(bucketByKind), tl.byKind)
		switch {
		case getU64(meta, keyDepth) != tl.depth || getU64(meta, keyBytes) != tl.bytes || getU64(meta, keyDead) != tl.dead || !tl.indexOK || !byKindOK && !upgrade:
			db.log.Warn("buffer: outbox bookkeeping disagrees with the records, rebuilding it",
				"depth", getU64(meta, keyDepth), "records", tl.depth, "bytes", getU64(meta, keyBytes), "payload_bytes", tl.bytes,
				"dead", getU64(meta, keyDead), "dead_records", tl.dead, "index_ok", tl.indexOK, "by_kind_ok", byKindOK)
			if err := rebuild(tx, tl); err != nil {
				return err
			}
		case !byKindOK:
			db.log.Info("buffer: counting the outbox by kind once (file from an older obdgw)", "records", tl.depth, "kinds", len(tl.byKind))
			if err := storeCounts(tx, tl.byKind); err != nil {
				return err
			}
		}
		// A next sequence at or below a stored one would reuse IDs the receiver has seen.
		next := getU64(meta, keyNext)
		for _, b := range [][]byte{bucketOutbox, bucketDead} {
			if k, _ := tx.Bucket(b).Cursor().Last(); k != nil {
				seq, ok := keySeq(k)
				if !ok {
					return &corruption{err: fmt.Errorf("%s key %x is not a sequence number", b, k)}
				}
				if seq >= next {
					return &corruption{err: fmt.Errorf("%s holds seq %d but the next seq is %d", b, seq, next)}
				}
			}
		}
		inc := string(meta.Get(keyIncarnation))
		switch {
		case inc == "":
			var err error
			if inc, err = newIncarnation(); err != nil {
				return err
			}
			if err := meta.Put(keyIncarnation, []byte(inc)); err != nil {
				return err
			}
			if err := putU64(meta, keyCreated, uint64(db.now().UnixNano())); err != nil {
				return err
			}
			if !db.isNew {
				db.log.Info("buffer: store file from an older obdgw gets an incarnation; its records keep their ids", "incarnation", inc)
			}
		case !isIncarnation(inc):
			return &corruption{err: fmt.Errorf("meta/incarnation is %q", clipText(inc))}
		}
		db.created = time.Unix(0, int64(getU64(meta, keyCreated)))
		after = sidecar{incarnation: inc, txid: uint64(tx.ID()), next: getU64(meta, keyNext)}
		return nil
	})
	return after, err
}

func rebuild(tx *bolt.Tx, tl tally) error {
	meta := tx.Bucket(bucketMeta)
	for k, n := range map[string]uint64{string(keyDepth): tl.depth, string(keyBytes): tl.bytes, string(keyDead): tl.dead} {
		if err := putU64(meta, []byte(k), n); err != nil {
			return err
		}
	}
	if err := storeCounts(tx, tl.byKind); err != nil {
		return err
	}
	if err := tx.DeleteBucket(bucketKinds); err != nil {
		return err
	}
	kinds, err := tx.CreateBucket(bucketKinds)
	if err != nil {
		return err
	}
	// Index the outbox again from its records (walk has read them all without error).
	return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
		kind, plen, err := recordMeta(v)
		if err != nil {
			return &DecodeError{Bucket: string(bucketOutbox), Key: append([]byte{}, k...), Raw: rawCopy(v), Err: err}
		}
		kb, err := kinds.CreateBucketIfNotExists([]byte(kind))
		if err != nil {
			return err
		}
		kb.FillPercent = 1.0
		return kb.Put(append([]byte{}, k...), binary.AppendUvarint(nil, uint64(plen)))
	})
}

// sameCounts reports whether the bykind bucket b holds exactly the counts walk made.
func sameCounts(b *bolt.Bucket, byKind map[string]uint64) bool {
	n := 0
	err := b.ForEach(func(k, v []byte) error {
		n++
		if want, ok := byKind[string(k)]; !ok || len(v) != 8 || binary.BigEndian.Uint64(v) != want {
			return errStale
		}
		return nil
	})
	return err == nil && n == len(byKind)
}

var errStale = errors.New("stale")

// storeCounts replaces the bykind bucket with the counts walk made.
func storeCounts(tx *bolt.Tx, byKind map[string]uint64) error {
	if tx.Bucket(bucketByKind) != nil {
		if err := tx.DeleteBucket(bucketByKind); err != nil {
			return err
		}
	}
	b, err := tx.CreateBucket(bucketByKind)
	if err != nil {
		return err
	}
	for kind, n := range byKind {
		if err := putU64(b, []byte(kind), n); err != nil {
			return err
		}
	}
	return nil
}
