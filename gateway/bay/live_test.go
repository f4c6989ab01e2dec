package bay

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/obdgw/obdgw/gateway/events"
	"github.com/obdgw/obdgw/obd"
)

// liveCar answers Mode 01 requests of one or several PIDs from canned data, as an ECU on CAN
// does; with noBatches it refuses requests of more than one PID (NO DATA), as some clones do.
type liveCar struct {
	mu        sync.Mutex
	noBatches bool
	log       []string
}

var liveData = map[byte][]byte{
	0x05: {0x7B}, 0x06: {0x80}, 0x07: {0x85}, 0x0B: {0x21}, 0x0C: {0x0C, 0xE4},
	0x10: {0x01, 0x90}, 0x14: {0x5A, 0x80}, 0x44: {0x80, 0x00},
}

func (c *liveCar) Close() error { return nil }

func (c *liveCar) Profile() obd.Profile {
	return obd.Profile{Protocol: "ISO 15765-4 (CAN 11/500)", MultiPID: true}
}

func (c *liveCar) Query(ctx context.Context, req obd.Request) ([]obd.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, req.String())
	if req.Service != 0x01 || len(req.Data) == 0 {
		return nil, obd.ErrNoData
	}
	if req.Data[0] == 0x00 {
		return []obd.Response{{ECU: "7E8", Data: []byte{0x41, 0x00, 0xBE, 0x1F, 0xA8, 0x13}}}, nil
	}
	if len(req.Data) > 1 && c.noBatches {
		return nil, obd.ErrNoData
	}
	d := []byte{0x41}
	for _, p := range req.Data {
		if v, ok := liveData[p]; ok {
			d = append(append(d, p), v...)
		}
	}
	if len(d) == 1 {
		return nil, obd.ErrNoData
	}
	return []obd.Response{{ECU: "7E8", Data: d}}, nil
}

func (c *liveCar) requests() []string { c.mu.Lock(); defer c.mu.Unlock(); return slices.Clone(c.log) }

// TestWatchPIDsSamplesSeveralAtOnce: two viewers, one on the default three PIDs and one on a
// technician's pick of fuel trims, MAP, MAF, an O2 sensor and λ. One round asks the union of
// both, six PIDs per request on an adapter that does multi-PID requests; each viewer gets its
// own PIDs decoded with the J1979 formulas; a PID the car does not answer (speed) is absent.
func TestWatchPIDsSamplesSeveralAtOnce(t *testing.T) {
	for _, noBatches := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			c := &liveCar{noBatches: noBatches}
			s := New(Options{Name: "bay1", Dial: func(context.Context) (Conn, error) { return c, nil },
				Scan: func(ctx context.Context, a obd.Adapter) (*obd.Report, error) { return &obd.Report{VIN: vin}, nil },
				Poll: time.Hour, LivePeriod: time.Second})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go s.Run(ctx)
			synctest.Wait()
			wctx, stop := context.WithCancel(ctx)
			defaults := s.Watch(wctx)
			picked := s.WatchPIDs(wctx, []byte{0x44, 0x06, 0x07, 0x0B, 0x10, 0x14, 0x0C})
			a, b := <-defaults, <-picked
			stop()
			if a.RPM == nil || *a.RPM != 825 || a.CoolantC == nil || *a.CoolantC != 83 || a.SpeedKmh != nil || len(a.Values) != 2 {
				t.Fatalf("default viewer got %+v, want rpm 825 and coolant 83 only", a)
			}
			want := map[string]float64{"0C": 825, "06": 0, "07": 3.90625, "0B": 33, "10": 4, "14": 0.45, "44": 1}
			if len(b.Values) != len(want) {
				t.Fatalf("picked viewer got %v, want %v", b.Values, want)
			}
			for k, v := range want {
				if got, ok := b.Values[k]; !ok || got != v {
					t.Errorf("PID %s = %v (present %v), want %v", k, got, ok, v)
				}
			}
			var live []string
			for _, r := range c.requests() {
				if r != "0100" {
					live = append(live, r)
				}
			}
			first := live[:min(len(live), 2)]
			if !noBatches && !slices.Equal(first, []string{"010506070B0C0D", "01101444"}) {
				t.Errorf("first round asked %v, want two multi-PID requests of the nine PIDs", first)
			}
			if noBatches && (len(live) < 11 || live[0] != "010506070B0C0D" || live[1] != "0105") {
				t.Errorf("a car refusing batches: asked %v, want the batch, then one PID per request", live)
			}
		})
	}
}

// TestLiveSamplesAtTheAdapterRateEventsOncePerSecond: a watcher gets a sample every round
// (five a second here), while the notice board, which every console follows, hears one a
// second.
func TestLiveSamplesAtTheAdapterRateEventsOncePerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &liveCar{}
		bus := events.New(nil)
		evs, stopEvents := bus.Subscribe(256)
		defer stopEvents()
		s := New(Options{Name: "bay1", Dial: func(context.Context) (Conn, error) { return c, nil },
			Scan:   func(ctx context.Context, a obd.Adapter) (*obd.Report, error) { return &obd.Report{VIN: vin}, nil },
			Events: bus, Poll: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go s.Run(ctx)
		synctest.Wait()
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		ch := s.WatchPIDs(wctx, []byte{0x0C})
		samples := 0
		start := time.Now()
		for range ch {
			samples++
			if time.Since(start) >= 3*time.Second {
				stop()
			}
		}
		synctest.Wait()
		live := 0
		for len(evs) > 0 {
			if (<-evs).Type == "live" {
				live++
			}
		}
		if samples < 14 || live < 3 || live > 4 {
			t.Fatalf("over 3 s: %d samples to the watcher, %d live events; want about 15 and 3", samples, live)
		}
	})
}
