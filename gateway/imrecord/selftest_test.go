package imrecord_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/imrecord"
)

// TestStoreKeepsOnlyJudgedSelfTests: a pass or a fail is kept in the buffer file and read back
// after reopening it; a refused run is not kept and does not replace the kept one.
func TestStoreKeepsOnlyJudgedSelfTests(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obdgw.db")
	db, err := buffer.Open(path, buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := imrecord.NewStore(db, imrecord.Options{})
	if _, ok, err := s.Get("WO-1"); ok || err != nil {
		t.Fatalf("empty store: ok %v err %v", ok, err)
	}
	pass := imrecord.SelfTest{Order: "WO-1", Bay: "bay1", RigModel: "NHA-506", RigSerial: "NH5060231", Result: imIdleResult(t)}
	if err := s.Keep(pass); err != nil {
		t.Fatal(err)
	}
	refused := pass
	refused.Result = &emission.Result{Method: emission.TwoSpeedIdle, Verdict: emission.Refused}
	if err := s.Keep(refused); !errors.Is(err, imrecord.ErrNotJudged) {
		t.Errorf("refused self-test kept: %v", err)
	}
	if err := s.Keep(imrecord.SelfTest{Order: "WO-2"}); !errors.Is(err, imrecord.ErrNotJudged) {
		t.Errorf("self-test without a result kept: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = buffer.Open(path, buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, ok, err := imrecord.NewStore(db, imrecord.Options{}).Get("WO-1")
	if err != nil || !ok {
		t.Fatalf("after reopening: ok %v err %v", ok, err)
	}
	if got.RigSerial != "NH5060231" || got.Result == nil || got.Result.Verdict != emission.Pass || len(got.Result.Idle.Process) == 0 {
		t.Errorf("read back %+v", got)
	}
}
