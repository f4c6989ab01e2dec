package buffer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestBackupWhileInUse: a backup taken while records are appended is a store on its own: it
// opens, passes the check, and holds a prefix of the outbox (every record up to some point,
// none half-written), mode 0600.
func TestBackupWhileInUse(t *testing.T) {
	db, _ := openTest(t, Options{})
	for i := 0; i < 200; i++ {
		mustAppend(t, db, "ehr", `{"n":1}`)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 300; i++ {
			if _, err := db.Append(context.Background(), "ehr", "obdgw/ehr", bytes.Repeat([]byte("x"), 500)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	dest := filepath.Join(t.TempDir(), "backup.db")
	n, err := WriteBackup(dest, db.Backup)
	wg.Wait()
	if err != nil || n == 0 {
		t.Fatalf("backup: %d bytes, %v", n, err)
	}
	st, err := os.Stat(dest)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != n {
		t.Fatalf("backup file %v, mode %v size %d (wrote %d)", err, st.Mode().Perm(), st.Size(), n)
	}
	b, err := Open(dest, Options{})
	if err != nil {
		t.Fatalf("the backup does not open as a store: %v", err)
	}
	defer b.Close()
	recs, err := b.Peek(1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 200 {
		t.Fatalf("backup holds %d records, want at least the 200 appended before it", len(recs))
	}
	for i, r := range recs {
		if r.Seq != recs[0].Seq+uint64(i) {
			t.Fatalf("backup's outbox has a hole at %d: %v", i, seqs(recs))
		}
	}
}

// TestBackupFile: with no gateway running the file is copied directly; while a process holds
// it, BackupFile says so (ErrLocked) instead of waiting; a failed backup leaves no file.
func TestBackupFile(t *testing.T) {
	db, path := openTest(t, Options{})
	mustAppend(t, db, "ehr", `{"a":1}`)
	dest := filepath.Join(t.TempDir(), "b.db")
	if _, err := BackupFile(path, dest); !errors.Is(err, ErrLocked) {
		t.Fatalf("backup of a store in use: %v, want ErrLocked", err)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("a refused backup left %s: %v", dest, err)
	}
	db.Close()
	if _, err := BackupFile(path, dest); err != nil {
		t.Fatal(err)
	}
	b, err := Open(dest, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if recs, _ := b.Peek(10); len(recs) != 1 || string(recs[0].Payload) != `{"a":1}` {
		t.Fatalf("backup holds %+v", recs)
	}
	if _, err := BackupFile(filepath.Join(t.TempDir(), "missing.db"), dest+"2"); err == nil {
		t.Fatal("backup of a missing file succeeded")
	}
}
