package bay

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/obd"
)

func openMemory(t *testing.T, max int) (*Memory, *buffer.DB, *time.Time) {
	t.Helper()
	db, err := buffer.Open(filepath.Join(t.TempDir(), "obdgw.db"), buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	m := NewMemory(db, MemoryOptions{Now: func() time.Time { return now }, Max: max})
	return m, db, &now
}

func TestMemoryKeepsAnswersInTheBufferFile(t *testing.T) {
	m, _, _ := openMemory(t, 10)
	if _, ok := m.Recall("LK6ADCE15PB405127"); ok {
		t.Fatal("an empty memory recalled a car")
	}
	a := obd.Answers{ECUs: []string{"7E8", "7E9"}, Requests: map[string][]obd.Answer{"0904": {{ECU: "7E8", Len: 19}}}, Codes: map[string]string{"7E8": "43 00 | 47 00"}}
	m.Remember("LK6ADCE15PB405127", a)
	got, ok := m.Recall("LK6ADCE15PB405127")
	if !ok || !slices.Equal(got.ECUs, a.ECUs) || got.Requests["0904"][0] != a.Requests["0904"][0] || got.Codes["7E8"] != "43 00 | 47 00" {
		t.Errorf("recalled %+v, %v", got, ok)
	}
}

// TestMemoryForgetsTheOldestCar: past its limit the memory forgets the car scanned longest ago.
func TestMemoryForgetsTheOldestCar(t *testing.T) {
	m, _, now := openMemory(t, 3)
	vins := []string{"VIN00000000000001", "VIN00000000000002", "VIN00000000000003", "VIN00000000000004", "VIN00000000000005"}
	for _, v := range vins {
		*now = now.Add(time.Hour)
		m.Remember(v, obd.Answers{ECUs: []string{"7E8"}})
	}
	*now = now.Add(time.Hour)
	m.Remember(vins[2], obd.Answers{ECUs: []string{"7E8"}}) // seen again: now the newest
	*now = now.Add(time.Hour)
	m.Remember("VIN00000000000006", obd.Answers{ECUs: []string{"7E8"}})
	for _, v := range vins {
		_, ok := m.Recall(v)
		if want := v == vins[2] || v == vins[4]; ok != want {
			t.Errorf("%s kept %v, want %v", v, ok, want)
		}
	}
	if _, ok := m.Recall("VIN00000000000006"); !ok {
		t.Error("the newest car was not kept")
	}
}

// TestMemoryIgnoresUnreadableEntries: a damaged entry is a car not seen before, not a failure,
// and the entries beside it stay readable.
func TestMemoryIgnoresUnreadableEntries(t *testing.T) {
	m, db, _ := openMemory(t, 10)
	m.Remember("GOOD0000000000001", obd.Answers{ECUs: []string{"7E8"}})
	if err := db.Update(func(tx *buffer.Tx) error {
		if err := tx.Put(bucketAnswers, "BAD00000000000001", []byte("\x00\x00\x00\x00\x00\x00\x00\x01{not json")); err != nil {
			return err
		}
		if err := tx.Put(bucketAnswers, "BAD00000000000002", []byte("{}")); err != nil {
			return err
		}
		if err := tx.Put(bucketBaud, "bay1", []byte("fast")); err != nil {
			return err
		}
		return tx.Put(bucketProtocol, "bay1", []byte("66; rm -rf"))
	}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"BAD00000000000001", "BAD00000000000002"} {
		if _, ok := m.Recall(v); ok {
			t.Errorf("%s recalled", v)
		}
	}
	if _, ok := m.Recall("GOOD0000000000001"); !ok {
		t.Error("a good entry was lost")
	}
	if p := m.Protocol("bay1"); p != "" {
		t.Errorf("protocol %q from a damaged entry", p)
	}
	m.SetProtocol("bay1", "A6")
	if p := m.Protocol("bay1"); p != "6" {
		t.Errorf("protocol %q after ATDPN said A6, want 6", p)
	}
	if b := m.Baud("bay1"); b != 0 {
		t.Errorf("baud %d from a damaged entry", b)
	}
	m.SetBaud("bay1", 115200)
	if b := m.Baud("bay1"); b != 115200 {
		t.Errorf("baud %d after the adapter answered at 115200", b)
	}
}
