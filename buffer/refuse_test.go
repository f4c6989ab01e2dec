package buffer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// storeWith makes a closed store file holding n records and returns its path.
func storeWith(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "obdgw.db")
	db, err := Open(path, Options{GatewayID: "gw"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		mustAppend(t, db, "ehr", fmt.Sprintf("record %03d %s", i, strings.Repeat("x", 200)))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// refused opens path, expects a refusal whose text contains want, and checks that the file is
// still there byte for byte and nothing was put beside it.
func refused(t *testing.T, path string, want string) error {
	t.Helper()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	side, _ := os.ReadFile(SidecarPath(path))
	db, err := Open(path, Options{GatewayID: "gw"})
	if err == nil {
		db.Close()
		t.Fatalf("Open accepted the file")
	}
	var ce *CorruptError
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Path != path {
		t.Fatalf("Open: %v, want a CorruptError", err)
	}
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "left in place") {
		t.Errorf("error %q does not say %q and where the file is", err, want)
	}
	after, rerr := os.ReadFile(path)
	if rerr != nil || !bytes.Equal(before, after) {
		t.Fatalf("the refused file was changed or moved (%v)", rerr)
	}
	if side2, _ := os.ReadFile(SidecarPath(path)); !bytes.Equal(side, side2) {
		t.Errorf("the sidecar changed: %q → %q", side, side2)
	}
	if m, _ := filepath.Glob(path + ".*"); len(m) > 1 || len(m) == 1 && m[0] != SidecarPath(path) {
		t.Errorf("files beside the store: %v", m)
	}
	return err
}

func TestOpenRefusesZeroLengthFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obdgw.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	refused(t, path, "empty")
	refused(t, path, "empty") // and again: a restart does not start afresh
}

func TestOpenRefusesTruncatedFile(t *testing.T) {
	src := storeWith(t, 60)
	orig, _ := os.ReadFile(src)
	if len(orig) < 8*4096 {
		t.Fatalf("store of %d bytes is too small to cut", len(orig))
	}
	// The pages in use end at the high-water mark of the newer meta page (its pgid field);
	// the file may be longer, grown ahead.
	newer := 0
	if metaTxid(orig, 1) > metaTxid(orig, 0) {
		newer = 1
	}
	hwm := int(binary.LittleEndian.Uint64(orig[newer*4096+16+40:])) * 4096
	for _, cut := range []int{100, 4096, 4096 + 17, 2 * 4096, hwm / 2, hwm - 4096, len(orig) - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "obdgw.db")
			os.WriteFile(path, orig[:cut], 0o600)
			refused(t, path, "")
		})
	}
}

func TestOpenRefusesBadMagic(t *testing.T) {
	path := storeWith(t, 5)
	b, _ := os.ReadFile(path)
	// bbolt's magic (0xED0CDAED) sits after the 16-byte page header of both meta pages.
	for _, off := range []int{16, 4096 + 16} {
		binary.LittleEndian.PutUint32(b[off:], 0x12345678)
	}
	os.WriteFile(path, b, 0o600)
	refused(t, path, "invalid")
}

// metaTxid reads the transaction id of bbolt meta page i (page header 16 bytes, then magic,
// version, page size, flags, root bucket (16), freelist, pgid, txid).
func metaTxid(b []byte, i int) uint64 {
	return binary.LittleEndian.Uint64(b[i*4096+16+48:])
}

// A flipped byte in the newer meta page makes bbolt open the older one, one commit back: the
// last record is gone and the next would reuse its sequence number. Only the sidecar tells.
func TestOpenRefusesRollbackToOlderMetaPage(t *testing.T) {
	path := storeWith(t, 3)
	for i := 0; ; i++ {
		b, _ := os.ReadFile(path)
		if metaTxid(b, 0) > metaTxid(b, 1) {
			break // page 0 holds the newest commit, an append
		}
		if i > 4 {
			t.Fatal("meta page 0 never became the newer")
		}
		db, err := Open(path, Options{GatewayID: "gw"})
		if err != nil {
			t.Fatal(err)
		}
		// Open commits once itself: append once or twice to change the parity.
		for range 1 + i%2 {
			mustAppend(t, db, "ehr", "one more")
		}
		db.Close()
	}
	b, _ := os.ReadFile(path)
	b[16+32] ^= 0x01 // the freelist page id: the checksum no longer matches
	os.WriteFile(path, b, 0o600)
	err := refused(t, path, "rolled back to an older state")
	if !errors.Is(err, ErrRolledBack) {
		t.Errorf("not ErrRolledBack: %v", err)
	}
	// Without the sidecar (an install from before it) bbolt would open the older state:
	// the damage is real, and only the sidecar catches it.
	os.Remove(SidecarPath(path))
	db, err := Open(path, Options{GatewayID: "gw"})
	if err != nil {
		t.Fatalf("without the sidecar: %v", err)
	}
	db.Close()
}

func TestOpenRefusesFlippedByteInDataPage(t *testing.T) {
	path := storeWith(t, 60)
	b, _ := os.ReadFile(path)
	// Find a leaf page of the outbox (page flags 0x02 at offset 8, holding a payload) and
	// damage its element count.
	page := -1
	for p := 2; p < len(b)/4096; p++ {
		pg := b[p*4096 : (p+1)*4096]
		if binary.LittleEndian.Uint16(pg[8:]) == 0x02 && bytes.Contains(pg, []byte("record 0")) {
			page = p
			break
		}
	}
	if page < 0 {
		t.Fatal("no outbox leaf page found")
	}
	b[page*4096+10] ^= 0x40 // count
	os.WriteFile(path, b, 0o600)
	refused(t, path, "")
}

func TestOpenRefusesMissingFileWithSidecar(t *testing.T) {
	path := storeWith(t, 2)
	os.Remove(path)
	_, err := Open(path, Options{})
	if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("open of a missing file with a sidecar: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a new store was created")
	}
}

func TestOpenRefusesAnotherFileInPlace(t *testing.T) {
	a, b := storeWith(t, 2), storeWith(t, 2)
	data, _ := os.ReadFile(b)
	os.WriteFile(a, data, 0o600) // same txid and next seq, another incarnation
	if err := refused(t, a, "incarnation"); !errors.Is(err, ErrRolledBack) {
		t.Errorf("not ErrRolledBack: %v", err)
	}
}

func TestSidecarFollowsAppends(t *testing.T) {
	db, path := openTest(t, Options{GatewayID: "gw"})
	inc := db.Info().Incarnation
	if !isIncarnation(inc) || !db.Info().New || db.Info().Created.IsZero() {
		t.Fatalf("info %+v", db.Info())
	}
	mustAppend(t, db, "ehr", "a")
	r := mustAppend(t, db, "ehr", "b")
	fi, err := os.Stat(SidecarPath(path))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("sidecar %v %v", fi, err)
	}
	s, ok, err := readSidecar(path)
	if err != nil || !ok || s.incarnation != inc || s.next != r.Seq+1 {
		t.Fatalf("sidecar %+v %v %v after seq %d", s, ok, err, r.Seq)
	}
	var txid uint64
	db.View(func(tx *Tx) error { txid = uint64(tx.tx.ID()); return nil })
	if s.txid != txid {
		t.Errorf("sidecar txid %d, file %d", s.txid, txid)
	}
	// An Ack does not move it; reopening keeps the incarnation and says the store is not new.
	db.Ack(1)
	db.Close()
	db, err = Open(path, Options{GatewayID: "gw"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if i := db.Info(); i.Incarnation != inc || i.New {
		t.Errorf("after reopen: %+v", i)
	}
	if got := mustAppend(t, db, "ehr", "c"); got.ID != "gw-"+inc+"-3" {
		t.Errorf("id %s", got.ID)
	}
}

// A store from before incarnations gets one at Open; its records keep their ids.
func TestOldStoreGetsIncarnationKeepsIDs(t *testing.T) {
	db, path := openTest(t, Options{GatewayID: "gw"})
	mustAppend(t, db, "ehr", "a")
	mustAppend(t, db, "ehr", "b")
	err := db.bolt.Update(func(tx *boltTx) error {
		ob := tx.Bucket(bucketOutbox)
		for seq := uint64(1); seq <= 2; seq++ {
			r, err := decodeRecord(seq, ob.Get(seqKey(seq)))
			if err != nil {
				return err
			}
			r.ID = fmt.Sprintf("gw-%d", seq)
			if err := ob.Put(seqKey(seq), encodeRecord(&r)); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		meta.Delete(keyCreated)
		return meta.Delete(keyIncarnation)
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	os.Remove(SidecarPath(path))
	db, err = Open(path, Options{GatewayID: "gw"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inc := db.Info().Incarnation
	if !isIncarnation(inc) || db.Info().New {
		t.Fatalf("info %+v", db.Info())
	}
	recs, _ := db.Peek(10)
	if len(recs) != 2 || recs[0].ID != "gw-1" || recs[1].ID != "gw-2" {
		t.Fatalf("old records %+v", recs)
	}
	if r := mustAppend(t, db, "ehr", "c"); r.ID != "gw-"+inc+"-3" {
		t.Errorf("new record id %s", r.ID)
	}
}

// bbolt panics while opening a file whose freelist page is damaged, after it has locked and
// mapped the file: the lock must still be released, so that the same process can try again
// and, once the file is moved aside, start a new store.
func TestOpenReleasesTheLockAfterABboltPanic(t *testing.T) {
	path := storeWith(t, 5)
	b, _ := os.ReadFile(path)
	newer := 0
	if metaTxid(b, 1) > metaTxid(b, 0) {
		newer = 1
	}
	free := int(binary.LittleEndian.Uint64(b[newer*4096+16+32:]))
	binary.LittleEndian.PutUint16(b[free*4096+8:], 0x5a10)
	os.WriteFile(path, b, 0o600)
	for range 2 {
		_, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "panicked") {
			t.Fatalf("open: %v", err)
		}
	}
	if _, err := MoveAside(path, time.Now()); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("new store after the panic: %v", err)
	}
	db.Close()
}

// A slot torn by a power cut leaves the other, older one: the sidecar reads as one commit
// behind (never ahead, which would refuse a good file), and a sidecar with no valid slot is
// refused with its name.
func TestSidecarTornSlot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obdgw.db")
	older := sidecar{incarnation: "abcdefgh", txid: 7, next: 3}
	newer := sidecar{incarnation: "abcdefgh", txid: 8, next: 4}
	f, err := createSidecar(path, older)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeSlot(f, newer); err != nil {
		t.Fatal(err)
	}
	if s, ok, err := readSidecar(path); err != nil || !ok || s != newer {
		t.Fatalf("read %+v %v %v, want %+v", s, ok, err, newer)
	}
	// Tear the newer slot (txid 8: slot 0) half way.
	f.WriteAt(bytes.Repeat([]byte{0}, slotSize/2), slotSize/2)
	f.Close()
	if s, ok, err := readSidecar(path); err != nil || !ok || s != older {
		t.Fatalf("after a torn slot: %+v %v %v, want %+v", s, ok, err, older)
	}
	os.WriteFile(SidecarPath(path), []byte("garbage"), 0o600)
	if _, _, err := readSidecar(path); err == nil || !strings.Contains(err.Error(), SidecarPath(path)) {
		t.Fatalf("garbage sidecar: %v", err)
	}
}

func FuzzParseSlot(f *testing.F) {
	f.Add(sidecar{incarnation: "abcdefgh", txid: 7, next: 3}.slot())
	f.Add([]byte("obdgw-store-last/1 incarnation=abcdefgh txid=1 next=2 crc=00000000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, ok := parseSlot(b)
		if ok {
			if got, ok2 := parseSlot(s.slot()); !ok2 || got != s {
				t.Errorf("slot of %+v does not read back: %+v", s, got)
			}
		}
	})
}
