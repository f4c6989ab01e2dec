package buffer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)} }

func openTest(t *testing.T, opts Options) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "obdgw.db")
	db, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func mustAppend(t *testing.T, db *DB, kind string, payload string) Record {
	t.Helper()
	r, err := db.Append(context.Background(), kind, "obdgw/"+kind, []byte(payload))
	if err != nil {
		t.Fatalf("append %s %q: %v", kind, payload, err)
	}
	return r
}

func seqs(rs []Record) []uint64 {
	var out []uint64
	for _, r := range rs {
		out = append(out, r.Seq)
	}
	return out
}

func TestOpenCreatesPrivateFileAndDirectory(t *testing.T) {
	db, path := openTest(t, Options{})
	_ = db
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode %o, want 600", got)
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("directory mode %o, want 700", got)
	}
}

func TestOpenTightensLooseFileMode(t *testing.T) {
	db, path := openTest(t, Options{})
	db.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fi, _ := os.Stat(path)
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode after reopen %o, want 600", got)
	}
}

func TestAppendAssignsGapFreeSeqAndIDs(t *testing.T) {
	c := newClock()
	db, path := openTest(t, Options{GatewayID: "gw7", Now: c.now})
	for i := 1; i <= 3; i++ {
		r := mustAppend(t, db, "ehr", fmt.Sprintf("p%d", i))
		if r.Seq != uint64(i) || r.ID != fmt.Sprintf("gw7-%s-%d", db.Info().Incarnation, i) || !r.Created.Equal(c.now()) || r.Kind != "ehr" || r.Topic != "obdgw/ehr" || string(r.Payload) != fmt.Sprintf("p%d", i) {
			t.Fatalf("append %d returned %+v", i, r)
		}
		c.add(time.Second)
	}
	if err := db.Ack(3); err != nil {
		t.Fatal(err)
	}
	// Reopen: the next seq is durable and never reused, even for an acked tail.
	db.Close()
	db, err := Open(path, Options{GatewayID: "gw7", Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inc := db.Info().Incarnation
	if r := mustAppend(t, db, "ehr", "p4"); r.Seq != 4 || r.ID != "gw7-"+inc+"-4" {
		t.Fatalf("after ack and reopen got seq %d id %s, want 4 gw7-%s-4", r.Seq, r.ID, inc)
	}
	got, err := db.Peek(10)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqs(got)) != "[1 2 4]" {
		t.Fatalf("peek seqs %v, want [1 2 4]", seqs(got))
	}
	for i, want := range []string{"p1", "p2", "p4"} {
		if string(got[i].Payload) != want {
			t.Errorf("record %d payload %q, want %q", got[i].Seq, got[i].Payload, want)
		}
	}
	if !got[0].Created.Equal(time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)) {
		t.Errorf("created %v did not survive the round trip", got[0].Created)
	}
}

func TestPeekOrderAndPeekAfter(t *testing.T) {
	db, _ := openTest(t, Options{})
	for i := range 10 {
		mustAppend(t, db, []string{"ehr", "im"}[i%2], fmt.Sprint(i))
	}
	head, err := db.Peek(4)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqs(head)) != "[1 2 3 4]" {
		t.Fatalf("peek %v", seqs(head))
	}
	next, err := db.PeekAfter(4, 3)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seqs(next)) != "[5 6 7]" {
		t.Fatalf("peek after 4: %v", seqs(next))
	}
	tail, _ := db.PeekAfter(8, 100)
	if fmt.Sprint(seqs(tail)) != "[9 10]" {
		t.Fatalf("peek after 8: %v", seqs(tail))
	}
	if none, _ := db.PeekAfter(10, 5); len(none) != 0 {
		t.Fatalf("peek after the tail returned %v", seqs(none))
	}
}

func TestAckIsIdempotentAndCounted(t *testing.T) {
	db, _ := openTest(t, Options{})
	mustAppend(t, db, "ehr", "a")
	mustAppend(t, db, "im", "bb")
	for range 2 {
		if err := db.Ack(1); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Ack(99); err != nil {
		t.Fatalf("ack of an unknown seq: %v", err)
	}
	got, _ := db.Peek(10)
	if fmt.Sprint(seqs(got)) != "[2]" {
		t.Fatalf("after ack: %v", seqs(got))
	}
	s := db.Stats()
	if s.Depth != 1 || s.Bytes != 2 || s.Delivered["ehr"] != 1 || s.Appended["ehr"] != 1 || s.Appended["im"] != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestAckManyRemovesOnlyTheGivenRecordsInOneCommit(t *testing.T) {
	db, _ := openTest(t, Options{})
	for _, k := range []string{"ehr", "im", "ehr", "ehr", "im"} {
		mustAppend(t, db, k, "pay")
	}
	// 2 and 4 acknowledged, 99 never existed, 2 twice (a late receipt after a resend).
	if err := db.AckMany([]uint64{2, 4, 99, 2}); err != nil {
		t.Fatal(err)
	}
	if err := db.AckMany(nil); err != nil {
		t.Fatalf("empty ack: %v", err)
	}
	got, _ := db.Peek(10)
	if fmt.Sprint(seqs(got)) != "[1 3 5]" {
		t.Fatalf("after AckMany: %v", seqs(got))
	}
	s := db.Stats()
	if s.Depth != 3 || s.Bytes != 9 || s.Delivered["im"] != 1 || s.Delivered["ehr"] != 1 || s.DepthByKind["ehr"] != 2 || s.DepthByKind["im"] != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestMarkAttemptsCountsEachPresentRecord(t *testing.T) {
	db, _ := openTest(t, Options{})
	mustAppend(t, db, "ehr", "a")
	mustAppend(t, db, "ehr", "b")
	for range 2 {
		if err := db.MarkAttempts([]uint64{1, 2, 77}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.MarkAttempts([]uint64{2}); err != nil {
		t.Fatal(err)
	}
	got, _ := db.Peek(10)
	if len(got) != 2 || got[0].Attempts != 2 || got[1].Attempts != 3 || string(got[1].Payload) != "b" {
		t.Fatalf("after MarkAttempts: %+v", got)
	}
}

func TestMarkAttempt(t *testing.T) {
	db, _ := openTest(t, Options{})
	r := mustAppend(t, db, "ehr", "x")
	for range 3 {
		if err := db.MarkAttempt(r.Seq); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := db.Peek(1)
	if got[0].Attempts != 3 || string(got[0].Payload) != "x" {
		t.Fatalf("after 3 attempts: %+v", got[0])
	}
	if err := db.MarkAttempt(42); !errors.Is(err, ErrNotFound) {
		t.Fatalf("mark attempt on a missing record: %v, want ErrNotFound", err)
	}
}

func TestDeadLetterListAndRequeue(t *testing.T) {
	c := newClock()
	db, _ := openTest(t, Options{GatewayID: "gw", Now: c.now})
	mustAppend(t, db, "ehr", "one")
	bad := mustAppend(t, db, "ehr", "two")
	mustAppend(t, db, "im", "three")
	if err := db.MarkAttempt(bad.Seq); err != nil {
		t.Fatal(err)
	}
	c.add(time.Minute)
	if err := db.DeadLetter(bad.Seq, "schema: missing vin"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeadLetter(bad.Seq, "again"); err != nil {
		t.Fatalf("dead-lettering twice: %v", err)
	}
	if err := db.DeadLetter(77, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("dead-letter of a missing record: %v", err)
	}
	if got, _ := db.Peek(10); fmt.Sprint(seqs(got)) != "[1 3]" {
		t.Fatalf("outbox after dead letter: %v", seqs(got))
	}
	dead, err := db.DeadLetters()
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Seq != 2 || dead[0].ID != "gw-"+db.Info().Incarnation+"-2" || dead[0].Reason != "schema: missing vin" || !dead[0].At.Equal(c.now()) || string(dead[0].Payload) != "two" || dead[0].Attempts != 1 {
		t.Fatalf("dead letters %+v", dead)
	}
	if s := db.Stats(); s.DeadLetters != 1 || s.DeadByKind["ehr"] != 1 || s.Depth != 2 {
		t.Fatalf("stats after dead letter %+v", s)
	}

	r, err := db.Requeue(2)
	if err != nil {
		t.Fatal(err)
	}
	id2 := "gw-" + db.Info().Incarnation + "-2"
	if r.Seq != 4 || r.ID != id2 || r.Attempts != 0 || string(r.Payload) != "two" {
		t.Fatalf("requeued %+v, want seq 4 id %s", r, id2)
	}
	if got, _ := db.Peek(10); fmt.Sprint(seqs(got)) != "[1 3 4]" || got[2].ID != id2 {
		t.Fatalf("outbox after requeue: %v", got)
	}
	if dead, _ := db.DeadLetters(); len(dead) != 0 {
		t.Fatalf("dead letter after requeue: %+v", dead)
	}
	if _, err := db.Requeue(2); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second requeue: %v", err)
	}
	if s := db.Stats(); s.DeadLetters != 0 || s.Requeued["ehr"] != 1 || s.Depth != 3 || s.Appended["ehr"] != 2 {
		t.Fatalf("stats after requeue %+v", s)
	}
	// A new append after the requeue gets the next seq, not a reused one.
	if r := mustAppend(t, db, "im", "five"); r.Seq != 5 || r.ID != "gw-"+db.Info().Incarnation+"-5" {
		t.Fatalf("append after requeue: %+v", r)
	}
}

func TestRegulatoryNeverDroppedWhenFull(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   Options
		reason string
	}{
		{"records", Options{MaxRecords: 3}, ReasonMaxRecords},
		{"bytes", Options{MaxBytes: 25}, ReasonMaxBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := openTest(t, tc.opts)
			for i := range 3 {
				mustAppend(t, db, "ehr", fmt.Sprintf("regulatory%d", i)) // 11 bytes each
				if tc.name == "bytes" && i == 1 {
					break
				}
			}
			before, _ := db.Peek(100)
			_, err := db.Append(context.Background(), "ehr", "t", []byte("one too many"))
			if !errors.Is(err, ErrFull) {
				t.Fatalf("append past the limit: %v, want ErrFull", err)
			}
			if !strings.Contains(err.Error(), "check the uplink") || !strings.Contains(err.Error(), fmt.Sprintf("%d records", len(before))) {
				t.Errorf("error does not say what is waiting and what to do: %v", err)
			}
			after, _ := db.Peek(100)
			if fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("a refused append changed the outbox: %v → %v", seqs(before), seqs(after))
			}
			s := db.Stats()
			if s.Refused["ehr"] != 1 || s.RefusedBy["ehr"][tc.reason] != 1 || s.ByReason["refused"][tc.reason] != 1 || len(s.Dropped) != 0 {
				t.Fatalf("counters %+v", s)
			}
			// Delivering one makes room again.
			if err := db.Ack(before[0].Seq); err != nil {
				t.Fatal(err)
			}
			mustAppend(t, db, "ehr", "fits now")
		})
	}
}

func TestTelemetryDropsOldestOfItsKind(t *testing.T) {
	db, _ := openTest(t, Options{MaxRecords: 4, Policies: map[string]Policy{"status": Telemetry}})
	mustAppend(t, db, "status", "s1")
	mustAppend(t, db, "ehr", "e1")
	mustAppend(t, db, "status", "s2")
	mustAppend(t, db, "ehr", "e2")
	r := mustAppend(t, db, "status", "s3") // drops s1
	if r.Seq != 5 {
		t.Fatalf("seq %d", r.Seq)
	}
	got, _ := db.Peek(10)
	var payloads []string
	for _, r := range got {
		payloads = append(payloads, string(r.Payload))
	}
	if strings.Join(payloads, ",") != "e1,s2,e2,s3" {
		t.Fatalf("outbox after telemetry drop: %v", payloads)
	}
	s := db.Stats()
	if s.Dropped["status"] != 1 || s.DroppedBy["status"][ReasonMaxRecords] != 1 || s.Depth != 4 || s.DepthByKind["status"] != 2 || s.DepthByKind["ehr"] != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRegulatoryDisplacesOldestTelemetry(t *testing.T) {
	db, _ := openTest(t, Options{MaxRecords: 4, Policies: map[string]Policy{"status": Telemetry, "live": Telemetry}})
	mustAppend(t, db, "ehr", "e1")
	mustAppend(t, db, "live", "l1")
	mustAppend(t, db, "status", "s1")
	mustAppend(t, db, "live", "l2")
	// Full. A regulatory record takes the place of the oldest telemetry record of any kind.
	mustAppend(t, db, "ehr", "e2")
	mustAppend(t, db, "ehr", "e3")
	got, _ := db.Peek(10)
	var payloads []string
	for _, r := range got {
		payloads = append(payloads, string(r.Payload))
	}
	if strings.Join(payloads, ",") != "e1,l2,e2,e3" {
		t.Fatalf("outbox after regulatory appends: %v", payloads)
	}
	s := db.Stats()
	if s.Dropped["live"] != 1 || s.Dropped["status"] != 1 || s.DroppedBy["status"][ReasonMaxRecords] != 1 || len(s.Refused) != 0 {
		t.Fatalf("stats %+v", s)
	}
	mustAppend(t, db, "ehr", "e4") // drops l2, the last telemetry record
	// Only regulatory records left: now a regulatory append is refused, nothing dropped.
	if _, err := db.Append(context.Background(), "ehr", "t", []byte("e5")); !errors.Is(err, ErrFull) {
		t.Fatalf("regulatory append into an outbox full of regulatory records: %v", err)
	}
	if got, _ := db.Peek(10); len(got) != 4 || string(got[0].Payload) != "e1" {
		t.Fatalf("outbox %v", got)
	}
}

func TestTelemetryRefusedWhenDroppingCannotMakeRoom(t *testing.T) {
	db, _ := openTest(t, Options{MaxBytes: 20, Policies: map[string]Policy{"status": Telemetry}})
	mustAppend(t, db, "ehr", "0123456789012345") // 16 regulatory bytes
	mustAppend(t, db, "status", "abc")           // 3
	before, _ := db.Peek(10)
	// Needs 10 bytes: dropping all 3 status bytes leaves 16+10 > 20, so nothing may be dropped.
	if _, err := db.Append(context.Background(), "status", "t", []byte("0123456789")); !errors.Is(err, ErrFull) {
		t.Fatalf("append: %v, want ErrFull", err)
	}
	after, _ := db.Peek(10)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a refused telemetry append dropped records: %v → %v", seqs(before), seqs(after))
	}
	if _, err := db.Append(context.Background(), "status", "t", make([]byte, 21)); !errors.Is(err, ErrTooLarge) || errors.Is(err, ErrFull) {
		t.Fatalf("payload larger than the limit: %v, want ErrTooLarge", err)
	}
	s := db.Stats()
	if s.RefusedBy["status"][ReasonMaxBytes] != 1 || s.RefusedBy["status"][ReasonTooLarge] != 1 || s.Refused["status"] != 2 || len(s.Dropped) != 0 {
		t.Fatalf("stats %+v", s)
	}
	// Dropping several oldest records to fit a bigger one works.
	mustAppend(t, db, "ehr2", "") // regulatory, 0 bytes; does not change the byte budget
	r := mustAppend(t, db, "status", "wxyz")
	if s := db.Stats(); s.Dropped["status"] != 1 || s.Bytes != 20 {
		t.Fatalf("after dropping for %v: %+v", r, s)
	}
}

func TestStatsOldestAge(t *testing.T) {
	c := newClock()
	db, _ := openTest(t, Options{Now: c.now})
	if s := db.Stats(); s.Depth != 0 || s.OldestAge != 0 {
		t.Fatalf("empty stats %+v", s)
	}
	mustAppend(t, db, "ehr", "a")
	c.add(90 * time.Second)
	mustAppend(t, db, "ehr", "b")
	c.add(10 * time.Second)
	if s := db.Stats(); s.OldestAge != 100*time.Second || s.Depth != 2 || s.Bytes != 2 {
		t.Fatalf("stats %+v", s)
	}
	db.Ack(1)
	if s := db.Stats(); s.OldestAge != 10*time.Second {
		t.Fatalf("oldest age after ack %v", s.OldestAge)
	}
}

func TestUpdateCommitsDocumentAndRecordTogether(t *testing.T) {
	db, _ := openTest(t, Options{GatewayID: "gw"})
	boom := errors.New("validation failed")
	err := db.Update(func(tx *Tx) error {
		if err := tx.Put("orders", "wo-1", []byte(`{"state":"settled"}`)); err != nil {
			return err
		}
		if _, err := tx.Append("ehr", "t", []byte("record of wo-1")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update returned %v", err)
	}
	db.View(func(tx *Tx) error {
		if v := tx.Get("orders", "wo-1"); v != nil {
			t.Errorf("document of a failed update exists: %s", v)
		}
		return nil
	})
	if got, _ := db.Peek(10); len(got) != 0 {
		t.Fatalf("record of a failed update exists: %v", got)
	}
	select {
	case <-db.Appended():
		t.Fatal("Appended signalled for a rolled-back transaction")
	default:
	}

	// The same transaction committed: both exist, and the seq was not burnt by the failure.
	var rec Record
	err = db.Update(func(tx *Tx) error {
		if err := tx.Put("orders", "wo-1", []byte(`{"state":"settled"}`)); err != nil {
			return err
		}
		var err error
		rec, err = tx.Append("ehr", "t", []byte("record of wo-1"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Seq != 1 || rec.ID != "gw-"+db.Info().Incarnation+"-1" {
		t.Fatalf("record %+v", rec)
	}
	select {
	case <-db.Appended():
	default:
		t.Fatal("Appended not signalled after a committed append")
	}
	db.View(func(tx *Tx) error {
		if v := tx.Get("orders", "wo-1"); string(v) != `{"state":"settled"}` {
			t.Errorf("document %q", v)
		}
		return nil
	})
	if got, _ := db.Peek(10); len(got) != 1 || string(got[0].Payload) != "record of wo-1" {
		t.Fatalf("outbox %v", got)
	}
}

func TestUpdatePanicRollsBack(t *testing.T) {
	db, _ := openTest(t, Options{})
	func() {
		defer func() { recover() }()
		db.Update(func(tx *Tx) error {
			tx.Put("orders", "k", []byte("v"))
			tx.Append("ehr", "t", []byte("x"))
			panic("bug in a caller")
		})
	}()
	db.View(func(tx *Tx) error {
		if tx.Get("orders", "k") != nil {
			t.Error("document of a panicked update exists")
		}
		return nil
	})
	if got, _ := db.Peek(1); len(got) != 0 {
		t.Fatal("record of a panicked update exists")
	}
}

func TestDocuments(t *testing.T) {
	db, path := openTest(t, Options{})
	err := db.Update(func(tx *Tx) error {
		for _, k := range []string{"b", "a", "c"} {
			if err := tx.Put("scans", k, []byte("v"+k)); err != nil {
				return err
			}
		}
		// Bucket names the outbox uses itself are free for documents.
		return tx.Put("outbox", "x", []byte("doc"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.Delete("scans", "b") }); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.Delete("nosuch", "b") }); err != nil {
		t.Fatalf("delete in a missing bucket: %v", err)
	}
	db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got []string
	err = db.View(func(tx *Tx) error {
		if v := tx.Get("outbox", "x"); string(v) != "doc" {
			t.Errorf("document in bucket named outbox: %q", v)
		}
		if v := tx.Get("nosuch", "x"); v != nil {
			t.Errorf("missing bucket returned %q", v)
		}
		if err := tx.ForEach("nosuch", func(string, []byte) error { return errors.New("called") }); err != nil {
			t.Errorf("for each over a missing bucket: %v", err)
		}
		return tx.ForEach("scans", func(k string, v []byte) error {
			got = append(got, k+"="+string(v))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "a=va c=vc" {
		t.Fatalf("documents %v", got)
	}
	if got, _ := db.Peek(5); len(got) != 0 {
		t.Fatalf("documents leaked into the outbox: %v", got)
	}
	// Writes inside View are refused, not silently dropped.
	err = db.View(func(tx *Tx) error {
		_, err := tx.Append("ehr", "t", nil)
		return err
	})
	if err == nil {
		t.Fatal("append inside View succeeded")
	}
	if err := db.Update(func(tx *Tx) error { return tx.Put("", "k", nil) }); err == nil {
		t.Fatal("put into an empty bucket name succeeded")
	}
}

func TestConcurrentAppendsGroupCommit(t *testing.T) {
	db, path := openTest(t, Options{GatewayID: "gw"})
	const writers, each = 8, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[uint64]string{}
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				p := fmt.Sprintf("w%d-%d", w, i)
				r, err := db.Append(context.Background(), "ehr", "t", []byte(p))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, dup := got[r.Seq]; dup {
					t.Errorf("seq %d given to %s and %s", r.Seq, prev, p)
				}
				got[r.Seq] = p
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	db.Close()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	all, err := db.Peek(writers * each * 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers*each {
		t.Fatalf("%d records stored, want %d", len(all), writers*each)
	}
	for i, r := range all {
		if r.Seq != uint64(i+1) || got[r.Seq] != string(r.Payload) || r.ID != fmt.Sprintf("gw-%s-%d", db.Info().Incarnation, r.Seq) {
			t.Fatalf("record %d: %+v, appender saw %q", i, r, got[r.Seq])
		}
	}
	// Each writer's own records are in its append order.
	last := map[string]int{}
	for _, r := range all {
		var w, i int
		fmt.Sscanf(string(r.Payload), "w%d-%d", &w, &i)
		k := fmt.Sprint(w)
		if prev, ok := last[k]; ok && i != prev+1 {
			t.Fatalf("writer %d: record %d after %d", w, i, prev)
		}
		last[k] = i
	}
}

func TestGroupCommitIsolatesARefusedAppend(t *testing.T) {
	// Concurrent appends into an outbox with room for some: exactly MaxRecords succeed, the
	// others are refused, and the refusals do not take the successful ones down with them.
	db, _ := openTest(t, Options{MaxRecords: 10})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, full := 0, 0
	for range 30 {
		wg.Go(func() {
			_, err := db.Append(context.Background(), "ehr", "t", []byte("x"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrFull):
				full++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	all, _ := db.Peek(100)
	if ok != 10 || full != 20 || len(all) != 10 {
		t.Fatalf("%d appended, %d refused, %d stored; want 10, 20, 10", ok, full, len(all))
	}
	if s := db.Stats(); s.Refused["ehr"] != 20 || s.Appended["ehr"] != 10 {
		t.Fatalf("counters %+v", s)
	}
}

func TestAppendHonoursCancelledContext(t *testing.T) {
	db, _ := openTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.Append(ctx, "ehr", "t", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with a cancelled context: %v", err)
	}
	if got, _ := db.Peek(1); len(got) != 0 {
		t.Fatal("cancelled append stored a record")
	}
}

func TestAppendedSignalDoesNotBlock(t *testing.T) {
	db, _ := openTest(t, Options{})
	for range 5 { // nobody reads: must not block
		mustAppend(t, db, "ehr", "x")
	}
	select {
	case <-db.Appended():
	default:
		t.Fatal("no signal pending after appends")
	}
	select {
	case <-db.Appended():
		t.Fatal("more than one signal buffered")
	default:
	}
}

func TestOpenLeavesGarbageFileInPlace(t *testing.T) {
	for _, size := range []int{100, 4096, 64 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "obdgw.db")
			garbage := bytes.Repeat([]byte("not a bbolt file! "), size/18+1)[:size]
			if err := os.WriteFile(path, garbage, 0o600); err != nil {
				t.Fatal(err)
			}
			for range 2 { // a second start is refused just the same: nothing starts afresh
				_, err := Open(path, Options{})
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("open of garbage: %v, want ErrCorrupt", err)
				}
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Path != path || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "left in place") {
					t.Errorf("error %v", err)
				}
				if kept, rerr := os.ReadFile(path); rerr != nil || !bytes.Equal(kept, garbage) {
					t.Fatalf("the file was changed or moved (%v)", rerr)
				}
			}
			if m, _ := filepath.Glob(path + ".*"); len(m) != 0 {
				t.Errorf("files beside the store: %v", m)
			}
		})
	}
}

func TestOpenLeavesFileWithDamagedPagesInPlace(t *testing.T) {
	db, path := openTest(t, Options{})
	for i := range 200 {
		mustAppend(t, db, "ehr", strings.Repeat(fmt.Sprint(i%10), 300))
	}
	db.Close()
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Keep the two meta pages (so bbolt opens the file) and scribble over the data pages.
	damaged := append([]byte{}, orig...)
	for i := 2 * 4096; i < len(damaged); i += 7 {
		damaged[i] ^= 0x5a
	}
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, Options{})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open of a file with damaged pages: %v, want ErrCorrupt", err)
	}
	if kept, _ := os.ReadFile(path); !bytes.Equal(kept, damaged) {
		t.Fatal("the file does not hold the damaged bytes unchanged")
	}
}

func TestOpenLockedFileTimesOut(t *testing.T) {
	db, path := openTest(t, Options{})
	_ = db
	start := time.Now()
	_, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "another obdgw") {
		t.Errorf("error does not say what to do: %v", err)
	}
	if _, serr := os.Stat(path); serr != nil {
		t.Fatalf("locked file was touched: %v", serr)
	}
	t.Logf("gave up after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

func TestOpenRefusesNewerFormat(t *testing.T) {
	db, path := openTest(t, Options{})
	// A future obdgw wrote format 2: this one must not touch it, nor call it corrupt.
	if err := db.bolt.Update(func(tx *boltTx) error { return tx.Bucket(bucketMeta).Put(keyFormat, []byte{2}) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(path, Options{})
	if err == nil || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "format 2") {
		t.Fatalf("open of a newer format: %v", err)
	}
	if _, serr := os.Stat(path); serr != nil {
		t.Fatal("newer-format file was moved")
	}
}

func TestOpenRefusesSeqBehindStoredRecords(t *testing.T) {
	db, path := openTest(t, Options{})
	mustAppend(t, db, "ehr", "a")
	mustAppend(t, db, "ehr", "b")
	db.bolt.Update(func(tx *boltTx) error { return putU64(tx.Bucket(bucketMeta), keyNext, 2) })
	db.Close()
	os.Remove(SidecarPath(path)) // the sidecar would see it first (see TestOpenRefusesRollback)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "seq 2") {
		t.Fatalf("open with next seq behind the outbox: %v", err)
	}
}

func TestDecodeErrorNamesBucketAndKey(t *testing.T) {
	db, _ := openTest(t, Options{})
	mustAppend(t, db, "ehr", "a")
	db.bolt.Update(func(tx *boltTx) error { return tx.Bucket(bucketOutbox).Put(seqKey(1), []byte{9, 9, 9}) })
	_, err := db.Peek(1)
	var de *DecodeError
	if !errors.As(err, &de) || de.Bucket != "outbox" || !bytes.Equal(de.Raw, []byte{9, 9, 9}) {
		t.Fatalf("peek of a bad value: %v", err)
	}
	if !strings.Contains(err.Error(), "outbox/0000000000000001") || !strings.Contains(err.Error(), "version 9") {
		t.Fatalf("error %q does not name bucket, key and problem", err)
	}
}

func TestRequeueIntoFullOutboxKeepsRecordDead(t *testing.T) {
	db, _ := openTest(t, Options{MaxRecords: 1})
	a := mustAppend(t, db, "ehr", "a")
	if err := db.DeadLetter(a.Seq, "rejected"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, db, "ehr", "b")
	if _, err := db.Requeue(a.Seq); !errors.Is(err, ErrFull) {
		t.Fatalf("requeue into a full outbox: %v, want ErrFull", err)
	}
	dead, err := db.DeadLetters()
	if err != nil || len(dead) != 1 || string(dead[0].Payload) != "a" {
		t.Fatalf("dead letter after a refused requeue: %+v %v", dead, err)
	}
	if s := db.Stats(); s.DeadLetters != 1 || s.Depth != 1 || s.Refused["ehr"] != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestEveryCommitIsSynced(t *testing.T) {
	db, _ := openTest(t, Options{})
	if db.bolt.NoSync || db.bolt.NoGrowSync || db.bolt.NoFreelistSync {
		t.Fatalf("bbolt sync switched off: NoSync=%v NoGrowSync=%v NoFreelistSync=%v", db.bolt.NoSync, db.bolt.NoGrowSync, db.bolt.NoFreelistSync)
	}
}

func TestOpenAfterChecksThatDidNotFinish(t *testing.T) {
	db, path := openTest(t, Options{})
	mustAppend(t, db, "ehr", "kept")
	db.Close()
	marker := path + ".checking"
	// One unfinished check (a power cut during start-up) is forgiven.
	if err := os.WriteFile(marker, []byte("1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open after one unfinished check: %v", err)
	}
	if got, _ := db.Peek(1); len(got) != 1 {
		t.Fatal("record lost")
	}
	db.Close()
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("marker left after a finished check: %v", err)
	}
	// Two in a row: the check itself kills the process, so the file is refused, and stays
	// refused (the marker is kept) until a person acts.
	os.WriteFile(marker, []byte("2\n"), 0o600)
	before, _ := os.ReadFile(path)
	for range 2 {
		_, err = Open(path, Options{})
		var ce *CorruptError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "did not finish") {
			t.Fatalf("open after two unfinished checks: %v", err)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("the refused file was changed")
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("marker removed: %v", err)
	}
}

func TestOpenRebuildsBookkeeping(t *testing.T) {
	db, path := openTest(t, Options{Policies: map[string]Policy{"status": Telemetry}})
	mustAppend(t, db, "ehr", "abc")
	mustAppend(t, db, "status", "de")
	db.bolt.Update(func(tx *boltTx) error {
		putU64(tx.Bucket(bucketMeta), keyDepth, 9)
		return tx.Bucket(bucketKinds).DeleteBucket([]byte("status"))
	})
	db.Close()
	db, err := Open(path, Options{Policies: map[string]Policy{"status": Telemetry}, MaxRecords: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if s := db.Stats(); s.Depth != 2 || s.Bytes != 5 || s.DepthByKind["status"] != 1 {
		t.Fatalf("bookkeeping not rebuilt: %+v", s)
	}
	// The rebuilt index lets telemetry drop its oldest again.
	mustAppend(t, db, "status", "fg")
	if got, _ := db.Peek(5); len(got) != 2 || string(got[1].Payload) != "fg" || string(got[0].Payload) != "abc" {
		t.Fatalf("outbox %v", got)
	}
}

// Damage to the kinds index alone (depth and bytes right) is found record by record and by
// count, and rebuilt from the records.
func TestOpenRebuildsADamagedKindsIndex(t *testing.T) {
	for name, damage := range map[string]func(tx *boltTx) error{
		"wrong length": func(tx *boltTx) error { return tx.Bucket(bucketKinds).Bucket([]byte("ehr")).Put(seqKey(1), []byte{9}) },
		"extra entry": func(tx *boltTx) error {
			return tx.Bucket(bucketKinds).Bucket([]byte("status")).Put(seqKey(1), []byte{3})
		},
		"missing kind": func(tx *boltTx) error { return tx.Bucket(bucketKinds).DeleteBucket([]byte("status")) },
	} {
		t.Run(name, func(t *testing.T) {
			opts := Options{Policies: map[string]Policy{"status": Telemetry}}
			db, path := openTest(t, opts)
			mustAppend(t, db, "ehr", "abc")
			mustAppend(t, db, "status", "de")
			mustAppend(t, db, "ehr", "f")
			if err := db.bolt.Update(damage); err != nil {
				t.Fatal(err)
			}
			db.Close()
			db, err := Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			s := db.Stats()
			if s.Depth != 3 || s.Bytes != 6 || s.DepthByKind["ehr"] != 2 || s.DepthByKind["status"] != 1 {
				t.Fatalf("index not rebuilt: %+v", s)
			}
			err = db.View(func(tx *Tx) error {
				for seq, want := range map[uint64]uint64{1: 3, 3: 1} {
					v := tx.tx.Bucket(bucketKinds).Bucket([]byte("ehr")).Get(seqKey(seq))
					if got, _ := binary.Uvarint(v); got != want {
						return fmt.Errorf("index of seq %d says %d bytes, want %d", seq, got, want)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
