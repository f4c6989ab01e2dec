package rigsim_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	_ "github.com/obdgw/obdgw/drivers/fga4100/fga4100sim"
	_ "github.com/obdgw/obdgw/drivers/mexa/mexasim"
	_ "github.com/obdgw/obdgw/drivers/mqw50a/mqw50asim"
	_ "github.com/obdgw/obdgw/drivers/nanhua/nanhuasim"
	_ "github.com/obdgw/obdgw/drivers/opacity/opacitysim"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
)

func TestParseFaults(t *testing.T) {
	f, err := rigsim.ParseFaults("checksum=5, burst=2,busy=7,garbage=4,unplug=30s,close")
	if err != nil {
		t.Fatal(err)
	}
	want := rigsim.Faults{ChecksumEvery: 5, ChecksumBurst: 2, BusyEvery: 7, GarbageEvery: 4, UnplugAt: 30 * time.Second, UnplugClose: true}
	if f != want {
		t.Errorf("got %+v, want %+v", f, want)
	}
	if f, err := rigsim.ParseFaults("unplug=12"); err != nil || f.UnplugAfter != 12 {
		t.Errorf("unplug count: %+v %v", f, err)
	}
	for _, bad := range []string{"checksum", "checksum=0", "busy=-1", "smoke=3", "unplug=soon"} {
		if _, err := rigsim.ParseFaults(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestEveryModelHasASimulator(t *testing.T) {
	want := []string{"fga4100", "fla502", "mexa584l", "mqw50a", "mqw511", "mqy200", "nha503", "nha506", "nht1l", "nht6", "fty100"}
	have := map[string]bool{}
	for _, n := range rigsim.Names() {
		have[n] = true
	}
	for _, m := range want {
		if !have[m] {
			t.Errorf("no simulator for %s", m)
		}
	}
}

// The petrol script does what its comment promises: idle, two-speed-idle high idle, idle.
func TestScripts(t *testing.T) {
	if rpm := rigsim.EngineRPM(10 * time.Second); rpm != 800 {
		t.Errorf("idle rpm %v", rpm)
	}
	if rpm := rigsim.EngineRPM(35 * time.Second); rpm != 2500 {
		t.Errorf("high idle rpm %v", rpm)
	}
	idle, high := rigsim.PetrolGas(10*time.Second), rigsim.PetrolGas(35*time.Second)
	if !(high.NOppm > idle.NOppm && high.HCppm < idle.HCppm && high.COPct < idle.COPct) {
		t.Errorf("gases do not follow load: idle %+v high %+v", idle, high)
	}
	// A free acceleration: smoke peaks after the pedal, back to clean at idle.
	var peak float64
	for d := time.Duration(0); d < rigsim.SmokeCycle; d += 100 * time.Millisecond {
		peak = max(peak, rigsim.DieselSmoke(d).NPct)
	}
	if peak < 35 || peak > 45 {
		t.Errorf("smoke peak %v %%", peak)
	}
	if s := rigsim.DieselSmoke(11 * time.Second); s.NPct > 3 || s.RPM != 750 {
		t.Errorf("idle smoke %+v", s)
	}
}

// Faults land on the data replies they are configured for, on fake time.
func TestFaultsOnDataReplies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		core := rigsim.NewCore(rigsim.Config{Faults: rigsim.Faults{ChecksumEvery: 3, GarbageEvery: 4, UnplugAt: time.Minute}})
		a, b := net.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		payload := []byte{0x06, 0x01, 0x07}
		go func() {
			done <- core.Serve(ctx, b, func(r *bufio.Reader) (rigsim.Reply, error) {
				c, err := r.ReadByte()
				if err != nil {
					return rigsim.Reply{}, err
				}
				if c == 'c' {
					return rigsim.Reply{Bytes: []byte{0x06}}, nil // control: never faulted
				}
				core.DataRequest()
				return rigsim.Reply{Bytes: payload, Data: true}, nil
			})
		}()
		ask := func(c byte, n int) []byte {
			a.Write([]byte{c})
			a.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, n)
			k, _ := io.ReadFull(a, buf)
			return buf[:k]
		}
		got := [][]byte{ask('d', 3), ask('d', 3), ask('d', 3), ask('d', 6), ask('c', 1)}
		want := [][]byte{payload, payload, {0x06, 0x01, 0x07 ^ 0x5A}, append(append([]byte(nil), rigsim.Garbage...), payload...), {0x06}}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("reply %d = % X, want % X", i+1, got[i], want[i])
			}
		}
		time.Sleep(time.Minute)
		if r := ask('d', 3); len(r) != 0 {
			t.Errorf("after unplug: % X", r)
		}
		cancel()
		a.Close()
		if err := <-done; !errors.Is(err, context.Canceled) && !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("Serve ended with %v", err)
		}
	})
}

// Whatever bytes a client sends, no simulator panics or stops serving except at EOF.
func FuzzSimulatorRequests(f *testing.F) {
	f.Add(0, []byte{0x01, 0x26, 0x27, 0x08, 0x02})
	f.Add(1, []byte{0x02, 0x60, 0x03, 0x9B, 0x02, 0x61, 0x03, 0x9A})
	f.Add(2, []byte{0x02, 0x01, 0x40, 0xBD, 0x02, 0x03, 0x18, 0x00, 0x00, 0xE3})
	f.Add(3, []byte{0x7E, 0x01, 0xF4, 0x0A, 0x7E, 0x04, 0x00, 0x01, 0x02, 0x02, 0xF6})
	f.Add(4, []byte{0xA5, 0x5B, 0xA1, 0x5F, 0xA0, 0x01, 0x5F, 0xB2, 0x01})
	f.Add(5, []byte("fty\x01\x02\x02\xA8"))
	f.Fuzz(func(t *testing.T, i int, in []byte) {
		names := rigsim.Names()
		m, _ := rigsim.Lookup(names[(i%len(names)+len(names))%len(names)])
		srv, err := m.New(rigsim.Config{Faults: rigsim.Faults{ChecksumEvery: 2, BusyEvery: 3, GarbageEvery: 5}})
		if err != nil {
			t.Fatal(err)
		}
		err = srv.Serve(context.Background(), &script{in: bytes.NewReader(in)})
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%s: Serve = %v, want EOF", m.Name, err)
		}
	})
}

// script is a ReadWriter that feeds fixed input and discards output.
type script struct{ in io.Reader }

func (s *script) Read(p []byte) (int, error)  { return s.in.Read(p) }
func (s *script) Write(p []byte) (int, error) { return len(p), nil }

func FuzzParseFaults(f *testing.F) {
	f.Add("checksum=5,burst=2,busy=7,garbage=4,unplug=30s,close")
	f.Add("unplug=3")
	f.Add("=,=")
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := rigsim.ParseFaults(s)
		if err == nil && (fl.ChecksumEvery < 0 || fl.BusyEvery < 0 || fl.GarbageEvery < 0 || fl.UnplugAfter < 0 || fl.UnplugAt < 0) {
			t.Fatalf("%q gave negative faults %+v", s, fl)
		}
	})
}
