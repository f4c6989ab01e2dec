package cloud

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// fakeMsg is an incoming message without a broker.
type fakeMsg struct {
	topic   string
	payload []byte
	acked   *int
}

func (m fakeMsg) Duplicate() bool   { return false }
func (m fakeMsg) Qos() byte         { return 1 }
func (m fakeMsg) Retained() bool    { return false }
func (m fakeMsg) Topic() string     { return m.topic }
func (m fakeMsg) MessageID() uint16 { return 1 }
func (m fakeMsg) Payload() []byte   { return m.payload }
func (m fakeMsg) Ack()              { *m.acked++ }

func testReceiver(t *testing.T, dir string) *Receiver {
	t.Helper()
	r, err := NewReceiver(ReceiverOptions{
		Broker: "tcp://127.0.0.1:1", AllowPlain: true, Filter: "t/#",
		StatePath: filepath.Join(dir, "state.db"), OutPath: filepath.Join(dir, "out.jsonl"),
		Validate: func(topic string, p []byte) (Verdict, error) {
			var e struct{ ID, Kind string }
			if err := json.Unmarshal(p, &e); err != nil {
				return Verdict{ReceiptTopic: topic + "/receipt"}, err
			}
			if e.Kind == "" {
				return Verdict{ID: e.ID, ReceiptTopic: topic + "/receipt"}, errors.New("field kind: missing")
			}
			return Verdict{ID: e.ID, Kind: e.Kind, ReceiptTopic: topic + "/receipt"}, nil
		},
		EncodeReceipt: func(r Receipt) ([]byte, error) { return json.Marshal(r) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReceiverDeduplicatesAcrossBatchesAndRestarts(t *testing.T) {
	dir := t.TempDir()
	r := testReceiver(t, dir)
	var acks int
	var receipts []Receipt
	batch := func(payloads ...string) {
		var in []inbound
		for _, p := range payloads {
			in = append(in, inbound{msg: fakeMsg{"t/gw", []byte(p), &acks}, reply: func(_ string, b []byte) {
				var rc Receipt
				json.Unmarshal(b, &rc)
				receipts = append(receipts, rc)
			}})
		}
		if err := r.handle(in); err != nil {
			t.Fatal(err)
		}
	}
	batch(`{"id":"gw-1","kind":"ehr"}`, `{"id":"gw-2", "kind":"ehr"}`, `{"id":"gw-1","kind":"ehr"}`, `{"id":"gw-3"}`, `nonsense`)
	batch(`{"id":"gw-2","kind":"ehr"}`)
	r.Close()
	r = testReceiver(t, dir) // restart: the state remembers
	batch(`{"id":"gw-1","kind":"ehr"}`, `{"id":"gw-4","kind":"im"}`)
	r.Close()
	var got []string
	for _, rc := range receipts {
		got = append(got, rc.ID+":"+string(rc.Status))
	}
	want := "gw-1:accepted gw-2:accepted gw-1:duplicate gw-3:rejected :rejected gw-2:duplicate gw-1:duplicate gw-4:accepted"
	if strings.Join(got, " ") != want {
		t.Errorf("receipts\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	if acks != 8 {
		t.Errorf("%d messages acknowledged, want 8", acks)
	}
	out, _ := os.ReadFile(filepath.Join(dir, "out.jsonl"))
	if string(out) != "{\"id\":\"gw-1\",\"kind\":\"ehr\"}\n{\"id\":\"gw-2\",\"kind\":\"ehr\"}\n{\"id\":\"gw-4\",\"kind\":\"im\"}\n" {
		t.Errorf("output:\n%s", out)
	}
}

// A crash between the JSONL fsync and the state commit leaves an uncommitted tail; the next
// start cuts it off (the broker redelivers those records, which were never acknowledged). An
// output shorter than the state says is refused, never silently continued.
func TestReceiverReconcilesOutputWithState(t *testing.T) {
	dir := t.TempDir()
	r := testReceiver(t, dir)
	var acks int
	r.handle([]inbound{{msg: fakeMsg{"t/gw", []byte(`{"id":"gw-1","kind":"ehr"}`), &acks}, reply: func(string, []byte) {}}})
	r.Close()
	out := filepath.Join(dir, "out.jsonl")
	f, _ := os.OpenFile(out, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"id":"gw-2","kind":"ehr"}` + "\n")
	f.Close()
	r = testReceiver(t, dir)
	r.Close()
	if b, _ := os.ReadFile(out); string(b) != "{\"id\":\"gw-1\",\"kind\":\"ehr\"}\n" {
		t.Errorf("after reconcile:\n%s", b)
	}
	os.WriteFile(out, nil, 0o644)
	_, err := NewReceiver(ReceiverOptions{Broker: "tcp://127.0.0.1:1", AllowPlain: true, Filter: "t/#",
		StatePath: filepath.Join(dir, "state.db"), OutPath: out,
		Validate: func(string, []byte) (Verdict, error) { return Verdict{}, nil }, EncodeReceipt: func(Receipt) ([]byte, error) { return nil, nil }})
	if err == nil || !strings.Contains(err.Error(), "truncated or replaced") {
		t.Errorf("truncated output accepted: %v", err)
	}
}

// TestReceiverLimitsUnanswerableWarnings: messages on a topic that names no gateway cannot be
// answered, only logged; a flood of them makes one warning per interval, not one each.
func TestReceiverLimitsUnanswerableWarnings(t *testing.T) {
	var logs bytes.Buffer
	dir := t.TempDir()
	r, err := NewReceiver(ReceiverOptions{
		Broker: "tcp://127.0.0.1:1", AllowPlain: true, Filter: "t/#",
		StatePath: filepath.Join(dir, "state.db"), OutPath: filepath.Join(dir, "out.jsonl"),
		Validate:      func(string, []byte) (Verdict, error) { return Verdict{}, errors.New("not a record topic") },
		EncodeReceipt: func(r Receipt) ([]byte, error) { return json.Marshal(r) },
		Logger:        slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var acks int
	var in []inbound
	for range 200 {
		in = append(in, inbound{msg: fakeMsg{"junk", []byte("x"), &acks}, reply: func(string, []byte) { t.Error("answered a message with no gateway") }})
	}
	if err := r.handle(in); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "no gateway to answer"); n != 1 {
		t.Errorf("%d warnings for 200 unanswerable messages, want 1:\n%s", n, logs.String())
	}
	if acks != 200 || r.Status().Rejected != 200 {
		t.Errorf("acked %d, rejected %d; want 200 each", acks, r.Status().Rejected)
	}
}

// An id the receiver holds, arriving with other content, is not a resend: acknowledging it as
// a duplicate would drop a record nobody stored. It is rejected as a conflict and logged at
// ERROR with the id, in the same batch, in a later one and after a restart; the same content
// again stays a duplicate.
func TestReceiverRejectsReusedIDWithOtherContent(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	open := func() *Receiver {
		r := testReceiver(t, dir)
		r.o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		return r
	}
	r := open()
	var acks int
	var receipts []Receipt
	batch := func(payloads ...string) {
		var in []inbound
		for _, p := range payloads {
			in = append(in, inbound{msg: fakeMsg{"t/gw", []byte(p), &acks}, reply: func(_ string, b []byte) {
				var rc Receipt
				json.Unmarshal(b, &rc)
				receipts = append(receipts, rc)
			}})
		}
		if err := r.handle(in); err != nil {
			t.Fatal(err)
		}
	}
	batch(`{"id":"gw-1","kind":"ehr","n":1}`, `{"id":"gw-1","kind":"ehr","n":2}`, `{"id":"gw-1", "kind":"ehr", "n":1}`)
	batch(`{"id":"gw-1","kind":"ehr","n":3}`)
	r.Close()
	r = open()
	batch(`{"id":"gw-1","kind":"ehr","n":4}`, `{"id":"gw-1","kind":"ehr","n":1}`)
	st := r.Status()
	r.Close()
	var got []string
	for _, rc := range receipts {
		got = append(got, rc.ID+":"+string(rc.Status))
		if rc.Status == ReceiptRejected && !strings.Contains(rc.Reason, "conflict") {
			t.Errorf("rejection without the conflict: %q", rc.Reason)
		}
	}
	want := "gw-1:accepted gw-1:rejected gw-1:duplicate gw-1:rejected gw-1:rejected gw-1:duplicate"
	if strings.Join(got, " ") != want {
		t.Errorf("receipts\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	if st.Conflicts != 1 || st.Rejected != 1 { // counters are per run: the second run saw one
		t.Errorf("status %+v", st)
	}
	if n := strings.Count(logs.String(), "level=ERROR msg=\"receiver: record id reused with different content, rejected\" id=gw-1"); n != 3 {
		t.Errorf("%d conflict errors logged, want 3:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "level=INFO msg=\"receiver: stored\" id=gw-1 kind=ehr"); n != 1 {
		t.Errorf("%d lines say the record was stored, want the one line of the one stored:\n%s", n, logs.String())
	}
	out, _ := os.ReadFile(filepath.Join(dir, "out.jsonl"))
	if string(out) != `{"id":"gw-1","kind":"ehr","n":1}`+"\n" {
		t.Errorf("output:\n%s", out)
	}
}

// Ids stored before the receiver kept digests have no content to compare: they stay
// duplicates.
func TestReceiverOldSeenEntriesStayDuplicates(t *testing.T) {
	dir := t.TempDir()
	r := testReceiver(t, dir)
	var acks int
	r.handle([]inbound{{msg: fakeMsg{"t/gw", []byte(`{"id":"gw-1","kind":"ehr"}`), &acks}, reply: func(string, []byte) {}}})
	r.store.(*fileStore).db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSeen).Put([]byte("gw-1"), make([]byte, 8)) })
	var rc Receipt
	r.handle([]inbound{{msg: fakeMsg{"t/gw", []byte(`{"id":"gw-1","kind":"ehr","other":true}`), &acks}, reply: func(_ string, b []byte) { json.Unmarshal(b, &rc) }}})
	r.Close()
	if rc.Status != ReceiptDuplicate {
		t.Errorf("receipt %+v", rc)
	}
}
