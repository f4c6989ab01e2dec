//go:build linux

package ptypair_test

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/obdgw/obdgw/hack/testenv"
)

// TestRaw: a CR crosses untranslated in both directions and nothing is echoed, before any
// client has configured the slave.
func TestRaw(t *testing.T) {
	p := testenv.PTY(t)
	s, err := os.OpenFile(p.SlavePath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("ATZ\r")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	p.Master.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(p.Master, b); err != nil || string(b) != "ATZ\r" {
		t.Fatalf("master read %q, %v; want \"ATZ\\r\"", b, err)
	}
	if _, err := p.Master.Write([]byte("OK\r\x00\xff>")); err != nil {
		t.Fatal(err)
	}
	b = make([]byte, 6)
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(s, b); err != nil || string(b) != "OK\r\x00\xff>" {
		t.Fatalf("slave read %q, %v", b, err)
	}
	// No echo: what the master wrote does not come back to it.
	p.Master.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := p.Master.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("master read %d bytes, %v; want nothing until the deadline (echo on?)", n, err)
	}
}

// TestCloseUnblocksRead: the master is non-blocking, so closing it ends a simulator's read.
func TestCloseUnblocksRead(t *testing.T) {
	p := testenv.PTY(t)
	done := make(chan error, 1)
	go func() {
		_, err := p.Master.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(30 * time.Millisecond)
	p.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("read after Close = %v, want os.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not unblock the master's Read")
	}
}
