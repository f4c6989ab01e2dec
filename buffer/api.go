package buffer

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Record is one outgoing message in the outbox.
type Record struct {
	Seq      uint64    `json:"seq"`      // gap-free, durable, assigned by Append
	ID       string    `json:"id"`       // stable across retries: "<gateway id>-<incarnation>-<seq>"
	Kind     string    `json:"kind"`     // e.g. "ehr", "im", "status"
	Topic    string    `json:"topic"`    // MQTT topic it goes to
	Payload  []byte    `json:"payload"`  // opaque bytes (the envelope built by the gateway)
	Created  time.Time `json:"created"`  // when it was appended
	Attempts int       `json:"attempts"` // publish attempts so far
}

// DeadRecord is a record the receiver rejected for good.
type DeadRecord struct {
	Record
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Policy says what happens to a kind when the outbox is full.
type Policy int

const (
	// Regulatory records are never dropped. When the outbox is full, a regulatory Append
	// takes the place of the oldest telemetry records (of any kind); when there are none
	// left to drop, it is refused with ErrFull.
	Regulatory Policy = iota
	// Telemetry records may drop the oldest records of the same kind to make room (or be
	// dropped to make room for a regulatory record); refused with ErrFull when that is not
	// enough.
	Telemetry
)

// Options configure Open. The zero value is usable: no limits, every kind regulatory.
type Options struct {
	GatewayID  string            // prefix of record IDs
	MaxBytes   int64             // payload bytes in the outbox; 0 = unlimited
	MaxRecords int               // records in the outbox; 0 = unlimited
	Policies   map[string]Policy // per kind; missing kinds are Regulatory
	Now        func() time.Time  // nil = time.Now
	Logger     *slog.Logger      // nil = discard

	// LockTimeout bounds the wait for the file lock held by another process (a second obdgw,
	// or one still shutting down); Open then fails with ErrLocked instead of hanging.
	// 0 = 5 seconds.
	LockTimeout time.Duration
}

// Stats is a snapshot of the outbox.
type Stats struct {
	Depth       int                       `json:"depth"`
	Bytes       int64                     `json:"bytes"`
	OldestAge   time.Duration             `json:"oldest_age_ns"`
	DeadLetters int                       `json:"dead_letters"`
	Appended    map[string]uint64         `json:"appended"`  // by kind
	Delivered   map[string]uint64         `json:"delivered"` // by kind (Ack)
	Dropped     map[string]uint64         `json:"dropped"`   // by kind
	Refused     map[string]uint64         `json:"refused"`   // by kind
	DeadByKind  map[string]uint64         `json:"dead_lettered"`
	ByReason    map[string]map[string]int `json:"-"` // "dropped"/"refused" → reason → count, all kinds

	Requeued      map[string]uint64            `json:"requeued"`          // by kind (Requeue)
	DroppedBy     map[string]map[string]uint64 `json:"dropped_by_reason"` // kind → reason → count
	RefusedBy     map[string]map[string]uint64 `json:"refused_by_reason"` // kind → reason → count
	DepthByKind   map[string]int               `json:"depth_by_kind"`
	CountersSince time.Time                    `json:"counters_since"` // counters live in memory since Open
}

// Reasons used in Stats.DroppedBy, RefusedBy and ByReason.
const (
	ReasonMaxRecords = "max_records" // the outbox held Options.MaxRecords records
	ReasonMaxBytes   = "max_bytes"   // the outbox held Options.MaxBytes payload bytes
	ReasonTooLarge   = "too_large"   // the payload alone is larger than Options.MaxBytes
	ReasonStorage    = "storage"     // the write failed (disk full, I/O error)
)

var (
	// ErrFull: the outbox is at its limit and the record's kind may not drop anything.
	ErrFull = errors.New("buffer: outbox full")
	// ErrNotFound: no record with that sequence number.
	ErrNotFound = errors.New("buffer: no such record")
	// ErrCorrupt: Open refused the file (unreadable, failed its integrity check, or rolled
	// back) and left it in place; a person must restore a backup or start a new store.
	ErrCorrupt = errors.New("buffer: store file corrupt")
	// ErrRolledBack (with ErrCorrupt): the file is behind its sidecar "<path>.last": it lost
	// commits it had made (bbolt fell back to its older meta page) or is another file.
	ErrRolledBack = errors.New("buffer: store file rolled back")
	// ErrLocked: another process holds the store file (Open gave up after Options.LockTimeout).
	ErrLocked = errors.New("buffer: store file locked")
	// ErrTooLarge: one payload is larger than Options.MaxBytes, so it can never be stored.
	ErrTooLarge = errors.New("buffer: record too large")
)

// The methods below are the contract other packages build on.
var _ interface {
	Append(ctx context.Context, kind, topic string, payload []byte) (Record, error)
	Peek(max int) ([]Record, error)
	PeekAfter(seq uint64, max int) ([]Record, error)
	Ack(seq uint64) error
	AckMany(seqs []uint64) error
	MarkAttempt(seq uint64) error
	MarkAttempts(seqs []uint64) error
	DeadLetter(seq uint64, reason string) error
	DeadLetters() ([]DeadRecord, error)
	Requeue(seq uint64) (Record, error)
	Stats() Stats
	Appended() <-chan struct{}
	Update(fn func(tx *Tx) error) error
	View(fn func(tx *Tx) error) error
	Close() error
} = (*DB)(nil)
