package uplink_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/gateway/uplink"
	"github.com/obdgw/obdgw/gateway/wire"
)

var gw = wire.Topic{Province: "33", CompanyCode: "330106000099901", Gateway: "gw-test-01"}

// TestOptionsWireTheGateway: what the uplink publishes (a framed record, the status and its
// will) is what the receiver wired here accepts, on the topics of this gateway, and the
// receipt the receiver sends is one the uplink reads.
func TestOptionsWireTheGateway(t *testing.T) {
	box, err := buffer.Open(filepath.Join(t.TempDir(), "outbox.db"), buffer.Options{GatewayID: gw.Gateway})
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	o := uplink.Options(gw, "9.9.9", cloud.UplinkOptions{Broker: "tls://127.0.0.1:8883", Delivery: cloud.DeliveryReceipt})
	if _, err := cloud.NewUplink(box, o); err != nil {
		t.Fatalf("the wired options do not make an uplink in receipt mode: %v", err)
	}
	if o.ClientID != gw.Gateway || o.ReceiptTopic != gw.Receipt() || o.StatusTopic != gw.Status() {
		t.Errorf("client id %q, receipt topic %q, status topic %q", o.ClientID, o.ReceiptTopic, o.StatusTopic)
	}

	// A record as the gateway stores it, framed as the uplink sends it.
	at := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	stored, err := wire.Marshal(wire.Envelope{Kind: "alpha", Schema: "alpha/1", Gateway: gw.Gateway,
		CompanyCode: gw.CompanyCode, CreatedAt: at, Payload: json.RawMessage(`{"n":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := box.Append(t.Context(), "alpha", gw.Record("alpha"), stored)
	if err != nil {
		t.Fatal(err)
	}
	framed, err := o.Frame(rec)
	if err != nil {
		t.Fatal(err)
	}
	rx := uplink.ReceiverOptions(cloud.ReceiverOptions{})
	v, err := rx.Validate(gw.Record("alpha"), framed)
	if err != nil || v.ID != rec.ID || v.Kind != "alpha" || v.ReceiptTopic != gw.Receipt() || v.Skip {
		t.Fatalf("receiver verdict on the framed record: %+v, %v; want id %s answered on %s", v, err, rec.ID, gw.Receipt())
	}
	// The id's parts order the records in a store: gateway, the store's incarnation, seq.
	if id, _ := wire.ParseIDOf(rec.ID, gw.Gateway); v.Gateway != gw.Gateway || v.Incarnation != id.Incarnation || id.Incarnation == "" || v.Seq != 1 {
		t.Errorf("verdict id parts %q %q %d; want %s, its incarnation %q, 1", v.Gateway, v.Incarnation, v.Seq, gw.Gateway, id.Incarnation)
	}
	if rx.Filter != wire.SubscribeAll {
		t.Errorf("receiver filter %q, want %q", rx.Filter, wire.SubscribeAll)
	}
	if f := uplink.ReceiverOptions(cloud.ReceiverOptions{Filter: "obdgw/v1/33/#"}).Filter; f != "obdgw/v1/33/#" {
		t.Errorf("a filter given was replaced by %q", f)
	}

	// The retained status and the last will: skipped by the receiver, readable as status.
	for _, online := range []bool{true, false} {
		b, err := o.Status(online, at)
		if err != nil {
			t.Fatal(err)
		}
		st, err := wire.ParseStatus(b)
		if err != nil || st.Gateway != gw.Gateway || st.Version != "9.9.9" || (st.State == wire.Online) != online {
			t.Errorf("status online=%v: %+v, %v", online, st, err)
		}
		if v, err := rx.Validate(gw.Status(), b); err != nil || !v.Skip {
			t.Errorf("receiver on the status topic: %+v, %v; want skipped", v, err)
		}
	}

	// With the store: the status names its incarnation and says when it is new.
	ws := uplink.WithStore(o, gw, "9.9.9", buffer.StoreInfo{Incarnation: "abcdefgh", New: true})
	b, err := ws.Status(true, at)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := wire.ParseStatus(b); err != nil || st.Incarnation != "abcdefgh" || !st.NewStore || st.State != wire.Online {
		t.Errorf("status with store: %+v, %v (%s)", st, err, b)
	}

	// The receipt goes back and is understood.
	for _, want := range []cloud.Receipt{
		{ID: rec.ID, Status: cloud.ReceiptAccepted},
		{ID: rec.ID, Status: cloud.ReceiptRejected, Reason: "field vin: 16 characters"},
	} {
		b, err := rx.EncodeReceipt(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := o.ParseReceipt(b)
		if err != nil || got != want {
			t.Errorf("receipt round trip: %+v, %v; want %+v", got, err, want)
		}
	}
	if _, err := o.ParseReceipt([]byte("{")); err == nil {
		t.Error("a broken receipt parsed")
	}
}

// TestValidateRejectsWithAnswer: a record that fails the schema is rejected with the reason,
// answered on its gateway's receipt topic; a topic naming no gateway gets no receipt topic.
func TestValidateRejectsWithAnswer(t *testing.T) {
	v, err := uplink.Validate(gw.Record("alpha"), []byte(`{"kind":"alpha"}`))
	if err == nil || v.ReceiptTopic != gw.Receipt() {
		t.Errorf("invalid record: %+v, %v; want an error answered on %s", v, err, gw.Receipt())
	}
	v, err = uplink.Validate("elsewhere/x", []byte(`{}`))
	if err == nil || v.ReceiptTopic != "" || v.Skip {
		t.Errorf("foreign topic: %+v, %v; want rejected with nobody to answer", v, err)
	}
}

func TestWithUpdateReportsInTheStatus(t *testing.T) {
	rep := &wire.UpdateStatus{Bad: []string{"v3.0.0"}, LastFailure: "v3.0.0: did not become healthy in 3 starts"}
	o := uplink.WithUpdate(uplink.Options(gw, "v2.0.0", cloud.UplinkOptions{}), gw, "v2.0.0", func() *wire.UpdateStatus { return rep })
	b, err := o.Status(true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := wire.ParseStatus(b)
	if err != nil || s.Version != "v2.0.0" || s.Update == nil || s.Update.Bad[0] != "v3.0.0" {
		t.Fatalf("status %s: %+v %v", b, s, err)
	}
	rep = nil
	b, _ = o.Status(false, time.Now())
	if s, err := wire.ParseStatus(b); err != nil || s.Update != nil || s.State != wire.Offline {
		t.Fatalf("nothing to report: %s %v", b, err)
	}
}
