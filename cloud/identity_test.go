package cloud_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/hack/brokertest"
	"github.com/obdgw/obdgw/hack/chaos"
)

// identityBroker is the production broker of docs/wire-format.md ("Identity and ACL"): client
// certificates required, the common name is the username and the client id, the ACL keys on
// it. Two receiver identities: the reference receiver and one a test publishes receipts with.
func identityBroker(t *testing.T) *brokertest.Broker {
	return brokertest.Start(t, brokertest.Config{Identity: true, Extra: "log_type debug\n",
		ACL: brokertest.IdentityACL([]string{"receiver:1", "receiver:2"}, "alpha", "beta")})
}

// rawClient connects with the certificate of cn and asks for client id id (which an identity
// broker replaces with cn).
func rawClient(t *testing.T, b *brokertest.Broker, cn, id string) mqtt.Client {
	t.Helper()
	kp := b.CA.Client(t, cn)
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(b.CA.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	cert, err := tls.LoadX509KeyPair(kp.CertFile, kp.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	o := mqtt.NewClientOptions().AddBroker(b.TLSURL()).SetClientID(id).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).SetTLSConfig(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}})
	c := mqtt.NewClient(o)
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatalf("connect as %s (client id %s): %v", cn, id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// publishOnce publishes one QoS 1 message on a fresh connection (an identity broker closes
// the connection after a denied publish) and waits for the PUBACK, which the broker sends
// only after it routed — or denied — the message.
func publishOnce(t *testing.T, b *brokertest.Broker, cn, id, topic string, payload []byte) {
	t.Helper()
	c := rawClient(t, b, cn, id)
	c.Publish(topic, 1, false, payload).WaitTimeout(10 * time.Second)
	c.Disconnect(0)
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var v float64
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
			return v
		}
	}
	return 0
}

// TestForgeriesWithAnotherGatewaysCertificate attempts, with gateway 2's certificate and
// client id gw1, every forgery of issue 18 item 2 against gw1, whose uplink is connected with
// two records in its outbox that it has not published yet: a record on gw1's topic under the
// id gw1's next record will have, an "accepted" receipt for one and a "rejected" receipt for
// the other; and, on gw2's own topic, a record that claims to be gw1's. Then a real receiver
// identity sends receipts for records gw1 never published. None of it may touch gw1's outbox
// or the receiver's store, gw1 must stay connected, and gw1's own records must then be
// accepted (not answered "duplicate") and stored as sent.
func TestForgeriesWithAnotherGatewaysCertificate(t *testing.T) {
	b := identityBroker(t)
	r := startReceiver(t, b, b.TLSURL(), func(o *cloud.ReceiverOptions) {
		kp := b.CA.Client(t, "receiver:1")
		o.CertFile, o.KeyFile = kp.CertFile, kp.KeyFile
	})
	box := openBox(t, t.TempDir(), "gw1")
	appended := appendRecords(t, box, "gw1", 3, "alpha")
	gw1 := b.CA.Client(t, "gw1")
	o := gwOptions(t, b, "gw1")
	o.CertFile, o.KeyFile = gw1.CertFile, gw1.KeyFile
	o.ReceiptTimeout = time.Minute
	// One record now, the next one in 1000 s: gw1-2 and gw1-3 stay in the outbox, never
	// published, while the connection is up.
	o.DrainRate, o.DrainBurst = 0.001, 1
	reg := prometheus.NewRegistry()
	o.Registry = reg
	u := startUplink(t, box, o)
	waitFor(t, 30*time.Second, "gw1-1 delivered", func() bool { return depth(box) == 2 })

	top := chaos.Topic("gw1")
	forged, err := chaos.Envelope("gw1", "alpha", 999, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged, err = wire.Frame(appended[1].ID, forged)
	if err != nil {
		t.Fatal(err)
	}
	publishOnce(t, b, "gw2", "gw1", top.Record("alpha"), forged)
	publishOnce(t, b, "gw2", "gw1", top.Receipt(), []byte(`{"id":"`+appended[1].ID+`","status":"accepted"}`))
	publishOnce(t, b, "gw2", "gw1", top.Receipt(), []byte(`{"id":"`+appended[2].ID+`","status":"rejected","reason":"forged"}`))

	// On its own topic gw2 may publish, but not a record that claims to be gw1's: the
	// receiver holds the envelope to the topic the broker let through.
	publishOnce(t, b, "gw2", "gw2", chaos.Topic("gw2").Record("alpha"), forged)
	waitFor(t, 30*time.Second, "the receiver's verdict on gw2's record", func() bool { st := r.Status(); return st.Rejected+st.Accepted > 1 })

	// A receiver may write receipts, but not for records gw1 has not published: each of
	// these is ignored and counted.
	publishOnce(t, b, "receiver:2", "rx2", top.Receipt(), []byte(`{"id":"`+appended[1].ID+`","status":"accepted"}`))
	publishOnce(t, b, "receiver:2", "rx2", top.Receipt(), []byte(`{"id":"`+appended[2].ID+`","status":"rejected","reason":"never sent"}`))
	publishOnce(t, b, "receiver:2", "rx2", top.Receipt(), []byte(`{"id":"gw1-999","status":"accepted"}`))
	dead := func() int { d, _ := box.DeadLetters(); return len(d) }
	waitFor(t, 30*time.Second, "the receipts handled", func() bool {
		return metricValue(t, reg, "obdgw_uplink_bad_receipts_total") >= 3 || depth(box) != 2 || dead() != 0
	})
	if d := depth(box); d != 2 {
		t.Errorf("outbox depth %d after the forged and never-published receipts, want 2", d)
	}
	if n := dead(); n != 0 {
		t.Errorf("%d records in the dead letter after a receipt for a record never published", n)
	}
	if st := u.Status(); !st.Connected || st.Reconnects != 0 {
		t.Errorf("gw1 status %+v: a forged connect took its connection", st)
	}
	if st := r.Status(); st.Accepted != 1 || st.Duplicates != 0 || st.Rejected != 1 {
		t.Errorf("receiver status %+v after the forgeries, want gw1-1 accepted and gw2's claim to gw1 rejected", st)
	}
	log := b.Log()
	for _, want := range []string{"Denied PUBLISH from gw2 (d0, q1, r0, m1, '" + top.Record("alpha"), "Denied PUBLISH from gw2 (d0, q1, r0, m1, '" + top.Receipt()} {
		if !strings.Contains(log, want) {
			t.Errorf("broker log lacks %q: the forgery was not refused by the broker", want)
		}
	}
	u.stop()

	// The honest path: gw1's own records go through, accepted, with gw1's content.
	o.DrainRate, o.DrainBurst, o.Registry = 0, 0, nil
	u = startUplink(t, box, o)
	waitFor(t, 30*time.Second, "gw1's records delivered", func() bool { return depth(box) == 0 })
	u.stop()
	r.stop()
	checkDelivery(t, appended, r.out)
	if st := r.Status(); st.Accepted != 3 || st.Duplicates != 0 {
		t.Errorf("receiver status %+v, want gw1's 3 records accepted, none duplicate", st)
	}
	out, _ := os.ReadFile(r.out)
	if bytes.Contains(out, []byte(`"n":999`)) {
		t.Errorf("the forged record was stored:\n%s", out)
	}
}
