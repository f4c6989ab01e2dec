package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/gateway/uplink"
	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/hack/brokertest"
	"github.com/obdgw/obdgw/hack/testenv"
)

// The field report, end to end: 20 orders settled through the REST API and delivered over
// mutual TLS through a real Mosquitto to the reference receiver; the state file is damaged;
// the daemon refuses it (exit 7) instead of starting afresh; started with --new-store it
// settles 20 more, whose ids are new: the receiver holds 40 distinct records, none taken for
// a resend. The same for a state file left empty by a power cut.
func TestLostStateFileLosesNoSettlement(t *testing.T) {
	testenv.SkipShort(t, testenv.TierBroker)
	for name, damage := range map[string]func(t *testing.T, path string){
		"damaged pages": func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := 2 * 4096; i < len(b); i += 7 {
				b[i] ^= 0x5a
			}
			os.WriteFile(path, b, 0o600)
		},
		"zero-length": func(t *testing.T, path string) { os.WriteFile(path, nil, 0o600) },
	} {
		t.Run(name, func(t *testing.T) { lostStateFile(t, damage) })
	}
}

func lostStateFile(t *testing.T, damage func(t *testing.T, path string)) {
	const gateway = "gw-field-01"
	b := brokertest.Start(t, brokertest.Config{RequireClientCert: true})
	gw := b.CA.Client(t, gateway)
	rxCert := b.CA.Client(t, "receiver")
	dir := t.TempDir()
	out := filepath.Join(dir, "received.jsonl")
	rx, err := cloud.NewReceiver(uplink.ReceiverOptions(cloud.ReceiverOptions{
		Broker: b.TLSURL(), CAFile: b.CA.CertFile, CertFile: rxCert.CertFile, KeyFile: rxCert.KeyFile,
		ClientID: "receiver-e2e", StatePath: filepath.Join(dir, "receiver.db"), OutPath: out,
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rxDone := make(chan error, 1)
	go func() { rxDone <- rx.Run(ctx) }()
	defer func() { cancel(); <-rxDone; rx.Close() }()

	cfg := filepath.Join(dir, "obdgw.yaml")
	os.WriteFile(filepath.Join(dir, "dms.token"), []byte(testToken+"\n"), 0o600)
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state_dir: %s
gateway_id: %s
company: {code: "330106000099901", name: 测试修理厂, province: "33"}
bays:
  - {name: bay1, obd: "serial:///dev/obdgw-test-no-such-adapter"}
broker: {url: %q, ca_file: %s, cert_file: %s, key_file: %s, drain_rate: 10000}
api:
  listen: "127.0.0.1:0"
  tokens: [{name: dms, file: dms.token}]
`, filepath.Join(dir, "state"), gateway, strings.Replace(b.TLSURL(), "tls://", "mqtts://", 1), b.CA.CertFile, gw.CertFile, gw.KeyFile)), 0o640)

	settle := func(addr string, from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			var order struct{ ID string }
			call(t, addr, "POST", "/workorders", fmt.Sprintf(`{"plate":"浙A%05d","plate_color":"blue","vin":"LJ8ECM2B2R1063348","mileage_km":%d,"fault_description":"异响"}`, i, 10000+i), &order)
			call(t, addr, "POST", "/workorders/"+order.ID+"/items", `{"name":"更换前制动片","hours":1.0}`, nil)
			call(t, addr, "POST", "/workorders/"+order.ID+"/settle", fmt.Sprintf(`{"costlistcode":"HS2026%08d"}`, i), nil)
		}
	}
	// received waits until the receiver has stored n records and returns their ids.
	received := func(n int) []string {
		t.Helper()
		var ids []string
		for deadline := time.Now().Add(60 * time.Second); ; {
			ids = ids[:0]
			if f, err := os.Open(out); err == nil {
				sc := bufio.NewScanner(f)
				sc.Buffer(nil, 1<<20)
				for sc.Scan() {
					var e wire.Envelope
					if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
						t.Fatalf("receiver output: %v", err)
					}
					ids = append(ids, e.ID)
				}
				f.Close()
			}
			if len(ids) >= n || time.Now().After(deadline) {
				return ids
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	logs := &runLog{}
	addr, stop := runUntilReady(t, cfg, runFlags{}, logs)
	settle(addr, 0, 20)
	first := received(20)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(first) != 20 {
		t.Fatalf("the receiver holds %d records of the first 20\n%s", len(first), logs)
	}

	state := filepath.Join(dir, "state", "obdgw.db")
	damage(t, state)
	damaged, _ := os.ReadFile(state)
	var stdout, stderr bytes.Buffer
	if code := runMain([]string{"run", "--config", cfg}, &stdout, &stderr); code != exitNeedsPerson {
		t.Fatalf("start on the damaged file: exit %d, want %d\n%s", code, exitNeedsPerson, stderr.String())
	}
	if !strings.Contains(stderr.String(), "--new-store") || !strings.Contains(stderr.String(), "obdgw salvage") {
		t.Errorf("the refusal does not say what to do:\n%s", stderr.String())
	}
	if b, _ := os.ReadFile(state); !bytes.Equal(b, damaged) {
		t.Fatal("the refused file changed")
	}

	logs = &runLog{}
	addr, stop = runUntilReady(t, cfg, runFlags{newStore: true}, logs)
	settle(addr, 20, 20)
	all := received(40)
	// The platform sees the new store in the gateway's retained status (online: the offline
	// one of the first run may still be the retained message a moment longer).
	st := retainedStatus(t, b.URL(), wire.Topic{Province: "33", CompanyCode: "330106000099901", Gateway: gateway}.Status())
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	incs := map[string]bool{}
	for _, id := range all {
		distinct[id] = true
		r, err := wire.ParseIDOf(id, gateway)
		if err != nil {
			t.Fatalf("record id %q: %v", id, err)
		}
		incs[r.Incarnation] = true
	}
	if len(all) != 40 || len(distinct) != 40 || len(incs) != 2 {
		t.Fatalf("the receiver holds %d records, %d distinct, from %d incarnations; want 40, 40, 2\n%v", len(all), len(distinct), len(incs), all)
	}
	if r, err := wire.ParseIDOf(all[39], gateway); err != nil || st.Incarnation != r.Incarnation || !st.NewStore || st.State != wire.Online {
		t.Errorf("retained status %+v, last record %s", st, all[39])
	}
	if st := rx.Status(); st.Duplicates != 0 || st.Rejected != 0 {
		t.Errorf("receiver status %+v", st)
	}
	if kept, _ := filepath.Glob(state + ".old-*"); len(kept) == 0 {
		t.Error("the damaged file was not kept")
	}
}

// retainedStatus reads the status messages on topic until one says online.
func retainedStatus(t *testing.T, url, topic string) wire.Status {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("status-reader").SetAutoReconnect(false))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(0)
	got := make(chan []byte, 8)
	if tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Payload() }); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	for {
		select {
		case b := <-got:
			st, err := wire.ParseStatus(b)
			if err != nil {
				t.Fatalf("status %s: %v", b, err)
			}
			if st.State == wire.Online {
				return st
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no online status")
		}
	}
}

// call makes one API request with the test token and decodes the answer into out.
func call(t *testing.T, addr, method, path, body string, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+addr+"/api/v1"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}
