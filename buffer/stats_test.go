package buffer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
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

// storedFacts is what the file itself says about the records: the counters in meta and bykind
// as they are on disk, before Open had a chance to check or rebuild them.
func storedFacts(tx *bolt.Tx) outboxFacts {
	meta := tx.Bucket(bucketMeta)
	f := outboxFacts{
		Depth:       int(getU64(meta, keyDepth)),
		Bytes:       int64(getU64(meta, keyBytes)),
		DeadLetters: int(getU64(meta, keyDead)),
		DepthByKind: map[string]int{},
	}
	if b := tx.Bucket(bucketByKind); b != nil {
		b.ForEach(func(k, v []byte) error {
			f.DepthByKind[string(k)] = int(binary.BigEndian.Uint64(append(make([]byte, 8-min(len(v), 8)), v...)))
			return nil
		})
	}
	if k, v := tx.Bucket(bucketOutbox).Cursor().First(); k != nil {
		seq, _ := keySeq(k)
		r, _ := decodeRecordOpt(seq, v, false)
		f.Oldest = r.Created
	}
	return f
}

// checkStoredCounts opens a closed (or abandoned) store file with bbolt alone, read-only, and
// requires its stored counters to equal a walk of its records. Open would quietly rebuild
// counters that disagree, so only this look at the raw file can tell whether they were right.
func checkStoredCounts(t *testing.T, path string) outboxFacts {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var stored, walked outboxFacts
	err = bdb.View(func(tx *bolt.Tx) error {
		stored = storedFacts(tx)
		walked, err = walkFacts(tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !equalFacts(stored, walked) {
		t.Fatalf("the file's counters say %v\nits records are    %v", stored, walked)
	}
	return walked
}

func checkStats(t *testing.T, db *DB, now time.Time, what string) {
	t.Helper()
	got, want := statsFacts(db.Stats(), now), walkDB(t, db)
	if !equalFacts(got, want) {
		t.Fatalf("after %s: Stats says %v\nthe outbox holds %v", what, got, want)
	}
}

// logBuffer collects a DB's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestStatsMatchesAWalk runs random sequences of appends (alone, in transactions that commit or
// roll back, concurrent ones sharing commits), acks, dead letters, requeues and reopens against
// a real file with limits that make telemetry drop and regulatory records be refused. After
// every step Stats must equal a fresh walk of the records, and at every reopen the counters in
// the file must equal one too, without Open having to rebuild them.
func TestStatsMatchesAWalk(t *testing.T) {
	seeds, steps := uint64(6), 250
	if testing.Short() {
		seeds, steps = 2, 100
	}
	for seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { randomOutboxOps(t, seed, steps) })
	}
}

func randomOutboxOps(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 15))
	c := newClock()
	var logs logBuffer
	opts := Options{
		GatewayID: "gw", MaxRecords: 40, MaxBytes: 4000, Now: c.now, Logger: logs.logger(),
		Policies: map[string]Policy{"status": Telemetry, "gps": Telemetry},
	}
	kinds := []string{"ehr", "im", "status", "gps"}
	path := filepath.Join(t.TempDir(), "obdgw.db")
	db, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	payload := func() []byte {
		if rng.IntN(40) == 0 {
			return make([]byte, 4001) // too large for the outbox
		}
		return bytes.Repeat([]byte{'p'}, rng.IntN(250))
	}
	// Refusals are expected (the limits are small); anything else is a failure.
	expected := func(err error) bool {
		return err == nil || errors.Is(err, ErrFull) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrNotFound) || errors.Is(err, errRollback)
	}
	present := func() []uint64 {
		recs, err := db.Peek(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		return seqs(recs)
	}
	pick := func(s []uint64) uint64 {
		if len(s) == 0 || rng.IntN(10) == 0 {
			return uint64(rng.IntN(500)) // usually not there
		}
		return s[rng.IntN(len(s))]
	}
	counts := map[string]int{}
	// The event counters start again at every Open; add them up over the run.
	var dropped, refused uint64
	tallyEvents := func(s Stats) {
		for _, n := range s.Dropped {
			dropped += n
		}
		for _, n := range s.Refused {
			refused += n
		}
	}
	for step := range steps {
		c.add(time.Duration(rng.IntN(5000)) * time.Millisecond)
		var op string
		var err error
		switch r := rng.IntN(100); {
		case r < 35:
			op = "append"
			_, err = db.Append(context.Background(), kinds[rng.IntN(len(kinds))], "t", payload())
		case r < 45:
			op = "update"
			n, fail := 1+rng.IntN(5), rng.IntN(4) == 0
			if fail {
				op = "rolled-back update"
			}
			err = db.Update(func(tx *Tx) error {
				if err := tx.Put("orders", fmt.Sprint(step), []byte("wo")); err != nil {
					return err
				}
				for range n {
					if _, err := tx.Append(kinds[rng.IntN(len(kinds))], "t", payload()); err != nil {
						return err
					}
				}
				if fail {
					return errRollback
				}
				return nil
			})
		case r < 50:
			op = "concurrent appends"
			var wg sync.WaitGroup
			errs := make(chan error, 24)
			for w := range 8 {
				kind := kinds[w%len(kinds)]
				wg.Go(func() {
					for range 3 {
						_, err := db.Append(context.Background(), kind, "t", []byte(strings.Repeat("c", 10+w*20)))
						errs <- err
					}
				})
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				if !expected(e) {
					err = e
				}
			}
		case r < 65:
			op = "ack"
			err = db.Ack(pick(present()))
		case r < 72:
			op = "ack many"
			var batch []uint64
			for _, s := range present() {
				if rng.IntN(3) == 0 {
					batch = append(batch, s)
				}
			}
			err = db.AckMany(append(batch, pick(nil), pick(nil)))
		case r < 80:
			op = "dead letter"
			err = db.DeadLetter(pick(present()), "rejected")
		case r < 87:
			op = "requeue"
			dead, derr := db.DeadLetters()
			if derr != nil {
				t.Fatal(derr)
			}
			var ds []uint64
			for _, d := range dead {
				ds = append(ds, d.Seq)
			}
			_, err = db.Requeue(pick(ds))
		case r < 90:
			op = "mark attempts"
			err = db.MarkAttempts(present())
		default:
			op = "reopen"
			tallyEvents(db.Stats())
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			checkStoredCounts(t, path)
			if db, err = Open(path, opts); err != nil {
				t.Fatal(err)
			}
		}
		if !expected(err) {
			t.Fatalf("step %d, %s: %v", step, op, err)
		}
		counts[op]++
		checkStats(t, db, c.now(), fmt.Sprintf("step %d (%s)", step, op))
	}
	if l := logs.String(); strings.Contains(l, "disagrees") || strings.Contains(l, "counting the outbox") {
		t.Fatalf("Open had to rebuild counters that should have been right:\n%s", l)
	}
	tallyEvents(db.Stats())
	if dropped == 0 || refused == 0 || counts["reopen"] == 0 || counts["dead letter"] == 0 || counts["requeue"] == 0 {
		t.Fatalf("the run did not reach drops (%d), refusals (%d), dead letters, requeues and reopens (steps %v); change the seed or the limits", dropped, refused, counts)
	}
	t.Logf("steps %v, %d dropped, %d refused; final %v", counts, dropped, refused, walkDB(t, db))
}

var errRollback = errors.New("roll back")

// fillForUpgrade stores records of three kinds with drops, a dead letter and an ack, and closes
// the file: seqs 4 (ehr), 6 (status) and 7 (ehr) remain.
func fillForUpgrade(t *testing.T, path string, opts Options) {
	t.Helper()
	db, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range []string{"ehr", "status", "im", "ehr", "status", "status", "ehr"} {
		mustAppend(t, db, k, strings.Repeat("x", i+1))
	}
	if err := db.DeadLetter(1, "rejected"); err != nil {
		t.Fatal(err)
	}
	if err := db.Ack(3); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// A file written before the counts by kind existed has no bykind bucket. Open counts the
// records once, stores the counts, and says so at info level: an upgrade is not damage.
func TestOpenCountsAFileFromBeforeTheCounters(t *testing.T) {
	var logs logBuffer
	c := newClock()
	opts := Options{MaxRecords: 5, Policies: map[string]Policy{"status": Telemetry}, Now: c.now, Logger: logs.logger()}
	path := filepath.Join(t.TempDir(), "obdgw.db")
	fillForUpgrade(t, path, opts)
	// Make it the file the previous obdgw left: the same buckets less bykind.
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketByKind) }); err != nil {
		t.Fatal(err)
	}
	bdb.Close()

	logs = logBuffer{}
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("open a file without counters: %v", err)
	}
	checkStats(t, db, c.now(), "opening a file without counters")
	if s := db.Stats(); s.DepthByKind["ehr"] != 2 || s.DepthByKind["status"] != 1 || len(s.DepthByKind) != 2 || s.Depth != 3 || s.DeadLetters != 1 {
		t.Fatalf("stats of the upgraded file %+v", s)
	}
	l := logs.String()
	if !strings.Contains(l, "level=INFO") || !strings.Contains(l, "counting the outbox by kind once") || strings.Contains(l, "level=WARN") {
		t.Fatalf("upgrade logged:\n%s", l)
	}
	// The counts are kept from here on, and stored: the next Open finds nothing to do.
	mustAppend(t, db, "status", "later")
	checkStats(t, db, c.now(), "an append after the upgrade")
	db.Close()
	if f := checkStoredCounts(t, path); f.DepthByKind["status"] != 2 || f.DepthByKind["ehr"] != 2 {
		t.Fatalf("stored after the upgrade: %v", f)
	}
	logs = logBuffer{}
	db, err = Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if l := logs.String(); l != "" {
		t.Fatalf("second open after the upgrade logged:\n%s", l)
	}
	checkStats(t, db, c.now(), "the second open")
}

// Counts by kind that disagree with the records (damage, or an older obdgw that ran on the
// file after a rollback and did not keep them) are rebuilt at Open, with a warning.
func TestOpenRebuildsStaleCounts(t *testing.T) {
	for name, damage := range map[string]func(b *bolt.Bucket) error{
		"wrong count":        func(b *bolt.Bucket) error { return putU64(b, []byte("ehr"), 7) },
		"kind not waiting":   func(b *bolt.Bucket) error { return putU64(b, []byte("gps"), 1) },
		"zero for no kind":   func(b *bolt.Bucket) error { return putU64(b, []byte("gps"), 0) },
		"missing kind":       func(b *bolt.Bucket) error { return b.Delete([]byte("im")) },
		"wrong value length": func(b *bolt.Bucket) error { return b.Put([]byte("ehr"), []byte{2}) },
	} {
		t.Run(name, func(t *testing.T) {
			var logs logBuffer
			c := newClock()
			opts := Options{Now: c.now, Logger: logs.logger()}
			path := filepath.Join(t.TempDir(), "obdgw.db")
			db, err := Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"ehr", "im", "ehr"} {
				mustAppend(t, db, k, "abc")
			}
			if err := db.bolt.Update(func(tx *bolt.Tx) error { return damage(tx.Bucket(bucketByKind)) }); err != nil {
				t.Fatal(err)
			}
			db.Close()
			db, err = Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			checkStats(t, db, c.now(), "reopening")
			if s := db.Stats(); s.DepthByKind["ehr"] != 2 || s.DepthByKind["im"] != 1 || len(s.DepthByKind) != 2 {
				t.Fatalf("counts not rebuilt: %v", s.DepthByKind)
			}
			if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "by_kind_ok=false") {
				t.Fatalf("rebuild not reported:\n%s", l)
			}
		})
	}
}
