package cloud

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/obdgw/obdgw/drivers/lograte"
)

// Verdict is what the injected validator says about one message.
type Verdict struct {
	ID           string // record id, "" when unreadable
	Kind         string
	ReceiptTopic string // where the receipt goes; "" when the topic names no gateway
	Skip         bool   // not a record (a status or receipt topic): ignore silently
}

// ReceiverOptions configure NewReceiver.
type ReceiverOptions struct {
	Broker       string // broker_url
	AllowPlain   bool
	CAFile       string
	CertFile     string
	KeyFile      string
	Username     string
	PasswordFile string
	ClientID     string // default "obdgw-receiver-<group>"; must differ between receivers side by side
	Group        string // shared subscription group; default "obdgw"
	Filter       string // topic filter inside $share/<group>/, e.g. "obdgw/v1/#"

	StatePath string // the de-duplication bbolt file
	OutPath   string // JSONL output, one accepted envelope per line

	// Validate checks one message (cmd wires gateway/wire's validation here). On error the
	// record is rejected with the error text as reason, if the verdict says where to send it.
	Validate func(topic string, payload []byte) (Verdict, error)
	// EncodeReceipt encodes a receipt (wire.MarshalReceipt).
	EncodeReceipt func(Receipt) ([]byte, error)

	Keepalive      time.Duration
	ConnectTimeout time.Duration
	BackoffMin     time.Duration // default 200 ms
	BackoffMax     time.Duration // default 30 s
	// MaxMessageBytes bounds a message's payload; a larger one is acknowledged and dropped
	// before anything reads it (default 256 KiB, gateway/wire's envelope limit). The broker
	// should bound it too (max_packet_size, docs/delivery.md "Limits"): paho has read the whole
	// message by the time the receiver sees it.
	MaxMessageBytes int
	Logger          *slog.Logger
	Now             func() time.Time
	Rand            func() float64 // backoff jitter in [0,1); nil = math/rand/v2

	Forward *Forwarder // optional: pass stored records on to a platform (forward.go)
}

// Receiver is the reference provincial receiver: validate, de-duplicate, store, answer.
//
// Exactly once on disk: a batch of accepted envelopes is appended to the JSONL file and
// fsynced, then the ids and the file's new length are committed (fsynced) to the bbolt state,
// then the receipts go out and the messages are acknowledged to the broker. The JSONL file is
// only "written" up to the length the state records: at start, a tail beyond it (a crash
// between the two fsyncs) is cut off, and those records come again because they were never
// acknowledged.
type Receiver struct {
	o    ReceiverOptions
	conn UplinkOptions // the connection part of o, validated: what clientOptions builds from
	db   *bolt.DB
	out  *os.File
	end  int64 // committed JSONL length
	reg  *prometheus.Registry
	m    receiverMetrics
	in   chan inbound
	mu   sync.Mutex
	st   ReceiverStatus
	live bool
	// warn holds back warnings that anyone able to publish could repeat per message.
	warn lograte.Limiter
	// fwdWake and fm belong to the forward queue (forward.go).
	fwdWake chan struct{}
	fm      forwardMetrics
}

// ReceiverStatus is the receiver's state for /healthz.
type ReceiverStatus struct {
	Connected  bool      `json:"connected"`
	LastError  string    `json:"last_error,omitempty"`
	Reconnects uint64    `json:"reconnects"`
	Accepted   uint64    `json:"accepted"`
	Duplicates uint64    `json:"duplicates"`
	Rejected   uint64    `json:"rejected"`
	Conflicts  uint64    `json:"conflicts"` // of the rejected: an id held with other content
	LastRecord time.Time `json:"last_record,omitzero"`
	Running    bool      `json:"running"`
}

type inbound struct {
	msg   mqtt.Message
	reply func(topic string, payload []byte) // publishes a receipt on the message's connection
}

type receiverMetrics struct {
	connected  prometheus.Gauge
	reconnects prometheus.Counter
	received   prometheus.Counter
	handled    *prometheus.CounterVec // by verdict, kind
	store      prometheus.Histogram
}

var (
	bucketSeen = []byte("seen")
	bucketMeta = []byte("meta")
	keyEnd     = []byte("jsonl_end")
)

// NewReceiver opens (or creates) the state and output files and reconciles them.
func NewReceiver(o ReceiverOptions) (*Receiver, error) {
	if o.Validate == nil || o.EncodeReceipt == nil {
		return nil, errors.New("cloud: receiver needs Validate and EncodeReceipt")
	}
	if o.Group == "" {
		o.Group = "obdgw"
	}
	if o.Filter == "" {
		return nil, optErr("filter", "empty; want the record topic filter, e.g. obdgw/v1/#")
	}
	if o.ClientID == "" {
		o.ClientID = "obdgw-receiver-" + o.Group
	}
	if o.StatePath == "" {
		return nil, optErr("state", "empty; the receiver needs a state directory")
	}
	if o.OutPath == "" {
		return nil, optErr("out", "empty; the receiver needs an output file")
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = 256 << 10
	}
	if o.MaxMessageBytes < 0 {
		return nil, optErr("max_message_bytes", "%d: must not be negative", o.MaxMessageBytes)
	}
	uo := UplinkOptions{Broker: o.Broker, AllowPlain: o.AllowPlain, CAFile: o.CAFile, CertFile: o.CertFile, KeyFile: o.KeyFile,
		Username: o.Username, PasswordFile: o.PasswordFile, ClientID: o.ClientID, Keepalive: o.Keepalive,
		ConnectTimeout: o.ConnectTimeout, Delivery: DeliveryPUBACK, BackoffMin: o.BackoffMin, BackoffMax: o.BackoffMax,
		Logger: o.Logger, Now: o.Now}
	if uo.BackoffMin == 0 {
		uo.BackoffMin = 200 * time.Millisecond
	}
	if uo.BackoffMax == 0 {
		uo.BackoffMax = 30 * time.Second
	}
	uo, err := uo.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, _, err := uo.tlsConfig(); err != nil {
		return nil, err
	}
	o.Keepalive, o.ConnectTimeout, o.BackoffMin, o.BackoffMax, o.Logger, o.Now = uo.Keepalive, uo.ConnectTimeout, uo.BackoffMin, uo.BackoffMax, uo.Logger, uo.Now

	db, err := bolt.Open(o.StatePath, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("cloud: receiver state %s: %w (is another receiver using it?)", o.StatePath, err)
	}
	r := &Receiver{o: o, conn: uo, db: db, reg: prometheus.NewRegistry(), in: make(chan inbound, 1024)}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketSeen); err != nil {
			return err
		}
		m, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := m.Get(keyEnd); len(v) == 8 {
			r.end = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cloud: receiver state %s: %w", o.StatePath, err)
	}
	out, err := os.OpenFile(o.OutPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cloud: receiver output: %w", err)
	}
	st, err := out.Stat()
	if err == nil {
		switch {
		case st.Size() < r.end:
			err = fmt.Errorf("%s is %d bytes but %d were committed: the output was truncated or replaced; restore it or start with a new state directory", o.OutPath, st.Size(), r.end)
		case st.Size() > r.end:
			o.Logger.Warn("receiver: cutting an uncommitted tail off the output (crash between writes)", "file", o.OutPath, "bytes", st.Size()-r.end)
			if err = out.Truncate(r.end); err == nil {
				err = out.Sync()
			}
		}
	}
	if err != nil {
		out.Close()
		db.Close()
		return nil, fmt.Errorf("cloud: receiver output: %w", err)
	}
	r.out = out
	r.m = receiverMetrics{
		connected:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "obdgw_receiver_connected", Help: "1 while connected."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "obdgw_receiver_reconnects_total", Help: "Connections failed or lost."}),
		received:   prometheus.NewCounter(prometheus.CounterOpts{Name: "obdgw_receiver_messages_total", Help: "Messages received."}),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "obdgw_receiver_records_total",
			Help: "Records handled, by verdict (accepted, duplicate, rejected) and kind."}, []string{"verdict", "kind"}),
		store: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "obdgw_receiver_store_seconds",
			Help: "Time to make a batch durable (JSONL and state fsynced).", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}),
	}
	r.reg.MustRegister(r.m.connected, r.m.reconnects, r.m.received, r.m.handled, r.m.store)
	if err := r.openForward(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close closes the files. Call it after Run returned.
func (r *Receiver) Close() error {
	err := r.out.Close()
	if e := r.db.Close(); err == nil {
		err = e
	}
	return err
}

// Status returns a snapshot.
func (r *Receiver) Status() ReceiverStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.st
	s.Running = r.live
	return s
}

// Handler serves /metrics and /healthz like Uplink.Handler.
func (r *Receiver) Handler() http.Handler {
	return healthMux(r.reg, func() (any, bool) { s := r.Status(); return s, s.Running })
}

// Run connects, subscribes and stores until ctx ends.
func (r *Receiver) Run(ctx context.Context) error {
	r.mu.Lock()
	r.live = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.live, r.st.Connected = false, false
		r.mu.Unlock()
	}()
	bo := backoff{base: r.o.BackoffMin, max: r.o.BackoffMax, rand: r.o.Rand}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.process(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); r.runForward(ctx) }()
	defer wg.Wait()
	for ctx.Err() == nil {
		subscribed, err := r.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if subscribed {
			// A working subscription that ended (a broker restart): come back at the base
			// wait, or every outage adds to the next and gateways' receipts time out.
			bo.reset()
		}
		msg := explain(err, r.conn)
		r.mu.Lock()
		r.st.Connected, r.st.LastError = false, msg
		r.st.Reconnects++
		r.mu.Unlock()
		r.m.connected.Set(0)
		r.m.reconnects.Inc()
		wait := bo.next()
		r.o.Logger.Warn("receiver: not connected", "err", msg, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

// session is one connection: connect, subscribe, then wait until it is lost or ctx ends.
// subscribed says the broker granted the subscription.
func (r *Receiver) session(ctx context.Context) (subscribed bool, err error) {
	lost := make(chan error, 1)
	handler := func(cl mqtt.Client, m mqtt.Message) {
		if len(m.Payload()) > r.o.MaxMessageBytes {
			r.dropOversize(m)
			return
		}
		reply := func(topic string, b []byte) { cl.Publish(topic, 1, false, b) }
		select {
		case r.in <- inbound{msg: m, reply: reply}:
		case <-ctx.Done():
		}
	}
	po, err := r.clientOptions(lost, handler)
	if err != nil {
		return false, err
	}
	c := mqtt.NewClient(po)
	if tok := c.Connect(); !tok.WaitTimeout(r.o.ConnectTimeout+time.Second) || tok.Error() != nil {
		c.Disconnect(0)
		if tok.Error() == nil {
			return false, errors.New("cloud: connect: no answer from the broker")
		}
		err := fmt.Errorf("cloud: connect %s: %w", redact(r.o.Broker), tok.Error())
		// A handshake the broker ended (an expired or refused client certificate) often
		// shows as a reset; the uplink's probe reads the broker's TLS alert instead.
		if tc, _, terr := r.conn.tlsConfig(); terr == nil && tc != nil && looksClosed(err) {
			if perr := probeTLS(r.o.Broker, tc, r.o.ConnectTimeout); perr != nil {
				err = fmt.Errorf("%w (TLS probe: %v)", err, perr)
			}
		}
		return false, err
	}
	defer c.Disconnect(250)
	filter := "$share/" + r.o.Group + "/" + r.o.Filter
	tok := c.Subscribe(filter, 1, handler)
	if !tok.WaitTimeout(r.o.ConnectTimeout) || tok.Error() != nil {
		return false, fmt.Errorf("cloud: subscribe %s: %v", filter, tok.Error())
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		for _, q := range st.Result() {
			if q == 0x80 {
				return false, fmt.Errorf("cloud: subscribe %s: refused by the broker (ACL?)", filter)
			}
		}
	}
	r.mu.Lock()
	r.st.Connected, r.st.LastError = true, ""
	r.mu.Unlock()
	r.m.connected.Set(1)
	r.o.Logger.Info("receiver: subscribed", "filter", filter)
	select {
	case <-ctx.Done():
		return true, nil
	case err := <-lost:
		return true, fmt.Errorf("cloud: connection lost: %w", err)
	}
}

// dropOversize acknowledges and drops a message past MaxMessageBytes before anything parses or
// copies it: it cannot be a valid record, and no id can be read from it without parsing, so
// no receipt goes out. The broker should refuse such messages first (max_packet_size).
func (r *Receiver) dropOversize(m mqtt.Message) {
	n := len(m.Payload())
	m.Ack()
	r.m.received.Inc()
	r.m.handled.WithLabelValues(string(ReceiptRejected), "oversize").Inc()
	r.mu.Lock()
	r.st.Rejected++
	r.mu.Unlock()
	r.warn.Warn(r.o.Logger, r.o.Now(), "receiver: dropped a message larger than the limit", "topic", m.Topic(), "bytes", n, "limit", r.o.MaxMessageBytes)
}

// clientOptions is the shared paho set-up with what only the receiver has: a persistent
// session, so the broker keeps the queue while the receiver restarts; messages acknowledged
// only once they are stored; and handler for every message, also for those the broker
// delivers before Subscribe returns (with a persistent session it may).
func (r *Receiver) clientOptions(lost chan<- error, handler mqtt.MessageHandler) (*mqtt.ClientOptions, error) {
	po, _, err := r.conn.clientOptions(lost)
	if err != nil {
		return nil, err
	}
	po.SetCleanSession(false).SetAutoAckDisabled(true).SetDefaultPublishHandler(handler)
	return po, nil
}

// process takes batches off the queue and makes them durable together (one fsync of each file
// per batch), then answers.
func (r *Receiver) process(ctx context.Context) {
	for {
		var batch []inbound
		select {
		case <-ctx.Done():
			return
		case in := <-r.in:
			batch = append(batch, in)
		}
	more:
		for len(batch) < 512 {
			select {
			case in := <-r.in:
				batch = append(batch, in)
			default:
				break more
			}
		}
		if err := r.handle(batch); err != nil {
			// Disk trouble: nothing is acknowledged, the broker or the gateway sends again.
			r.o.Logger.Error("receiver: store failed; records not acknowledged", "err", err)
			r.mu.Lock()
			r.st.LastError = err.Error()
			r.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

type answer struct {
	in       inbound
	v        Verdict
	receipt  Receipt
	line     []byte   // to append, for a new accepted record
	digest   [32]byte // SHA-256 of the record as stored (compact JSON), for a valid record
	conflict bool     // the id is held with other content
}

// seenValue is what the state keeps per record id: the record's offset in the JSONL file and
// the SHA-256 of its content. Ids stored before digests were kept have the offset alone.
func seenValue(off int64, digest [32]byte) []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 40), uint64(off))
	return append(v, digest[:]...)
}

// conflict turns a would-be duplicate into a rejection: the id is held with other content, so
// acknowledging it as a resend would drop a record nobody stored (a gateway that numbered
// records again from 1 on a new state file; see docs/delivery.md).
func (r *Receiver) conflict(a *answer) {
	a.line, a.conflict = nil, true
	a.receipt.Status = ReceiptRejected
	a.receipt.Reason = "cloud: conflict: record id " + a.v.ID + " is already stored with different content; a gateway must never reuse an id"
	r.o.Logger.Error("receiver: record id reused with different content, rejected", "id", a.v.ID, "kind", a.v.Kind, "topic", a.in.msg.Topic())
}

func (r *Receiver) handle(batch []inbound) error {
	answers := make([]answer, 0, len(batch))
	for _, in := range batch {
		r.m.received.Inc()
		v, err := r.o.Validate(in.msg.Topic(), in.msg.Payload())
		a := answer{in: in, v: v, receipt: Receipt{ID: v.ID}}
		var buf bytes.Buffer
		switch {
		case v.Skip:
		case err != nil:
			a.receipt.Status, a.receipt.Reason = ReceiptRejected, err.Error()
		default:
			if err := json.Compact(&buf, in.msg.Payload()); err != nil {
				a.receipt.Status, a.receipt.Reason = ReceiptRejected, "cloud: payload is not JSON: "+err.Error()
				break
			}
			a.digest = sha256.Sum256(buf.Bytes())
			buf.WriteByte('\n')
			a.receipt.Status, a.line = ReceiptAccepted, buf.Bytes()
		}
		answers = append(answers, a)
	}
	start := time.Now()
	// Duplicates of earlier batches and of this one, in order: look them up before writing
	// anything. A known id with other content is a conflict, not a duplicate.
	if err := r.db.View(func(tx *bolt.Tx) error {
		seen := tx.Bucket(bucketSeen)
		inBatch := map[string][32]byte{}
		for i := range answers {
			a := &answers[i]
			if a.line == nil {
				continue
			}
			var known []byte
			if d, ok := inBatch[a.v.ID]; ok {
				known = d[:]
			} else if v := seen.Get([]byte(a.v.ID)); v != nil {
				known = []byte{} // stored before digests were kept: nothing to compare
				if len(v) == 40 {
					known = v[8:]
				}
			} else {
				inBatch[a.v.ID] = a.digest
				continue
			}
			a.line, a.receipt.Status = nil, ReceiptDuplicate
			if len(known) != 0 && !bytes.Equal(known, a.digest[:]) {
				r.conflict(a)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	var lines bytes.Buffer
	for _, a := range answers {
		lines.Write(a.line)
	}
	if lines.Len() > 0 {
		if _, err := r.out.WriteAt(lines.Bytes(), r.end); err != nil {
			return fmt.Errorf("cloud: write %s: %w", r.o.OutPath, err)
		}
		if err := r.out.Sync(); err != nil {
			return fmt.Errorf("cloud: fsync %s: %w", r.o.OutPath, err)
		}
		newEnd := r.end + int64(lines.Len())
		err := r.db.Update(func(tx *bolt.Tx) error {
			seen := tx.Bucket(bucketSeen)
			off := r.end
			for _, a := range answers {
				if a.line == nil {
					continue
				}
				if err := seen.Put([]byte(a.v.ID), seenValue(off, a.digest)); err != nil {
					return err
				}
				if err := r.queueForward(tx, a.v.ID, a.v.Kind, a.line); err != nil {
					return err
				}
				off += int64(len(a.line))
			}
			var e [8]byte
			binary.BigEndian.PutUint64(e[:], uint64(newEnd))
			return tx.Bucket(bucketMeta).Put(keyEnd, e[:])
		})
		if err != nil {
			return fmt.Errorf("cloud: receiver state: %w", err)
		}
		r.end = newEnd
		r.m.store.Observe(time.Since(start).Seconds())
	}
	now := r.o.Now()
	for _, a := range answers {
		if a.line != nil {
			// One line per stored record: what the province's operators follow and grep.
			r.o.Logger.Info("receiver: stored", "id", a.v.ID, "kind", a.v.Kind)
		}
		if !a.v.Skip {
			r.count(a, now)
			if a.v.ReceiptTopic != "" {
				if b, err := r.o.EncodeReceipt(a.receipt); err != nil {
					r.o.Logger.Error("receiver: encode receipt", "err", err)
				} else {
					a.in.reply(a.v.ReceiptTopic, b)
				}
			} else {
				r.warn.Warn(r.o.Logger, now, "receiver: rejected a message with no gateway to answer", "topic", a.in.msg.Topic(), "reason", a.receipt.Reason)
			}
		}
		a.in.msg.Ack()
	}
	return nil
}

func (r *Receiver) count(a answer, now time.Time) {
	kind := a.v.Kind
	if kind == "" {
		kind = "unknown"
	}
	r.m.handled.WithLabelValues(string(a.receipt.Status), kind).Inc()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch a.receipt.Status {
	case ReceiptAccepted:
		r.st.Accepted++
		r.st.LastRecord = now
	case ReceiptDuplicate:
		r.st.Duplicates++
	case ReceiptRejected:
		r.st.Rejected++
		if a.conflict {
			r.st.Conflicts++
		}
	}
}
