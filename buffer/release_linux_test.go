//go:build linux

package buffer

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// rssFileKB is the file-backed part of this process's resident set.
func rssFileKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "RssFile:" {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("kernel reports no RssFile")
	return 0
}

// An 8 MB outbox opened (checked) and read front to back must not stay resident: Open and
// PeekAfter drop the pages of bbolt's map they have read. The records read after the pages
// were dropped must be exactly those stored (the map is read-only and shared, so dropped
// pages come back from the file).
func TestReadingTheOutboxDoesNotKeepItResident(t *testing.T) {
	const n, size = 8_000, 1000
	path := filepath.Join(t.TempDir(), "big.db")
	db, err := Open(path, Options{GatewayID: "gw"})
	if err != nil {
		t.Fatal(err)
	}
	payload := func(i int) []byte {
		return bytes.Repeat([]byte{byte('a' + i%26)}, size-8)
	}
	err = db.Update(func(tx *Tx) error {
		for i := 1; i <= n; i++ {
			p := append([]byte(fmt.Sprintf("%08d", i)), payload(i)...)
			if _, err := tx.Append("ehr", "t", p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	fi, _ := os.Stat(path)
	before := rssFileKB(t)
	db, err = Open(path, Options{GatewayID: "gw"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	afterOpen := rssFileKB(t)
	var seq uint64
	got := 0
	for {
		recs, err := db.PeekAfter(seq, 64)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			got++
			want := append([]byte(fmt.Sprintf("%08d", got)), payload(got)...)
			if r.Seq != uint64(got) || !bytes.Equal(r.Payload, want) {
				t.Fatalf("record %d read back as seq %d, payload %.20q…", got, r.Seq, r.Payload)
			}
			seq = r.Seq
		}
	}
	if got != n {
		t.Fatalf("read %d records, stored %d", got, n)
	}
	afterRead := rssFileKB(t)
	fileKB := int(fi.Size() >> 10)
	t.Logf("file %d kB; RssFile %d kB before Open, %d after Open, %d after reading everything", fileKB, before, afterOpen, afterRead)
	// Without the releases both would grow by the whole file (and more: Open reads it twice).
	if afterOpen-before > fileKB/3 || afterRead-before > fileKB/3 {
		t.Fatalf("resident file pages grew by %d kB at Open and %d kB after reading a %d kB outbox; want well under a third of it", afterOpen-before, afterRead-before, fileKB)
	}
}

// The release range is bounded by the kernel's own record of bbolt's mapping.
func TestMappingLenFindsBboltsMap(t *testing.T) {
	db, _ := openTest(t, Options{})
	err := db.bolt.View(func(tx *boltTx) error {
		n, ok := mappingLen(uint64(db.bolt.Info().Data))
		if !ok || n < uint64(tx.Size()) || n%uint64(os.Getpagesize()) != 0 {
			return fmt.Errorf("mapping at the bbolt map's address: %d bytes, found %v; the transaction uses %d", n, ok, tx.Size())
		}
		if _, ok := mappingLen(uint64(db.bolt.Info().Data) + 4096); ok {
			return fmt.Errorf("a mapping starting inside bbolt's map was reported")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
