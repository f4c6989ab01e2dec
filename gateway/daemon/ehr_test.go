package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/ehrhttp"
	"github.com/obdgw/obdgw/gateway/ehrhttp/ehrhttptest"
	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/gateway/workorder"
	"github.com/obdgw/obdgw/hack/brokertest"
)

// ehrGateway is a gateway configured with uplink.transport ehr-https to p and no broker.
func ehrGateway(t *testing.T, p *ehrhttptest.Platform, stateDir string, logs *bytes.Buffer, edit ...func(*config.Config)) (*Daemon, string, func()) {
	t.Helper()
	cfg := config.Default()
	cfg.StateDir = stateDir
	cfg.GatewayID = "gw-test-01"
	cfg.Company = config.Company{Code: ehrhttptest.Company, Name: "杭州示例汽车维修有限公司", Province: "33"}
	cfg.API.Tokens = []config.Token{{Name: "dms", Secret: "dms-token-0123456789abcdef"}}
	cfg.Uplink = config.Uplink{Transport: config.TransportEHRHTTPS, EHR: config.EHRPlatform{
		URL: p.URL(), CAFile: p.CAFile(t.TempDir()), AppKey: ehrhttptest.Company, AppSecret: ehrhttptest.Password,
		ExpiredCodes: []string{ehrhttptest.ExpiredCode}}}
	for _, f := range edit {
		f(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(&cfg, Options{Listener: ln, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return d, "http://" + ln.Addr().String(), stop
}

func settle(t *testing.T, d *Daemon, costlist string) {
	t.Helper()
	km := int64(86412)
	o, err := d.Store().Create(workorder.NewOrder{Plate: "浙A7K2M9", PlateColor: "blue", VIN: "LJ8ECM2B2R1063348", MileageKm: &km,
		Fault: "更换三元催化转化器", OwnerName: "李四", OwnerPhone: "13900139000",
		Items: []workorder.Item{{Name: "更换三元催化转化器", Hours: "2.5"}},
		Parts: []workorder.Part{{Name: "三元催化转化器总成", Code: "1205100-TW01", Quantity: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Store().Settle(o.ID, workorder.SettleRequest{CostListCode: costlist}); err != nil {
		t.Fatal(err)
	}
}

// A gateway with uplink.transport ehr-https and no broker delivers each settled record
// straight to the platform: the outbox empties only after the platform's success, a token
// that expires mid-run is renewed, a refused record goes to the dead letter with the
// platform's reason, and no owner data or secret reaches the platform's body or the log.
func TestGatewayDeliversToTheEHRPlatform(t *testing.T) {
	p := ehrhttptest.New(t)
	var logs bytes.Buffer
	d, base, stop := ehrGateway(t, p, t.TempDir(), &logs)

	settle(t, d, "HS-E2E-1")
	waitFor(t, "HS-E2E-1 at the platform", func() bool { return p.Record("HS-E2E-1") != nil })
	waitFor(t, "the outbox empty", func() bool { return d.db.Stats().Depth == 0 })

	p.Script(ehrhttptest.ExpireToken)
	settle(t, d, "HS-E2E-2")
	waitFor(t, "HS-E2E-2 at the platform", func() bool { return p.Record("HS-E2E-2") != nil })

	p.Script(ehrhttptest.Refuse)
	settle(t, d, "HS-E2E-3")
	waitFor(t, "HS-E2E-3 dead-lettered", func() bool { return d.db.Stats().DeadLetters == 1 })
	dead, err := d.db.DeadLetters()
	if err != nil || len(dead) != 1 || !strings.Contains(dead[0].Reason, "code -1") || !strings.Contains(dead[0].Reason, "参数无效") {
		t.Fatalf("dead letters %+v %v, want HS-E2E-3 with the platform's code and text", dead, err)
	}
	if logins, _, stored := p.Counts(); logins != 2 || stored != 2 {
		t.Errorf("logins %d stored %d; want a renewal after the expiry and two records", logins, stored)
	}

	req, _ := http.NewRequest("GET", base+"/api/v1/uplink", nil)
	req.Header.Set("Authorization", "Bearer dms-token-0123456789abcdef")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var st ehrhttp.DeliveryStatus
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || st.Transport != "ehr-https" || st.Delivered != 2 || st.Refused != 1 || !st.Running {
		t.Errorf("GET /api/v1/uplink: %s %+v", resp.Status, st)
	}
	stop()

	for _, b := range p.Adds() {
		raw, _ := json.Marshal(b)
		for _, secret := range []string{"李四", "13900139000"} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("owner data %q sent to the platform", secret)
			}
		}
	}
	for _, secret := range append([]string{"李四", "13900139000", ehrhttptest.Password}, p.Tokens()...) {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log carries %q", secret)
		}
	}
	if !strings.Contains(logs.String(), "record delivered") {
		t.Error("no delivery logged: the log check proves nothing")
	}
}

// A gateway stopped while the platform has not answered keeps the record in its bbolt file
// and delivers it after the restart.
func TestGatewayRestartMidDeliveryLosesNothing(t *testing.T) {
	p := ehrhttptest.New(t)
	dir := t.TempDir()
	var logs bytes.Buffer
	p.Script(ehrhttptest.Slow)
	d, _, stop := ehrGateway(t, p, dir, &logs)
	settle(t, d, "HS-RST-1")
	select {
	case <-p.Arrived():
	case <-time.After(time.Minute):
		t.Fatal("the record never reached the platform")
	}
	stop()
	if p.Record("HS-RST-1") != nil {
		t.Fatal("the slow add was stored")
	}
	d, _, _ = ehrGateway(t, p, dir, &logs)
	waitFor(t, "HS-RST-1 at the platform after the restart", func() bool { return p.Record("HS-RST-1") != nil })
	waitFor(t, "the outbox empty", func() bool { return d.db.Stats().Depth == 0 })
}

// With both a broker and ehr-https, each record has one transport: the ehr record goes to
// the eHR platform and never to the broker, the im record to the (real) broker.
func TestGatewaySplitsKindsBetweenPlatformAndBroker(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{})
	p := ehrhttptest.New(t)
	var mu sync.Mutex
	kinds := map[string]int{}
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("test-sub"))
	if tok := sub.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(0)
	if tok := sub.Subscribe("obdgw/v1/+/+/+/+", 1, func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		kinds[m.Topic()[strings.LastIndex(m.Topic(), "/")+1:]]++
		mu.Unlock()
	}); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	var logs bytes.Buffer
	p.Script(ehrhttptest.Slow) // the ehr record stays in the outbox while the broker is drained
	d, _, stop := ehrGateway(t, p, t.TempDir(), &logs, func(c *config.Config) {
		c.Broker.URL, c.Broker.Delivery = b.URL(), "puback"
	})
	settle(t, d, "HS-SPLIT-1")
	<-p.Arrived()
	top := wire.Topic{Province: "33", CompanyCode: ehrhttptest.Company, Gateway: "gw-test-01"}
	if _, err := d.db.Append(context.Background(), "im", top.Record("im"), []byte(`{"id":"","kind":"im"}`)); err != nil {
		t.Fatal(err)
	}
	// The broker keeps one client's QoS 1 order: once the im record (appended after the ehr
	// record) is there, an ehr record published to the broker would be there too.
	waitFor(t, "the im record at the broker", func() bool { mu.Lock(); defer mu.Unlock(); return kinds["im"] > 0 })
	mu.Lock()
	if kinds["ehr"] != 0 {
		t.Errorf("the ehr record went to the broker (%v)", kinds)
	}
	mu.Unlock()
	p.Release()
	waitFor(t, "the outbox empty", func() bool { return d.db.Stats().Depth == 0 })
	stop()
	if p.Record("HS-SPLIT-1") == nil {
		t.Error("the ehr record did not reach the platform")
	}
}
