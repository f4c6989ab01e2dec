package pgstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/hack/pgtest"
)

func rec(id, kind, payload string) cloud.StoreRecord {
	gw, inc, seq := "gw", "aaaaaaaa", uint64(0)
	fmt.Sscanf(id[strings.LastIndexByte(id, '-')+1:], "%d", &seq)
	return cloud.StoreRecord{ID: id, Kind: kind, Payload: []byte(payload), Digest: sha256.Sum256([]byte(payload)),
		Gateway: gw, Incarnation: inc, Seq: seq}
}

func open(t *testing.T, srv *pgtest.Server, name string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Options{URL: srv.URL(), PasswordFile: srv.PasswordFile, Receiver: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func outcomes(res []cloud.StoreResult) []cloud.StoreOutcome {
	var o []cloud.StoreOutcome
	for _, r := range res {
		o = append(o, r.Outcome)
	}
	return o
}

// TestStoreBatchIdempotentAndConflicts: a batch goes in once; the same batch again is all
// duplicates; an id held with other content is a conflict, within a batch and across batches,
// and the table keeps the first content.
func TestStoreBatchIdempotentAndConflicts(t *testing.T) {
	srv := pgtest.Start(t)
	s := open(t, srv, "rx-a")
	batch := []cloud.StoreRecord{
		rec("gw-aaaaaaaa-2", "ehr", `{"id":"gw-aaaaaaaa-2","n":2}`),
		rec("gw-aaaaaaaa-1", "ehr", `{"id":"gw-aaaaaaaa-1","n":1}`),
		rec("gw-aaaaaaaa-1", "ehr", `{"id":"gw-aaaaaaaa-1","n":1}`),     // resent within the batch
		rec("gw-aaaaaaaa-2", "ehr", `{"id":"gw-aaaaaaaa-2","n":"two"}`), // reused id within the batch
	}
	res, err := s.Store(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	want := []cloud.StoreOutcome{cloud.Stored, cloud.Stored, cloud.Duplicate, cloud.Conflict}
	if fmt.Sprint(outcomes(res)) != fmt.Sprint(want) {
		t.Errorf("first batch: %v, want %v", outcomes(res), want)
	}
	res, err = s.Store(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	want = []cloud.StoreOutcome{cloud.Duplicate, cloud.Duplicate, cloud.Duplicate, cloud.Conflict}
	if fmt.Sprint(outcomes(res)) != fmt.Sprint(want) {
		t.Errorf("same batch again: %v, want %v", outcomes(res), want)
	}
	rows, err := srv.Conn(t).Query(t.Context(), `SELECT id, gateway, incarnation, seq, kind, payload->>'n', receiver FROM records ORDER BY gateway, incarnation, seq`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var id, gw, inc, kind, n, rx string
		var seq int64
		if err := rows.Scan(&id, &gw, &inc, &seq, &kind, &n, &rx); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %s %d %s %s %s", id, gw, inc, seq, kind, n, rx))
	}
	if fmt.Sprint(got) != "[gw-aaaaaaaa-1 gw aaaaaaaa 1 ehr 1 rx-a gw-aaaaaaaa-2 gw aaaaaaaa 2 ehr 2 rx-a]" {
		t.Errorf("rows in order: %q", got)
	}
}

// TestStoreSurvivesRestarts: a store opened again (a restarted receiver) finds the schema and
// the records, applies no migration twice, and answers resends as duplicates; after the server
// itself is killed and started again, the pool reconnects and the next batch goes in.
func TestStoreSurvivesRestarts(t *testing.T) {
	srv := pgtest.Start(t)
	s := open(t, srv, "rx-a")
	if _, err := s.Store(t.Context(), []cloud.StoreRecord{rec("gw-aaaaaaaa-1", "ehr", `{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, srv, "rx-a")
	res, err := s.Store(t.Context(), []cloud.StoreRecord{rec("gw-aaaaaaaa-1", "ehr", `{"n":1}`), rec("gw-aaaaaaaa-2", "ehr", `{"n":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(outcomes(res)) != fmt.Sprint([]cloud.StoreOutcome{cloud.Duplicate, cloud.Stored}) {
		t.Errorf("after reopening: %v", outcomes(res))
	}
	var versions, n int
	c := srv.Conn(t)
	if err := c.QueryRow(t.Context(), `SELECT count(*), (SELECT count(*) FROM records) FROM obdgw_schema`).Scan(&versions, &n); err != nil {
		t.Fatal(err)
	}
	if versions != SchemaVersion() || n != 2 {
		t.Errorf("%d schema versions recorded (want %d), %d records (want 2)", versions, SchemaVersion(), n)
	}
	c.Close(t.Context())

	srv.Kill()
	srv.Start()
	var last error
	for range 3 { // the first batch may meet a connection the kill broke; the receiver offers it again
		if res, last = s.Store(t.Context(), []cloud.StoreRecord{rec("gw-aaaaaaaa-3", "ehr", `{"n":3}`)}); last == nil {
			break
		}
	}
	if last != nil || res[0].Outcome != cloud.Stored {
		t.Fatalf("after the server restarted: %v, %v", res, last)
	}
}

// TestOpenRefusesNewerSchema: a database migrated by a newer receiver is not written to.
func TestOpenRefusesNewerSchema(t *testing.T) {
	srv := pgtest.Start(t)
	open(t, srv, "rx-a").Close()
	if _, err := srv.Conn(t).Exec(t.Context(), `INSERT INTO obdgw_schema (version) VALUES ($1)`, SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), Options{URL: srv.URL(), PasswordFile: srv.PasswordFile})
	if err == nil || !strings.Contains(err.Error(), "upgrade the receiver") {
		t.Errorf("a newer schema accepted: %v", err)
	}
}

// TestReceiversStoreConcurrently: receivers storing the same ids at once (a resend landing on
// another receiver while the first copy is being stored) store each id exactly once between
// them, and each answers every record.
func TestReceiversStoreConcurrently(t *testing.T) {
	srv := pgtest.Start(t)
	stores := []*Store{open(t, srv, "rx-a"), open(t, srv, "rx-b"), open(t, srv, "rx-c")}
	var batch []cloud.StoreRecord
	for i := 1; i <= 200; i++ {
		batch = append(batch, rec(fmt.Sprintf("gw-aaaaaaaa-%d", i), "ehr", fmt.Sprintf(`{"n":%d}`, i)))
	}
	stored := make([]int, len(batch))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for k, s := range stores {
		wg.Go(func() {
			// Each receiver sees the ids in its own order.
			b := append([]cloud.StoreRecord(nil), batch[k*50:]...)
			b = append(b, batch[:k*50]...)
			res, err := s.Store(context.Background(), b)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for i, r := range res {
				if r.Outcome == cloud.Stored {
					stored[(i+k*50)%len(batch)]++
				} else if r.Outcome != cloud.Duplicate {
					t.Errorf("%s: %v", b[i].ID, r)
				}
			}
		})
	}
	wg.Wait()
	for i, n := range stored {
		if n != 1 {
			t.Errorf("%s reported stored %d times", batch[i].ID, n)
		}
	}
	var n int
	srv.Conn(t).QueryRow(t.Context(), `SELECT count(DISTINCT id) FROM records`).Scan(&n)
	if n != len(batch) {
		t.Errorf("%d records in the table, want %d", n, len(batch))
	}
}

// TestRecordsJSONBCannotHoldAreRefusedAlone: a record jsonb cannot hold is refused with a
// reason, and the rest of its batch is stored; escapes jsonb can hold are stored as sent.
func TestRecordsJSONBCannotHoldAreRefusedAlone(t *testing.T) {
	srv := pgtest.Start(t)
	s := open(t, srv, "rx-a")
	batch := []cloud.StoreRecord{
		rec("gw-aaaaaaaa-1", "ehr", `{"s":"a\u0000b"}`),
		rec("gw-aaaaaaaa-2", "ehr", `{"s":"\ud800"}`),
		rec("gw-aaaaaaaa-3", "ehr", `{"s":"\\u0000 \ud83d\ude00 \u00e9"}`),
		{ID: "gw-aaaaaaaa-4", Kind: "ehr", Payload: []byte("{\"s\":\"\xff\"}"), Gateway: "gw", Incarnation: "aaaaaaaa", Seq: 4},
		{ID: "gw-aaaaaaaa-18446744073709551615", Kind: "ehr", Payload: []byte(`{}`), Gateway: "gw", Incarnation: "aaaaaaaa", Seq: 1<<64 - 1},
	}
	res, err := s.Store(t.Context(), batch)
	if err != nil {
		t.Fatal(err)
	}
	want := []cloud.StoreOutcome{cloud.Refused, cloud.Refused, cloud.Stored, cloud.Refused, cloud.Refused}
	if fmt.Sprint(outcomes(res)) != fmt.Sprint(want) {
		t.Fatalf("%v, want %v (%+v)", outcomes(res), want, res)
	}
	for i, r := range res {
		if r.Outcome == cloud.Refused && !strings.Contains(r.Reason, batch[i].ID) {
			t.Errorf("reason %q does not name the record", r.Reason)
		}
	}
	var v string
	srv.Conn(t).QueryRow(t.Context(), `SELECT payload->>'s' FROM records WHERE id = 'gw-aaaaaaaa-3'`).Scan(&v)
	if v != "\\u0000 😀 é" {
		t.Errorf("stored %q", v)
	}
	// What the check refuses, PostgreSQL refuses too: the check is not stricter than needed.
	for _, p := range []string{`{"s":"a\u0000b"}`, `{"s":"\ud800"}`} {
		if _, err := srv.Conn(t).Exec(t.Context(), `SELECT $1::jsonb`, p); err == nil {
			t.Errorf("PostgreSQL takes %s", p)
		}
	}
}

// TestPasswordNeverInTheURLOrTheLog: a URL with a password is refused, a password file open
// to others is refused with the chmod to run, PGPASSFILE works, and a wrong password's error
// does not show it.
func TestPasswordNeverInTheURLOrTheLog(t *testing.T) {
	srv := pgtest.Start(t)
	if _, err := Open(t.Context(), Options{URL: srv.URLWithPassword()}); err == nil || strings.Contains(err.Error(), srv.Password) || !strings.Contains(err.Error(), "holds a password") {
		t.Errorf("URL with password: %v", err)
	}
	if _, err := Open(t.Context(), Options{URL: srv.URL() + "&password=" + srv.Password}); err == nil || strings.Contains(err.Error(), srv.Password) {
		t.Errorf("URL with password parameter: %v", err)
	}
	loose := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(loose, []byte(srv.Password), 0o644)
	if _, err := Open(t.Context(), Options{URL: srv.URL(), PasswordFile: loose}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("password file mode 0644: %v", err)
	}
	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("not-"+srv.Password), 0o600)
	var logs bytes.Buffer
	_, err := Open(t.Context(), Options{URL: srv.URL(), PasswordFile: wrong, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err == nil || strings.Contains(err.Error()+logs.String(), srv.Password) || !strings.Contains(err.Error(), "postgres://obdgw@127.0.0.1:") {
		t.Errorf("wrong password: %v", err)
	}
	pass := filepath.Join(t.TempDir(), "pgpass")
	os.WriteFile(pass, []byte(fmt.Sprintf("127.0.0.1:%d:obdgw:obdgw:%s\n", srv.Port, srv.Password)), 0o600)
	t.Setenv("PGPASSFILE", pass)
	s, err := Open(t.Context(), Options{URL: srv.URL()})
	if err != nil {
		t.Fatalf("with PGPASSFILE: %v", err)
	}
	s.Close()
}

func TestJSONBSafe(t *testing.T) {
	for in, want := range map[string]string{
		`{}`:                        "",
		`{"a":"\"\\u0000"}`:         "",
		`{"a":"\ud83d\ude00"}`:      "",
		`{"\u0000":1}`:              "a \\u0000 escape",
		`{"a":"\udc00"}`:            "a lone low surrogate",
		`{"a":"\ud83d"}`:            "a lone high surrogate",
		`{"a":"\ud83d\u0041"}`:      "a lone high surrogate",
		`["x\\","\u0000"]`:          "a \\u0000 escape",
		`{"a":"\u00"}`:              "a broken \\u escape",
		`{"a":"\\\\","b":"\u0000"}`: "a \\u0000 escape",
	} {
		if got := jsonbSafe([]byte(in)); got != want {
			t.Errorf("jsonbSafe(%s) = %q, want %q", in, got, want)
		}
	}
}

// FuzzJSONBSafe: the scan never panics or reads past the input, and a payload without a
// backslash is always safe.
func FuzzJSONBSafe(f *testing.F) {
	for _, s := range []string{`{"a":"\u0000"}`, `{"a":"\ud83d\ude00"}`, `"\`, `"\u`, `"\ud800\u`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := jsonbSafe(b)
		if got != "" && !bytes.Contains(b, []byte(`\`)) {
			t.Errorf("no escape, yet %q", got)
		}
	})
}
