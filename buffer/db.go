package buffer

import (
	"context"
	"errors"
)

// DB is an open store file. It is safe for concurrent use.
type DB struct{}

// Tx is a transaction spanning the outbox and the document buckets.
type Tx struct{}

var errTODO = errors.New("buffer: not implemented yet")

// Open opens or creates the store file at path (mode 0600).
func Open(path string, opts Options) (*DB, error) { return nil, errTODO }

// Append adds a record at the tail of the outbox, fsynced before it returns.
func (db *DB) Append(ctx context.Context, kind, topic string, payload []byte) (Record, error) {
	return Record{}, errTODO
}

// Peek returns up to max records from the head of the outbox, oldest first.
func (db *DB) Peek(max int) ([]Record, error) { return nil, errTODO }

// PeekAfter returns up to max records with Seq > seq, oldest first.
func (db *DB) PeekAfter(seq uint64, max int) ([]Record, error) { return nil, errTODO }

// Ack removes a delivered record. Acking a record that is gone is not an error.
func (db *DB) Ack(seq uint64) error { return errTODO }

// MarkAttempt counts one publish attempt.
func (db *DB) MarkAttempt(seq uint64) error { return errTODO }

// DeadLetter moves a record out of the outbox into the dead letter with a reason.
func (db *DB) DeadLetter(seq uint64, reason string) error { return errTODO }

// DeadLetters lists the dead letter, oldest first.
func (db *DB) DeadLetters() ([]DeadRecord, error) { return nil, errTODO }

// Requeue moves a dead record back to the tail of the outbox, keeping its ID.
func (db *DB) Requeue(seq uint64) (Record, error) { return Record{}, errTODO }

// Stats returns a snapshot of the outbox.
func (db *DB) Stats() Stats { return Stats{} }

// Appended is signalled (without blocking) after every commit that appended records.
func (db *DB) Appended() <-chan struct{} { return nil }

// Update runs fn in one read-write transaction spanning the outbox and documents.
func (db *DB) Update(fn func(tx *Tx) error) error { return errTODO }

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(tx *Tx) error) error { return errTODO }

// Close closes the file.
func (db *DB) Close() error { return nil }

// Append adds a record to the outbox within the transaction.
func (tx *Tx) Append(kind, topic string, payload []byte) (Record, error) { return Record{}, errTODO }

// Put stores a document under bucket/key (buckets are created on first use).
func (tx *Tx) Put(bucket, key string, value []byte) error { return errTODO }

// Get returns a copy of the document, or nil.
func (tx *Tx) Get(bucket, key string) []byte { return nil }

// Delete removes a document.
func (tx *Tx) Delete(bucket, key string) error { return errTODO }

// ForEach visits the documents of a bucket in key order.
func (tx *Tx) ForEach(bucket string, fn func(key string, value []byte) error) error { return errTODO }
