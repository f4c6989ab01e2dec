package cloud

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// Forwarder passes the records a receiver stored on to a platform (the national eHR HTTPS
// API, gateway/ehrhttp), durably: a record is queued in the receiver's own bbolt state in the
// transaction that stores it, forwarded after it is stored, retried across restarts until the
// platform answers, and never sent again once it answered — forwarded or refused.
type Forwarder struct {
	// Kinds are the record kinds forwarded (e.g. "ehr"); others are only stored.
	Kinds []string
	// Send delivers one stored envelope and returns nil once the platform took it. An error
	// with a Permanent() bool method answering true is a refusal: recorded with its text,
	// logged, counted, never retried. Any other error is retried after a backoff. Send must
	// honour ctx.
	Send func(ctx context.Context, id string, envelope []byte) error
	// BackoffMin and BackoffMax bound the wait after a failed Send; defaults 5 s and 5 min.
	BackoffMin, BackoffMax time.Duration
}

// Forward states of a queued record.
const (
	ForwardPending   = "pending"
	ForwardDone      = "forwarded"
	ForwardRefused   = "refused"
	forwardPollEvery = 5 * time.Second
)

var bucketForward = []byte("forward") // 8-byte arrival sequence → forwardEntry

// forwardEntry is one queued record. The envelope is kept only while it is pending.
type forwardEntry struct {
	ID       string          `json:"id"`
	State    string          `json:"state"`
	Reason   string          `json:"reason,omitempty"`
	Envelope json.RawMessage `json:"envelope,omitempty"`
}

type forwardMetrics struct {
	results *prometheus.CounterVec // forwarded, refused, retried
}

// openForward creates the queue's bucket and metrics; a no-op without a Forwarder.
func (r *Receiver) openForward() error {
	if r.o.Forward == nil {
		return nil
	}
	fc := *r.o.Forward // the defaults below stay this receiver's
	f := &fc
	r.o.Forward = f
	if f.Send == nil || len(f.Kinds) == 0 {
		return optErr("forward", "needs Send and at least one kind")
	}
	if f.BackoffMin == 0 {
		f.BackoffMin = 5 * time.Second
	}
	if f.BackoffMax == 0 {
		f.BackoffMax = 5 * time.Minute
	}
	if f.BackoffMax < f.BackoffMin {
		return optErr("forward", "backoff max %v is less than min %v", f.BackoffMax, f.BackoffMin)
	}
	r.fwdWake = make(chan struct{}, 1)
	r.fm = forwardMetrics{results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "obdgw_receiver_forward_total",
		Help: "Stored records passed on to the platform, by result: forwarded, refused (the platform's answer, never retried), retried (a failed try)."}, []string{"result"})}
	r.reg.MustRegister(r.fm.results)
	return r.db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketForward)
		return err
	})
}

// queueForward adds an accepted record to the forward queue, inside the transaction that
// stores it, so a stored record is always queued and a queued record always stored.
func (r *Receiver) queueForward(tx *bolt.Tx, id, kind string, line []byte) error {
	if r.o.Forward == nil || !slices.Contains(r.o.Forward.Kinds, kind) {
		return nil
	}
	b := tx.Bucket(bucketForward)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	v, err := json.Marshal(forwardEntry{ID: id, State: ForwardPending, Envelope: json.RawMessage(trimNewline(line))})
	if err != nil {
		return err
	}
	tx.OnCommit(func() {
		select {
		case r.fwdWake <- struct{}{}:
		default:
		}
	})
	return b.Put(binary.BigEndian.AppendUint64(nil, seq), v)
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

// ForwardState says where record id stands in the forward queue: pending, forwarded or
// refused (with the platform's reason); "" when it was never queued.
func (r *Receiver) ForwardState(id string) (state, reason string, err error) {
	err = r.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketForward)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var e forwardEntry
			if json.Unmarshal(v, &e) == nil && e.ID == id {
				state, reason = e.State, e.Reason
			}
			return nil
		})
	})
	return state, reason, err
}

// runForward forwards the queue in arrival order until ctx ends. A record the platform has
// not answered stays first in line: the records after it wait, as in the gateway's outbox.
func (r *Receiver) runForward(ctx context.Context) {
	f := r.o.Forward
	if f == nil {
		return
	}
	log := r.o.Logger
	poll := time.NewTicker(forwardPollEvery)
	defer poll.Stop()
	bo := backoff{base: f.BackoffMin, max: f.BackoffMax, rand: r.o.Rand}
	var cursor []byte // key of the last entry settled in this run
	for ctx.Err() == nil {
		key, e, err := r.nextPending(cursor)
		if err != nil {
			log.Error("receiver: read the forward queue", "err", err)
		}
		if key == nil {
			select {
			case <-ctx.Done():
			case <-r.fwdWake:
			case <-poll.C:
			}
			continue
		}
		err = f.Send(ctx, e.ID, e.Envelope)
		if ctx.Err() != nil {
			return
		}
		var perm interface{ Permanent() bool }
		switch {
		case err == nil:
			e.State = ForwardDone
		case errors.As(err, &perm) && perm.Permanent():
			e.State, e.Reason = ForwardRefused, err.Error()
		default:
			r.fm.results.WithLabelValues("retried").Inc()
			wait := bo.next()
			r.warn.Warn(log, r.o.Now(), "receiver: record not forwarded yet; it stays first in the queue", "id", e.ID, "err", err, "retry_in", wait.Round(time.Millisecond))
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			continue
		}
		bo.reset()
		e.Envelope = nil
		if err := r.settleForward(key, e); err != nil {
			// Sent again after a restart: the platform de-duplicates on costlistcode, or
			// DuplicateCodes say it has it (docs/delivery.md).
			log.Error("receiver: record the forward's result", "id", e.ID, "err", err)
			continue
		}
		cursor = key
		r.fm.results.WithLabelValues(e.State).Inc()
		if e.State == ForwardRefused {
			log.Warn("receiver: the platform refused a forwarded record; not retried", "id", e.ID, "reason", e.Reason)
		} else {
			log.Info("receiver: record forwarded", "id", e.ID)
		}
	}
}

// nextPending finds the first pending entry after cursor.
func (r *Receiver) nextPending(cursor []byte) (key []byte, e forwardEntry, err error) {
	err = r.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketForward).Cursor()
		var k, v []byte
		if cursor == nil {
			k, v = c.First()
		} else if k, v = c.Seek(cursor); k != nil && string(k) == string(cursor) {
			k, v = c.Next()
		}
		for ; k != nil; k, v = c.Next() {
			var x forwardEntry
			if err := json.Unmarshal(v, &x); err != nil {
				return fmt.Errorf("forward entry %x: %w", k, err)
			}
			if x.State == ForwardPending {
				key, e = slices.Clone(k), x
				return nil
			}
		}
		return nil
	})
	return key, e, err
}

func (r *Receiver) settleForward(key []byte, e forwardEntry) error {
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return r.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketForward).Put(key, v) })
}
