package bay

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/obd"
)

// Buckets in the buffer file for what the gateway learns about cars and adapters.
const (
	// bucketAnswers: VIN → 8-byte big-endian Unix time of the last scan + obd.Answers JSON.
	bucketAnswers = "obd.answers"
	// bucketProtocol: bay name → the ELM protocol number its last car talked ("6").
	bucketProtocol = "obd.protocol"
	// bucketBaud: bay name → the serial rate its adapter answered at when its address names
	// none ("115200").
	bucketBaud = "obd.baud"
)

// MaxAnswers is how many cars the answer memory keeps by default; past it, the car scanned
// longest ago is forgotten. A shop sees a few thousand cars a year, and an entry is a few
// hundred bytes.
const MaxAnswers = 5000

// Memory is what the bays learn about cars and adapters: an obd.Memory (each car's answer
// sizes, so a returning car's scan need not wait out the adapter's timeout), each bay's last
// protocol (so the adapter tries it before a full protocol search) and the rate its adapter
// answered at (tried first). It lives in the buffer file: state in one place. Nothing in it is
// needed for correctness: an entry that cannot be read is logged and ignored. It is safe for
// concurrent use (the buffer's transactions serialise it).
type Memory struct {
	db  *buffer.DB
	log *slog.Logger
	now func() time.Time
	max int
}

// MemoryOptions configure a Memory. The zero value is fine.
type MemoryOptions struct {
	Logger *slog.Logger     // nil discards
	Now    func() time.Time // nil = time.Now; when a car was last scanned
	Max    int              // cars kept; 0 = MaxAnswers
}

// NewMemory returns the memory kept in db.
func NewMemory(db *buffer.DB, o MemoryOptions) *Memory {
	m := &Memory{db: db, log: o.Logger, now: o.Now, max: o.Max}
	if m.log == nil {
		m.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.max <= 0 {
		m.max = MaxAnswers
	}
	return m
}

var _ obd.Memory = (*Memory)(nil)

// Recall implements obd.Memory.
func (m *Memory) Recall(vin string) (obd.Answers, bool) {
	var a obd.Answers
	found := false
	err := m.db.View(func(tx *buffer.Tx) error {
		v := tx.Get(bucketAnswers, vin)
		if v == nil {
			return nil
		}
		if len(v) < 8 {
			m.log.Warn("answer memory: entry too short; ignoring it", "vin", vin, "bytes", len(v))
			return nil
		}
		if err := json.Unmarshal(v[8:], &a); err != nil {
			m.log.Warn("answer memory: unreadable entry; ignoring it", "vin", vin, "err", err)
			return nil
		}
		found = true
		return nil
	})
	if err != nil {
		m.log.Warn("answer memory: read failed", "vin", vin, "err", err)
		return obd.Answers{}, false
	}
	return a, found
}

// Remember implements obd.Memory.
func (m *Memory) Remember(vin string, a obd.Answers) {
	body, err := json.Marshal(a)
	if err != nil {
		m.log.Warn("answer memory: cannot encode", "vin", vin, "err", err)
		return
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(body)), uint64(m.now().Unix()))
	v = append(v, body...)
	err = m.db.Update(func(tx *buffer.Tx) error {
		if err := tx.Put(bucketAnswers, vin, v); err != nil {
			return err
		}
		return m.prune(tx)
	})
	if err != nil {
		m.log.Warn("answer memory: write failed", "vin", vin, "err", err)
	}
}

// prune forgets the cars scanned longest ago beyond m.max.
func (m *Memory) prune(tx *buffer.Tx) error {
	type entry struct {
		vin  string
		seen uint64
	}
	var all []entry
	err := tx.ForEach(bucketAnswers, func(k string, v []byte) error {
		var seen uint64
		if len(v) >= 8 {
			seen = binary.BigEndian.Uint64(v)
		}
		all = append(all, entry{k, seen})
		return nil
	})
	if err != nil || len(all) <= m.max {
		return err
	}
	// Few over the limit at a time (one per scan), so a partial selection is cheap enough.
	for n := len(all) - m.max; n > 0; n-- {
		oldest := 0
		for i, e := range all {
			if e.seen < all[oldest].seen {
				oldest = i
			}
		}
		if err := tx.Delete(bucketAnswers, all[oldest].vin); err != nil {
			return err
		}
		all = append(all[:oldest], all[oldest+1:]...)
	}
	return nil
}

// Protocol returns the ELM protocol number bay's last car talked, "" when none is known.
func (m *Memory) Protocol(bay string) string {
	var p string
	if err := m.db.View(func(tx *buffer.Tx) error {
		p = string(tx.Get(bucketProtocol, bay))
		return nil
	}); err != nil {
		m.log.Warn("bay protocol memory: read failed", "bay", bay, "err", err)
	}
	if len(p) != 1 || !strings.Contains("123456789ABC", p) {
		return "" // absent, or not what SetProtocol writes
	}
	return p
}

// SetProtocol remembers the protocol an adapter found ("A6" from ATDPN: automatic, found 6).
func (m *Memory) SetProtocol(bay, num string) {
	num = strings.TrimPrefix(strings.ToUpper(num), "A")
	if len(num) != 1 || num == "0" || m.Protocol(bay) == num {
		return
	}
	if err := m.db.Update(func(tx *buffer.Tx) error { return tx.Put(bucketProtocol, bay, []byte(num)) }); err != nil {
		m.log.Warn("bay protocol memory: write failed", "bay", bay, "err", err)
	}
}

// Baud returns the rate bay's adapter answered at when Open searched for it, 0 when none is
// known.
func (m *Memory) Baud(bay string) int {
	var b []byte
	if err := m.db.View(func(tx *buffer.Tx) error {
		b = tx.Get(bucketBaud, bay)
		return nil
	}); err != nil {
		m.log.Warn("bay baud memory: read failed", "bay", bay, "err", err)
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 300 || n > 4000000 {
		return 0 // absent, or not what SetBaud writes
	}
	return n
}

// SetBaud remembers the rate an adapter answered at after Open searched for it (0: it did not).
func (m *Memory) SetBaud(bay string, n int) {
	if n <= 0 || m.Baud(bay) == n {
		return
	}
	if err := m.db.Update(func(tx *buffer.Tx) error { return tx.Put(bucketBaud, bay, []byte(strconv.Itoa(n))) }); err != nil {
		m.log.Warn("bay baud memory: write failed", "bay", bay, "err", err)
	}
}
