package buffer

import (
	"fmt"
	"maps"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// outboxFacts is what Stats reports about the stored records, computed the slow way: by
// reading every record. The tests hold Stats to it.
type outboxFacts struct {
	Depth       int
	Bytes       int64
	DeadLetters int
	DepthByKind map[string]int
	Oldest      time.Time // Created of the first record; zero when empty
}

func (f outboxFacts) String() string {
	return fmt.Sprintf("depth %d, %d bytes, %d dead, by kind %v, oldest %v", f.Depth, f.Bytes, f.DeadLetters, f.DepthByKind, f.Oldest)
}

// walkFacts reads every outbox and dead-letter record of a transaction.
func walkFacts(tx *bolt.Tx) (outboxFacts, error) {
	f := outboxFacts{DepthByKind: map[string]int{}}
	err := tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
		seq, _ := keySeq(k)
		r, err := decodeRecordOpt(seq, v, false)
		if err != nil {
			return err
		}
		if f.Depth == 0 {
			f.Oldest = r.Created
		}
		f.Depth++
		f.Bytes += int64(len(r.Payload))
		f.DepthByKind[r.Kind]++
		return nil
	})
	if err != nil {
		return f, err
	}
	f.DeadLetters = tx.Bucket(bucketDead).Stats().KeyN
	return f, nil
}

func walkDB(t testing.TB, db *DB) outboxFacts {
	t.Helper()
	var f outboxFacts
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		f, err = walkFacts(tx)
		return err
	})
	if err != nil {
		t.Fatalf("walking the outbox: %v", err)
	}
	return f
}

// statsFacts is the part of Stats that walkFacts can check; now is the DB's clock.
func statsFacts(s Stats, now time.Time) outboxFacts {
	f := outboxFacts{Depth: s.Depth, Bytes: s.Bytes, DeadLetters: s.DeadLetters, DepthByKind: s.DepthByKind}
	if s.Depth > 0 {
		f.Oldest = now.Add(-s.OldestAge)
	}
	return f
}

func equalFacts(a, b outboxFacts) bool {
	return a.Depth == b.Depth && a.Bytes == b.Bytes && a.DeadLetters == b.DeadLetters &&
		maps.Equal(a.DepthByKind, b.DepthByKind) && a.Oldest.Equal(b.Oldest)
}
