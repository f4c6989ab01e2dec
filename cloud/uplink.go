package cloud

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/drivers/lograte"
)

// Outbox is what the uplink needs from the durable outbox; *buffer.DB implements it.
// Contract (buffer's): PeekAfter returns records oldest first; AckMany removes all the given
// records in one durable commit or none of them, skipping records already gone; MarkAttempts
// skips records already gone; DeadLetter of a record already dead is not an error; Appended
// is signalled without blocking after a commit that appended records (a buffered channel, so a
// signal sent between a Peek that found nothing and the wait is not lost). All methods are
// safe for concurrent use.
type Outbox interface {
	PeekAfter(seq uint64, max int) ([]buffer.Record, error)
	AckMany(seqs []uint64) error
	MarkAttempts(seqs []uint64) error
	DeadLetter(seq uint64, reason string) error
	Stats() buffer.Stats
	Appended() <-chan struct{}
}

var _ Outbox = (*buffer.DB)(nil)

// Uplink drains an Outbox to an MQTT broker. Create it with NewUplink, start it with Run.
type Uplink struct {
	o   UplinkOptions
	box Outbox
	m   *uplinkMetrics
	reg *prometheus.Registry

	mu      sync.Mutex
	st      Status
	running bool
	// cautious: the connection is the process's first, or the last one ended in an error. It
	// sends one record and waits for its acknowledgement before opening the whole window:
	//   - a record that kills the connection (an ACL denial makes Mosquitto close it) does not
	//     take the records before it down with it on every attempt;
	//   - after a broker restart (it keeps no sessions) the receiver may not have subscribed
	//     again yet: what is published before it does reaches nobody, and the records after
	//     it would be stored before the lost ones are resent, out of order. The first record's
	//     receipt proves the receiver is there before the window opens.
	cautious atomic.Bool
	// warn holds back warnings that anyone able to publish on the receipt topic could repeat
	// per message.
	warn lograte.Limiter

	// sent holds the records this uplink has published and not yet settled, by id, over all
	// its connections. A receipt is applied only to one of them: a receipt for a record still
	// waiting in the outbox, never published, or for an id the outbox never had, is ignored —
	// whoever sent it, it cannot remove or dead-letter a record the receiver has not seen.
	sentMu sync.Mutex
	sent   map[string]sentRecord
}

// sentRecord is a published record awaiting its receipt.
type sentRecord struct {
	seq  uint64
	kind string
}

// Status is the uplink's state for the console and /healthz.
type Status struct {
	Broker       string    `json:"broker"`
	Delivery     Delivery  `json:"delivery"`
	Connected    bool      `json:"connected"`
	LastError    string    `json:"last_error,omitempty"` // why the last connection failed or ended, with what to check
	LastErrorAt  time.Time `json:"last_error_at,omitzero"`
	LastConnect  time.Time `json:"last_connect,omitzero"`
	Reconnects   uint64    `json:"reconnects"` // connections lost or failed since start
	InFlight     int       `json:"in_flight"`  // published, not yet acknowledged
	Delivered    uint64    `json:"delivered"`  // records that left the outbox as delivered since start
	LastDelivery time.Time `json:"last_delivery,omitzero"`
	Running      bool      `json:"running"`
}

// NewUplink validates the options (errors name the config key) and prepares the uplink's
// metrics in o.Registry (or a registry of its own).
func NewUplink(box Outbox, o UplinkOptions) (*Uplink, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if box == nil {
		return nil, errors.New("cloud: no outbox")
	}
	if _, _, err := o.tlsConfig(); err != nil {
		// Files are read again at every connect; failing early here tells the operator at
		// start-up instead of in a retry loop. An expired certificate is no reason to stop
		// the gateway: records wait in the outbox and the status says why until it is renewed.
		var ce *CertExpiredError
		if !errors.As(err, &ce) {
			return nil, err
		}
		o.Logger.Warn("uplink: " + err.Error())
	}
	u := &Uplink{o: o, box: box, reg: o.Registry, sent: map[string]sentRecord{}}
	u.cautious.Store(true) // the first connection too: see cautious
	if u.reg == nil {
		u.reg = prometheus.NewRegistry()
		u.reg.MustRegister(OutboxCollector(box), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	u.m = newUplinkMetrics(u.reg)
	u.st.Broker, u.st.Delivery = redact(o.Broker), o.Delivery
	return u, nil
}

// Status returns a snapshot.
func (u *Uplink) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.st
	s.Running = u.running
	return s
}

func (u *Uplink) update(f func(s *Status)) {
	u.mu.Lock()
	f(&u.st)
	u.mu.Unlock()
}

func (u *Uplink) setError(err error) {
	msg := explain(err, u.o)
	u.update(func(s *Status) { s.LastError, s.LastErrorAt, s.Connected = msg, u.o.Now(), false })
	u.m.connected.Set(0)
}

// Run connects, drains and reconnects until ctx ends. Records it cannot deliver stay in the
// outbox; the reason is in Status().LastError. It returns nil when ctx ends, or an error only
// when the uplink cannot work at all (options turned invalid).
func (u *Uplink) Run(ctx context.Context) error {
	u.mu.Lock()
	if u.running {
		u.mu.Unlock()
		return errors.New("cloud: uplink already running")
	}
	u.running = true
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.running, u.st.Connected = false, false
		u.mu.Unlock()
		u.m.connected.Set(0)
	}()
	bo := backoff{base: u.o.BackoffMin, max: u.o.BackoffMax, rand: u.o.Rand}
	log := u.o.Logger
	for ctx.Err() == nil {
		c, err := u.connect(ctx)
		if err == nil {
			start := u.o.Now()
			var delivered bool
			delivered, err = u.session(ctx, c)
			if delivered || u.o.Now().Sub(start) > time.Minute {
				bo.reset() // a working connection that died: come back fast
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		u.cautious.Store(true)
		u.setError(err)
		u.update(func(s *Status) { s.Reconnects++ })
		u.m.reconnects.Inc()
		wait := bo.next()
		log.Warn("uplink: not connected", "err", u.Status().LastError, "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return nil
}

// conn is one paho client, used for one connection only.
type conn struct {
	client mqtt.Client
	lost   chan error // connection lost (buffered 1)
}

func (u *Uplink) connect(ctx context.Context) (*conn, error) {
	c := &conn{lost: make(chan error, 1)}
	po, tc, err := u.clientOptions(c.lost)
	if err != nil {
		return nil, err
	}
	c.client = mqtt.NewClient(po)
	tok := c.client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		c.client.Disconnect(0)
		return nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		err = fmt.Errorf("cloud: connect %s: %w", redact(u.o.Broker), err)
		if tc != nil && looksClosed(err) {
			if perr := probeTLS(u.o.Broker, tc, u.o.ConnectTimeout); perr != nil {
				err = fmt.Errorf("%w (TLS probe: %v)", err, perr)
			}
		}
		return nil, err
	}
	return c, nil
}

// clientOptions is the shared paho set-up with what only the uplink has: a clean session (the
// outbox, not the broker, keeps what is unsent) and the retained offline status as last will.
func (u *Uplink) clientOptions(lost chan<- error) (*mqtt.ClientOptions, *tls.Config, error) {
	po, tc, err := u.o.clientOptions(lost)
	if err != nil {
		return nil, nil, err
	}
	po.SetCleanSession(true)
	if u.o.StatusTopic != "" {
		will, err := u.o.Status(false, u.o.Now())
		if err != nil {
			return nil, nil, fmt.Errorf("cloud: status payload: %w", err)
		}
		po.SetBinaryWill(u.o.StatusTopic, will, 1, true)
	}
	return po, tc, nil
}

func looksClosed(err error) bool {
	m := err.Error()
	return strings.Contains(m, "connection reset") || strings.Contains(m, "EOF") || strings.Contains(m, "broken pipe")
}

// probeTLS finds out why a broker closed a TLS connection. With TLS 1.3 the server checks the
// client certificate after the client considers the handshake done, so paho sees only a reset
// while writing CONNECT; the server's alert ("unknown certificate authority", "certificate
// required") is waiting to be read. Only run after a failed connect.
func probeTLS(broker string, tc *tls.Config, timeout time.Duration) error {
	bu, err := url.Parse(broker)
	if err != nil {
		return nil
	}
	d := &net.Dialer{Timeout: timeout}
	conn, err := tls.DialWithDialer(d, "tcp", bu.Host, tc)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(min(timeout, 2*time.Second)))
	_, err = conn.Read(make([]byte, 1))
	if err != nil && strings.Contains(err.Error(), "remote error") {
		return err
	}
	return nil
}

// wait waits for a token, the connection's end or the timeout.
func (s *session) wait(tok mqtt.Token, what string) error {
	t := time.NewTimer(s.u.o.ConnectTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("cloud: %s: %w", what, err)
		}
		return nil
	case <-s.dead:
		return s.cause()
	case <-t.C:
		return fmt.Errorf("cloud: %s: no answer from the broker in %v", what, s.u.o.ConnectTimeout)
	}
}

// session is the life of one connection.
type session struct {
	u    *Uplink
	c    *conn
	dead chan struct{}
	once sync.Once
	err  error
	// pending bounds records published and not yet acknowledged in the delivery mode's sense
	// (PUBACK, or receipt); mqttWin bounds QoS 1 publishes awaiting their PUBACK (InFlight).
	pending chan struct{}
	mqttWin chan struct{}
	wg      sync.WaitGroup

	mu        sync.Mutex
	flights   map[string]*flight
	delivered bool
	late      chan Receipt
	held      int      // window slots held back until the first delivery (cautious start)
	attempts  []uint64 // records sent on this connection and not acknowledged, see unacked

	// acks carries acknowledged records to the acker, which removes them from the outbox in
	// batches; closed once every await has finished. ackerDone is closed when it has.
	acks      chan ackItem
	ackerDone chan struct{}
}

// ackItem is an acknowledged record on its way out of the outbox.
type ackItem struct {
	seq  uint64
	kind string
	sent time.Time
}

// ackBatchMax bounds the records removed in one outbox transaction; also the acker's queue.
// ackInterval is the acker's pace while acknowledgements stream in (see acker).
const (
	ackBatchMax = 1024
	ackInterval = 20 * time.Millisecond
)

type flight struct {
	rec     buffer.Record
	sent    time.Time
	receipt chan Receipt
}

func (s *session) fail(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.dead)
	})
}

func (s *session) cause() error {
	<-s.dead
	return s.err
}

func (s *session) isDead() bool {
	select {
	case <-s.dead:
		return true
	default:
		return false
	}
}

var errStopping = errors.New("cloud: stopping")

// session subscribes, announces, drains until the connection ends, and reports whether it
// delivered anything.
func (u *Uplink) session(ctx context.Context, c *conn) (bool, error) {
	s := &session{u: u, c: c, dead: make(chan struct{}), pending: make(chan struct{}, u.o.pendingCap()), mqttWin: make(chan struct{}, u.o.InFlight),
		flights: map[string]*flight{}, late: make(chan Receipt, 64),
		acks: make(chan ackItem, ackBatchMax), ackerDone: make(chan struct{})}
	go s.acker()
	go func() {
		select {
		case err := <-c.lost:
			s.fail(fmt.Errorf("cloud: connection lost: %w", err))
		case <-ctx.Done():
			s.fail(errStopping)
		case <-s.dead:
		}
	}()
	if n := u.o.pendingCap(); u.cautious.Load() && n > 1 {
		s.held = n - 1
		for range s.held {
			s.pending <- struct{}{}
		}
	}
	err := s.run()
	s.fail(err) // no-op if already dead
	s.wg.Wait()
	close(s.acks)
	<-s.ackerDone
	s.storeAttempts()
	if ctx.Err() != nil && u.o.StatusTopic != "" && c.client.IsConnectionOpen() {
		// Clean shutdown: say offline ourselves (a DISCONNECT suppresses the will).
		if p, err := u.o.Status(false, u.o.Now()); err == nil {
			c.client.Publish(u.o.StatusTopic, 1, true, p).WaitTimeout(2 * time.Second)
		}
	}
	c.client.Disconnect(250)
	u.m.connected.Set(0)
	u.update(func(st *Status) { st.Connected, st.InFlight = false, 0 })
	s.mu.Lock()
	d := s.delivered
	s.mu.Unlock()
	if errors.Is(s.err, errStopping) {
		return d, ctx.Err()
	}
	return d, s.err
}

func (s *session) run() error {
	u := s.u
	if u.o.Delivery == DeliveryReceipt {
		tok := s.c.client.Subscribe(u.o.ReceiptTopic, 1, s.onReceipt)
		if err := s.wait(tok, "subscribe to "+u.o.ReceiptTopic); err != nil {
			return err
		}
		if st, ok := tok.(*mqtt.SubscribeToken); ok {
			for _, q := range st.Result() {
				if q == 0x80 {
					return fmt.Errorf("cloud: subscribe to %s: refused by the broker (check the broker's ACL for this gateway)", u.o.ReceiptTopic)
				}
			}
		}
		s.wg.Add(1)
		go s.lateReceipts()
	}
	if u.o.StatusTopic != "" {
		p, err := u.o.Status(true, u.o.Now())
		if err != nil {
			return fmt.Errorf("cloud: status payload: %w", err)
		}
		if err := s.wait(s.c.client.Publish(u.o.StatusTopic, 1, true, p), "publish status"); err != nil {
			return err
		}
	}
	u.update(func(st *Status) { st.Connected, st.LastConnect = true, u.o.Now() })
	u.m.connected.Set(1)
	u.o.Logger.Info("uplink: connected", "broker", redact(u.o.Broker), "delivery", u.o.Delivery)

	lim := newLimiter(u.o.DrainRate, u.o.DrainBurst, u.o.Now())
	poll := time.NewTicker(5 * time.Second) // belt and braces next to Appended
	defer poll.Stop()
	batch := max(64, 4*u.o.InFlight)
	var cursor uint64 // every connection starts again from the oldest unacked record
	for {
		recs, err := u.box.PeekAfter(cursor, batch)
		if err != nil {
			return fmt.Errorf("cloud: read outbox: %w", err)
		}
		if len(recs) == 0 {
			select {
			case <-u.box.Appended():
			case <-poll.C:
			case <-s.dead:
				return s.cause()
			}
			continue
		}
		for _, r := range recs {
			select {
			case s.pending <- struct{}{}:
			case <-s.dead:
				return s.cause()
			}
			if d := lim.reserve(u.o.Now()); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-s.dead:
					t.Stop()
					<-s.pending
					return s.cause()
				}
			}
			cursor = r.Seq
			payload := r.Payload
			if u.o.Frame != nil {
				if payload, err = u.o.Frame(r); err != nil {
					<-s.pending
					reason := "unframeable: " + err.Error()
					if err := u.box.DeadLetter(r.Seq, reason); err != nil {
						return fmt.Errorf("cloud: dead-letter %s: %w", r.ID, err)
					}
					u.m.deadLettered.WithLabelValues(r.Kind, "unframeable").Inc()
					u.o.Logger.Error("uplink: record cannot be framed; moved to the dead letter", "id", r.ID, "err", err)
					continue
				}
			}
			select {
			case s.mqttWin <- struct{}{}:
			case <-s.dead:
				<-s.pending
				return s.cause()
			}
			s.publish(r, payload)
		}
	}
}

func (s *session) publish(r buffer.Record, payload []byte) {
	u := s.u
	f := &flight{rec: r, sent: u.o.Now()}
	if u.o.Delivery == DeliveryReceipt {
		// Registered before the publish: the receipt can beat the PUBACK.
		f.receipt = make(chan Receipt, 1)
		s.mu.Lock()
		s.flights[r.ID] = f
		s.mu.Unlock()
		u.sentMu.Lock()
		u.sent[r.ID] = sentRecord{seq: r.Seq, kind: r.Kind}
		u.sentMu.Unlock()
	}
	u.m.published.WithLabelValues(r.Kind).Inc()
	u.m.inFlight.Inc()
	u.update(func(st *Status) { st.InFlight++ })
	tok := s.c.client.Publish(r.Topic, 1, false, payload)
	s.wg.Add(1)
	go s.await(f, tok)
}

// await settles one flight: delivered, dead-lettered, or (connection over) left in the outbox
// with one more attempt counted.
func (s *session) await(f *flight, tok mqtt.Token) {
	u := s.u
	// The pending slot is given back as soon as the broker or receiver acknowledged the record,
	// before the outbox Ack commits: acks of many records then share one fsync (the outbox's
	// group commit) instead of the window waiting for the disk.
	released := false
	release := func() {
		if !released {
			released = true
			u.m.inFlight.Dec()
			u.update(func(st *Status) { st.InFlight-- })
			<-s.pending
		}
	}
	defer func() {
		if f.receipt != nil {
			s.mu.Lock()
			delete(s.flights, f.rec.ID)
			s.mu.Unlock()
		}
		release()
		s.wg.Done()
	}()
	select {
	case <-tok.Done():
		<-s.mqttWin
	case <-s.dead:
		<-s.mqttWin
		s.unacked(f)
		return
	}
	if err := tok.Error(); err != nil {
		s.fail(fmt.Errorf("cloud: publish %s: %w", f.rec.ID, err))
		s.unacked(f)
		return
	}
	if s.isDead() {
		// The token finished while its connection was ending: do not trust it.
		s.unacked(f)
		return
	}
	if u.o.Delivery == DeliveryPUBACK {
		s.deliver(f, release)
		return
	}
	t := time.NewTimer(u.o.ReceiptTimeout)
	defer t.Stop()
	select {
	case r := <-f.receipt:
		s.settle(f.rec.Seq, f.rec.ID, f.rec.Kind, r, f.sent, release)
	case <-s.dead:
		s.unacked(f)
	case <-t.C:
		u.m.noReceipt.Inc()
		s.fail(&NoReceiptError{ID: f.rec.ID, After: u.o.ReceiptTimeout})
		s.unacked(f)
	}
}

// NoReceiptError: a record was published (PUBACK received) but no receipt came back in time.
// The receiver may be down, or the broker dropped the message (an ACL denial looks the same).
type NoReceiptError struct {
	ID    string
	After time.Duration
}

func (e *NoReceiptError) Error() string {
	return fmt.Sprintf("cloud: no receipt for %s after %v (is the receiver running? does the broker's ACL allow this gateway's topics?)", e.ID, e.After)
}

// deliver hands an acknowledged record to the acker. The window slot is given back once the
// record is queued, before it leaves the outbox: the acker then removes everything
// acknowledged during its previous commit in one transaction (one fsync) instead of the window
// waiting for the disk. The queue is bounded, so a slow disk still slows the window.
func (s *session) deliver(f *flight, release func()) {
	s.acks <- ackItem{seq: f.rec.Seq, kind: f.rec.Kind, sent: f.sent}
	if release != nil {
		release()
	}
}

// acker removes acknowledged records from the outbox: it takes whatever has queued up, acks it
// in one commit, and repeats, until the session closes acks. A record counts as delivered only
// once its commit returned. A failed commit ends the connection; the records it held stay in
// the outbox and are sent again (the receiver de-duplicates).
func (s *session) acker() {
	defer close(s.ackerDone)
	u := s.u
	batch := make([]ackItem, 0, ackBatchMax)
	seqs := make([]uint64, 0, ackBatchMax)
	var last time.Time // when the previous commit started
	prev := 0          // records in the previous commit
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	closed := false
	for !closed {
		it, ok := <-s.acks
		if !ok {
			return
		}
		batch = append(batch[:0], it)
		// While acknowledgements stream in (the previous commit held several), collect until
		// ackInterval after that commit began: a drain then costs one fsync per ackInterval
		// instead of one per commit the disk can take, and those fsyncs compete with the
		// broker for the same cores. A lone acknowledgement (one record appended while online)
		// commits at once, so it waits for no one.
		var wait <-chan time.Time
		if d := ackInterval - time.Since(last); prev > 1 && d > 0 {
			timer.Reset(d)
			wait = timer.C
		}
	more:
		for len(batch) < ackBatchMax {
			var it ackItem
			var ok bool
			if wait == nil {
				select {
				case it, ok = <-s.acks:
				default:
					break more
				}
			} else {
				select {
				case it, ok = <-s.acks:
				case <-wait:
					wait = nil
					continue
				}
			}
			if !ok {
				closed = true
				break
			}
			batch = append(batch, it)
		}
		timer.Stop() // Go ≥ 1.23 timers: no stale tick to drain after Stop or before Reset
		last, prev = time.Now(), len(batch)
		seqs = seqs[:0]
		for _, it := range batch {
			seqs = append(seqs, it.seq)
		}
		if err := u.box.AckMany(seqs); err != nil {
			s.fail(fmt.Errorf("cloud: ack %s… in the outbox: %w", s.u.o.ClientID+"-"+strconv.FormatUint(seqs[0], 10), err))
			continue
		}
		now := u.o.Now()
		kind, n := "", 0
		for _, it := range batch {
			if it.kind != kind {
				if n > 0 {
					u.m.delivered.WithLabelValues(kind).Add(float64(n))
				}
				kind, n = it.kind, 0
			}
			n++
			u.m.latency.Observe(now.Sub(it.sent).Seconds())
		}
		u.m.delivered.WithLabelValues(kind).Add(float64(n))
		s.opened(true)
		u.update(func(st *Status) {
			st.Delivered += uint64(len(batch))
			st.LastDelivery = now
			st.LastError = ""
		})
	}
}

// settle applies a receipt to the record with sequence seq, a record this uplink published.
func (s *session) settle(seq uint64, id, kind string, r Receipt, sent time.Time, release func()) {
	u := s.u
	switch r.Status {
	case ReceiptAccepted, ReceiptDuplicate, ReceiptRejected:
		u.sentMu.Lock()
		delete(u.sent, id)
		u.sentMu.Unlock()
	}
	switch r.Status {
	case ReceiptAccepted, ReceiptDuplicate:
		s.deliver(&flight{rec: buffer.Record{Seq: seq, ID: id, Kind: kind}, sent: sent}, release)
	case ReceiptRejected:
		reason := r.Reason
		if reason == "" {
			reason = "rejected by the receiver (no reason given)"
		}
		if err := u.box.DeadLetter(seq, reason); err != nil && !errors.Is(err, buffer.ErrNotFound) {
			s.fail(fmt.Errorf("cloud: dead-letter %s: %w", id, err))
			return
		}
		s.opened(false)
		u.m.deadLettered.WithLabelValues(kind, "rejected").Inc()
		u.o.Logger.Warn("uplink: receiver rejected a record; moved to the dead letter", "id", id, "reason", reason)
	}
}

// opened notes a settled record and opens the whole window after a cautious start.
func (s *session) opened(delivered bool) {
	s.mu.Lock()
	if delivered {
		s.delivered = true
	}
	held := s.held
	s.held = 0
	s.mu.Unlock()
	for range held {
		<-s.pending
	}
	s.u.cautious.Store(false)
}

// unacked notes a record sent on this connection and not acknowledged. The attempt counts are
// stored together when the connection ends (storeAttempts), not one commit per record: they are
// a diagnostic for people (Attempts in the console), not part of the delivery guarantee, and a
// dropped connection with a full receipt window would otherwise cost hundreds of fsyncs just
// when the uplink should reconnect. A crash before they are stored loses only the counts.
func (s *session) unacked(f *flight) {
	s.mu.Lock()
	s.attempts = append(s.attempts, f.rec.Seq)
	s.mu.Unlock()
}

func (s *session) storeAttempts() {
	s.mu.Lock()
	seqs := s.attempts
	s.attempts = nil
	s.mu.Unlock()
	if err := s.u.box.MarkAttempts(seqs); err != nil {
		s.u.o.Logger.Warn("uplink: count attempts", "records", len(seqs), "err", err)
	}
}

// onReceipt runs on paho's goroutine: decode and hand over, never block on the disk here.
func (s *session) onReceipt(_ mqtt.Client, m mqtt.Message) {
	r, err := s.u.o.ParseReceipt(m.Payload())
	if err != nil || r.ID == "" {
		s.u.m.badReceipts.Inc()
		s.u.warn.Warn(s.u.o.Logger, s.u.o.Now(), "uplink: unusable receipt", "err", err)
		return
	}
	s.mu.Lock()
	f := s.flights[r.ID]
	s.mu.Unlock()
	if f != nil {
		select {
		case f.receipt <- r:
		default: // a second receipt for the same flight
		}
		return
	}
	select {
	case s.late <- r:
	case <-s.dead:
	}
}

// lateReceipts settles receipts for records this connection has not (yet) sent: sent by an
// earlier connection whose receipt came late. Settling them now spares a resend. A receipt for
// a record this uplink has not published (still waiting in the outbox, settled already, or
// unknown) is ignored: counted, warned about at a limited rate, never acknowledged or
// dead-lettered (docs/delivery.md, "Identity").
func (s *session) lateReceipts() {
	defer s.wg.Done()
	u := s.u
	for {
		select {
		case <-s.dead:
			return
		case r := <-s.late:
			u.sentMu.Lock()
			rec, ok := u.sent[r.ID]
			u.sentMu.Unlock()
			if !ok {
				u.m.badReceipts.Inc()
				u.warn.Warn(u.o.Logger, u.o.Now(), "uplink: receipt for a record not awaiting one; ignored", "id", r.ID, "status", r.Status)
				continue
			}
			s.settle(rec.seq, r.ID, rec.kind, r, u.o.Now(), nil)
		}
	}
}

// redact drops credentials from a broker URL before it is logged or shown.
func redact(broker string) string {
	u, err := url.Parse(broker)
	if err != nil || u.User == nil {
		return broker
	}
	u.User = nil
	return u.String()
}
