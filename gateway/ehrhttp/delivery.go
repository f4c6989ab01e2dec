package ehrhttp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/wire"
)

// Outbox is what Delivery needs of the gateway's outbox; *buffer.DB implements it, with the
// contract cloud.Outbox states (oldest first, AckMany and DeadLetter durable).
type Outbox interface {
	PeekAfter(seq uint64, max int) ([]buffer.Record, error)
	AckMany(seqs []uint64) error
	MarkAttempts(seqs []uint64) error
	DeadLetter(seq uint64, reason string) error
	Stats() buffer.Stats
	Appended() <-chan struct{}
}

var _ Outbox = (*buffer.DB)(nil)

// DeliveryOptions configure NewDelivery.
type DeliveryOptions struct {
	// OthersByMQTT says an MQTT uplink takes the kinds the platform does not (im records);
	// false: they stay in the outbox and Status says so.
	OthersByMQTT bool
	// BackoffMin and BackoffMax bound the wait after a record failed all of the client's
	// tries; defaults 5 s and 5 min, full jitter.
	BackoffMin, BackoffMax time.Duration
	// Poll is how often the outbox is looked at without an Appended signal (the signal is
	// shared with the MQTT uplink); default 5 s.
	Poll   time.Duration
	Logger *slog.Logger     // nil = discard
	Now    func() time.Time // nil = time.Now
	Rand   func() float64   // nil = math/rand/v2
}

// Delivery drains the ehr records of an outbox to the platform, oldest first, one at a time:
// a record leaves the outbox (Ack) only once the platform answered success (or that it has the
// record already, DuplicateCodes); a refused record goes to the dead letter with the
// platform's code and text; anything else keeps it in the outbox, first in line, and it is
// tried again after a backoff. A record that cannot be read as an ehr/1 envelope is
// dead-lettered too: no retry can send it.
type Delivery struct {
	box Outbox
	c   *Client
	o   DeliveryOptions

	mu      sync.Mutex
	st      DeliveryStatus
	running bool
}

// DeliveryStatus is the delivery's state for the console and /healthz.
type DeliveryStatus struct {
	Transport    string    `json:"transport"` // "ehr-https"
	Platform     string    `json:"platform"`  // the service root, no credentials
	Running      bool      `json:"running"`
	Connected    bool      `json:"connected"` // the last call got an answer about a record
	Delivered    uint64    `json:"delivered"`
	Refused      uint64    `json:"refused"`
	LastDelivery time.Time `json:"last_delivery,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	// Waiting names the records of other kinds that stay in the outbox because the platform
	// does not take them and no MQTT uplink is configured.
	Waiting string `json:"waiting,omitempty"`
}

// NewDelivery prepares a delivery of box's ehr records through c.
func NewDelivery(box Outbox, c *Client, o DeliveryOptions) (*Delivery, error) {
	if box == nil || c == nil {
		return nil, errors.New("ehrhttp: delivery needs an outbox and a client")
	}
	if o.BackoffMin == 0 {
		o.BackoffMin = 5 * time.Second
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = 5 * time.Minute
	}
	if o.BackoffMax < o.BackoffMin {
		return nil, optErr("backoff_max", "%v is less than backoff_min %v", o.BackoffMax, o.BackoffMin)
	}
	if o.Poll == 0 {
		o.Poll = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	return &Delivery{box: box, c: c, o: o, st: DeliveryStatus{Transport: "ehr-https", Platform: c.String()}}, nil
}

// Status returns a snapshot.
func (d *Delivery) Status() DeliveryStatus {
	d.mu.Lock()
	s := d.st
	s.Running = d.running
	d.mu.Unlock()
	if !d.o.OthersByMQTT {
		s.Waiting = waiting(d.box.Stats().DepthByKind)
	}
	return s
}

// waiting describes the records of kinds the platform does not take.
func waiting(byKind map[string]int) string {
	var parts []string
	for k, n := range byKind {
		if k != wire.KindEHR && n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, k))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ") + " record(s) wait in the outbox: the eHR platform takes only ehr records and no MQTT broker is configured (broker.url)"
}

func (d *Delivery) update(f func(*DeliveryStatus)) {
	d.mu.Lock()
	f(&d.st)
	d.mu.Unlock()
}

// Run delivers until ctx ends, then returns nil; it returns an error only when the outbox
// cannot be read.
func (d *Delivery) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		return errors.New("ehrhttp: delivery already running")
	}
	d.running = true
	d.mu.Unlock()
	defer d.update(func(s *DeliveryStatus) { s.Connected = false })
	defer func() { d.mu.Lock(); d.running = false; d.mu.Unlock() }()
	poll := time.NewTicker(d.o.Poll)
	defer poll.Stop()
	var cursor uint64
	for ctx.Err() == nil {
		recs, err := d.box.PeekAfter(cursor, 64)
		if err != nil {
			return fmt.Errorf("ehrhttp: read outbox: %w", err)
		}
		if len(recs) == 0 {
			select {
			case <-ctx.Done():
			case <-d.box.Appended():
			case <-poll.C:
			}
			continue
		}
		for _, r := range recs {
			if r.Kind == wire.KindEHR {
				if err := d.deliver(ctx, r); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
			}
			cursor = r.Seq
		}
	}
	return nil
}

// deliver settles one record: acked, dead-lettered, or — ctx ended — left in the outbox.
func (d *Delivery) deliver(ctx context.Context, r buffer.Record) error {
	log := d.o.Logger
	for n := 1; ; n++ {
		env, err := wire.Frame(r.ID, r.Payload)
		var rec wire.EHRRecord
		if err == nil {
			rec, _, err = RecordOf(env)
		}
		if err != nil {
			reason := "unmappable: " + err.Error()
			if err := d.box.DeadLetter(r.Seq, reason); err != nil {
				return fmt.Errorf("ehrhttp: dead-letter %s: %w", r.ID, err)
			}
			log.Error("ehr platform: record cannot be sent; moved to the dead letter", "id", r.ID, "err", err)
			d.update(func(s *DeliveryStatus) { s.Refused++ })
			return nil
		}
		outcome, err := d.c.Add(ctx, rec)
		var refused *RefusedError
		switch {
		case err == nil:
			if err := d.box.AckMany([]uint64{r.Seq}); err != nil {
				return fmt.Errorf("ehrhttp: ack %s: %w", r.ID, err)
			}
			now := d.o.Now()
			d.update(func(s *DeliveryStatus) {
				s.Delivered++
				s.LastDelivery, s.Connected, s.LastError = now, true, ""
			})
			log.Info("ehr platform: record delivered", "id", r.ID, "duplicate", outcome == Duplicate)
			return nil
		case errors.As(err, &refused):
			reason := "refused by the eHR platform: code " + refused.Code + ": " + refused.Status
			if err := d.box.DeadLetter(r.Seq, reason); err != nil && !errors.Is(err, buffer.ErrNotFound) {
				return fmt.Errorf("ehrhttp: dead-letter %s: %w", r.ID, err)
			}
			d.update(func(s *DeliveryStatus) { s.Refused++; s.Connected = true })
			log.Warn("ehr platform: record refused; moved to the dead letter", "id", r.ID, "code", refused.Code, "status", refused.Status)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := d.box.MarkAttempts([]uint64{r.Seq}); err != nil {
			log.Warn("ehr platform: count attempt", "id", r.ID, "err", err)
		}
		now := d.o.Now()
		d.update(func(s *DeliveryStatus) { s.LastError, s.LastErrorAt, s.Connected = err.Error(), now, false })
		wait := jitter(d.o.BackoffMin, d.o.BackoffMax, n, d.o.Rand)
		log.Warn("ehr platform: record not delivered; it stays first in the outbox", "id", r.ID, "err", err, "retry_in", wait.Round(time.Millisecond))
		if err := d.c.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// Except is box without the records of kinds: what an MQTT uplink drains when the eHR
// platform takes those kinds (cloud.NewUplink accepts it as its Outbox). Acks, attempts and
// dead letters pass through; Stats is the whole outbox's. When box can give each reader its
// own wake-up (*buffer.DB's NewAppended), Except takes one, so the two transports never take
// each other's signal.
func Except(box Outbox, kinds ...string) Outbox {
	e := except{Outbox: box, kinds: kinds, appended: box.Appended()}
	if n, ok := box.(interface{ NewAppended() <-chan struct{} }); ok {
		e.appended = n.NewAppended()
	}
	return e
}

type except struct {
	Outbox
	kinds    []string
	appended <-chan struct{}
}

func (e except) Appended() <-chan struct{} { return e.appended }

func (e except) PeekAfter(seq uint64, max int) ([]buffer.Record, error) {
	var out []buffer.Record
	for len(out) < max {
		recs, err := e.Outbox.PeekAfter(seq, max)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			seq = r.Seq
			if !slices.Contains(e.kinds, r.Kind) && len(out) < max {
				out = append(out, r)
			}
		}
		if len(recs) < max {
			break
		}
	}
	return out, nil
}
