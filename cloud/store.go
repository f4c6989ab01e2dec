package cloud

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Store keeps the receiver's accepted records and knows which ids it holds.
//
// Store makes the records of one batch durable together: when it returns nil, every record
// reported Stored is on disk (fsynced, or committed by a database) and the receiver may send
// its receipt and acknowledge it. On error nothing of the batch counts as stored; the receiver
// offers the same batch again, so Store must be idempotent: a record kept by a call that failed
// after its commit comes back as Duplicate. Store is called from one goroutine at a time; other
// receivers may share what it stores (a database), never the Store value.
type Store interface {
	Store(ctx context.Context, recs []StoreRecord) ([]StoreResult, error)
	// String names the store for logs: a path or a URL without its password.
	String() string
	Close() error
}

// StoreRecord is one valid record of a batch, as the store keeps it.
type StoreRecord struct {
	ID      string
	Kind    string
	Digest  [32]byte // SHA-256 of Payload
	Payload []byte   // the envelope as compact JSON
	// The parts of the id (Verdict.Gateway, Incarnation, Seq): what orders a gateway's records.
	Gateway     string
	Incarnation string
	Seq         uint64
}

// StoreOutcome is what a store did with one record.
type StoreOutcome uint8

const (
	// Stored: new, now durable.
	Stored StoreOutcome = iota
	// Duplicate: the id is held with the same content (a resend); nothing written.
	Duplicate
	// Conflict: the id is held with other content; nothing written, the record is rejected.
	Conflict
	// Refused: the store cannot hold this record (Reason says why); it is rejected.
	Refused
)

// StoreResult is the outcome for one record, in the order of the batch.
type StoreResult struct {
	Outcome StoreOutcome
	Reason  string // for Refused
}

var (
	bucketSeen = []byte("seen")
	bucketMeta = []byte("meta")
	keyEnd     = []byte("jsonl_end")
)

// fileStore is the embedded store of one receiver on one machine: accepted records appended to
// a JSONL file, the ids with their digests in a bbolt file.
//
// Exactly once on disk: a batch of new records is appended to the JSONL file and fsynced, then
// the ids and the file's new length are committed (fsynced) to the bbolt state. The JSONL file
// is only "written" up to the length the state records: at open, a tail beyond it (a crash
// between the two fsyncs) is cut off, and those records come again because they were never
// acknowledged.
type fileStore struct {
	statePath, outPath string
	db                 *bolt.DB
	out                *os.File
	end                int64 // committed JSONL length
	// onStored, when set, runs for each new record inside the transaction that records it
	// (the receiver's forward queue: a record stored is a record queued, atomically).
	onStored func(tx *bolt.Tx, rec StoreRecord) error
}

var _ Store = (*fileStore)(nil)

// openFileStore opens (or creates) the state and output files and reconciles them.
func openFileStore(statePath, outPath string, log *slog.Logger) (*fileStore, error) {
	db, err := bolt.Open(statePath, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("cloud: receiver state %s: %w (is another receiver using it?)", statePath, err)
	}
	s := &fileStore{statePath: statePath, outPath: outPath, db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketSeen); err != nil {
			return err
		}
		m, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := m.Get(keyEnd); len(v) == 8 {
			s.end = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cloud: receiver state %s: %w", statePath, err)
	}
	out, err := os.OpenFile(outPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cloud: receiver output: %w", err)
	}
	st, err := out.Stat()
	if err == nil {
		switch {
		case st.Size() < s.end:
			err = fmt.Errorf("%s is %d bytes but %d were committed: the output was truncated or replaced; restore it or start with a new state directory", outPath, st.Size(), s.end)
		case st.Size() > s.end:
			log.Warn("receiver: cutting an uncommitted tail off the output (crash between writes)", "file", outPath, "bytes", st.Size()-s.end)
			if err = out.Truncate(s.end); err == nil {
				err = out.Sync()
			}
		}
	}
	if err != nil {
		out.Close()
		db.Close()
		return nil, fmt.Errorf("cloud: receiver output: %w", err)
	}
	s.out = out
	return s, nil
}

func (s *fileStore) String() string { return s.outPath }

func (s *fileStore) Close() error {
	err := s.out.Close()
	if e := s.db.Close(); err == nil {
		err = e
	}
	return err
}

// seenValue is what the state keeps per record id: the record's offset in the JSONL file and
// the SHA-256 of its content. Ids stored before digests were kept have the offset alone.
func seenValue(off int64, digest [32]byte) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 40), uint64(off))
	return append(v, digest[:]...)
}

func (s *fileStore) Store(_ context.Context, recs []StoreRecord) ([]StoreResult, error) {
	res := make([]StoreResult, len(recs))
	// Duplicates of earlier batches and of this one, in order: look them up before writing
	// anything. A known id with other content is a conflict, not a duplicate.
	if err := s.db.View(func(tx *bolt.Tx) error {
		seen := tx.Bucket(bucketSeen)
		inBatch := map[string][32]byte{}
		for i, rec := range recs {
			var known []byte
			if d, ok := inBatch[rec.ID]; ok {
				known = d[:]
			} else if v := seen.Get([]byte(rec.ID)); v != nil {
				known = []byte{} // stored before digests were kept: nothing to compare
				if len(v) == 40 {
					known = v[8:]
				}
			} else {
				inBatch[rec.ID] = rec.Digest
				continue
			}
			res[i].Outcome = Duplicate
			if len(known) != 0 && !bytes.Equal(known, rec.Digest[:]) {
				res[i].Outcome = Conflict
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var lines bytes.Buffer
	for i, rec := range recs {
		if res[i].Outcome == Stored {
			lines.Write(rec.Payload)
			lines.WriteByte('\n')
		}
	}
	if lines.Len() == 0 {
		return res, nil
	}
	if _, err := s.out.WriteAt(lines.Bytes(), s.end); err != nil {
		return nil, fmt.Errorf("cloud: write %s: %w", s.outPath, err)
	}
	if err := s.out.Sync(); err != nil {
		return nil, fmt.Errorf("cloud: fsync %s: %w", s.outPath, err)
	}
	newEnd := s.end + int64(lines.Len())
	err := s.db.Update(func(tx *bolt.Tx) error {
		seen := tx.Bucket(bucketSeen)
		off := s.end
		for i, rec := range recs {
			if res[i].Outcome != Stored {
				continue
			}
			if err := seen.Put([]byte(rec.ID), seenValue(off, rec.Digest)); err != nil {
				return err
			}
			if s.onStored != nil {
				if err := s.onStored(tx, rec); err != nil {
					return err
				}
			}
			off += int64(len(rec.Payload)) + 1
		}
		var e [8]byte
		binary.BigEndian.PutUint64(e[:], uint64(newEnd))
		return tx.Bucket(bucketMeta).Put(keyEnd, e[:])
	})
	if err != nil {
		return nil, fmt.Errorf("cloud: receiver state: %w", err)
	}
	s.end = newEnd
	return res, nil
}
