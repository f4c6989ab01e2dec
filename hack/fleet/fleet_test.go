package fleet

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/obdgw/obdgw/hack/testenv"
)

// TestFleetSmall keeps the tool working: 20 gateways and 2 receivers through a 5 s day with the
// broker killed for 2 s. Everything settled must be stored, no receiver may store an id twice,
// every gateway must come back after the outage and both receivers must still be running.
// (`make fleet` is the measurement; this is only the tool's own test.)
func TestFleetSmall(t *testing.T) {
	testenv.SkipShort(t, testenv.TierBroker)
	rep, err := Run(t, Config{
		Gateways: 20, Receivers: 2, Seconds: 5 * time.Second, Outage: 2 * time.Second, OutageAt: 2 * time.Second,
		Burst: 3, BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second, ReceiptTimeout: 3 * time.Second,
		Settle: 2 * time.Minute, Seed: 1, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if rep.DayRecords == 0 || rep.DayOrders == 0 || rep.DayOrders == rep.DayRecords {
		t.Errorf("the day settled %d records, %d of them orders: want orders and scans", rep.DayRecords, rep.DayOrders)
	}
	if want := 20 * 3; rep.BurstOne.Records != want || rep.BurstAll.Records != want || rep.BurstAll.Receivers != 2 {
		t.Errorf("bursts %+v and %+v: want %d records each, the second with 2 receivers", rep.BurstOne, rep.BurstAll, want)
	}
	if rep.Check.Appended != rep.DayRecords+2*20*3 {
		t.Errorf("checker saw %d appended, the run %d", rep.Check.Appended, rep.DayRecords+2*20*3)
	}
	if !rep.OK() {
		t.Errorf("not OK: %v", rep.Check)
	}
	if rep.Check.Lost != 0 || rep.DuplicatedByOne != 0 || rep.Check.Unknown != 0 {
		t.Errorf("lost %d, stored twice by one receiver %d, unknown %d: want 0, 0, 0", rep.Check.Lost, rep.DuplicatedByOne, rep.Check.Unknown)
	}
	if rep.RestartedAt.IsZero() || rep.AllReconnected <= 0 || rep.Attempts.Total < 20 {
		t.Errorf("outage not seen: restarted %v, reconnected after %v, %d connections at the broker (want ≥ 20)", rep.RestartedAt, rep.AllReconnected, rep.Attempts.Total)
	}
	for i, n := range rep.RxReconnects {
		if n == 0 || !rep.RxRunning[i] || rep.RxAccepted[i] == 0 {
			t.Errorf("receiver-%d: reconnects %d, running %v, accepted %d: want it through the outage and storing", i+1, n, rep.RxRunning[i], rep.RxAccepted[i])
		}
	}
}

// TestDay: a shop's day has its orders within the bounds, most of them near noon and 18:00,
// and about scansPerHour·12 scans, in time order.
func TestDay(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	var orders, scans, peak int
	const days = 500
	for range days {
		ev := Day(rnd, 20, 60, 3)
		n := 0
		for i, e := range ev {
			if i > 0 && e.At < ev[i-1].At {
				t.Fatalf("events out of order: %v after %v", e.At, ev[i-1].At)
			}
			if e.At < 0 || e.At >= 1 {
				t.Fatalf("event at %v: outside the day [0,1)", e.At)
			}
			switch e.Kind {
			case KindEHR:
				n++
				h := 8 + e.At*dayHours
				if (h >= 11 && h < 13) || (h >= 17 && h < 19) {
					peak++
				}
			case KindScan:
				scans++
			default:
				t.Fatalf("kind %q", e.Kind)
			}
		}
		if n < 20 || n > 60 {
			t.Fatalf("%d orders in a day: want 20..60", n)
		}
		orders += n
	}
	// Four of twelve hours would get a third of the orders if they were spread evenly.
	if share := float64(peak) / float64(orders); share < 0.6 {
		t.Errorf("%.2f of the orders around noon and 18:00: want the peaks (≥ 0.6)", share)
	}
	if mean := float64(scans) / days; mean < 33 || mean > 39 {
		t.Errorf("%.1f scans a day: want about 36", mean)
	}
	if mean := float64(orders) / days; mean < 38 || mean > 42 {
		t.Errorf("%.1f orders a day: want about 40", mean)
	}
}

// TestConnectAttempts counts only the storm's seconds and only new connections.
func TestConnectAttempts(t *testing.T) {
	log := "12:00:09: New connection from 127.0.0.1:1 on port 5.\n" +
		"12:00:10: New connection from 127.0.0.1:2 on port 5.\n" +
		"12:00:10: New client connected from 127.0.0.1:2 as fleet-0001 (p2, c1, k30, u'fleet-0001').\n" +
		"12:00:10: New connection from 127.0.0.1:3 on port 5.\n" +
		"12:00:11: New connection from 127.0.0.1:4 on port 5.\n" +
		"12:00:13: New connection from 127.0.0.1:5 on port 5.\n"
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.Local)
	from, to := day.Add(12*time.Hour+10*time.Second+300*time.Millisecond), day.Add(12*time.Hour+12*time.Second+100*time.Millisecond)
	a := connectAttempts(log, from, to)
	if a != (Attempts{Total: 3, Seconds: 3, Peak: 2}) {
		t.Errorf("got %+v, want 3 connections in 3 s, peak 2", a)
	}
}
