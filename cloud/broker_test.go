package cloud_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/hack/brokertest"
	"github.com/obdgw/obdgw/hack/chaos"
)

// Records appended while the broker is down stay in the outbox, the status says why, and they
// all arrive in order once it is up.
func TestOfflineThenOnlineDrainsInOrder(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{})
	b.Stop()
	box := openBox(t, t.TempDir(), "gw-off")
	appended := appendRecords(t, box, "gw-off", 300, "alpha", "beta")
	u := startUplink(t, box, gwOptions(t, b, "gw-off"))
	waitFor(t, 20*time.Second, "a connection error in the status", func() bool { return u.Status().LastError != "" })
	st := u.Status()
	if st.Connected || !strings.Contains(st.LastError, "connection refused — is the broker running") {
		t.Errorf("status while the broker is down: %+v", st)
	}
	if d := depth(box); d != 300 {
		t.Fatalf("outbox depth %d while offline, want 300", d)
	}
	b.Start()
	r := startReceiver(t, b, b.URL(), nil)
	waitFor(t, 60*time.Second, "outbox drained", func() bool { return depth(box) == 0 })
	u.stop()
	r.stop()
	checkDelivery(t, appended, r.out)
	if st := u.Status(); st.Delivered != 300 || st.Reconnects == 0 {
		t.Errorf("status after drain: %+v", st)
	}
}

// kill -9 of the broker mid-drain: nothing lost, nothing duplicated after de-duplication,
// order per kind kept (receipt mode; the broker loses what it held in memory).
func TestBrokerKilledMidDrain(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{})
	box := openBox(t, t.TempDir(), "gw-kill")
	appended := appendRecords(t, box, "gw-kill", 1500, "alpha", "beta", "telemetry")
	r := startReceiver(t, b, b.URL(), nil)
	u := startUplink(t, box, gwOptions(t, b, "gw-kill"))
	for _, at := range []int{1300, 800} {
		waitFor(t, 60*time.Second, "part of the drain", func() bool { return depth(box) < at })
		b.Restart()
	}
	waitFor(t, 90*time.Second, "outbox drained", func() bool { return depth(box) == 0 })
	u.stop()
	r.stop()
	checkDelivery(t, appended, r.out)
	if u.Status().Reconnects < 2 {
		t.Errorf("reconnects = %d after two broker kills", u.Status().Reconnects)
	}
}

// The link cut by a proxy mid-drain, puback mode (the broker stays up, so PUBACK is enough).
func TestLinkCutMidDrain(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{})
	p := brokertest.NewProxy(t, b.TLSAddr())
	box := openBox(t, t.TempDir(), "gw-cut")
	appended := appendRecords(t, box, "gw-cut", 1500, "alpha", "beta")
	r := startReceiver(t, b, b.URL(), nil)
	o := gwOptions(t, b, "gw-cut")
	o.Broker = "tls://" + p.Addr
	o.Delivery = cloud.DeliveryPUBACK
	u := startUplink(t, box, o)
	waitFor(t, 60*time.Second, "part of the drain", func() bool { return depth(box) < 1000 })
	p.Cut()
	waitFor(t, 20*time.Second, "the uplink to notice", func() bool { return !u.Status().Connected })
	before := depth(box)
	waitFor(t, 20*time.Second, "a failed reconnect", func() bool { return u.Status().Reconnects >= 2 })
	if d := depth(box); d != before || d == 0 {
		t.Errorf("outbox changed from %d to %d while the link was cut", before, d)
	}
	p.Restore()
	waitFor(t, 60*time.Second, "outbox drained", func() bool { return depth(box) == 0 })
	u.stop()
	// The broker delivers what it acknowledged; give the receiver the tail.
	waitFor(t, 30*time.Second, "receiver to store all", func() bool { return r.Status().Accepted >= uint64(len(appended)) })
	r.stop()
	checkDelivery(t, appended, r.out)
}

// A record the receiver rejects lands in the dead letter with the reason; its neighbours go
// through.
func TestRejectedRecordIsDeadLettered(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{})
	box := openBox(t, t.TempDir(), "gw-rej")
	good1 := appendRecords(t, box, "gw-rej", 3, "alpha")
	// An envelope whose schema names another kind: the gateway cannot catch it (Frame only
	// stamps the id), the receiver's validation does.
	bad := []byte(`{"id":"","kind":"alpha","schema":"beta/1","gateway":"gw-rej","company_code":"330106000099901","created_at":"2026-03-01T08:00:00Z","payload":{}}`)
	rec, err := box.Append(context.Background(), "alpha", chaos.Topic("gw-rej").Record("alpha"), bad)
	if err != nil {
		t.Fatal(err)
	}
	// A stored envelope that already names another id can never be framed: dead-lettered by
	// the gateway itself, without a publish.
	wrongID := bytes.Replace(bad, []byte(`"id":""`), []byte(`"id":"gw-rej-999"`), 1)
	wrongID = bytes.Replace(wrongID, []byte(`beta/1`), []byte(`alpha/1`), 1)
	unframeable, err := box.Append(context.Background(), "alpha", chaos.Topic("gw-rej").Record("alpha"), wrongID)
	if err != nil {
		t.Fatal(err)
	}
	good2 := appendRecords(t, box, "gw-rej", 3, "alpha")
	r := startReceiver(t, b, b.URL(), nil)
	u := startUplink(t, box, gwOptions(t, b, "gw-rej"))
	waitFor(t, 30*time.Second, "outbox settled", func() bool { return depth(box) == 0 })
	u.stop()
	r.stop()
	dead, err := box.DeadLetters()
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 2 || dead[0].ID != rec.ID || !strings.Contains(dead[0].Reason, "field schema") {
		t.Fatalf("dead letter = %+v, want %s with the receiver's reason naming the schema field", dead, rec.ID)
	}
	if dead[1].ID != unframeable.ID || !strings.HasPrefix(dead[1].Reason, "unframeable: ") || !strings.Contains(dead[1].Reason, "gw-rej-999") {
		t.Errorf("dead letter[1] = %s %q, want %s unframeable naming the stored id", dead[1].ID, dead[1].Reason, unframeable.ID)
	}
	rep := checkDelivery(t, append(good1, good2...), r.out)
	if rep.Stored != 6 {
		t.Errorf("receiver stored %d lines, want the 6 good records only", rep.Stored)
	}
	if st := r.Status(); st.Rejected != 1 {
		t.Errorf("receiver status %+v, want 1 rejected", st)
	}
}

// A wrong CA and a wrong client certificate each give a clear error and lose nothing; with the
// right files everything goes through.
func TestWrongCAAndWrongClientCert(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{RequireClientCert: true})
	dir := t.TempDir()
	other := brokertest.NewCA(t, dir, "other-ca")
	good := b.CA.Client(t, "gw-tls")
	stranger := other.Client(t, "gw-tls")
	box := openBox(t, dir, "gw-tls")
	appended := appendRecords(t, box, "gw-tls", 20, "alpha")

	for _, c := range []struct {
		name, want string
		mutate     func(o *cloud.UplinkOptions)
	}{
		{"wrong CA", "tls: certificate signed by unknown authority — check ca_file", func(o *cloud.UplinkOptions) {
			o.CAFile, o.CertFile, o.KeyFile = other.CertFile, good.CertFile, good.KeyFile
		}},
		{"client certificate from another CA", "broker refused our client certificate — check cert_file/key_file", func(o *cloud.UplinkOptions) {
			o.CertFile, o.KeyFile = stranger.CertFile, stranger.KeyFile
		}},
		{"no client certificate", "does it require a client certificate? set cert_file/key_file", func(o *cloud.UplinkOptions) {}},
	} {
		o := gwOptions(t, b, "gw-tls")
		c.mutate(&o)
		u := startUplink(t, box, o)
		waitFor(t, 20*time.Second, c.name+": an error in the status", func() bool { return u.Status().Reconnects >= 2 })
		u.stop()
		st := u.Status()
		t.Logf("%s: %s", c.name, st.LastError)
		if st.Connected || st.Delivered != 0 || !strings.Contains(st.LastError, c.want) || st.LastError == "" {
			t.Errorf("%s: status %+v, want an error containing %q", c.name, st, c.want)
		}
		if d := depth(box); d != 20 {
			t.Fatalf("%s: outbox depth %d, want all 20 kept", c.name, d)
		}
	}
	r := startReceiver(t, b, b.URL(), nil)
	o := gwOptions(t, b, "gw-tls")
	o.CertFile, o.KeyFile = good.CertFile, good.KeyFile
	u := startUplink(t, box, o)
	waitFor(t, 30*time.Second, "drain with the right certificates", func() bool { return depth(box) == 0 })
	u.stop()
	r.stop()
	checkDelivery(t, appended, r.out)
}

// ACL denial, as the real Mosquitto 2 does it to an MQTT 3.1.1 client: a PUBACK for the denied
// QoS 1 publish, then the connection is closed. In receipt mode the record stays in the
// outbox and the status tells the operator to look at the ACL; in puback mode the record is
// lost and nothing on the gateway can tell — which is why production uses receipts.
func TestACLDenial(t *testing.T) {
	acl := "user rx\ntopic readwrite #\n\n" +
		"pattern write obdgw/v1/+/+/%c/alpha\npattern write obdgw/v1/+/+/%c/status\npattern read obdgw/v1/+/+/%c/receipt\n"
	b := brokertest.Start(t, brokertest.Config{Extra: "log_type debug\n", ACL: acl, Users: map[string]string{"rx": "rxpw", "gw-acl": "gwpw", "gw-acl2": "gwpw"}})
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("gwpw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rxpw := filepath.Join(dir, "rxpw")
	os.WriteFile(rxpw, []byte("rxpw"), 0o600)
	r := startReceiver(t, b, b.URL(), func(o *cloud.ReceiverOptions) { o.Username, o.PasswordFile = "rx", rxpw })

	t.Run("receipt", func(t *testing.T) {
		box := openBox(t, t.TempDir(), "gw-acl")
		allowed := appendRecords(t, box, "gw-acl", 2, "alpha")
		denied := appendRecords(t, box, "gw-acl", 1, "beta")
		o := gwOptions(t, b, "gw-acl")
		o.Username, o.PasswordFile = "gw-acl", pw
		u := startUplink(t, box, o)
		waitFor(t, 30*time.Second, "the allowed records through", func() bool { return depth(box) == 1 })
		n := u.Status().Reconnects
		waitFor(t, 30*time.Second, "repeated failures on the denied record", func() bool { return u.Status().Reconnects >= n+3 })
		u.stop()
		st := u.Status()
		t.Logf("status: %+v", st)
		if d := depth(box); d != 1 {
			t.Errorf("outbox depth %d, want the denied record kept", d)
		}
		if !strings.Contains(st.LastError, "ACL") {
			t.Errorf("last error %q does not point at the ACL", st.LastError)
		}
		recs, _ := box.Peek(10)
		if len(recs) != 1 || recs[0].ID != denied[0].ID || recs[0].Attempts == 0 {
			t.Errorf("outbox holds %+v, want %s with attempts counted", recs, denied[0].ID)
		}
		rep, _ := chaos.Check(allowed, r.out)
		if rep.Lost != 0 {
			t.Errorf("allowed records lost: %v", rep)
		}
		if !strings.Contains(b.Log(), "Denied PUBLISH from gw-acl") {
			t.Error("the broker log shows no denial: the test did not test an ACL denial")
		}
	})
	t.Run("puback", func(t *testing.T) {
		box := openBox(t, t.TempDir(), "gw-acl2")
		denied := appendRecords(t, box, "gw-acl2", 1, "beta")
		o := gwOptions(t, b, "gw-acl2")
		o.Username, o.PasswordFile = "gw-acl2", pw
		o.Delivery = cloud.DeliveryPUBACK
		u := startUplink(t, box, o)
		waitFor(t, 30*time.Second, "the denied record to leave the outbox", func() bool { return depth(box) == 0 })
		u.stop()
		// Prove the record went nowhere: a marker published by the receiver's user after it
		// arrives, and the denied record is not before it.
		rep, _ := chaos.Check(denied, r.out)
		if rep.Lost != 1 {
			t.Errorf("puback mode and an ACL denial: %v — expected the documented loss; if Mosquitto now refuses properly, update docs/delivery.md", rep)
		}
	})
}

// The retained status goes online on connect and offline by last will when the gateway
// process dies; a SIGKILLed gateway mid-append and mid-drain loses nothing when it restarts.
func TestGatewaySIGKILLMidAppendAndDrain(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{})
	r := startReceiver(t, b, b.URL(), nil)
	status := make(chan string, 100)
	watcher := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("watcher"))
	if tok := watcher.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer watcher.Disconnect(0)
	watcher.Subscribe(chaos.Topic("gw-child").Status(), 1, func(_ mqtt.Client, m mqtt.Message) {
		var s struct{ State string }
		json.Unmarshal(m.Payload(), &s)
		status <- s.State
	}).Wait()

	dir := t.TempDir()
	cfg := chaos.GatewayConfig{Dir: dir, GatewayID: "gw-child", Broker: b.TLSURL(), CAFile: b.CA.CertFile,
		Delivery: cloud.DeliveryReceipt, Records: 600, Kinds: []string{"alpha", "beta"}, Interval: 2 * time.Millisecond, ReceiptTimeout: 5 * time.Second}
	cj, _ := json.Marshal(cfg)
	run := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "OBDGW_GATEWAY_CHILD="+string(cj))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	awaitState := func(want string) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for {
			select {
			case got := <-status:
				if got == want {
					return
				}
			case <-deadline:
				t.Fatalf("retained status never became %q", want)
			}
		}
	}
	logged := func() int { e, _ := chaos.ReadLog(filepath.Join(dir, "committed.log")); return len(e) }
	rnd := rand.New(rand.NewPCG(1, 2))
	for i, at := range []int{100, 250, 400} { // kills while appending (and draining)
		cmd := run()
		awaitState("online")
		target := at + rnd.IntN(50)
		waitFor(t, 60*time.Second, "appends", func() bool { return logged() >= target })
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		awaitState("offline") // the last will: the process died without a DISCONNECT
		t.Logf("kill %d at %d appended", i+1, logged())
	}
	// Appends complete; kill once more mid-drain, then let it finish.
	cmd := run()
	waitFor(t, 60*time.Second, "all appended", func() bool { return logged() >= cfg.Records })
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	cmd = run()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("final gateway run: %v", err)
	}
	entries, _ := chaos.ReadLog(filepath.Join(dir, "committed.log"))
	waitFor(t, 30*time.Second, "receiver caught up", func() bool { return r.Status().Accepted >= uint64(len(entries)) })
	r.stop()
	rep, err := chaos.Check(entries, r.out)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	if !rep.OK() || rep.Extra > 3 {
		t.Errorf("after SIGKILLs: %v", rep)
	}
}

// /metrics and /healthz on the uplink's own registry.
func TestMetricsAndHealth(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{})
	box := openBox(t, t.TempDir(), "gw-m")
	appendRecords(t, box, "gw-m", 10, "alpha")
	r := startReceiver(t, b, b.URL(), nil)
	u := startUplink(t, box, gwOptions(t, b, "gw-m"))
	waitFor(t, 30*time.Second, "drain", func() bool { return depth(box) == 0 })
	appendRecords(t, box, "gw-m", 1, "beta") // a record may wait: depth 0 or 1 both fine below
	srv := httptest.NewServer(u.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := get("/metrics")
	for _, want := range []string{`obdgw_uplink_delivered_total{kind="alpha"} 10`, "obdgw_outbox_depth ", `obdgw_outbox_appended_total{kind="alpha"} 10`,
		"obdgw_uplink_connected 1", "obdgw_uplink_publish_latency_seconds_count", "obdgw_outbox_oldest_age_seconds", "process_resident_memory_bytes"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q (code %d)", want, code)
		}
	}
	code, body = get("/healthz")
	var st cloud.Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || !st.Connected || st.Delivered < 10 {
		t.Errorf("/healthz = %d %s", code, body)
	}
	u.stop()
	if code, _ := get("/healthz"); code != 503 {
		t.Errorf("/healthz after stop = %d, want 503", code)
	}
	rs := httptest.NewServer(r.Handler())
	defer rs.Close()
	resp, err := http.Get(rs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(rb), `obdgw_receiver_records_total{kind="alpha",verdict="accepted"} 10`) {
		t.Errorf("receiver metrics:\n%s", rb)
	}
}

// Receipt mode with the receiver down: the broker takes every publish (PUBACK), nothing leaves
// the outbox, the status says "no receipt"; once a receiver runs, everything arrives once.
func TestNoReceiptWhileReceiverDown(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{})
	box := openBox(t, t.TempDir(), "gw-nr")
	appended := appendRecords(t, box, "gw-nr", 50, "alpha", "beta")
	o := gwOptions(t, b, "gw-nr")
	o.ReceiptTimeout = 500 * time.Millisecond
	u := startUplink(t, box, o)
	waitFor(t, 30*time.Second, "a receipt timeout in the status", func() bool { return strings.Contains(u.Status().LastError, "no receipt for gw-nr-") })
	if d := depth(box); d != 50 {
		t.Fatalf("outbox depth %d without a receiver, want 50", d)
	}
	srv := httptest.NewServer(u.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "obdgw_uplink_no_receipt_total ") || strings.Contains(string(body), "obdgw_uplink_no_receipt_total 0\n") {
		t.Errorf("no-receipt counter not raised:\n%s", body)
	}
	r := startReceiver(t, b, b.URL(), nil)
	waitFor(t, 60*time.Second, "drain once the receiver runs", func() bool { return depth(box) == 0 })
	u.stop()
	r.stop()
	checkDelivery(t, appended, r.out)
}

// TestReceiverSubscribesAfterTheGateway: the broker has just restarted (it keeps no sessions)
// and the gateway, just started itself, connects before the receiver has subscribed again.
// What the gateway publishes then reaches nobody; once the receiver subscribes, later records
// would reach it before the lost ones are resent. The first connection of a process therefore
// sends one record and opens its window only when that record's receipt came back: every
// record is stored, in order.
func TestReceiverSubscribesAfterTheGateway(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{})
	box := openBox(t, t.TempDir(), "gw-late")
	appended := appendRecords(t, box, "gw-late", 60, "alpha")
	o := gwOptions(t, b, "gw-late")
	o.ReceiptTimeout = time.Second
	o.DrainRate, o.DrainBurst = 40, 1 // the window fills over 1.5 s, while the receiver comes up
	u := startUplink(t, box, o)
	waitFor(t, 20*time.Second, "the gateway connected", func() bool { return u.Status().Connected })
	time.Sleep(300 * time.Millisecond) // scenario set-up: the receiver subscribes in the middle of the first window
	r := startReceiver(t, b, b.URL(), nil)
	waitFor(t, 60*time.Second, "drain once the receiver runs", func() bool { return depth(box) == 0 })
	u.stop()
	r.stop()
	checkDelivery(t, appended, r.out)
}
