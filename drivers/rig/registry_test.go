package rig

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

type fakeRig struct{ Port }

func (fakeRig) Read(context.Context) (Reading, error) { return Reading{HCppm: F(-3)}, nil }
func (fakeRig) String() string                        { return "fake" }
func (fakeRig) Halt() error                           { return nil }

func TestRegistry(t *testing.T) {
	Register(Model{Name: "zz-test1", Family: "acme", Title: "Test Rig", Baud: 4800, Open: func(p Port, o Options) (Rig, error) {
		return fakeRig{p}, nil
	}})
	m, ok := Lookup("ZZ-TEST_1")
	if !ok || m.Baud != 4800 {
		t.Fatalf("Lookup with case and separators = %+v, %v", m, ok)
	}
	// With the maker in front, as a config or a technician writes it.
	for _, name := range []string{"acme-zz-test1", "Acme ZZ-TEST1", "acmezztest1"} {
		if m, ok := Lookup(name); !ok || m.Name != "zz-test1" {
			t.Errorf("Lookup(%q) = %q, %v; want zz-test1", name, m.Name, ok)
		}
	}
	if _, ok := Lookup("other-zz-test1"); ok {
		t.Error("another maker's name found the model")
	}
	a, b := net.Pipe()
	defer b.Close()
	r, err := Open("zz-test1", a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rd, _ := r.Read(context.Background()); *rd.HCppm != -3 {
		t.Errorf("reading %+v", rd)
	}
	r.Close()
	if _, err := Open("nope", a, Options{}); err == nil || !strings.Contains(err.Error(), "zz-test1") {
		t.Errorf("unknown model error %v does not list the known models", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("duplicate registration did not panic")
		}
	}()
	Register(Model{Name: "zz-test1"})
}

func TestErrors(t *testing.T) {
	be := &BusyError{Model: "X", Frame: []byte{0x05}}
	if !errors.Is(be, ErrBusy) || !strings.Contains(be.Error(), "05") {
		t.Errorf("BusyError: %v", be)
	}
	se := &ShortFrameError{Model: "X", Frame: []byte{6}, Want: 21, Err: context.DeadlineExceeded}
	if !errors.Is(se, context.DeadlineExceeded) || !strings.Contains(se.Error(), "1 of 21") {
		t.Errorf("ShortFrameError: %v", se)
	}
	for _, e := range []error{
		&ChecksumError{Model: "X", Frame: []byte{1, 2}, Want: 3, Got: 4},
		&NAKError{Model: "X", Code: 2, Frame: []byte{0x15, 2}},
		&NAKError{Model: "X", Code: -1, Frame: []byte{0x15}},
		&FrameError{Model: "X", Frame: []byte{0xAA}, Reason: "lead byte"},
	} {
		if msg := e.Error(); !strings.HasPrefix(msg, "rig: X:") || strings.HasSuffix(msg, ".") {
			t.Errorf("message %q", msg)
		}
	}
}
