package buffer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Append adds a record at the tail of the outbox, fsynced before it returns.
//
// ctx is checked before the write starts; a write that has started is finished (an fsync
// cannot be taken back). Concurrent Appends share commits (see write). Errors: ErrFull (the
// outbox is at its limits and the kind may not drop, or nothing of its kind is left to drop),
// ErrTooLarge, or a storage error (disk full) after which everything stored before is intact.
func (db *DB) Append(ctx context.Context, kind, topic string, payload []byte) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("buffer: append %s record: %w", kind, err)
	}
	var rec Record
	tx, err := db.write(func(t *Tx) error {
		r, err := t.Append(kind, topic, payload)
		rec = r
		return err
	})
	db.endTx(tx)
	if err != nil {
		if !errors.Is(err, ErrFull) && !errors.Is(err, ErrTooLarge) && kind != "" {
			db.countRefusal(kind, ReasonStorage)
			err = db.storageError("append "+kind+" record", err)
		}
		return Record{}, err
	}
	return rec, nil
}

// Peek returns up to max records from the head of the outbox, oldest first.
func (db *DB) Peek(max int) ([]Record, error) { return db.PeekAfter(0, max) }

// PeekAfter returns up to max records with Seq > seq, oldest first, so that an uplink with
// records in flight can fetch the next ones without re-reading those.
func (db *DB) PeekAfter(seq uint64, max int) ([]Record, error) {
	var out []Record
	if max > 0 {
		out = make([]Record, 0, min(max, 1024)) // an uplink asks for a page at a time
	}
	read := 0
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.Seek(seqKey(seq + 1)); k != nil && len(out) < max; k, v = c.Next() {
			s, ok := keySeq(k)
			if !ok {
				return &DecodeError{Bucket: string(bucketOutbox), Key: append([]byte{}, k...), Raw: rawCopy(v), Err: errors.New("key is not a sequence number")}
			}
			r, err := decodeRecord(s, v)
			if err != nil {
				return &DecodeError{Bucket: string(bucketOutbox), Key: append([]byte{}, k...), Raw: rawCopy(v), Err: err}
			}
			out = append(out, r)
			read += len(k) + len(v)
		}
		// A drain reads the outbox front to back once: do not let what it has read stay
		// resident (see releaser). The records returned are copies.
		db.readMapped(tx, read)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("buffer: peek: %w", err)
	}
	return out, nil
}

// Ack removes a delivered record. Acking a record that is gone is not an error, so an uplink
// may ack again after a crash between the PUBACK and the Ack.
func (db *DB) Ack(seq uint64) error {
	tx, err := db.write(func(t *Tx) error {
		kind, ok, err := t.remove(seq)
		if ok {
			t.onCommit(func() { db.count(&db.ctr.delivered, kind) })
		}
		return err
	})
	db.endTx(tx)
	if err != nil {
		return fmt.Errorf("buffer: ack %d: %w", seq, err)
	}
	return nil
}

// AckMany removes the delivered records seqs in one transaction (one fsync), as an uplink does
// with the acknowledgements that arrived while the previous commit was on its way to the disk.
// Records already gone are skipped, as with Ack. On an error none of them is removed.
func (db *DB) AckMany(seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	tx, err := db.write(func(t *Tx) error {
		n, bytes := 0, 0
		var kinds []string
		for _, seq := range seqs {
			kind, plen, ok, err := t.unlink(seq)
			if err != nil {
				return err
			}
			if ok {
				n, bytes = n+1, bytes+plen
				kinds = append(kinds, kind)
			}
		}
		t.onCommit(func() {
			for _, k := range kinds {
				db.count(&db.ctr.delivered, k)
			}
		})
		return t.shrink(n, bytes)
	})
	db.endTx(tx)
	if err != nil {
		return fmt.Errorf("buffer: ack %d records from %d on: %w", len(seqs), seqs[0], err)
	}
	return nil
}

// MarkAttempts counts one publish attempt on each of seqs in one transaction; records already
// gone are skipped. The attempt count is a diagnostic for people (a record that keeps failing),
// not part of any delivery guarantee, so an uplink may count attempts in memory and store them
// in one go when its connection ends; a crash before that loses only the count.
func (db *DB) MarkAttempts(seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	_, err := db.write(func(t *Tx) error {
		ob := t.tx.Bucket(bucketOutbox)
		for _, seq := range seqs {
			v := ob.Get(seqKey(seq))
			if v == nil {
				continue
			}
			r, err := decodeRecord(seq, v)
			if err != nil {
				return &DecodeError{Bucket: string(bucketOutbox), Key: seqKey(seq), Raw: rawCopy(v), Err: err}
			}
			r.Attempts++
			if err := ob.Put(seqKey(seq), encodeRecord(&r)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("buffer: mark attempts on %d records: %w", len(seqs), err)
	}
	return nil
}

// MarkAttempt counts one publish attempt. It returns ErrNotFound when the record is gone.
func (db *DB) MarkAttempt(seq uint64) error {
	_, err := db.write(func(t *Tx) error {
		ob := t.tx.Bucket(bucketOutbox)
		v := ob.Get(seqKey(seq))
		if v == nil {
			return ErrNotFound
		}
		r, err := decodeRecord(seq, v)
		if err != nil {
			return &DecodeError{Bucket: string(bucketOutbox), Key: seqKey(seq), Raw: rawCopy(v), Err: err}
		}
		r.Attempts++
		return ob.Put(seqKey(seq), encodeRecord(&r))
	})
	if err != nil {
		return fmt.Errorf("buffer: mark attempt on %d: %w", seq, err)
	}
	return nil
}

// DeadLetter moves a record out of the outbox into the dead letter with a reason. A record
// already in the dead letter is left as it is (no error); an unknown seq gives ErrNotFound.
func (db *DB) DeadLetter(seq uint64, reason string) error {
	_, err := db.write(func(t *Tx) error {
		key := seqKey(seq)
		if t.tx.Bucket(bucketDead).Get(key) != nil {
			return nil
		}
		v := t.tx.Bucket(bucketOutbox).Get(key)
		if v == nil {
			return ErrNotFound
		}
		r, err := decodeRecord(seq, v)
		if err != nil {
			return &DecodeError{Bucket: string(bucketOutbox), Key: key, Raw: rawCopy(v), Err: err}
		}
		if _, _, err := t.remove(seq); err != nil {
			return err
		}
		d := DeadRecord{Record: r, Reason: reason, At: db.now()}
		if err := t.tx.Bucket(bucketDead).Put(key, encodeDead(&d)); err != nil {
			return err
		}
		meta := t.tx.Bucket(bucketMeta)
		if err := putU64(meta, keyDead, getU64(meta, keyDead)+1); err != nil {
			return err
		}
		t.onCommit(func() { db.count(&db.ctr.dead, r.Kind) })
		return nil
	})
	if err != nil {
		return fmt.Errorf("buffer: dead-letter %d: %w", seq, err)
	}
	return nil
}

// DeadLetters lists the dead letter, oldest first.
func (db *DB) DeadLetters() ([]DeadRecord, error) {
	var out []DeadRecord
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDead).ForEach(func(k, v []byte) error {
			s, ok := keySeq(k)
			var d DeadRecord
			err := errors.New("key is not a sequence number")
			if ok {
				d, err = decodeDead(s, v)
			}
			if err != nil {
				return &DecodeError{Bucket: string(bucketDead), Key: append([]byte{}, k...), Raw: rawCopy(v), Err: err}
			}
			out = append(out, d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("buffer: list dead letters: %w", err)
	}
	return out, nil
}

// Requeue moves a dead record back to the tail of the outbox under a new seq, keeping its ID
// (so the receiver can de-duplicate) and its Created time, with Attempts reset to 0. It obeys
// the limits like Append: a full outbox refuses it with ErrFull and the record stays dead.
func (db *DB) Requeue(seq uint64) (Record, error) {
	var rec Record
	tx, err := db.write(func(t *Tx) error {
		key := seqKey(seq)
		v := t.tx.Bucket(bucketDead).Get(key)
		if v == nil {
			return ErrNotFound
		}
		d, err := decodeDead(seq, v)
		if err != nil {
			return &DecodeError{Bucket: string(bucketDead), Key: key, Raw: rawCopy(v), Err: err}
		}
		if err := t.tx.Bucket(bucketDead).Delete(key); err != nil {
			return err
		}
		meta := t.tx.Bucket(bucketMeta)
		if err := putU64(meta, keyDead, getU64(meta, keyDead)-1); err != nil {
			return err
		}
		r := d.Record
		r.Attempts = 0
		rec, err = t.appendRecord(r, true)
		if err == nil {
			t.onCommit(func() { db.count(&db.ctr.requ, r.Kind) })
		}
		return err
	})
	db.endTx(tx)
	if err != nil {
		return Record{}, fmt.Errorf("buffer: requeue %d: %w", seq, err)
	}
	return rec, nil
}

// Appended is signalled (without blocking) after every commit that appended records. The
// channel has a buffer of one, so a signal is never lost but several commits may share one:
// a reader should Peek until the outbox is drained after each signal.
func (db *DB) Appended() <-chan struct{} { return db.signal }

// NewAppended returns a channel of its own, signalled like Appended: for a second reader of the
// outbox (two transports draining different kinds), which sharing Appended would rob of wake-ups
// the other took. Call it once per reader, when the reader is built.
func (db *DB) NewAppended() <-chan struct{} {
	c := make(chan struct{}, 1)
	db.listenMu.Lock()
	db.listeners = append(db.listeners, c)
	db.listenMu.Unlock()
	return c
}

// Append adds a record to the outbox within the transaction. It is visible to readers, and
// Appended is signalled, only once the transaction commits.
func (t *Tx) Append(kind, topic string, payload []byte) (Record, error) {
	if kind == "" {
		return Record{}, errors.New("buffer: append: empty kind")
	}
	if !t.tx.Writable() {
		return Record{}, fmt.Errorf("buffer: append %s record: %w", kind, bolt.ErrTxNotWritable)
	}
	return t.appendRecord(Record{Kind: kind, Topic: topic, Payload: payload}, false)
}

// appendRecord admits r under the limits and stores it under the next seq. Requeue passes
// keep=true to keep r's ID and Created.
func (t *Tx) appendRecord(r Record, keep bool) (Record, error) {
	db := t.db
	meta := t.tx.Bucket(bucketMeta)
	depth, size := getU64(meta, keyDepth), getU64(meta, keyBytes)
	plen := uint64(len(r.Payload))
	if db.opts.MaxBytes > 0 && plen > uint64(db.opts.MaxBytes) {
		t.refused = append(t.refused, refusal{r.Kind, ReasonTooLarge})
		return Record{}, fmt.Errorf("%w: %s record of %d bytes exceeds the outbox limit of %d bytes; raise the buffer's max bytes", ErrTooLarge, r.Kind, plen, db.opts.MaxBytes)
	}
	over := func(depth, size uint64) string {
		switch {
		case db.opts.MaxRecords > 0 && depth+1 > uint64(db.opts.MaxRecords):
			return ReasonMaxRecords
		case db.opts.MaxBytes > 0 && size+plen > uint64(db.opts.MaxBytes):
			return ReasonMaxBytes
		}
		return ""
	}
	if reason := over(depth, size); reason != "" {
		full := func() error {
			t.refused = append(t.refused, refusal{r.Kind, reason})
			return fmt.Errorf("%w: %d records / %d bytes waiting (limits %s); check the uplink", ErrFull, depth, size, db.limits())
		}
		// Telemetry makes room by dropping the oldest records of its own kind. A regulatory
		// record may not be refused while telemetry occupies the space it needs, so it drops
		// the oldest telemetry records of any kind; regulatory records are never dropped.
		var kinds []string
		if db.opts.Policies[r.Kind] == Telemetry {
			kinds = []string{r.Kind}
		} else {
			for k, p := range db.opts.Policies {
				if p == Telemetry {
					kinds = append(kinds, k)
				}
			}
		}
		// Find the victims, oldest first across the kinds, before removing any: if even all
		// of them are not enough, refuse and drop nothing.
		type head struct {
			kind string
			c    *bolt.Cursor
			k, v []byte
		}
		var heads []*head
		for _, k := range kinds {
			if kb := t.tx.Bucket(bucketKinds).Bucket([]byte(k)); kb != nil {
				h := &head{kind: k, c: kb.Cursor()}
				if h.k, h.v = h.c.First(); h.k != nil {
					heads = append(heads, h)
				}
			}
		}
		type victim struct {
			seq  uint64
			kind string
		}
		var victims []victim
		d, s := depth, size
		for over(d, s) != "" && len(heads) > 0 {
			oldest := 0
			for i, h := range heads {
				if string(h.k) < string(heads[oldest].k) { // big-endian keys: byte order is seq order
					oldest = i
				}
			}
			h := heads[oldest]
			seq, _ := keySeq(h.k)
			n, _ := binary.Uvarint(h.v)
			victims = append(victims, victim{seq, h.kind})
			d, s = d-1, s-n
			if h.k, h.v = h.c.Next(); h.k == nil {
				heads = slices.Delete(heads, oldest, oldest+1)
			}
		}
		if over(d, s) != "" {
			return Record{}, full()
		}
		for _, v := range victims {
			if _, _, err := t.remove(v.seq); err != nil {
				return Record{}, err
			}
			t.onCommit(func() { db.countBy(&db.ctr.dropped, &db.ctr.droppedBy, v.kind, reason) })
		}
		if len(victims) > 0 {
			db.log.Warn("buffer: outbox full, dropped oldest telemetry", "for_kind", r.Kind, "records", len(victims), "reason", reason)
		}
		depth, size = d, s
	}

	next := max(getU64(meta, keyNext), 1)
	r.Seq = next
	if !keep {
		// "<gateway>-<incarnation>-<seq>" (gateway/wire MakeID): unique for ever, also
		// after the gateway starts on a new file.
		r.ID = strconv.FormatUint(next, 10)
		if db.inc != "" {
			r.ID = db.inc + "-" + r.ID
		}
		if db.opts.GatewayID != "" {
			r.ID = db.opts.GatewayID + "-" + r.ID
		}
		r.Created = db.now()
		r.Attempts = 0
	}
	key := seqKey(next)
	ob := t.tx.Bucket(bucketOutbox)
	// Keys only ever grow, so pages never receive a later insert in the middle: fill them
	// completely on split instead of bbolt's default half, which doubled the file's size.
	ob.FillPercent = 1.0
	if err := ob.Put(key, encodeRecord(&r)); err != nil {
		return Record{}, err
	}
	kb, err := t.tx.Bucket(bucketKinds).CreateBucketIfNotExists([]byte(r.Kind))
	if err != nil {
		return Record{}, err
	}
	kb.FillPercent = 1.0
	if err := kb.Put(key, binary.AppendUvarint(nil, plen)); err != nil {
		return Record{}, err
	}
	if err := t.countKind(r.Kind, 1); err != nil {
		return Record{}, err
	}
	if err := putU64(meta, keyNext, next+1); err != nil {
		return Record{}, err
	}
	if err := putU64(meta, keyDepth, depth+1); err != nil {
		return Record{}, err
	}
	if err := putU64(meta, keyBytes, size+plen); err != nil {
		return Record{}, err
	}
	if !keep {
		t.onCommit(func() { db.count(&db.ctr.appended, r.Kind) })
	}
	t.signal = true // the sidecar is written and Appended signalled after the commit (boltUpdate)
	// The payload is the caller's slice; hand back a record that does not alias it.
	r.Payload = append([]byte{}, r.Payload...)
	return r, nil
}

func (db *DB) limits() string {
	rec, by := "no record limit", "no byte limit"
	if db.opts.MaxRecords > 0 {
		rec = fmt.Sprintf("%d records", db.opts.MaxRecords)
	}
	if db.opts.MaxBytes > 0 {
		by = fmt.Sprintf("%d bytes", db.opts.MaxBytes)
	}
	return rec + " / " + by
}

// remove deletes an outbox record and its bookkeeping. ok is false if it was not there.
func (t *Tx) remove(seq uint64) (kind string, ok bool, err error) {
	kind, plen, ok, err := t.unlink(seq)
	if !ok || err != nil {
		return kind, ok, err
	}
	return kind, true, t.shrink(1, plen)
}

// unlink deletes an outbox record, its kinds index entry and its count by kind, leaving depth
// and bytes to the caller (shrink), so that removing many records updates them once.
func (t *Tx) unlink(seq uint64) (kind string, plen int, ok bool, err error) {
	key := seqKey(seq)
	c := t.tx.Bucket(bucketOutbox).Cursor()
	k, v := c.Seek(key)
	if k == nil || string(k) != string(key) {
		return "", 0, false, nil
	}
	kind, plen, err = recordMeta(v)
	if err != nil {
		return "", 0, false, &DecodeError{Bucket: string(bucketOutbox), Key: key, Raw: rawCopy(v), Err: err}
	}
	if err := c.Delete(); err != nil {
		return "", 0, false, err
	}
	if kb := t.tx.Bucket(bucketKinds).Bucket([]byte(kind)); kb != nil {
		if err := kb.Delete(key); err != nil {
			return "", 0, false, err
		}
	}
	if err := t.countKind(kind, -1); err != nil {
		return "", 0, false, err
	}
	return kind, plen, true, nil
}

// shrink takes n records of plen payload bytes in all off the outbox's depth and bytes.
func (t *Tx) shrink(n, plen int) error {
	meta := t.tx.Bucket(bucketMeta)
	if err := putU64(meta, keyDepth, getU64(meta, keyDepth)-uint64(n)); err != nil {
		return err
	}
	return putU64(meta, keyBytes, getU64(meta, keyBytes)-uint64(plen))
}

// countKind adds d to the number of outbox records of kind (Stats.DepthByKind). A kind with
// none left has no key, so the bucket stays as small as the set of kinds waiting.
func (t *Tx) countKind(kind string, d int) error {
	b := t.tx.Bucket(bucketByKind)
	k := []byte(kind)
	n := int64(getU64(b, k)) + int64(d)
	if n <= 0 {
		// Below zero only if the count was already wrong; Open recounts it at the next start.
		return b.Delete(k)
	}
	return putU64(b, k, uint64(n))
}
