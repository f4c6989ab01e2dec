package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/obdgw/obdgw/buffer"
)

// Actions written to the log.
const (
	ActionOwnerRead     = "owner.read"       // owner name and phone were answered (include=owner)
	ActionSettle        = "workorder.settle" // an order was settled
	ActionRevise        = "workorder.revise" // a settled order was corrected (a new revision)
	ActionClearDTCs     = "bay.clear_dtcs"   // OBD service 04 was asked for, with its outcome
	ActionRequeue       = "outbox.requeue"   // a dead record was sent again
	ActionBackup        = "store.backup"     // a copy of the state file was taken
	ActionWasteHandover = "waste.handover"   // hazardous waste was handed to a collector
)

// Buckets in the buffer file.
const (
	bucketEntries = "audit"      // 16-digit sequence → Entry
	bucketMeta    = "audit.meta" // "seq" → the last sequence given
)

// Entry is one line of the log. It names what was touched, never the owner data itself.
type Entry struct {
	Seq    uint64    `json:"seq"`
	At     time.Time `json:"at"`
	Token  string    `json:"token"` // the token's name; "" for an anonymous reader
	Role   string    `json:"role"`
	Action string    `json:"action"`
	Order  string    `json:"order,omitempty"`
	Bay    string    `json:"bay,omitempty"`
	VIN    string    `json:"vin,omitempty"`
	// Detail says more without personal data: the settlement number and revision, the outbox
	// sequence, the clear's outcome, the transfer manifest number.
	Detail string `json:"detail,omitempty"`
}

// Options configure a Log.
type Options struct {
	Now func() time.Time // nil: time.Now
}

// Log is the audit log of one buffer file. It is safe for concurrent use.
type Log struct {
	db  *buffer.DB
	now func() time.Time
}

// New returns the log kept in db.
func New(db *buffer.DB, opts Options) *Log {
	l := &Log{db: db, now: opts.Now}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

// Add appends e, stamped with the next sequence and the time (when e.At is zero), in its own
// transaction.
func (l *Log) Add(e Entry) error {
	return l.db.Update(func(tx *buffer.Tx) error { return l.AddTx(tx, e) })
}

// AddTx appends e inside a running transaction, so the entry commits with what it records.
func (l *Log) AddTx(tx *buffer.Tx, e Entry) error {
	if e.Action == "" {
		return errors.New("audit: an entry without an action")
	}
	var n uint64
	if b := tx.Get(bucketMeta, "seq"); b != nil {
		v, err := strconv.ParseUint(string(b), 10, 64)
		if err != nil {
			return fmt.Errorf("audit: sequence corrupt: %w", err)
		}
		n = v
	}
	n++
	e.Seq = n
	if e.At.IsZero() {
		e.At = l.now().UTC()
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("audit: encode: %w", err)
	}
	if err := tx.Put(bucketMeta, "seq", []byte(strconv.FormatUint(n, 10))); err != nil {
		return err
	}
	return tx.Put(bucketEntries, key(n), b)
}

func key(n uint64) string { return fmt.Sprintf("%016d", n) }

// MaxPage is the largest page List returns.
const MaxPage = 1000

// List returns up to limit entries at or after since (zero: from the first) with a sequence
// above after (0: from the first), oldest first, and the sequence to pass as after for the
// next page (0 on the last page).
func (l *Log) List(since time.Time, after uint64, limit int) ([]Entry, uint64, error) {
	if limit < 1 || limit > MaxPage {
		return nil, 0, fmt.Errorf("audit: limit %d: want 1 to %d", limit, MaxPage)
	}
	out := []Entry{}
	var next uint64
	stop := errors.New("page full")
	err := l.db.View(func(tx *buffer.Tx) error {
		from := key(after)
		return tx.ForEach(bucketEntries, func(k string, v []byte) error {
			if k <= from {
				return nil
			}
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("audit: entry %s unreadable: %w", k, err)
			}
			if e.Seq <= after || e.At.Before(since) {
				return nil
			}
			if len(out) == limit {
				next = out[len(out)-1].Seq
				return stop
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil && err != stop {
		return nil, 0, err
	}
	return out, next, nil
}
