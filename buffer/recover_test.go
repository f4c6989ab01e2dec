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

func TestMoveAsideKeepsFileAndSidecar(t *testing.T) {
	path := storeWith(t, 2)
	orig, _ := os.ReadFile(path)
	side, _ := os.ReadFile(SidecarPath(path))
	now := time.Date(2026, 11, 22, 3, 4, 5, 0, time.UTC)
	moved, err := MoveAside(path, now)
	if err != nil || moved != path+".old-20261122T030405Z" {
		t.Fatalf("MoveAside = %q, %v", moved, err)
	}
	if b, _ := os.ReadFile(moved); !bytes.Equal(b, orig) {
		t.Fatal("moved file differs")
	}
	if b, _ := os.ReadFile(SidecarPath(moved)); !bytes.Equal(b, side) {
		t.Fatal("sidecar not moved with the file")
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open after MoveAside: %v", err)
	}
	if !db.Info().New {
		t.Error("not a new store")
	}
	db.Close()
	// A second move in the same second does not overwrite the first.
	moved2, err := MoveAside(path, now)
	if err != nil || moved2 != moved+"-2" {
		t.Fatalf("second MoveAside = %q, %v", moved2, err)
	}
	if b, _ := os.ReadFile(moved); !bytes.Equal(b, orig) {
		t.Fatal("first moved file overwritten")
	}
}

func TestRestore(t *testing.T) {
	backup := storeWith(t, 3)
	bdb, _ := Open(backup, Options{})
	oldInc := bdb.Info().Incarnation
	bdb.Close()
	backupBytes, _ := os.ReadFile(backup)
	path := filepath.Join(t.TempDir(), "obdgw.db")
	os.WriteFile(path, []byte("damaged"), 0o600)

	// A damaged backup is refused and changes nothing.
	bad := filepath.Join(t.TempDir(), "bad.db")
	os.WriteFile(bad, bytes.Repeat([]byte{7}, 8192), 0o600)
	if _, err := Restore(bad, path, false, Options{}); err == nil || !strings.Contains(err.Error(), "cannot be used") {
		t.Fatalf("restore of a damaged backup: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "damaged" {
		t.Fatal("state file changed by a refused restore")
	}

	moved, err := Restore(backup, path, false, Options{GatewayID: "gw"})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(moved); string(b) != "damaged" {
		t.Fatalf("the replaced file was not kept aside (%q)", moved)
	}
	if b, _ := os.ReadFile(backup); !bytes.Equal(b, backupBytes) {
		t.Fatal("the backup itself was changed")
	}
	db, err := Open(path, Options{GatewayID: "gw"})
	if err != nil {
		t.Fatalf("open after restore: %v", err)
	}
	recs, _ := db.Peek(10)
	inc := db.Info().Incarnation
	if len(recs) != 3 || !strings.Contains(recs[0].ID, oldInc) || inc == oldInc {
		t.Fatalf("restored %d records %v, incarnation %s (backup's %s)", len(recs), recs, inc, oldInc)
	}
	if r := mustAppend(t, db, "ehr", "new"); r.ID != "gw-"+inc+"-4" {
		t.Errorf("new record id %s", r.ID)
	}
	db.Close()
	// A good state file is only replaced with force.
	if _, err := Restore(backup, path, false, Options{}); !errors.Is(err, ErrGoodStore) {
		t.Fatalf("restore over a good file: %v", err)
	}
	if _, err := Restore(backup, path, true, Options{}); err != nil {
		t.Fatalf("forced restore: %v", err)
	}
}

func TestSalvageDamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := Open(path, Options{GatewayID: "gw"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 39 {
		mustAppend(t, db, "ehr", fmt.Sprintf("record %d", i))
	}
	db.Ack(1)
	db.Update(func(tx *Tx) error { return tx.Put("workorders", "WO000001", []byte(`{"id":"WO000001"}`)) })
	mustAppend(t, db, "ehr", "record 39") // the commit the flip loses
	oldInc := db.Info().Incarnation
	db.Close()
	// The meta page flip: Open refuses the file, Salvage reads what bbolt still can.
	b, _ := os.ReadFile(path)
	newer := 0
	if metaTxid(b, 1) > metaTxid(b, 0) {
		newer = 1
	}
	b[newer*4096+16+32] ^= 1
	os.WriteFile(path, b, 0o600)
	if _, err := Open(path, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open: %v", err)
	}
	into, _ := openTest(t, Options{GatewayID: "gw"})
	rep, err := Salvage(path, into)
	if err != nil {
		t.Fatal(err)
	}
	// bbolt reads the older meta page: the last record is lost with the flip.
	if rep.Records != 38 || rep.Documents != 1 || rep.Incarnation != oldInc || len(rep.Unreadable) != 0 {
		t.Fatalf("report %+v", rep)
	}
	recs, _ := into.Peek(100)
	if len(recs) != 38 || string(recs[0].Payload) != "record 1" || recs[0].ID != "gw-"+into.Info().Incarnation+"-1" {
		t.Fatalf("imported %d records, first %+v", len(recs), recs[0])
	}
	into.View(func(tx *Tx) error {
		if tx.Get(SalvagedBucket(oldInc, "workorders"), "WO000001") == nil {
			t.Error("work order not salvaged")
		}
		return nil
	})
	if b2, _ := os.ReadFile(path); !bytes.Equal(b, b2) {
		t.Error("salvage changed the old file")
	}
	// A file with nothing readable says so.
	empty := filepath.Join(t.TempDir(), "empty.db")
	os.WriteFile(empty, nil, 0o600)
	if _, err := Salvage(empty, into); err == nil || !strings.Contains(err.Error(), "cannot open") {
		t.Errorf("salvage of an empty file: %v", err)
	}
}

// One unreadable outbox page costs only its records: Salvage seeks past it.
func TestSalvageSkipsAnUnreadablePage(t *testing.T) {
	path := storeWith(t, 200)
	b, _ := os.ReadFile(path)
	page := -1
	for p := 2; p < len(b)/4096; p++ {
		pg := b[p*4096 : (p+1)*4096]
		if binary.LittleEndian.Uint16(pg[8:]) == 0x02 && bytes.Contains(pg, []byte("record 100")) {
			page = p
			break
		}
	}
	if page < 0 {
		t.Fatal("no outbox leaf page found")
	}
	for i := page*4096 + 16; i < (page+1)*4096; i++ {
		b[i] ^= 0xa5 // the element headers: the page's keys and values point nowhere
	}
	binary.LittleEndian.PutUint64(b[page*4096:], 0xdead) // and its page id is wrong
	os.WriteFile(path, b, 0o600)
	into, _ := openTest(t, Options{})
	rep, err := Salvage(path, into)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records < 150 || rep.Records >= 200 || len(rep.Unreadable) == 0 {
		t.Fatalf("salvaged %d of 200, unreadable %q", rep.Records, rep.Unreadable)
	}
	recs, _ := into.Peek(300)
	if string(recs[0].Payload[:10]) != "record 000" || !strings.HasPrefix(string(recs[len(recs)-1].Payload), "record 199") {
		t.Errorf("first %q last %q", recs[0].Payload[:10], recs[len(recs)-1].Payload[:10])
	}
	t.Logf("salvaged %d of 200; %s", rep.Records, strings.Join(rep.Unreadable, "; "))
}
