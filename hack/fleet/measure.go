package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/obdgw/obdgw/hack/chaos"
)

// Phase says in which part of a run a record was settled.
type Phase int

const (
	PhaseBurstOne Phase = iota // the capacity burst with one receiver
	PhaseBurstAll              // the capacity burst with every receiver
	PhaseDay                   // the working day
)

type tracked struct {
	kind   string
	phase  Phase
	at     time.Time // settled (the envelope's created_at)
	stored time.Time // first seen in a receiver's output; zero until then
}

// tracker keeps the settle time of every record and the moment it first appears in a
// receiver's output, read by following the output files (every 20 ms, so stored times are
// late by up to that).
type tracker struct {
	mu     sync.Mutex
	recs   map[string]*tracked
	order  []string
	stored int
	early  map[string]time.Time // seen in an output before its Append returned here
	wg     sync.WaitGroup
}

func newTracker() *tracker {
	return &tracker{recs: map[string]*tracked{}, early: map[string]time.Time{}}
}

func (tr *tracker) appended(id, kind string, at time.Time, p Phase) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	r := &tracked{kind: kind, phase: p, at: at}
	if st, ok := tr.early[id]; ok {
		r.stored = st
		tr.stored++
		delete(tr.early, id)
	}
	tr.recs[id] = r
	tr.order = append(tr.order, id)
}

func (tr *tracker) seen(id string, now time.Time) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	r, ok := tr.recs[id]
	switch {
	case !ok:
		if _, dup := tr.early[id]; !dup {
			tr.early[id] = now
		}
	case r.stored.IsZero():
		r.stored = now
		tr.stored++
	}
}

func (tr *tracker) allStored() bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.stored == len(tr.recs)
}

func (tr *tracker) unstored() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.recs) - tr.stored
}

func (tr *tracker) count(p Phase) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, r := range tr.recs {
		if r.phase == p {
			n++
		}
	}
	return n
}

// entries is what was appended, in order, for hack/chaos's checker.
func (tr *tracker) entries() []chaos.Entry {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := make([]chaos.Entry, len(tr.order))
	for i, id := range tr.order {
		out[i] = chaos.Entry{ID: id, Kind: tr.recs[id].kind}
	}
	return out
}

// follow reads the new lines of a receiver's JSONL output until ctx ends.
func (tr *tracker) follow(ctx context.Context, path string) {
	tr.wg.Add(1)
	go func() {
		defer tr.wg.Done()
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		buf := make([]byte, 1<<20)
		var part []byte
		var env struct {
			ID string `json:"id"`
		}
		for {
			n, err := f.Read(buf)
			if n > 0 {
				now := time.Now()
				part = append(part, buf[:n]...)
				for {
					i := bytes.IndexByte(part, '\n')
					if i < 0 {
						break
					}
					if json.Unmarshal(part[:i], &env) == nil && env.ID != "" {
						tr.seen(env.ID, now)
					}
					part = part[i+1:]
				}
				continue
			}
			if err != nil && err != io.EOF {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
}

func (tr *tracker) wait() { tr.wg.Wait() }

// Burst is one capacity burst: every gateway sends its records at once.
type Burst struct {
	Receivers int
	Records   int
	Took      time.Duration // from the first append to the last record stored
	Appending time.Duration // from the first append to the last Append returned
}

// Rate is records stored per second.
func (b Burst) Rate() float64 {
	if b.Took <= 0 {
		return 0
	}
	return float64(b.Records) / b.Took.Seconds()
}

func (tr *tracker) burst(p Phase, start time.Time) Burst {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	b := Burst{}
	var last time.Time
	for _, r := range tr.recs {
		if r.phase == p {
			b.Records++
			if r.stored.After(last) {
				last = r.stored
			}
		}
	}
	b.Took = last.Sub(start)
	return b
}

// dayFigures fills the day's part of rep from the tracked records.
func (tr *tracker) dayFigures(rep *Report) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var all, steady []time.Duration
	var byHours [dayHours / 2][]time.Duration
	var last time.Time
	perSecond := map[int64]int{}
	outage := !rep.KilledAt.IsZero()
	for _, r := range tr.recs {
		if r.phase != PhaseDay {
			continue
		}
		rep.DayRecords++
		if r.kind == KindEHR {
			rep.DayOrders++
		}
		lat := r.stored.Sub(r.at)
		all = append(all, lat)
		if !outage || r.at.Before(rep.KilledAt) {
			steady = append(steady, lat)
		}
		k := int(float64(r.at.Sub(rep.DayStart)) / float64(rep.Config.Seconds) * float64(len(byHours)))
		byHours[min(max(k, 0), len(byHours)-1)] = append(byHours[min(max(k, 0), len(byHours)-1)], lat)
		if r.stored.After(last) {
			last = r.stored
		}
		perSecond[int64(r.stored.Sub(rep.DayStart)/time.Second)]++
		if outage && r.at.Before(rep.RestartedAt) {
			if d := r.stored.Sub(rep.RestartedAt); d > rep.Drained {
				rep.Drained = d
			}
		}
	}
	rep.DayTook = last.Sub(rep.DayStart)
	for s, n := range perSecond {
		if n > rep.PeakStored {
			rep.PeakStored, rep.PeakStoredAt = n, time.Duration(s)*time.Second
		}
	}
	rep.Latency = percentiles(all)
	for k, d := range byHours {
		rep.ByHours[k] = percentiles(d)
	}
	rep.SteadyLatency = percentiles(steady)
}

// Latency is the settle-to-stored latency of a set of records.
type Latency struct {
	N             int
	P50, P99, Max time.Duration
}

func percentiles(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return Latency{N: len(d), P50: at(0.50), P99: at(0.99), Max: d[len(d)-1]}
}

// Attempts are the connections the broker accepted per second during the reconnect storm,
// counted from its log ("New connection from", one-second timestamps).
type Attempts struct {
	Total   int
	Seconds int // seconds of the storm, from the restart to the last gateway connected
	Peak    int // the busiest second
}

// Mean is attempts per second over the storm.
func (a Attempts) Mean() float64 {
	if a.Seconds == 0 {
		return 0
	}
	return float64(a.Total) / float64(a.Seconds)
}

// connectAttempts counts the broker log's connections in the seconds from..to (inclusive),
// by the log's HH:MM:SS timestamps (the local clock, as Mosquitto writes them).
func connectAttempts(log string, from, to time.Time) Attempts {
	first, last := from.Truncate(time.Second), to.Truncate(time.Second)
	inWindow := map[string]bool{}
	var a Attempts
	for s := first; !s.After(last); s = s.Add(time.Second) {
		inWindow[s.Format("15:04:05")] = true
		a.Seconds++
	}
	per := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		ts, rest, ok := strings.Cut(line, ": ")
		if ok && inWindow[ts] && strings.HasPrefix(rest, "New connection from ") {
			per[ts]++
			a.Total++
		}
	}
	for _, n := range per {
		a.Peak = max(a.Peak, n)
	}
	return a
}

// Report is what a run measured.
type Report struct {
	Config      Config
	ColdConnect time.Duration // every gateway connected from a cold start, all at once
	BurstOne    Burst         // capacity with one receiver
	BurstAll    Burst         // capacity with Config.Receivers

	DayStart      time.Time
	DayRecords    int
	DayOrders     int
	DayTook       time.Duration // from the day's start to its last record stored
	PeakStored    int           // most day records stored in one second
	PeakStoredAt  time.Duration // that second, into the day
	Latency       Latency       // every record of the day
	SteadyLatency Latency       // records settled before the outage
	// ByHours is the latency of the records settled in each two simulated hours: 08–10, 10–12,
	// 12–14, 14–16, 16–18, 18–20.
	ByHours [dayHours / 2]Latency

	KilledAt, RestartedAt time.Time
	BacklogAtRestart      int           // records settled and not yet stored when the broker came back
	AllReconnected        time.Duration // restart → every gateway connected again
	Drained               time.Duration // restart → every record settled before it stored
	Attempts              Attempts      // connections per second at the broker during the storm

	GwReconnects uint64 // connections lost or failed, all gateways
	DeadLetters  int
	RxAccepted   []uint64
	RxReconnects []uint64
	RxRunning    []bool

	Check           chaos.Report // all receivers' output together
	DuplicatedByOne int          // ids one receiver stored twice (its own de-duplication failed)
	ReorderedByOne  int          // stored by one receiver after a newer record of the kind
}

// OK: nothing lost, no receiver stored an id twice, nothing unknown, nothing dead-lettered,
// every receiver still running.
func (r *Report) OK() bool {
	for _, run := range r.RxRunning {
		if !run {
			return false
		}
	}
	return r.Check.Lost == 0 && r.Check.Unknown == 0 && r.DuplicatedByOne == 0 && r.DeadLetters == 0
}

func (r *Report) String() string {
	var b strings.Builder
	c := r.Config
	f := func(format string, a ...any) { fmt.Fprintf(&b, "fleet: "+format+"\n", a...) }
	f("%d gateways, %d receivers (one $share group), day 08:00–20:00 in %v (1 s = %.0f simulated s), outage %v",
		c.Gateways, c.Receivers, c.Seconds, dayHours*3600/c.Seconds.Seconds(), c.Outage)
	f("cold start: every gateway connected in %v", r.ColdConnect.Round(time.Millisecond))
	if r.BurstOne.Records > 0 {
		f("burst, 1 receiver: %d records stored in %v = %.0f records/s (the gateways' appends took %v)", r.BurstOne.Records, r.BurstOne.Took.Round(time.Millisecond), r.BurstOne.Rate(), r.BurstOne.Appending.Round(time.Millisecond))
	}
	if r.BurstAll.Records > 0 {
		ratio := 0.0
		if r.BurstOne.Rate() > 0 {
			ratio = r.BurstAll.Rate() / r.BurstOne.Rate()
		}
		f("burst, %d receivers: %d records stored in %v = %.0f records/s, %.2f× one receiver (the gateways' appends took %v)", r.BurstAll.Receivers, r.BurstAll.Records, r.BurstAll.Took.Round(time.Millisecond), r.BurstAll.Rate(), ratio, r.BurstAll.Appending.Round(time.Millisecond))
	}
	f("day: %d records (%d orders, %d scans) stored by %v = %.0f records/s on average; busiest second %d stored (at %v)",
		r.DayRecords, r.DayOrders, r.DayRecords-r.DayOrders, r.DayTook.Round(time.Millisecond), float64(r.DayRecords)/r.DayTook.Seconds(), r.PeakStored, r.PeakStoredAt)
	f("settle → stored before the outage: p50 %v, p99 %v, max %v (%d records)", r.SteadyLatency.P50.Round(time.Millisecond), r.SteadyLatency.P99.Round(time.Millisecond), r.SteadyLatency.Max.Round(time.Millisecond), r.SteadyLatency.N)
	f("settle → stored, whole day: p50 %v, p99 %v, max %v", r.Latency.P50.Round(time.Millisecond), r.Latency.P99.Round(time.Millisecond), r.Latency.Max.Round(time.Millisecond))
	for k, l := range r.ByHours {
		from := 8 + 2*k
		f("  settled %02d–%02d: %6d records, p50 %v, p99 %v", from, from+2, l.N, l.P50.Round(time.Millisecond), l.P99.Round(time.Millisecond))
	}
	if c.Outage > 0 {
		nb := float64(c.Gateways) / c.BackoffMax.Seconds()
		f("outage %v: %d records waiting at the restart; every gateway reconnected after %v, backlog stored after %v",
			c.Outage, r.BacklogAtRestart, r.AllReconnected.Round(time.Millisecond), r.Drained.Round(time.Millisecond))
		f("storm: %d connections at the broker in %d s, mean %.1f/s, peak %d/s; N/backoff_max = %.1f/s, peak is %.2f× that",
			r.Attempts.Total, r.Attempts.Seconds, r.Attempts.Mean(), r.Attempts.Peak, nb, float64(r.Attempts.Peak)/nb)
	}
	f("gateways: %d connections lost or failed in all, %d dead letters", r.GwReconnects, r.DeadLetters)
	for i := range r.RxAccepted {
		f("receiver-%d: accepted %d, reconnects %d, running %v", i+1, r.RxAccepted[i], r.RxReconnects[i], r.RxRunning[i])
	}
	f("check: appended %d, stored %d; lost %d, stored twice by one receiver %d, stored by two receivers %d, reordered within one receiver %d, unknown %d",
		r.Check.Appended, r.Check.Stored, r.Check.Lost, r.DuplicatedByOne, r.Check.Duplicated-r.DuplicatedByOne, r.ReorderedByOne, r.Check.Unknown)
	return b.String()
}
