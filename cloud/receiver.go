package cloud

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	bolt "go.etcd.io/bbolt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/obdgw/obdgw/drivers/lograte"
)

// Verdict is what the injected validator says about one message.
type Verdict struct {
	ID           string // record id, "" when unreadable
	Kind         string
	ReceiptTopic string // where the receipt goes; "" when the topic names no gateway
	Skip         bool   // not a record (a status or receipt topic): ignore silently
	// The parts of a valid record's id (docs/wire-format.md): what a store orders by.
	// Gateway is "" when the validator does not read them.
	Gateway     string
	Incarnation string // "" for ids of the form <gateway>-<seq>
	Seq         uint64
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

	StatePath string // the de-duplication bbolt file (without Store)
	OutPath   string // JSONL output, one accepted envelope per line (without Store)
	// Store, when set, keeps the records instead of the JSONL and state files (a database
	// shared by several receivers, cloud/pgstore). The receiver closes it in Close.
	Store Store

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

	// Forward passes stored records on to a platform (forward.go). The queue lives in the
	// file store's state, in the transaction that stores each record: it needs the file store
	// (not Store).
	Forward *Forwarder
}

// Receiver is the reference provincial receiver: validate, de-duplicate, store, answer.
//
// Exactly once in the store: a batch of accepted envelopes is made durable by the Store (the
// JSONL and state files by default, see fileStore; a database with cloud/pgstore), then the
// receipts go out and the messages are acknowledged to the broker. A batch the store could not
// keep is offered again; nothing of it is answered before.
type Receiver struct {
	o     ReceiverOptions
	conn  UplinkOptions // the connection part of o, validated: what clientOptions builds from
	store Store
	reg   *prometheus.Registry
	m     receiverMetrics
	in    chan inbound
	mu    sync.Mutex
	st    ReceiverStatus
	live  bool
	// warn holds back warnings that anyone able to publish could repeat per message.
	warn lograte.Limiter
	// db is the file store's state, which also holds the forward queue; fwdWake and fm
	// belong to the queue (forward.go).
	db      *bolt.DB
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
	if o.Store == nil && o.StatePath == "" {
		return nil, optErr("state", "empty; the receiver needs a state directory")
	}
	if o.Store == nil && o.OutPath == "" {
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

	if o.Forward != nil && o.Store != nil {
		return nil, optErr("forward", "forwarding needs the file store (JSONL and its state), not %s", o.Store)
	}
	store := o.Store
	var fs *fileStore
	if store == nil {
		if fs, err = openFileStore(o.StatePath, o.OutPath, o.Logger); err != nil {
			return nil, err
		}
		store = fs
	}
	r := &Receiver{o: o, conn: uo, store: store, reg: prometheus.NewRegistry(), in: make(chan inbound, 1024)}
	if fs != nil {
		r.db = fs.db
		if o.Forward != nil {
			fs.onStored = func(tx *bolt.Tx, rec StoreRecord) error { return r.queueForward(tx, rec.ID, rec.Kind, rec.Payload) }
		}
	}
	r.m = receiverMetrics{
		connected:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "obdgw_receiver_connected", Help: "1 while connected."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "obdgw_receiver_reconnects_total", Help: "Connections failed or lost."}),
		received:   prometheus.NewCounter(prometheus.CounterOpts{Name: "obdgw_receiver_messages_total", Help: "Messages received."}),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "obdgw_receiver_records_total",
			Help: "Records handled, by verdict (accepted, duplicate, rejected) and kind."}, []string{"verdict", "kind"}),
		store: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "obdgw_receiver_store_seconds",
			Help: "Time to make a batch durable (JSONL and state fsynced, or committed to the database).", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12)}),
	}
	r.reg.MustRegister(r.m.connected, r.m.reconnects, r.m.received, r.m.handled, r.m.store)
	if err := r.openForward(); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close closes the store. Call it after Run returned.
func (r *Receiver) Close() error { return r.store.Close() }

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

// process takes batches off the queue and makes them durable together (one fsync of each file,
// or one database transaction, per batch), then answers.
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
		answers := r.check(batch)
		for {
			err := r.keep(ctx, answers)
			if err == nil {
				break
			}
			// Disk or database trouble: nothing is answered or acknowledged; the same batch
			// is offered again (the store is idempotent) until it is kept or the receiver stops,
			// and then the broker or the gateway sends it again.
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
		r.answer(answers)
	}
}

type answer struct {
	in       inbound
	v        Verdict
	receipt  Receipt
	record   []byte   // the record as stored (compact JSON), for a valid record still to keep
	digest   [32]byte // SHA-256 of record
	conflict bool     // the id is held with other content
	stored   bool     // new, kept by this batch
}

// conflict turns a would-be duplicate into a rejection: the id is held with other content, so
// acknowledging it as a resend would drop a record nobody stored (a gateway that numbered
// records again from 1 on a new state file; see docs/delivery.md).
func (r *Receiver) conflict(a *answer) {
	a.conflict = true
	a.receipt.Status = ReceiptRejected
	a.receipt.Reason = "cloud: conflict: record id " + a.v.ID + " is already stored with different content; a gateway must never reuse an id"
	r.o.Logger.Error("receiver: record id reused with different content, rejected", "id", a.v.ID, "kind", a.v.Kind, "topic", a.in.msg.Topic())
}

// handle checks, keeps and answers one batch.
func (r *Receiver) handle(batch []inbound) error {
	answers := r.check(batch)
	if err := r.keep(context.Background(), answers); err != nil {
		return err
	}
	r.answer(answers)
	return nil
}

// check validates each message of a batch; a valid record is accepted until the store says
// otherwise.
func (r *Receiver) check(batch []inbound) []answer {
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
			a.record = buf.Bytes()
			a.digest = sha256.Sum256(a.record)
			a.receipt.Status = ReceiptAccepted
		}
		answers = append(answers, a)
	}
	return answers
}

// keep hands the batch's valid records to the store and turns its outcomes into receipts.
// On error the answers are unchanged, so the same batch can be kept again.
func (r *Receiver) keep(ctx context.Context, answers []answer) error {
	var recs []StoreRecord
	var idx []int
	for i, a := range answers {
		if a.record != nil {
			recs = append(recs, StoreRecord{ID: a.v.ID, Kind: a.v.Kind, Digest: a.digest, Payload: a.record,
				Gateway: a.v.Gateway, Incarnation: a.v.Incarnation, Seq: a.v.Seq})
			idx = append(idx, i)
		}
	}
	if len(recs) == 0 {
		return nil
	}
	start := time.Now()
	res, err := r.store.Store(ctx, recs)
	if err != nil {
		return err
	}
	if len(res) != len(recs) {
		return fmt.Errorf("cloud: store %s answered %d records of %d", r.store, len(res), len(recs))
	}
	for j, i := range idx {
		a := &answers[i]
		a.record = nil
		switch res[j].Outcome {
		case Stored:
			a.stored = true
		case Duplicate:
			a.receipt.Status = ReceiptDuplicate
		case Conflict:
			r.conflict(a)
		default:
			a.receipt.Status, a.receipt.Reason = ReceiptRejected, res[j].Reason
			r.o.Logger.Error("receiver: record refused by the store", "id", a.v.ID, "kind", a.v.Kind, "reason", res[j].Reason)
		}
	}
	r.m.store.Observe(time.Since(start).Seconds())
	return nil
}

// answer sends the receipts of a kept batch and acknowledges its messages to the broker.
func (r *Receiver) answer(answers []answer) {
	now := r.o.Now()
	for _, a := range answers {
		if a.stored {
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
