package bay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/obd"
)

// car is an in-memory vehicle behind an in-memory adapter: what a bay sees, without I/O.
type car struct {
	mu       sync.Mutex
	plugged  bool
	ignition bool
	vin      string
	dtcs     int
	cleared  int // how many 04 requests reached the car
	dials    int // connections opened
	closes   int // connections closed
	failNext error
	log      []string
}

func (c *car) set(f func(c *car)) { c.mu.Lock(); f(c); c.mu.Unlock() }

func (c *car) dial(ctx context.Context) (Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dials++
	if !c.plugged {
		return nil, fmt.Errorf("open /dev/ttyUSB9: %w", serialport.ErrNotFound)
	}
	if !c.ignition {
		return nil, fmt.Errorf("elm327: UNABLE TO CONNECT: %w", obd.ErrNoVehicle)
	}
	return &conn{c: c}, nil
}

type conn struct{ c *car }

func (k *conn) Close() error { k.c.mu.Lock(); k.c.closes++; k.c.mu.Unlock(); return nil }

func (k *conn) Query(ctx context.Context, req obd.Request) ([]obd.Response, error) {
	c := k.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, req.String())
	if err := c.failNext; err != nil {
		c.failNext = nil
		return nil, err
	}
	if !c.plugged {
		return nil, errors.New("read /dev/ttyUSB9: input/output error")
	}
	if !c.ignition {
		return nil, obd.ErrNoVehicle
	}
	switch req.String() {
	case "0100":
		return []obd.Response{{ECU: "7E8", Data: []byte{0x41, 0x00, 0xBE, 0x1F, 0xA8, 0x13}}}, nil
	case "04":
		c.cleared++
		c.dtcs = 0
		return []obd.Response{{ECU: "7E8", Data: []byte{0x44}}}, nil
	case "010C":
		return []obd.Response{{ECU: "7E8", Data: []byte{0x41, 0x0C, 0x0C, 0xE4}}}, nil
	case "0105":
		return []obd.Response{{ECU: "7E8", Data: []byte{0x41, 0x05, 0x7B}}}, nil
	case "010D":
		return nil, obd.ErrNoData
	}
	return nil, obd.ErrNoData
}

// fakeScan stands in for obd.Scan: the report is built from the fake car's state.
func fakeScan(ctx context.Context, a obd.Adapter) (*obd.Report, error) {
	if _, err := a.Query(ctx, obd.Req(0x01, 0x00)); err != nil {
		return nil, err
	}
	c := a.(*conn).c
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &obd.Report{VIN: c.vin, VINValid: true}
	for i := 0; i < c.dtcs; i++ {
		r.DTCs.Stored = append(r.DTCs.Stored, obd.DTC{Code: fmt.Sprintf("P04%02d", 20+i), ECU: "7E8"})
	}
	return r, nil
}

func (c *car) count(req string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.log {
		if l == req {
			n++
		}
	}
	return n
}

func start(t *testing.T, c *car) (*Supervisor, *[]string, context.CancelFunc) {
	var scanned []string
	var mu sync.Mutex
	s := New(Options{Name: "bay1", Address: "serial:///dev/ttyUSB9", Dial: c.dial, Scan: fakeScan,
		OnScan: func(bay string, r *obd.Report) { mu.Lock(); scanned = append(scanned, bay+":"+r.VIN); mu.Unlock() },
		Poll:   time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	go s.Run(ctx)
	return s, &scanned, cancel
}

const vin = "LK6ADCE15PB405127"

func TestPlugInIgnitionOnScansOncePerConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &car{vin: vin, dtcs: 2}
		s, scanned, cancel := start(t, c)
		defer cancel()
		synctest.Wait()
		if st := s.Status(); st.State != Absent {
			t.Fatalf("empty bay state %q, want absent", st.State)
		}
		if _, err := s.ScanNow(context.Background()); !errors.Is(err, ErrNotConnected) {
			t.Fatalf("scan on empty bay: %v", err)
		}
		c.set(func(c *car) { c.plugged = true })
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if st := s.Status(); st.State != IgnitionOff {
			t.Fatalf("adapter without ignition: state %q", st.State)
		}
		c.set(func(c *car) { c.ignition = true })
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		st := s.Status()
		if st.State != Ready || st.VIN != vin || st.LastScan == nil || len(st.LastScan.DTCs.Stored) != 2 {
			t.Fatalf("after ignition on: %+v", st)
		}
		time.Sleep(10 * time.Second) // heartbeats only, no second scan
		synctest.Wait()
		if len(*scanned) != 1 || (*scanned)[0] != "bay1:"+vin {
			t.Fatalf("scans reported %v, want exactly one", *scanned)
		}
		// Ignition off then on again is a new vehicle connection: scanned again.
		c.set(func(c *car) { c.ignition = false })
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if st := s.Status(); st.State != IgnitionOff {
			t.Fatalf("after ignition off: %q", st.State)
		}
		c.set(func(c *car) { c.ignition = true })
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		if len(*scanned) != 2 {
			t.Fatalf("scans after reconnect %v, want 2", *scanned)
		}
		// Unplugged mid-session: fault, then absent, nothing lost of the kept scans.
		c.set(func(c *car) { c.plugged = false })
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if st := s.Status(); st.State != Absent || len(s.Scans()) != 2 {
			t.Fatalf("after unplug: state %q, %d scans kept", st.State, len(s.Scans()))
		}
		if n := c.count("04"); n != 0 {
			t.Fatalf("04 sent %d times without a request", n)
		}
	})
}

func TestClearNeedsMatchingVINAndIsSentOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &car{vin: vin, dtcs: 3, plugged: true, ignition: true}
		s, _, cancel := start(t, c)
		defer cancel()
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		ctx := context.Background()
		if _, err := s.ClearDTCs(ctx, obd.Confirmation{VIN: vin}); !errors.Is(err, obd.ErrNotConfirmed) {
			t.Fatalf("clear without who confirmed: %v", err)
		}
		_, err := s.ClearDTCs(ctx, obd.Confirmation{VIN: "LJ8ECM2B2R1063348", ConfirmedBy: "tech-07"})
		if !errors.Is(err, ErrVINMismatch) {
			t.Fatalf("clear for another car: %v", err)
		}
		if n := c.count("04"); n != 0 {
			t.Fatalf("04 sent %d times on a refused clear", n)
		}
		out, err := s.ClearDTCs(ctx, obd.Confirmation{VIN: vin, ConfirmedBy: "tech-07"})
		if err != nil {
			t.Fatal(err)
		}
		if n := c.count("04"); n != 1 {
			t.Fatalf("04 sent %d times, want exactly 1", n)
		}
		if len(out.Before.DTCs.Stored) != 3 || out.After == nil || len(out.After.DTCs.Stored) != 0 || len(out.Result.Cleared) != 1 {
			t.Fatalf("outcome before=%d after=%+v result=%+v", len(out.Before.DTCs.Stored), out.After, out.Result)
		}
		// A failing clear is reported and never retried.
		c.set(func(c *car) { c.dtcs = 1 })
		var calls int
		s.o.Scan = func(ctx context.Context, a obd.Adapter) (*obd.Report, error) {
			calls++
			r, err := fakeScan(ctx, a)
			if calls == 1 {
				c.set(func(c *car) { c.failNext = errors.New("elm327: STOPPED") })
			}
			return r, err
		}
		if _, err := s.ClearDTCs(ctx, obd.Confirmation{VIN: vin, ConfirmedBy: "tech-07"}); err == nil {
			t.Fatal("failed clear reported success")
		}
		if n := c.count("04"); n != 2 { // the failed attempt reached the adapter once, no retry
			t.Fatalf("04 sent %d times in all, want 2", n)
		}
	})
}

func TestQueryLendsTheAdapterButNeverClears(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &car{vin: vin, plugged: true, ignition: true}
		s, _, cancel := start(t, c)
		defer cancel()
		ctx := context.Background()
		resps, err := s.Query(ctx, obd.Req(0x01, 0x0C))
		if err != nil || len(resps) != 1 || resps[0].ECU != "7E8" {
			t.Fatalf("query 010C: %v %v", resps, err)
		}
		if _, err := s.Query(ctx, obd.Req(0x04)); !errors.Is(err, obd.ErrNotConfirmed) {
			t.Fatalf("query 04 through the lending path: %v", err)
		}
		if n := c.count("04"); n != 0 {
			t.Fatalf("04 reached the car %d times", n)
		}
	})
}

func TestWatchStreamsLiveValues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &car{vin: vin, plugged: true, ignition: true}
		s, _, cancel := start(t, c)
		defer cancel()
		ctx, stop := context.WithCancel(context.Background())
		ch := s.Watch(ctx)
		l := <-ch
		if l.RPM == nil || *l.RPM != 825 || l.CoolantC == nil || *l.CoolantC != 83 || l.SpeedKmh != nil {
			t.Fatalf("live sample %+v", l)
		}
		stop()
		for range ch {
		}
		synctest.Wait()
		if w := s.Status().Watchers; w != 0 {
			t.Fatalf("%d watchers after stop", w)
		}
	})
}

// TestAdapterLostMidScanReconnects: the adapter goes silent during the connection's first scan
// (the scan ends with obd.ErrAdapterLost, as after two silent requests). The bay closes that
// connection, connects again at once and scans the car on the new connection; the lost scan
// is not reported as a scan, and no clear is ever sent.
func TestAdapterLostMidScanReconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &car{vin: vin, dtcs: 1, plugged: true, ignition: true,
			failNext: fmt.Errorf("elm327: no answer to 2 requests in a row: %w", obd.ErrAdapterLost)}
		s, scanned, cancel := start(t, c)
		defer cancel()
		synctest.Wait()
		c.mu.Lock()
		dials, closes, log := c.dials, c.closes, append([]string(nil), c.log...)
		c.mu.Unlock()
		if dials != 2 || closes != 1 {
			t.Fatalf("dials %d closes %d, want 2 and 1: the lost connection closed and a new one opened (requests %v)", dials, closes, log)
		}
		st := s.Status()
		if st.State != Ready || st.VIN != vin || len(*scanned) != 1 || (*scanned)[0] != "bay1:"+vin {
			t.Fatalf("after reconnect: state %q VIN %q scans %v; want ready with exactly the second scan", st.State, st.VIN, *scanned)
		}
		if n := c.count("04"); n != 0 {
			t.Fatalf("04 sent %d times", n)
		}
		if got := st.Counters; got.Connects != 2 || got.Scans != 1 || got.ScanFailures != 1 {
			t.Errorf("counters %+v, want 2 connects, 1 scan, 1 failed scan", got)
		}
	})
}
