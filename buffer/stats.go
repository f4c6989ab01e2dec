package buffer

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

type counters struct {
	since                                             time.Time
	appended, delivered, dropped, refused, dead, requ map[string]uint64
	droppedBy, refusedBy                              map[string]map[string]uint64
}

// Stats returns a snapshot of the outbox. On a read error it logs and returns the counters.
func (db *DB) Stats() Stats {
	s := Stats{DepthByKind: map[string]int{}}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		s.Depth = int(getU64(meta, keyDepth))
		s.Bytes = int64(getU64(meta, keyBytes))
		s.DeadLetters = int(getU64(meta, keyDead))
		// OldestAge is the age of the head of the outbox, its first key: one cursor step,
		// whatever the backlog. Its payload is not needed, so it is not copied.
		if k, v := tx.Bucket(bucketOutbox).Cursor().First(); k != nil {
			seq, _ := keySeq(k)
			r, err := decodeRecordOpt(seq, v, false)
			if err != nil {
				return &DecodeError{Bucket: string(bucketOutbox), Key: append([]byte{}, k...), Raw: rawCopy(v), Err: err}
			}
			s.OldestAge = max(db.now().Sub(r.Created), 0)
		}
		// One key per kind, kept by appendRecord and unlink.
		return tx.Bucket(bucketByKind).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("bykind/%s is %x, want 8 bytes", k, v)
			}
			s.DepthByKind[string(k)] = int(binary.BigEndian.Uint64(v))
			return nil
		})
	})
	if err != nil {
		db.log.Error("buffer: stats", "err", err)
	}
	db.ctrMu.Lock()
	defer db.ctrMu.Unlock()
	c := &db.ctr
	s.Appended, s.Delivered, s.Dropped = maps1(c.appended), maps1(c.delivered), maps1(c.dropped)
	s.Refused, s.DeadByKind, s.Requeued = maps1(c.refused), maps1(c.dead), maps1(c.requ)
	s.DroppedBy, s.RefusedBy = maps2(c.droppedBy), maps2(c.refusedBy)
	s.ByReason = map[string]map[string]int{"dropped": {}, "refused": {}}
	for name, m := range map[string]map[string]map[string]uint64{"dropped": c.droppedBy, "refused": c.refusedBy} {
		for _, byReason := range m {
			for reason, n := range byReason {
				s.ByReason[name][reason] += int(n)
			}
		}
	}
	s.CountersSince = c.since
	return s
}

func maps1(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func maps2(m map[string]map[string]uint64) map[string]map[string]uint64 {
	out := make(map[string]map[string]uint64, len(m))
	for k, v := range m {
		out[k] = maps1(v)
	}
	return out
}

func (db *DB) count(m *map[string]uint64, kind string) {
	db.ctrMu.Lock()
	defer db.ctrMu.Unlock()
	if *m == nil {
		*m = map[string]uint64{}
	}
	(*m)[kind]++
}

func (db *DB) countBy(total *map[string]uint64, by *map[string]map[string]uint64, kind, reason string) {
	db.ctrMu.Lock()
	defer db.ctrMu.Unlock()
	if *total == nil {
		*total = map[string]uint64{}
	}
	if *by == nil {
		*by = map[string]map[string]uint64{}
	}
	(*total)[kind]++
	if (*by)[kind] == nil {
		(*by)[kind] = map[string]uint64{}
	}
	(*by)[kind][reason]++
}

func (db *DB) countRefusal(kind, reason string) {
	db.countBy(&db.ctr.refused, &db.ctr.refusedBy, kind, reason)
}
