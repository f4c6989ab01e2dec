package buffer

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
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
	bucketByKind = []byte("bykind") // kind → number of its records in the outbox (absent: none)
	bucketDocs   = []byte("docs")   // caller's bucket → key → document

	keyFormat = []byte("format")
	keyNext   = []byte("next")
	keyDepth  = []byte("depth")
	keyBytes  = []byte("bytes")
	keyDead   = []byte("dead")
	// keyIncarnation: 8 lowercase base32 characters drawn when the file got its first
	// incarnation (at creation, or at the first Open by an obdgw that knows incarnations);
	// keyCreated: when that was (Unix ns).
	keyIncarnation = []byte("incarnation")
	keyCreated     = []byte("created")
)

// storeFormat is the layout of the buckets above; bump it with a migration when it changes.
//
// Adding bookkeeping that Open can derive from the records does not change the format: bykind
// came after format 1 without a bump. An older obdgw ignores the bucket, and Open checks it
// against the records at every start and rewrites it when it is missing or stale, so a file
// can go back and forth between versions (an A/B update rolled back) without being refused.
const storeFormat = 1

const defaultLockTimeout = 5 * time.Second

// DB is an open store file. It is safe for concurrent use.
//
// What Stats says about the stored records (depth, bytes, depth by kind, dead letters) is kept
// in the file and changed in the same transactions as the records it describes, so it is exact
// after a crash and Stats reads a few keys however long the backlog. The event counters
// (appended, delivered, dropped, refused, dead-lettered, requeued) are kept in memory since
// Open: a refusal happens in a transaction that is rolled back, so it could not be persisted
// there, and Prometheus treats a restart as a counter reset anyway.
type DB struct {
	bolt   *bolt.DB
	path   string
	opts   Options
	now    func() time.Time
	log    *slog.Logger
	signal chan struct{}

	listenMu  sync.Mutex
	listeners []chan struct{} // further readers' Appended channels (NewAppended)

	inc     string    // the file's incarnation (record ids "<gateway>-<inc>-<seq>")
	created time.Time // when the incarnation was drawn
	isNew   bool      // Open created the file

	sideMu sync.Mutex
	side   *os.File // the sidecar, nil when it could not be created
	sideTx uint64   // the transaction the sidecar records (it never goes back)

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

// Tx is a transaction spanning the outbox and the document buckets. It is only valid inside
// the function passed to Update or View.
type Tx struct {
	db      *DB
	tx      *bolt.Tx
	refused []refusal // counted when the transaction ends, whatever its outcome
	signal  bool
}

type refusal struct{ kind, reason string }

// Update runs fn in one read-write transaction spanning the outbox and documents, committed and
// fsynced before Update returns. If fn returns an error (or panics) nothing it did is stored,
// records it appended included. fn runs exactly once.
func (db *DB) Update(fn func(tx *Tx) error) error {
	t := &Tx{db: db}
	err := db.boltUpdate(func(btx *bolt.Tx) (bool, error) {
		t.tx = btx
		err := fn(t)
		return t.signal, err
	})
	db.endTx(t)
	return err
}

// boltUpdate runs fn in a bbolt read-write transaction. When fn appended records, the sidecar
// is written once the transaction has committed and before Appended is signalled and the
// call returns, so that no record is published before the sidecar knows of it.
func (db *DB) boltUpdate(fn func(btx *bolt.Tx) (appended bool, err error)) error {
	var appended bool
	var s sidecar
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		a, err := fn(btx)
		if err != nil {
			return err
		}
		if appended = a; a {
			s = sidecar{incarnation: db.inc, txid: uint64(btx.ID()), next: getU64(btx.Bucket(bucketMeta), keyNext)}
		}
		return nil
	})
	if err == nil && appended {
		db.committedRecords(s)
	}
	return err
}

// committedRecords writes the sidecar after a commit that added records, then signals
// Appended. A sidecar that cannot be written costs only the rollback check, not the records.
func (db *DB) committedRecords(s sidecar) {
	db.sideMu.Lock()
	if s.txid > db.sideTx && db.side != nil {
		if err := writeSlot(db.side, s); err != nil {
			db.log.Error("buffer: cannot write the store sidecar; a rollback of the file would go unnoticed", "path", SidecarPath(db.path), "err", err)
		} else {
			db.sideTx = s.txid
		}
	}
	db.sideMu.Unlock()
	select {
	case db.signal <- struct{}{}:
	default:
	}
	db.listenMu.Lock()
	for _, c := range db.listeners {
		select {
		case c <- struct{}{}:
		default:
		}
	}
	db.listenMu.Unlock()
}

// StoreInfo says which store this is: what record ids carry and whether Open created it.
type StoreInfo struct {
	Incarnation string    `json:"incarnation"`
	Created     time.Time `json:"created"` // when the incarnation was drawn
	New         bool      `json:"new"`     // this Open created the file
}

// Info describes the open store.
func (db *DB) Info() StoreInfo {
	return StoreInfo{Incarnation: db.inc, Created: db.created, New: db.isNew}
}

// View runs fn in a read-only transaction: a consistent snapshot of outbox and documents.
func (db *DB) View(fn func(tx *Tx) error) error {
	return db.bolt.View(func(btx *bolt.Tx) error { return fn(&Tx{db: db, tx: btx}) })
}

// Close closes the file. Appended's channel stays open (nothing more will be sent on it).
func (db *DB) Close() error {
	db.sideMu.Lock()
	if db.side != nil {
		db.side.Close()
		db.side = nil
	}
	db.sideMu.Unlock()
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("buffer: close %s: %w", db.path, err)
	}
	return nil
}

// Path returns the store file's path.
func (db *DB) Path() string { return db.path }

func (t *Tx) onCommit(fn func()) { t.tx.OnCommit(fn) }

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
