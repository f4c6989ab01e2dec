package audit

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/obdgw/obdgw/buffer"
)

func TestListPagesOldestFirstFromSince(t *testing.T) {
	db, err := buffer.Open(filepath.Join(t.TempDir(), "obdgw.db"), buffer.Options{GatewayID: "gw-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2024, 3, 13, 2, 0, 0, 0, time.UTC)
	l := New(db, Options{Now: func() time.Time { return now }})
	for i := range 5 {
		now = now.Add(time.Hour)
		if err := l.Add(Entry{Token: "desk", Role: "front_desk", Action: ActionOwnerRead, Order: "WO00000" + string(rune('1'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Add(Entry{}); err == nil {
		t.Fatal("an entry without an action was written")
	}
	var seen []string
	var after uint64
	for {
		page, next, err := l.List(time.Time{}, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			seen = append(seen, e.Order)
		}
		if next == 0 {
			break
		}
		after = next
	}
	if len(seen) != 5 || seen[0] != "WO000001" || seen[4] != "WO000005" {
		t.Fatalf("pages %v", seen)
	}
	page, _, err := l.List(time.Date(2024, 3, 13, 5, 0, 0, 0, time.UTC), 0, 100)
	if err != nil || len(page) != 3 || page[0].Seq != 3 {
		t.Fatalf("since 05:00: %+v %v", page, err)
	}
	if _, _, err := l.List(time.Time{}, 0, 0); err == nil {
		t.Fatal("limit 0 accepted")
	}
}
