package ehrhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/ehrhttp/ehrhttptest"
	"github.com/obdgw/obdgw/gateway/wire"
)

// demoEnvelope is the record of the demo's end-to-end test (gateway/demo/testdata), with its
// normalised dates and time filled in and costlistcode set, stored as the gateway stores it:
// id empty (the outbox numbers it).
func demoEnvelope(t *testing.T, costlist string) []byte {
	t.Helper()
	b, err := os.ReadFile("../demo/testdata/e2e-ehr.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), `"YYYYMMDD"`, `"20260301"`)
	s = strings.ReplaceAll(s, `"TIME"`, `"2026-03-01T07:30:00Z"`)
	s = strings.ReplaceAll(s, `"HS-DEMO-0001"`, `"`+costlist+`"`)
	var e wire.Envelope
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		t.Fatal(err)
	}
	e.ID = ""
	out, err := wire.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func openBox(t *testing.T, path string) *buffer.DB {
	t.Helper()
	db, err := buffer.Open(path, buffer.Options{GatewayID: "demo-gw-01"})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func appendRec(t *testing.T, db *buffer.DB, kind string, payload []byte) buffer.Record {
	t.Helper()
	r, err := db.Append(t.Context(), kind, "obdgw/v1/33/330106000099901/demo-gw-01/"+kind, payload)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// eventually waits for cond (checked every 5 ms, for at most 30 s on a loaded machine).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 6000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

// runDelivery starts a delivery of db through c; the returned stop waits for Run to return.
func runDelivery(t *testing.T, db *buffer.DB, c *Client, o DeliveryOptions) (*Delivery, func()) {
	t.Helper()
	o.Poll = 20 * time.Millisecond
	d, err := NewDelivery(db, c, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return d, stop
}

// The demo's record, delivered by the gateway's outbox through ehr-https: the platform stores
// the national form exactly as the envelope carries it, the record leaves the outbox, and an
// I/M record (which the platform does not take) stays there, named in the status.
func TestDeliveryDemoRecordFromARealOutbox(t *testing.T) {
	p := ehrhttptest.New(t)
	c, _ := newTestClient(t, p, nil)
	db := openBox(t, filepath.Join(t.TempDir(), "obdgw.db"))
	defer db.Close()
	appendRec(t, db, "im", []byte(`{"kind":"im"}`))
	env := demoEnvelope(t, "HS-DEMO-0001")
	appendRec(t, db, wire.KindEHR, env)
	d, stop := runDelivery(t, db, c, DeliveryOptions{})
	eventually(t, "the platform stores the record", func() bool { return p.Record("HS-DEMO-0001") != nil })
	eventually(t, "the record leaves the outbox", func() bool { return db.Stats().DepthByKind[wire.KindEHR] == 0 })
	stop()

	var e struct {
		Payload struct {
			Record json.RawMessage `json:"record"`
		} `json:"payload"`
	}
	json.Unmarshal(env, &e)
	var want, got any
	json.Unmarshal(e.Payload.Record, &want)
	json.Unmarshal(p.Record("HS-DEMO-0001"), &got)
	if !bytes.Equal(mustJSON(want), mustJSON(got)) {
		t.Errorf("platform has\n%s\nwant the envelope's record\n%s", mustJSON(got), mustJSON(want))
	}
	st := d.Status()
	if st.Delivered != 1 || db.Stats().DepthByKind["im"] != 1 {
		t.Errorf("delivered %d, im left %d; want 1 and the im record kept", st.Delivered, db.Stats().DepthByKind["im"])
	}
	if !strings.Contains(st.Waiting, "1 im") || !strings.Contains(st.Waiting, "no MQTT broker") {
		t.Errorf("status waiting %q does not say why the im record stays", st.Waiting)
	}
}

// A record stays in the outbox through every failed try and leaves it only once the platform
// answered success.
func TestDeliveryKeepsTheRecordUntilSuccess(t *testing.T) {
	p := ehrhttptest.New(t)
	c, _ := newTestClient(t, p, func(o *Options) { o.Attempts = 2 })
	db := openBox(t, filepath.Join(t.TempDir(), "obdgw.db"))
	defer db.Close()
	appendRec(t, db, wire.KindEHR, demoEnvelope(t, "HS-DEMO-0002"))
	p.Script(ehrhttptest.ServerError, ehrhttptest.RateLimit, ehrhttptest.ExpireToken, ehrhttptest.ServerError, ehrhttptest.ServerError)
	var mu sync.Mutex
	var depths []int
	c.sleep = func(ctx context.Context, _ time.Duration) error {
		mu.Lock()
		depths = append(depths, db.Stats().Depth)
		mu.Unlock()
		return ctx.Err()
	}
	runDelivery(t, db, c, DeliveryOptions{OthersByMQTT: true})
	eventually(t, "the outbox empties", func() bool { return db.Stats().Depth == 0 })
	if p.Record("HS-DEMO-0002") == nil {
		t.Fatal("outbox empty but the platform has no record")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(depths) < 4 {
		t.Fatalf("waits %d: the faults were not all seen", len(depths))
	}
	for i, n := range depths {
		if n != 1 {
			t.Errorf("wait %d: outbox depth %d before the platform's success, want 1", i, n)
		}
	}
	recs, _ := db.DeadLetters()
	if len(recs) != 0 {
		t.Errorf("dead letters %v", recs)
	}
}

// A refused record goes to the dead letter with the platform's code and text, is not sent
// again, and the next record is delivered.
func TestDeliveryRefusedGoesToTheDeadLetter(t *testing.T) {
	p := ehrhttptest.New(t)
	c, _ := newTestClient(t, p, nil)
	db := openBox(t, filepath.Join(t.TempDir(), "obdgw.db"))
	defer db.Close()
	appendRec(t, db, wire.KindEHR, demoEnvelope(t, "HS-BAD"))
	appendRec(t, db, wire.KindEHR, demoEnvelope(t, "HS-GOOD"))
	appendRec(t, db, wire.KindEHR, []byte(`{"id":"","kind":"ehr","schema":"ehr/9"}`))
	p.Script(ehrhttptest.Refuse)
	d, stop := runDelivery(t, db, c, DeliveryOptions{})
	eventually(t, "the outbox empties", func() bool { return db.Stats().Depth == 0 })
	stop()
	dead, err := db.DeadLetters()
	if err != nil || len(dead) != 2 {
		t.Fatalf("dead letters %v %v, want the refused and the unreadable record", dead, err)
	}
	if !strings.Contains(dead[0].Reason, "code -1") || !strings.Contains(dead[0].Reason, "参数无效") {
		t.Errorf("reason %q does not carry the platform's code and text", dead[0].Reason)
	}
	if !strings.HasPrefix(dead[1].Reason, "unmappable: ") {
		t.Errorf("reason %q", dead[1].Reason)
	}
	if _, adds, _ := p.Counts(); adds != 2 || p.Record("HS-GOOD") == nil || p.Record("HS-BAD") != nil {
		t.Errorf("adds %d: want the refused record sent once and the next one delivered", adds)
	}
	if st := d.Status(); st.Refused != 2 || st.Delivered != 1 {
		t.Errorf("status %+v", st)
	}
}

// The gateway stops while a record is on its way (the platform has not answered): after a
// restart on the same bbolt file every record reaches the platform and the outbox is empty.
func TestDeliveryRestartMidRunLosesNothing(t *testing.T) {
	p := ehrhttptest.New(t)
	path := filepath.Join(t.TempDir(), "obdgw.db")
	db := openBox(t, path)
	for _, cl := range []string{"HS-R1", "HS-R2", "HS-R3"} {
		appendRec(t, db, wire.KindEHR, demoEnvelope(t, cl))
	}
	p.Script(ehrhttptest.OK, ehrhttptest.Slow)
	c, _ := newTestClient(t, p, nil)
	_, stop := runDelivery(t, db, c, DeliveryOptions{})
	<-p.Arrived() // HS-R2 is at the platform, unanswered
	stop()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if p.Record("HS-R1") == nil || p.Record("HS-R2") != nil {
		t.Fatal("the first run should have delivered exactly HS-R1")
	}

	db = openBox(t, path)
	defer db.Close()
	if n := db.Stats().Depth; n != 2 {
		t.Fatalf("after the restart the outbox holds %d records, want HS-R2 and HS-R3", n)
	}
	c2, _ := newTestClient(t, p, nil)
	runDelivery(t, db, c2, DeliveryOptions{})
	eventually(t, "the outbox empties", func() bool { return db.Stats().Depth == 0 })
	for _, cl := range []string{"HS-R1", "HS-R2", "HS-R3"} {
		if p.Record(cl) == nil {
			t.Errorf("%s lost", cl)
		}
	}
}

func TestExceptHidesTheKindsTheOtherTransportTakes(t *testing.T) {
	db := openBox(t, filepath.Join(t.TempDir(), "obdgw.db"))
	defer db.Close()
	var want []uint64
	for i := range 10 {
		kind := wire.KindEHR
		if i%3 == 0 {
			kind = "im"
		}
		r := appendRec(t, db, kind, []byte(`{}`))
		if kind == "im" {
			want = append(want, r.Seq)
		}
	}
	box := Except(db, wire.KindEHR)
	var got []uint64
	var cursor uint64
	for {
		recs, err := box.PeekAfter(cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		if len(recs) > 2 {
			t.Fatalf("%d records for max 2", len(recs))
		}
		for _, r := range recs {
			got = append(got, r.Seq)
			cursor = r.Seq
		}
	}
	if !equalSeq(got, want) {
		t.Errorf("seqs %v, want only the im records %v", got, want)
	}
}

func equalSeq(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestExceptHasItsOwnWakeUp: both transports wait on the outbox's append signal. The eHR
// delivery draining the shared one must not leave the MQTT uplink (behind Except) asleep
// until its poll: one append wakes both.
func TestExceptHasItsOwnWakeUp(t *testing.T) {
	db := openBox(t, filepath.Join(t.TempDir(), "obdgw.db"))
	defer db.Close()
	box := Except(db, wire.KindEHR)
	appendRec(t, db, "im", []byte(`{}`))
	for name, c := range map[string]<-chan struct{}{"the eHR delivery's": db.Appended(), "the MQTT uplink's": box.Appended()} {
		select {
		case <-c:
		default:
			t.Errorf("%s wake-up was not signalled by the append", name)
		}
	}
}
