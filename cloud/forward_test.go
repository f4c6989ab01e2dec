package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// platformFake answers Send as a platform would: it records what it got, refuses ids it is
// told to, and fails the first tries it is told to fail.
type platformFake struct {
	mu      sync.Mutex
	got     []string // ids, in the order they were taken
	tries   map[string]int
	refuse  map[string]bool
	failFor int // the next failFor sends fail (a 5xx)
	sent    chan string
}

type refusal struct{ msg string }

func (e *refusal) Error() string   { return e.msg }
func (e *refusal) Permanent() bool { return true }

func (p *platformFake) send(ctx context.Context, id string, env []byte) error {
	p.mu.Lock()
	defer func() {
		p.mu.Unlock()
		select {
		case p.sent <- id:
		default:
		}
	}()
	p.tries[id]++
	var e struct{ ID string }
	if err := json.Unmarshal(env, &e); err != nil || e.ID != id {
		return &refusal{fmt.Sprintf("envelope %q does not carry id %s", env, id)}
	}
	if p.failFor > 0 {
		p.failFor--
		return errors.New("ehrhttp: add: HTTP 503")
	}
	if p.refuse[id] {
		return &refusal{"ehrhttp: the platform refused the record: code -1: 参数无效"}
	}
	p.got = append(p.got, id)
	return nil
}

func (p *platformFake) snapshot() ([]string, map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := map[string]int{}
	for k, v := range p.tries {
		t[k] = v
	}
	return append([]string(nil), p.got...), t
}

func forwardReceiver(t *testing.T, dir string, p *platformFake) *Receiver {
	t.Helper()
	r, err := NewReceiver(ReceiverOptions{
		Broker: "tcp://127.0.0.1:1", AllowPlain: true, Filter: "t/#",
		StatePath: filepath.Join(dir, "state.db"), OutPath: filepath.Join(dir, "out.jsonl"),
		Validate: func(topic string, b []byte) (Verdict, error) {
			var e struct{ ID, Kind string }
			err := json.Unmarshal(b, &e)
			return Verdict{ID: e.ID, Kind: e.Kind, ReceiptTopic: topic + "/receipt"}, err
		},
		EncodeReceipt: func(r Receipt) ([]byte, error) { return json.Marshal(r) },
		Forward:       &Forwarder{Kinds: []string{"ehr"}, Send: p.send, BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func feed(t *testing.T, r *Receiver, payloads ...string) {
	t.Helper()
	var acks int
	var in []inbound
	for _, p := range payloads {
		in = append(in, inbound{msg: fakeMsg{"t/gw", []byte(p), &acks}, reply: func(string, []byte) {}})
	}
	if err := r.handle(in); err != nil {
		t.Fatal(err)
	}
}

func startForward(t *testing.T, r *Receiver) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.runForward(ctx); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func waitState(t *testing.T, r *Receiver, id, want string) string {
	t.Helper()
	for range 6000 {
		st, reason, err := r.ForwardState(id)
		if err != nil {
			t.Fatal(err)
		}
		if st == want {
			return reason
		}
		time.Sleep(5 * time.Millisecond)
	}
	st, _, _ := r.ForwardState(id)
	t.Fatalf("%s: forward state %q, want %q", id, st, want)
	return ""
}

// Stored ehr records are forwarded once each, in arrival order, through a platform failure;
// other kinds and duplicates are not; a restart forwards nothing twice.
func TestReceiverForwardsStoredRecordsOnce(t *testing.T) {
	dir := t.TempDir()
	p := &platformFake{tries: map[string]int{}, refuse: map[string]bool{}, failFor: 2, sent: make(chan string, 100)}
	r := forwardReceiver(t, dir, p)
	stop := startForward(t, r)
	feed(t, r, `{"id":"gw-1","kind":"ehr"}`, `{"id":"gw-2","kind":"im"}`, `{"id":"gw-3","kind":"ehr"}`, `{"id":"gw-1","kind":"ehr"}`)
	waitState(t, r, "gw-3", ForwardDone)
	waitState(t, r, "gw-1", ForwardDone)
	if st, _, _ := r.ForwardState("gw-2"); st != "" {
		t.Errorf("im record queued: %q", st)
	}
	stop()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	r = forwardReceiver(t, dir, p) // restart on the same state
	stop = startForward(t, r)
	feed(t, r, `{"id":"gw-3","kind":"ehr"}`, `{"id":"gw-4","kind":"ehr"}`) // gw-3 again: a duplicate
	waitState(t, r, "gw-4", ForwardDone)
	stop()
	r.Close()
	got, tries := p.snapshot()
	if strings.Join(got, " ") != "gw-1 gw-3 gw-4" {
		t.Errorf("platform took %v, want gw-1 gw-3 gw-4 once each, in order", got)
	}
	if tries["gw-1"] != 3 || tries["gw-3"] != 1 || tries["gw-4"] != 1 {
		t.Errorf("tries %v: gw-1 through two failures, every other once", tries)
	}
}

// A record stored while the platform is unreachable, and the receiver stopped before it
// answered, is forwarded after the restart.
func TestReceiverForwardSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	p := &platformFake{tries: map[string]int{}, refuse: map[string]bool{}, failFor: 1 << 30, sent: make(chan string, 100)}
	r := forwardReceiver(t, dir, p)
	stop := startForward(t, r)
	feed(t, r, `{"id":"gw-1","kind":"ehr"}`)
	<-p.sent // tried, and failed
	stop()
	if st, _, _ := r.ForwardState("gw-1"); st != ForwardPending {
		t.Fatalf("state %q after a failed try, want pending", st)
	}
	r.Close()
	p.mu.Lock()
	p.failFor = 0
	p.mu.Unlock()
	r = forwardReceiver(t, dir, p)
	defer r.Close()
	stop = startForward(t, r)
	waitState(t, r, "gw-1", ForwardDone)
	stop()
	if got, _ := p.snapshot(); len(got) != 1 {
		t.Errorf("platform took %v, want gw-1 once", got)
	}
}

// A refused record is recorded with the platform's reason, counted, never sent again, and
// does not hold up the records after it.
func TestReceiverForwardRefusedNotRetried(t *testing.T) {
	dir := t.TempDir()
	p := &platformFake{tries: map[string]int{}, refuse: map[string]bool{"gw-1": true}, sent: make(chan string, 100)}
	r := forwardReceiver(t, dir, p)
	stop := startForward(t, r)
	feed(t, r, `{"id":"gw-1","kind":"ehr"}`, `{"id":"gw-2","kind":"ehr"}`)
	reason := waitState(t, r, "gw-1", ForwardRefused)
	waitState(t, r, "gw-2", ForwardDone)
	stop()
	if !strings.Contains(reason, "code -1") {
		t.Errorf("reason %q does not carry the platform's answer", reason)
	}
	if n := forwardCount(t, r, ForwardRefused); n != 1 {
		t.Errorf("refused metric %v, want 1", n)
	}
	r.Close()
	r = forwardReceiver(t, dir, p)
	defer r.Close()
	stop = startForward(t, r)
	feed(t, r, `{"id":"gw-3","kind":"ehr"}`)
	waitState(t, r, "gw-3", ForwardDone)
	stop()
	if _, tries := p.snapshot(); tries["gw-1"] != 1 {
		t.Errorf("gw-1 tried %d times, want once", tries["gw-1"])
	}
}

// forwardCount reads obdgw_receiver_forward_total{result} from the receiver's registry.
func forwardCount(t *testing.T, r *Receiver, result string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "obdgw_receiver_forward_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
