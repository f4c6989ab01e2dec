package elm327

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/hack/testenv"
	"github.com/obdgw/obdgw/obd"
)

// The same scripted adapter on the master side of a real pty, with the real serialport.Open
// (go-serial, termios, deadline translation) on the slave side.

func scriptOnPTY(t *testing.T, s *script) (slave string, master *os.File, done chan struct{}) {
	t.Helper()
	p := testenv.PTY(t)
	done = s.startOn(p.Master)
	t.Cleanup(func() { p.Master.Close(); <-done })
	return p.SlavePath, p.Master, done
}

func TestPTYOpenAndQuery(t *testing.T) {
	r := genuine()
	r["0902"] = [][]step{say("7E8101449020 14C4B36\r7E82141444345313550\r7E82242343035313237\r\r>")}
	s := newScript(t, r)
	path, _, _ := scriptOnPTY(t, s)
	a, err := Open("serial://"+path+"?baud=38400", Options{})
	if err != nil {
		t.Fatalf("Open: %v (sent %q)", err, s.commands())
	}
	defer a.Close()
	if got, want := a.String(), path+"@38400 ELM327 v1.5"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	rs, err := a.Query(context.Background(), obd.Req(9, 2))
	if err != nil || len(rs) != 1 || string(rs[0].Data[3:]) != "LK6ADCE15PB405127" {
		t.Fatalf("VIN: %v %v", rs, err)
	}
	_, err = a.Query(context.Background(), obd.Req(0x0A))
	if !errors.Is(err, obd.ErrNoData) && !errors.As(err, new(*Error)) {
		t.Errorf("unscripted request: %v", err)
	}
}

// TestPTYUnplug: the far end of the pty goes away mid-reply, as a USB adapter pulled from
// its socket; the request fails with ErrDisconnected, and reopening reports the device gone.
func TestPTYUnplug(t *testing.T) {
	r := genuine()
	r["0902"] = [][]step{{w("7E8101449020 14C4B36\r"), pause(20 * time.Millisecond), hangup()}}
	s := newScript(t, r)
	path, _, done := scriptOnPTY(t, s)
	a, err := Open(path, Options{QueryTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = a.Query(context.Background(), obd.Req(9, 2))
	<-done
	if !errors.Is(err, ErrDisconnected) {
		t.Fatalf("err = %v, want ErrDisconnected", err)
	}
	_, err = a.Query(context.Background(), obd.Req(9, 2))
	if !errors.Is(err, serialport.ErrNotFound) {
		t.Errorf("query while unplugged: %v, want serialport.ErrNotFound", err)
	}
}
