package daemon

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/hack/brokertest"
)

// A gateway that updates itself says so in its retained status and on /healthz, and its health
// (for the update gate) follows its uplink: connected to a real broker.
func TestUpdateStatusInRetainedStatusAndHealthz(t *testing.T) {
	br := brokertest.Start(t, brokertest.Config{})
	cfg := testConfig(t)
	cfg.Broker.URL = br.URL()
	cfg.Broker.Delivery = "puback"
	rep := &wire.UpdateStatus{Bad: []string{"v3.0.0"}, LastFailure: "v3.0.0: did not become healthy in 3 starts"}
	d, base, stop := startDaemon(t, &cfg, Options{UpdateStatus: func() *wire.UpdateStatus { return rep }})
	defer stop()

	waitFor(t, "the uplink connected", func() bool { p := d.Health(); return p.Ready && p.Connected })

	got := make(chan []byte, 4)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(br.URL()).SetClientID("status-reader"))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	topic := wire.Topic{Province: cfg.Company.Province, CompanyCode: cfg.Company.Code, Gateway: cfg.GatewayID}.Status()
	c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Payload() })
	var st wire.Status
	select {
	case b := <-got:
		var err error
		if st, err = wire.ParseStatus(b); err != nil {
			t.Fatalf("status %s: %v", b, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no retained status")
	}
	if st.State != wire.Online || st.Update == nil || len(st.Update.Bad) != 1 || st.Update.Bad[0] != "v3.0.0" {
		t.Fatalf("retained status %+v, want online with v3.0.0 bad", st)
	}

	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Ready  bool               `json:"ready"`
		Update *wire.UpdateStatus `json:"update"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || !h.Ready || h.Update == nil || h.Update.LastFailure != rep.LastFailure {
		t.Fatalf("/healthz: %+v %v", h, err)
	}
}
