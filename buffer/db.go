package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Top-level buckets. Documents live in nested buckets under docs, so callers may name their
// buckets freely without colliding with the outbox's own.
var (
	bucketMeta   = []byte("meta")   // format, next seq, depth, bytes, dead count
	bucketOutbox = []byte("outbox") // seq → record (codec.go)
	bucketDead   = []byte("dead")   // original seq → dead record
	bucketKinds  = []byte("kinds")  // kind → {seq → uvarint payload length}: oldest-of-kind in O(1)
	bucketDocs   = []byte("docs")   // caller's bucket → key → document

	keyFormat = []byte("format")
	keyNext   = []byte("next")
	keyDepth  = []byte("depth")
	keyBytes  = []byte("bytes")
	keyDead   = []byte("dead")
)

// storeFormat is the layout of the buckets above; bump it with a migration when it changes.
const storeFormat = 1

const defaultLockTimeout = 5 * time.Second

// DB is an open store file. It is safe for concurrent use.
//
// Counters (appended, delivered, dropped, refused, dead-lettered, requeued) are kept in
// memory since Open, not in the file: a refusal happens in a transaction that is rolled back,
// so it could not be persisted there, and Prometheus treats a restart as a counter reset anyway.
// Depth, bytes and the dead-letter count are persisted with the records they describe.
type DB struct {
	bolt   *bolt.DB
	path   string
	opts   Options
	now    func() time.Time
	log    *slog.Logger
	signal chan struct{}

	gc struct { // group commit of concurrent writes, see write
		mu    sync.Mutex
		busy  bool
		queue []*writeOp
	}

	ctrMu sync.Mutex
	ctr   counters

	// mapped counts bytes read through bbolt's memory map since the last releaseMapped.
	mapped atomic.Int64
}

type counters struct {
	since                                             time.Time
	appended, delivered, dropped, refused, dead, requ map[string]uint64
	droppedBy, refusedBy                              map[string]map[string]uint64
}

// Tx is a transaction spanning the outbox and the document buckets. It is only valid inside
// the function passed to Update or View.
type Tx struct {
	db      *DB
	tx      *bolt.Tx
	refused []refusal // counted when the transaction ends, whatever its outcome
	signal  bool
}

type refusal struct{ kind, reason string }

// CorruptError reports a store file that failed its integrity check and where Open moved it.
type CorruptError struct {
	Path    string // where the file was
	MovedTo string // where it is now
	Err     error  // what the check found
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("buffer: store file %s failed its integrity check (%v); moved it to %s: keep that file for recovery, opening again starts an empty store", e.Path, e.Err, e.MovedTo)
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
// A file that bbolt cannot open, or that fails bbolt's consistency check or this package's own
// bookkeeping check, is moved aside to "<path>.corrupt-<UTC timestamp>" and Open returns a
// *CorruptError (errors.Is ErrCorrupt) naming both paths; it never re-creates over it. Calling
// Open again then starts an empty store. A file locked by another process yields ErrLocked after
// Options.LockTimeout.
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
	bdb, err := openBolt(path, timeout)
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is held by another process (is another obdgw running? stop it first); gave up after %s: %w", ErrLocked, path, timeout, err)
	}
	if err == nil {
		var tl tally
		tl, err = checkGuarded(path, bdb, db.log)
		if err == nil {
			err = db.initBuckets(bdb, tl)
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
		moved, mvErr := moveAside(path, db.now())
		if mvErr != nil {
			return nil, fmt.Errorf("buffer: store file %s failed its integrity check (%v) and could not be moved aside, so it was left in place: %w", path, c.err, errors.Join(ErrCorrupt, mvErr))
		}
		db.log.Error("buffer: store file corrupt, moved aside", "path", path, "moved_to", moved, "err", c.err)
		return nil, &CorruptError{Path: path, MovedTo: moved, Err: c.err}
	}
	db.bolt = bdb
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		// Records carry VINs and plate numbers: keep an older, looser file private too.
		if err := os.Chmod(path, 0o600); err != nil {
			db.log.Warn("buffer: cannot tighten store file mode", "path", path, "mode", fi.Mode().Perm(), "err", err)
		}
	}
	return db, nil
}

// openBolt opens the file, turning the panics bbolt may raise on a mangled file into errors.
func openBolt(path string, timeout time.Duration) (bdb *bolt.DB, err error) {
	var f *os.File
	// bbolt reads the meta and freelist pages through its memory map while opening; a damaged
	// page id can fault (see checkFile).
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if f != nil {
				f.Close() // releases the flock of the half-opened database
			}
			bdb, err = nil, &corruption{err: fmt.Errorf("bbolt panicked: %v", p)}
		}
	}()
	bdb, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout: timeout,
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
// start. After two unfinished checks in a row the file is treated as corrupt (moved aside),
// not after one, so that a power cut during a check does not on its own cost the outbox.
func checkGuarded(path string, bdb *bolt.DB, log *slog.Logger) (tally, error) {
	marker := path + ".checking"
	n := 0
	if b, err := os.ReadFile(marker); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if n >= 2 {
		os.Remove(marker)
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

// readMapped is releaser.read for the DB's long-lived readers (PeekAfter, Stats), which may
// run concurrently.
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

// tally is what walk counted, to check the bookkeeping in the meta bucket against.
type tally struct {
	depth, bytes, dead uint64
	indexOK            bool // the kinds buckets hold exactly one right entry per outbox record
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

// initBuckets creates the buckets of a new file and checks the bookkeeping of an old one.
func (db *DB) initBuckets(bdb *bolt.DB, tl tally) error {
	return bdb.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketOutbox, bucketDead, bucketKinds, bucketDocs} {
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
		// Depth, bytes and the kinds index are kept in the same transactions as the records, so
		// they only disagree after damage the checks above could not see (or a bug): rebuild
		// them from the records rather than refuse a file whose records all read fine.
		if getU64(meta, keyDepth) != tl.depth || getU64(meta, keyBytes) != tl.bytes || getU64(meta, keyDead) != tl.dead || !tl.indexOK {
			db.log.Warn("buffer: outbox bookkeeping disagrees with the records, rebuilding it",
				"depth", getU64(meta, keyDepth), "records", tl.depth, "bytes", getU64(meta, keyBytes), "payload_bytes", tl.bytes,
				"dead", getU64(meta, keyDead), "dead_records", tl.dead, "index_ok", tl.indexOK)
			if err := rebuild(tx, tl); err != nil {
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
		return nil
	})
}

func rebuild(tx *bolt.Tx, tl tally) error {
	meta := tx.Bucket(bucketMeta)
	for k, n := range map[string]uint64{string(keyDepth): tl.depth, string(keyBytes): tl.bytes, string(keyDead): tl.dead} {
		if err := putU64(meta, []byte(k), n); err != nil {
			return err
		}
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

// moveAside renames a bad file out of the way, never over an earlier one.
func moveAside(path string, now time.Time) (string, error) {
	base := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	to := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, os.ErrNotExist) {
			break
		}
		to = base + "-" + strconv.Itoa(i)
	}
	if err := os.Rename(path, to); err != nil {
		return "", err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync() // make the rename durable before anyone creates a fresh file
		d.Close()
	}
	return to, nil
}

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
		err := db.bolt.Update(func(btx *bolt.Tx) error {
			for i, op := range batch {
				op.tx = &Tx{db: db, tx: btx}
				if err := safeCall(op.fn, op.tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			op := batch[failed]
			batch = slices.Delete(batch, failed, failed+1)
			op.err = db.bolt.Update(func(btx *bolt.Tx) error {
				op.tx = &Tx{db: db, tx: btx}
				return safeCall(op.fn, op.tx)
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

// Append adds a record at the tail of the outbox, fsynced before it returns.
//
// ctx is checked before the write starts; a write that has started is finished (an fsync
// cannot be taken back). Concurrent Appends share commits (see write). Errors: ErrFull (the
// outbox is at its limits and the kind may not drop, or nothing of its kind is left to drop),
// ErrTooLarge, or a storage error (disk full) after which everything stored before is intact.
func (db *DB) Append(ctx context.Context, kind, topic string, payload []byte) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("buffer: append %s record: %w", kind, err)
	}
	var rec Record
	tx, err := db.write(func(t *Tx) error {
		r, err := t.Append(kind, topic, payload)
		rec = r
		return err
	})
	db.endTx(tx)
	if err != nil {
		if !errors.Is(err, ErrFull) && !errors.Is(err, ErrTooLarge) && kind != "" {
			db.countRefusal(kind, ReasonStorage)
			err = db.storageError("append "+kind+" record", err)
		}
		return Record{}, err
	}
	return rec, nil
}

// storageError explains a failed write; bbolt rolled the transaction back, so nothing stored
// earlier is affected.
func (db *DB) storageError(what string, err error) error {
	if diskFull(err) {
		return fmt.Errorf("buffer: %s: the disk holding %s is full; nothing stored was lost, free some space (old logs, updates) and retry: %w", what, db.path, err)
	}
	return fmt.Errorf("buffer: %s: cannot write %s; nothing stored was lost: %w", what, db.path, err)
}

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

// Peek returns up to max records from the head of the outbox, oldest first.
func (db *DB) Peek(max int) ([]Record, error) { return db.PeekAfter(0, max) }

// PeekAfter returns up to max records with Seq > seq, oldest first, so that an uplink with
// records in flight can fetch the next ones without re-reading those.
func (db *DB) PeekAfter(seq uint64, max int) ([]Record, error) {
	var out []Record
	if max > 0 {
		out = make([]Record, 0, min(max, 1024)) // an uplink asks for a page at a time
	}
	read := 0
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(seqKey(seq + 1)); k != nil && len(out) < max; k, v = c.Next() {
			s, ok := keySeq(k)
			if !ok {
				return &DecodeError{Bucket: string(bucketOutbox), Key: append([]byte{}, k...), Raw: rawCopy(v), Err: errors.New("key is not a sequence number")}
			}
			r, err := decodeRecord(s, v)
			if err != nil {
				return &DecodeError{Bucket: string(bucketOutbox), Key: append([]byte{}, k...), Raw: rawCopy(v), Err: err}
			}
			out = append(out, r)
			read += len(k) + len(v)
		}
		// A drain reads the outbox front to back once: do not let what it has read stay
		// resident (see releaser). The records returned are copies.
		db.readMapped(tx, read)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("buffer: peek: %w", err)
	}
	return out, nil
}

// Ack removes a delivered record. Acking a record that is gone is not an error, so an uplink
// may ack again after a crash between the PUBACK and the Ack.
func (db *DB) Ack(seq uint64) error {
	tx, err := db.write(func(t *Tx) error {
		kind, ok, err := t.remove(seq)
		if ok {
			t.onCommit(func() { db.count(&db.ctr.delivered, kind) })
		}
		return err
	})
	db.endTx(tx)
	if err != nil {
		return fmt.Errorf("buffer: ack %d: %w", seq, err)
	}
	return nil
}

// AckMany removes the delivered records seqs in one transaction (one fsync), as an uplink does
// with the acknowledgements that arrived while the previous commit was on its way to the disk.
// Records already gone are skipped, as with Ack. On an error none of them is removed.
func (db *DB) AckMany(seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	tx, err := db.write(func(t *Tx) error {
		n, bytes := 0, 0
		var kinds []string
		for _, seq := range seqs {
			kind, plen, ok, err := t.unlink(seq)
			if err != nil {
				return err
			}
			if ok {
				n, bytes = n+1, bytes+plen
				kinds = append(kinds, kind)
			}
		}
		t.onCommit(func() {
			for _, k := range kinds {
				db.count(&db.ctr.delivered, k)
			}
		})
		return t.shrink(n, bytes)
	})
	db.endTx(tx)
	if err != nil {
		return fmt.Errorf("buffer: ack %d records from %d on: %w", len(seqs), seqs[0], err)
	}
	return nil
}

// MarkAttempts counts one publish attempt on each of seqs in one transaction; records already
// gone are skipped. The attempt count is a diagnostic for people (a record that keeps failing),
// not part of any delivery guarantee, so an uplink may count attempts in memory and store them
// in one go when its connection ends; a crash before that loses only the count.
func (db *DB) MarkAttempts(seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	_, err := db.write(func(t *Tx) error {
		ob := t.tx.Bucket(bucketOutbox)
		for _, seq := range seqs {
			v := ob.Get(seqKey(seq))
			if v == nil {
				continue
			}
			r, err := decodeRecord(seq, v)
			if err != nil {
				return &DecodeError{Bucket: string(bucketOutbox), Key: seqKey(seq), Raw: rawCopy(v), Err: err}
			}
			r.Attempts++
			if err := ob.Put(seqKey(seq), encodeRecord(&r)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("buffer: mark attempts on %d records: %w", len(seqs), err)
	}
	return nil
}

// MarkAttempt counts one publish attempt. It returns ErrNotFound when the record is gone.
func (db *DB) MarkAttempt(seq uint64) error {
	_, err := db.write(func(t *Tx) error {
		ob := t.tx.Bucket(bucketOutbox)
		v := ob.Get(seqKey(seq))
		if v == nil {
			return ErrNotFound
		}
		r, err := decodeRecord(seq, v)
		if err != nil {
			return &DecodeError{Bucket: string(bucketOutbox), Key: seqKey(seq), Raw: rawCopy(v), Err: err}
		}
		r.Attempts++
		return ob.Put(seqKey(seq), encodeRecord(&r))
	})
	if err != nil {
		return fmt.Errorf("buffer: mark attempt on %d: %w", seq, err)
	}
	return nil
}

// DeadLetter moves a record out of the outbox into the dead letter with a reason. A record
// already in the dead letter is left as it is (no error); an unknown seq gives ErrNotFound.
func (db *DB) DeadLetter(seq uint64, reason string) error {
	_, err := db.write(func(t *Tx) error {
		key := seqKey(seq)
		if t.tx.Bucket(bucketDead).Get(key) != nil {
			return nil
		}
		v := t.tx.Bucket(bucketOutbox).Get(key)
		if v == nil {
			return ErrNotFound
		}
		r, err := decodeRecord(seq, v)
		if err != nil {
			return &DecodeError{Bucket: string(bucketOutbox), Key: key, Raw: rawCopy(v), Err: err}
		}
		if _, _, err := t.remove(seq); err != nil {
			return err
		}
		d := DeadRecord{Record: r, Reason: reason, At: db.now()}
		if err := t.tx.Bucket(bucketDead).Put(key, encodeDead(&d)); err != nil {
			return err
		}
		meta := t.tx.Bucket(bucketMeta)
		if err := putU64(meta, keyDead, getU64(meta, keyDead)+1); err != nil {
			return err
		}
		t.onCommit(func() { db.count(&db.ctr.dead, r.Kind) })
		return nil
	})
	if err != nil {
		return fmt.Errorf("buffer: dead-letter %d: %w", seq, err)
	}
	return nil
}

// DeadLetters lists the dead letter, oldest first.
func (db *DB) DeadLetters() ([]DeadRecord, error) {
	var out []DeadRecord
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDead).ForEach(func(k, v []byte) error {
			s, ok := keySeq(k)
			var d DeadRecord
			err := errors.New("key is not a sequence number")
			if ok {
				d, err = decodeDead(s, v)
			}
			if err != nil {
				return &DecodeError{Bucket: string(bucketDead), Key: append([]byte{}, k...), Raw: rawCopy(v), Err: err}
			}
			out = append(out, d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("buffer: list dead letters: %w", err)
	}
	return out, nil
}

// Requeue moves a dead record back to the tail of the outbox under a new seq, keeping its ID
// (so the receiver can de-duplicate) and its Created time, with Attempts reset to 0. It obeys
// the limits like Append: a full outbox refuses it with ErrFull and the record stays dead.
func (db *DB) Requeue(seq uint64) (Record, error) {
	var rec Record
	tx, err := db.write(func(t *Tx) error {
		key := seqKey(seq)
		v := t.tx.Bucket(bucketDead).Get(key)
		if v == nil {
			return ErrNotFound
		}
		d, err := decodeDead(seq, v)
		if err != nil {
			return &DecodeError{Bucket: string(bucketDead), Key: key, Raw: rawCopy(v), Err: err}
		}
		if err := t.tx.Bucket(bucketDead).Delete(key); err != nil {
			return err
		}
		meta := t.tx.Bucket(bucketMeta)
		if err := putU64(meta, keyDead, getU64(meta, keyDead)-1); err != nil {
			return err
		}
		r := d.Record
		r.Attempts = 0
		rec, err = t.appendRecord(r, true)
		if err == nil {
			t.onCommit(func() { db.count(&db.ctr.requ, r.Kind) })
		}
		return err
	})
	db.endTx(tx)
	if err != nil {
		return Record{}, fmt.Errorf("buffer: requeue %d: %w", seq, err)
	}
	return rec, nil
}

// Stats returns a snapshot of the outbox. On a read error it logs and returns the counters.
func (db *DB) Stats() Stats {
	s := Stats{DepthByKind: map[string]int{}}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		s.Depth = int(getU64(meta, keyDepth))
		s.Bytes = int64(getU64(meta, keyBytes))
		s.DeadLetters = int(getU64(meta, keyDead))
		if k, v := tx.Bucket(bucketOutbox).Cursor().First(); k != nil {
			seq, _ := keySeq(k)
			r, err := decodeRecord(seq, v)
			if err != nil {
				return &DecodeError{Bucket: string(bucketOutbox), Key: append([]byte{}, k...), Raw: rawCopy(v), Err: err}
			}
			s.OldestAge = max(db.now().Sub(r.Created), 0)
		}
		err := tx.Bucket(bucketKinds).ForEachBucket(func(k []byte) error {
			if n := tx.Bucket(bucketKinds).Bucket(k).Stats().KeyN; n > 0 {
				s.DepthByKind[string(k)] = n
			}
			return nil
		})
		// Counting the keys read every page of the kinds index: about 24 bytes a record.
		db.readMapped(tx, s.Depth*24)
		return err
	})
	if err != nil {
		db.log.Error("buffer: stats", "err", err)
	}
	db.ctrMu.Lock()
	defer db.ctrMu.Unlock()
	c := &db.ctr
	s.Appended, s.Delivered, s.Dropped = maps1(c.appended), maps1(c.delivered), maps1(c.dropped)
	s.Refused, s.DeadByKind, s.Requeued = maps1(c.refused), maps1(c.dead), maps1(c.requ)
	s.DroppedBy, s.RefusedBy = maps2(c.droppedBy), maps2(c.refusedBy)
	s.ByReason = map[string]map[string]int{"dropped": {}, "refused": {}}
	for name, m := range map[string]map[string]map[string]uint64{"dropped": c.droppedBy, "refused": c.refusedBy} {
		for _, byReason := range m {
			for reason, n := range byReason {
				s.ByReason[name][reason] += int(n)
			}
		}
	}
	s.CountersSince = c.since
	return s
}

func maps1(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func maps2(m map[string]map[string]uint64) map[string]map[string]uint64 {
	out := make(map[string]map[string]uint64, len(m))
	for k, v := range m {
		out[k] = maps1(v)
	}
	return out
}

func (db *DB) count(m *map[string]uint64, kind string) {
	db.ctrMu.Lock()
	defer db.ctrMu.Unlock()
	if *m == nil {
		*m = map[string]uint64{}
	}
	(*m)[kind]++
}

func (db *DB) countBy(total *map[string]uint64, by *map[string]map[string]uint64, kind, reason string) {
	db.ctrMu.Lock()
	defer db.ctrMu.Unlock()
	if *total == nil {
		*total = map[string]uint64{}
	}
	if *by == nil {
		*by = map[string]map[string]uint64{}
	}
	(*total)[kind]++
	if (*by)[kind] == nil {
		(*by)[kind] = map[string]uint64{}
	}
	(*by)[kind][reason]++
}

func (db *DB) countRefusal(kind, reason string) {
	db.countBy(&db.ctr.refused, &db.ctr.refusedBy, kind, reason)
}

// Appended is signalled (without blocking) after every commit that appended records. The
// channel has a buffer of one, so a signal is never lost but several commits may share one:
// a reader should Peek until the outbox is drained after each signal.
func (db *DB) Appended() <-chan struct{} { return db.signal }

// Update runs fn in one read-write transaction spanning the outbox and documents, committed and
// fsynced before Update returns. If fn returns an error (or panics) nothing it did is stored,
// records it appended included. fn runs exactly once.
func (db *DB) Update(fn func(tx *Tx) error) error {
	t := &Tx{db: db}
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		t.tx = btx
		return fn(t)
	})
	db.endTx(t)
	return err
}

// View runs fn in a read-only transaction: a consistent snapshot of outbox and documents.
func (db *DB) View(fn func(tx *Tx) error) error {
	return db.bolt.View(func(btx *bolt.Tx) error { return fn(&Tx{db: db, tx: btx}) })
}

// Close closes the file. Appended's channel stays open (nothing more will be sent on it).
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("buffer: close %s: %w", db.path, err)
	}
	return nil
}

// Path returns the store file's path.
func (db *DB) Path() string { return db.path }

// Check runs bbolt's consistency check over the whole file (the check Open runs), for a
// health endpoint or an operator's command. It reads every page: expect it to take a while
// on a large file.
func (db *DB) Check() error {
	if _, err := checkFile(db.bolt); err != nil {
		return fmt.Errorf("buffer: check %s: %w", db.path, err)
	}
	return nil
}

func (t *Tx) onCommit(fn func()) { t.tx.OnCommit(fn) }

// Append adds a record to the outbox within the transaction. It is visible to readers, and
// Appended is signalled, only once the transaction commits.
func (t *Tx) Append(kind, topic string, payload []byte) (Record, error) {
	if kind == "" {
		return Record{}, errors.New("buffer: append: empty kind")
	}
	if !t.tx.Writable() {
		return Record{}, fmt.Errorf("buffer: append %s record: %w", kind, bolt.ErrTxNotWritable)
	}
	return t.appendRecord(Record{Kind: kind, Topic: topic, Payload: payload}, false)
}

// appendRecord admits r under the limits and stores it under the next seq. Requeue passes
// keep=true to keep r's ID and Created.
func (t *Tx) appendRecord(r Record, keep bool) (Record, error) {
	db := t.db
	meta := t.tx.Bucket(bucketMeta)
	depth, size := getU64(meta, keyDepth), getU64(meta, keyBytes)
	plen := uint64(len(r.Payload))
	if db.opts.MaxBytes > 0 && plen > uint64(db.opts.MaxBytes) {
		t.refused = append(t.refused, refusal{r.Kind, ReasonTooLarge})
		return Record{}, fmt.Errorf("%w: %s record of %d bytes exceeds the outbox limit of %d bytes; raise the buffer's max bytes", ErrTooLarge, r.Kind, plen, db.opts.MaxBytes)
	}
	over := func(depth, size uint64) string {
		switch {
		case db.opts.MaxRecords > 0 && depth+1 > uint64(db.opts.MaxRecords):
			return ReasonMaxRecords
		case db.opts.MaxBytes > 0 && size+plen > uint64(db.opts.MaxBytes):
			return ReasonMaxBytes
		}
		return ""
	}
	if reason := over(depth, size); reason != "" {
		full := func() error {
			t.refused = append(t.refused, refusal{r.Kind, reason})
			return fmt.Errorf("%w: %d records / %d bytes waiting (limits %s); check the uplink", ErrFull, depth, size, db.limits())
		}
		// Telemetry makes room by dropping the oldest records of its own kind. A regulatory
		// record may not be refused while telemetry occupies the space it needs, so it drops
		// the oldest telemetry records of any kind; regulatory records are never dropped.
		var kinds []string
		if db.opts.Policies[r.Kind] == Telemetry {
			kinds = []string{r.Kind}
		} else {
			for k, p := range db.opts.Policies {
				if p == Telemetry {
					kinds = append(kinds, k)
				}
			}
		}
		// Find the victims, oldest first across the kinds, before removing any: if even all
		// of them are not enough, refuse and drop nothing.
		type head struct {
			kind string
			c    *bolt.Cursor
			k, v []byte
		}
		var heads []*head
		for _, k := range kinds {
			if kb := t.tx.Bucket(bucketKinds).Bucket([]byte(k)); kb != nil {
				h := &head{kind: k, c: kb.Cursor()}
				if h.k, h.v = h.c.First(); h.k != nil {
					heads = append(heads, h)
				}
			}
		}
		type victim struct {
			seq  uint64
			kind string
		}
		var victims []victim
		d, s := depth, size
		for over(d, s) != "" && len(heads) > 0 {
			oldest := 0
			for i, h := range heads {
				if string(h.k) < string(heads[oldest].k) { // big-endian keys: byte order is seq order
					oldest = i
				}
			}
			h := heads[oldest]
			seq, _ := keySeq(h.k)
			n, _ := binary.Uvarint(h.v)
			victims = append(victims, victim{seq, h.kind})
			d, s = d-1, s-n
			if h.k, h.v = h.c.Next(); h.k == nil {
				heads = slices.Delete(heads, oldest, oldest+1)
			}
		}
		if over(d, s) != "" {
			return Record{}, full()
		}
		for _, v := range victims {
			if _, _, err := t.remove(v.seq); err != nil {
				return Record{}, err
			}
			t.onCommit(func() { db.countBy(&db.ctr.dropped, &db.ctr.droppedBy, v.kind, reason) })
		}
		if len(victims) > 0 {
			db.log.Warn("buffer: outbox full, dropped oldest telemetry", "for_kind", r.Kind, "records", len(victims), "reason", reason)
		}
		depth, size = d, s
	}

	next := max(getU64(meta, keyNext), 1)
	r.Seq = next
	if !keep {
		r.ID = strconv.FormatUint(next, 10)
		if db.opts.GatewayID != "" {
			r.ID = db.opts.GatewayID + "-" + r.ID
		}
		r.Created = db.now()
		r.Attempts = 0
	}
	key := seqKey(next)
	ob := t.tx.Bucket(bucketOutbox)
	// Keys only ever grow, so pages never receive a later insert in the middle: fill them
	// completely on split instead of bbolt's default half, which doubled the file's size.
	ob.FillPercent = 1.0
	if err := ob.Put(key, encodeRecord(&r)); err != nil {
		return Record{}, err
	}
	kb, err := t.tx.Bucket(bucketKinds).CreateBucketIfNotExists([]byte(r.Kind))
	if err != nil {
		return Record{}, err
	}
	kb.FillPercent = 1.0
	if err := kb.Put(key, binary.AppendUvarint(nil, plen)); err != nil {
		return Record{}, err
	}
	if err := putU64(meta, keyNext, next+1); err != nil {
		return Record{}, err
	}
	if err := putU64(meta, keyDepth, depth+1); err != nil {
		return Record{}, err
	}
	if err := putU64(meta, keyBytes, size+plen); err != nil {
		return Record{}, err
	}
	if !keep {
		t.onCommit(func() { db.count(&db.ctr.appended, r.Kind) })
	}
	if !t.signal {
		t.signal = true
		t.onCommit(func() {
			select {
			case db.signal <- struct{}{}:
			default:
			}
		})
	}
	// The payload is the caller's slice; hand back a record that does not alias it.
	r.Payload = append([]byte{}, r.Payload...)
	return r, nil
}

func (db *DB) limits() string {
	rec, by := "no record limit", "no byte limit"
	if db.opts.MaxRecords > 0 {
		rec = fmt.Sprintf("%d records", db.opts.MaxRecords)
	}
	if db.opts.MaxBytes > 0 {
		by = fmt.Sprintf("%d bytes", db.opts.MaxBytes)
	}
	return rec + " / " + by
}

// remove deletes an outbox record and its bookkeeping. ok is false if it was not there.
func (t *Tx) remove(seq uint64) (kind string, ok bool, err error) {
	kind, plen, ok, err := t.unlink(seq)
	if !ok || err != nil {
		return kind, ok, err
	}
	return kind, true, t.shrink(1, plen)
}

// unlink deletes an outbox record and its kinds index entry, leaving depth and bytes to the
// caller (shrink), so that removing many records updates them once.
func (t *Tx) unlink(seq uint64) (kind string, plen int, ok bool, err error) {
	key := seqKey(seq)
	c := t.tx.Bucket(bucketOutbox).Cursor()
	k, v := c.Seek(key)
	if k == nil || string(k) != string(key) {
		return "", 0, false, nil
	}
	kind, plen, err = recordMeta(v)
	if err != nil {
		return "", 0, false, &DecodeError{Bucket: string(bucketOutbox), Key: key, Raw: rawCopy(v), Err: err}
	}
	if err := c.Delete(); err != nil {
		return "", 0, false, err
	}
	if kb := t.tx.Bucket(bucketKinds).Bucket([]byte(kind)); kb != nil {
		if err := kb.Delete(key); err != nil {
			return "", 0, false, err
		}
	}
	return kind, plen, true, nil
}

// shrink takes n records of plen payload bytes in all off the outbox's depth and bytes.
func (t *Tx) shrink(n, plen int) error {
	meta := t.tx.Bucket(bucketMeta)
	if err := putU64(meta, keyDepth, getU64(meta, keyDepth)-uint64(n)); err != nil {
		return err
	}
	return putU64(meta, keyBytes, getU64(meta, keyBytes)-uint64(plen))
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0 // absent; a wrong length was refused at Open
	}
	return binary.BigEndian.Uint64(v)
}

func putU64(b *bolt.Bucket, k []byte, n uint64) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, n))
}

func (t *Tx) docs(bucket string, create bool) (*bolt.Bucket, error) {
	if bucket == "" {
		return nil, errors.New("empty bucket name")
	}
	d := t.tx.Bucket(bucketDocs)
	if create {
		return d.CreateBucketIfNotExists([]byte(bucket))
	}
	return d.Bucket([]byte(bucket)), nil
}

// Put stores a document under bucket/key (buckets are created on first use). value is copied.
func (t *Tx) Put(bucket, key string, value []byte) error {
	b, err := t.docs(bucket, true)
	if err == nil {
		err = b.Put([]byte(key), value)
	}
	if err != nil {
		return fmt.Errorf("buffer: put %s/%s: %w", bucket, key, err)
	}
	return nil
}

// Get returns a copy of the document, or nil.
func (t *Tx) Get(bucket, key string) []byte {
	b, _ := t.docs(bucket, false)
	if b == nil {
		return nil
	}
	v := b.Get([]byte(key))
	if v == nil {
		return nil
	}
	return append([]byte{}, v...)
}

// Delete removes a document. Deleting a missing document is not an error.
func (t *Tx) Delete(bucket, key string) error {
	b, err := t.docs(bucket, false)
	if err == nil && b != nil {
		err = b.Delete([]byte(key))
	}
	if err != nil {
		return fmt.Errorf("buffer: delete %s/%s: %w", bucket, key, err)
	}
	return nil
}

// ForEach visits the documents of a bucket in key order. value is only valid during the call
// (copy it to keep it); fn must not modify the bucket. An error from fn stops the walk and is
// returned as is.
func (t *Tx) ForEach(bucket string, fn func(key string, value []byte) error) error {
	b, err := t.docs(bucket, false)
	if err != nil {
		return fmt.Errorf("buffer: for each in %q: %w", bucket, err)
	}
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			return nil // a nested bucket, not a document
		}
		return fn(string(k), v)
	})
}
