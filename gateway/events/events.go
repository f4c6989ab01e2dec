// Package events is the daemon's in-process notice board: bay supervisors, the work-order
// store and the uplink publish small events (a bay's state changed, a scan finished, an order
// was settled, the outbox moved), and the web console follows them as a server-sent-event
// stream so the tablet at the car updates without polling.
//
// Events are hints for a live view, not a log: a slow subscriber loses events (it is told how
// many with a "lost" event) rather than slowing the publisher, and the console re-reads the
// REST API whenever it (re)connects.
package events

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Event is one notice. Type is a short dotted name ("bay.state", "scan.done",
// "workorder.settled", "outbox.stats", "selftest.progress"); Data is any JSON-encodable value
// that must never carry owner personal data.
type Event struct {
	Type string    `json:"type"`
	Bay  string    `json:"bay,omitempty"`
	Time time.Time `json:"time"`
	Data any       `json:"data,omitempty"`
}

// Bus fans events out to subscribers. The zero value is not usable; call New.
type Bus struct {
	mu   sync.Mutex
	subs map[*sub]struct{}
	now  func() time.Time
}

type sub struct {
	ch   chan Event
	lost int
}

// New returns a bus. now may be nil (time.Now).
func New(now func() time.Time) *Bus {
	if now == nil {
		now = time.Now
	}
	return &Bus{subs: map[*sub]struct{}{}, now: now}
}

// Publish sends an event to every subscriber without blocking. A nil bus ignores it, so
// components can run without a console.
func (b *Bus) Publish(typ, bay string, data any) {
	if b == nil {
		return
	}
	e := Event{Type: typ, Bay: bay, Time: b.now(), Data: data}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.ch <- e:
		default:
			s.lost++
		}
	}
}

// Subscribe returns a channel of events and a cancel function that must be called.
func (b *Bus) Subscribe(buffer int) (<-chan Event, func() (lost int)) {
	if buffer <= 0 {
		buffer = 64
	}
	s := &sub{ch: make(chan Event, buffer)}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s.ch, func() int {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs, s)
		return s.lost
	}
}

// lostSince returns and resets the count of events s missed.
func (b *Bus) lostSince(s *sub) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := s.lost
	s.lost = 0
	return n
}

// ServeHTTP streams events as text/event-stream until the client goes away. A comment line
// every keepalive interval keeps proxies and tablets' Wi-Fi from dropping an idle stream.
func (b *Bus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, `{"error":"streaming unsupported"}`, http.StatusInternalServerError)
		return
	}
	s := &sub{ch: make(chan Event, 64)}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	}()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": obdgw events\n\n")
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
			fl.Flush()
		case e := <-s.ch:
			if n := b.lostSince(s); n > 0 {
				writeEvent(w, Event{Type: "lost", Time: b.now(), Data: map[string]int{"count": n}})
			}
			if err := writeEvent(w, e); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

func writeEvent(w http.ResponseWriter, e Event) error {
	data, err := json.Marshal(e)
	if err != nil {
		data, _ = json.Marshal(Event{Type: "error", Time: e.Time, Data: "unencodable event " + e.Type})
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, data)
	return err
}
