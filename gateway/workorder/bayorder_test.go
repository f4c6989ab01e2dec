package workorder

import (
	"errors"
	"testing"
)

func TestSelfTestOrder(t *testing.T) {
	f := newFixture(t, nil)
	// No order on the bay: nothing to belong to.
	if _, err := f.s.SelfTestOrder("bay1", ""); !errors.Is(err, ErrNoEmissionOrder) {
		t.Fatalf("empty bay: %v", err)
	}
	plain, err := f.s.Create(NewOrder{Plate: "浙A10001", PlateColor: "blue", Bay: "bay2"})
	if err != nil {
		t.Fatal(err)
	}
	// An order that is not an emission repair never takes a self-test, named or not.
	if _, err := f.s.SelfTestOrder("bay2", ""); !errors.Is(err, ErrNoEmissionOrder) {
		t.Fatalf("plain order by bay: %v", err)
	}
	if _, err := f.s.SelfTestOrder("bay2", plain.ID); !errors.Is(err, ErrNoEmissionOrder) {
		t.Fatalf("plain order by id: %v", err)
	}
	em, err := f.s.Create(exampleOrder())
	if err != nil {
		t.Fatal(err)
	}
	if o, err := f.s.SelfTestOrder("bay1", ""); err != nil || o.ID != em.ID {
		t.Fatalf("by bay: %+v %v", o, err)
	}
	if o, err := f.s.SelfTestOrder("bay2", em.ID); err != nil || o.ID != em.ID {
		t.Fatalf("by id from another bay: %+v %v", o, err)
	}
	// Two open orders on one bay: the bay alone cannot pick one.
	if _, err := f.s.Create(exampleOrder()); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := f.s.BayOrder("bay1"); ok || err != nil {
		t.Fatalf("two open orders: ok %v, %v", ok, err)
	}
	if _, err := f.s.SelfTestOrder("bay1", ""); !errors.Is(err, ErrNoEmissionOrder) {
		t.Fatalf("ambiguous bay: %v", err)
	}
	if _, err := f.s.SelfTestOrder("bay1", "WO-none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
}

func TestKeepScanNeverDropsAScan(t *testing.T) {
	f := newFixture(t, nil)
	o, err := f.s.Create(NewOrder{Plate: "浙A10001", PlateColor: "blue", VIN: exampleVIN, Bay: "bay1"})
	if err != nil {
		t.Fatal(err)
	}
	// On the order named.
	id, err := f.s.KeepScan(o.ID, "bay1", "before clearing fault codes", exampleScan(exampleVIN))
	if err != nil || id == "" {
		t.Fatalf("named order: %q %v", id, err)
	}
	got, _ := f.s.Get(o.ID)
	if len(got.Scans) != 1 || got.Scans[0].ID != id {
		t.Fatalf("not attached: %+v", got.Scans)
	}
	// An order that does not exist: the scan is still stored, and the error says why it is
	// not on that order.
	id, err = f.s.KeepScan("WO-none", "bay2", "after clearing fault codes", exampleScan("LSVNV2187E2100001"))
	if id == "" || !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown order: %q %v", id, err)
	}
	if _, err := f.s.Scan(id); err != nil {
		t.Fatalf("scan not kept: %v", err)
	}
}
