package buffer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// On-disk encoding of outbox and dead-letter values.
//
// A value starts with a version byte so that a later obdgw can change the layout and still read
// what an older one left in the outbox (records may wait in it for weeks while a shop is offline).
// Version 1 is a compact binary layout, chosen over JSON because the payload is already an
// encoded envelope and base64-in-JSON would cost a third more flash per record:
//
//	outbox value: 0x01 | str ID | str Kind | str Topic | varint Created (Unix ns) | uvarint Attempts | str Payload
//	dead value:   0x01 | <the outbox value without its version byte> | str Reason | varint At (Unix ns)
//
// where str is a uvarint length followed by that many bytes. The sequence number is the bucket
// key (8 bytes big-endian, so that byte order is FIFO order) and is not repeated in the value.
const codecV1 = 1

// DecodeError reports a stored value that could not be decoded. It keeps the raw bytes so the
// value can be inspected or salvaged by hand.
type DecodeError struct {
	Bucket string
	Key    []byte
	Raw    []byte
	Err    error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("buffer: decode %s/%x (%d bytes): %v", e.Bucket, e.Key, len(e.Raw), e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// maxRaw bounds the bytes a DecodeError keeps: a damaged length can make a value look
// gigabytes long.
const maxRaw = 64 << 10

func rawCopy(v []byte) []byte { return append([]byte{}, v[:min(len(v), maxRaw)]...) }

var (
	errShort   = errors.New("value truncated")
	errTrailer = errors.New("trailing bytes after value")
)

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendRecordBody(b []byte, r *Record) []byte {
	b = appendStr(b, r.ID)
	b = appendStr(b, r.Kind)
	b = appendStr(b, r.Topic)
	b = binary.AppendVarint(b, r.Created.UnixNano())
	b = binary.AppendUvarint(b, uint64(max(r.Attempts, 0)))
	b = binary.AppendUvarint(b, uint64(len(r.Payload)))
	return append(b, r.Payload...)
}

// encodeRecord returns the outbox value for r (r.Seq goes in the key).
func encodeRecord(r *Record) []byte {
	b := make([]byte, 0, 1+len(r.ID)+len(r.Kind)+len(r.Topic)+len(r.Payload)+32)
	b = append(b, codecV1)
	return appendRecordBody(b, r)
}

// encodeDead returns the dead-letter value for d.
func encodeDead(d *DeadRecord) []byte {
	b := make([]byte, 0, 1+len(d.ID)+len(d.Kind)+len(d.Topic)+len(d.Payload)+len(d.Reason)+40)
	b = append(b, codecV1)
	b = appendRecordBody(b, &d.Record)
	b = appendStr(b, d.Reason)
	return binary.AppendVarint(b, d.At.UnixNano())
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errShort
		if n < 0 {
			r.err = errors.New("varint overflows 64 bits")
		}
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errShort
		if n < 0 {
			r.err = errors.New("varint overflows 64 bits")
		}
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(field string) []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("%s: length %d exceeds the %d bytes left", field, n, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) version() {
	if len(r.b) == 0 {
		r.err = errors.New("empty value")
		return
	}
	if r.b[0] != codecV1 {
		r.err = fmt.Errorf("unknown encoding version %d (written by a newer obdgw?)", r.b[0])
		return
	}
	r.b = r.b[1:]
}

func (r *reader) recordBody(rec *Record, copyPayload bool) {
	rec.ID = string(r.bytes("id"))
	rec.Kind = string(r.bytes("kind"))
	rec.Topic = string(r.bytes("topic"))
	rec.Created = time.Unix(0, r.varint())
	a := r.uvarint()
	if r.err == nil && a > 1<<31 {
		r.err = fmt.Errorf("attempts %d out of range", a)
	}
	rec.Attempts = int(a)
	if p := r.bytes("payload"); r.err == nil {
		// Copy: bbolt values are only valid inside their transaction. Without the copy
		// (checking a file) the payload must not be kept.
		rec.Payload = p
		if copyPayload {
			rec.Payload = append([]byte{}, p...)
		}
	}
}

// decodeRecord decodes an outbox value. seq comes from the key.
func decodeRecord(seq uint64, v []byte) (Record, error) { return decodeRecordOpt(seq, v, true) }

func decodeRecordOpt(seq uint64, v []byte, copyPayload bool) (Record, error) {
	r := reader{b: v}
	rec := Record{Seq: seq}
	r.version()
	r.recordBody(&rec, copyPayload)
	if r.err == nil && len(r.b) != 0 {
		r.err = errTrailer
	}
	if r.err != nil {
		return Record{}, r.err
	}
	return rec, nil
}

// decodeDead decodes a dead-letter value. seq comes from the key.
func decodeDead(seq uint64, v []byte) (DeadRecord, error) { return decodeDeadOpt(seq, v, true) }

func decodeDeadOpt(seq uint64, v []byte, copyPayload bool) (DeadRecord, error) {
	r := reader{b: v}
	d := DeadRecord{Record: Record{Seq: seq}}
	r.version()
	r.recordBody(&d.Record, copyPayload)
	d.Reason = string(r.bytes("reason"))
	d.At = time.Unix(0, r.varint())
	if r.err == nil && len(r.b) != 0 {
		r.err = errTrailer
	}
	if r.err != nil {
		return DeadRecord{}, r.err
	}
	return d, nil
}

// recordKind reads only the kind and payload length of an outbox value, for the bookkeeping
// that must not copy payloads (drops, acks).
func recordMeta(v []byte) (kind string, payloadLen int, err error) {
	r := reader{b: v}
	r.version()
	r.bytes("id")
	k := r.bytes("kind")
	r.bytes("topic")
	r.varint()
	r.uvarint()
	p := r.bytes("payload")
	if r.err != nil {
		return "", 0, r.err
	}
	return string(k), len(p), nil
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

func keySeq(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}
