package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/gateway/api"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/uplink"
	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/hack/brokertest"
)

// TestWasteRecordReachesTheReceiver: an order settled through the API with a battery and used
// oil goes out as an ehr record and a waste record over a real Mosquitto, and the reference
// receiver, running gateway/wire's strict checks, accepts both.
func TestWasteRecordReachesTheReceiver(t *testing.T) {
	br := brokertest.Start(t, brokertest.Config{})
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	cfg.GatewayID = "gw-waste-01"
	cfg.Company = config.Company{Code: "330106000099901", Name: "杭州示例汽车维修有限公司", Province: "33"}
	cfg.Broker.URL, cfg.Broker.CAFile = br.TLSURL(), br.CA.CertFile
	cfg.API.Tokens = []config.Token{{Name: "desk", Secret: "desk-token-0123456789abcdef", Role: "front_desk"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(&cfg, Options{Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()

	dir := t.TempDir()
	out := filepath.Join(dir, "records.jsonl")
	rc, err := cloud.NewReceiver(uplink.ReceiverOptions(cloud.ReceiverOptions{Broker: br.TLSURL(), CAFile: br.CA.CertFile, ClientID: "obdgw-receiver-waste",
		StatePath: filepath.Join(dir, "receiver.db"), OutPath: out}))
	if err != nil {
		t.Fatal(err)
	}
	rdone := make(chan error, 1)
	go func() { rdone <- rc.Run(ctx) }()
	defer func() { cancel(); <-rdone; rc.Close() }()
	// A record published before the receiver's shared subscription exists would wait for the
	// gateway's receipt timeout: settle once it listens.
	waitFor(t, "the receiver to subscribe", func() bool { return rc.Status().Connected })

	call := func(method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+ln.Addr().String()+"/api/v1"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer desk-token-0123456789abcdef")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return m
	}
	o := call("POST", "/workorders", `{"plate":"浙A7K2M9","plate_color":"blue","vin":"LJ8ECM2B2R1063348","mileage_km":86412,"fault_description":"保养，更换蓄电池","owner_name":"李四","owner_phone":"13900139000",
		"items":[{"name":"更换机油机滤","hours":0.5,"waste":{"category":"waste_mineral_oil","quantity":4,"unit":"L"}}],
		"parts":[{"name":"蓄电池","quantity":1,"waste":{"category":"lead_acid_battery","quantity":1,"unit":"piece"}}]}`)
	st := call("POST", "/workorders/"+o["id"].(string)+"/settle", `{"costlistcode":"HS-WASTE-1"}`)
	if st["waste_outbox_seq"] == nil {
		t.Fatalf("no waste record queued: %v", st)
	}

	var got map[string]wire.Envelope
	waitFor(t, "the receiver to accept the ehr and waste records", func() bool {
		got = map[string]wire.Envelope{}
		f, err := os.Open(out)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var env wire.Envelope
			if json.Unmarshal(sc.Bytes(), &env) == nil {
				got[env.Kind] = env
			}
		}
		return got["ehr"].Kind != "" && got["waste"].Kind != ""
	})
	w := got["waste"]
	if w.Schema != wire.SchemaWaste || w.Gateway != "gw-waste-01" {
		t.Fatalf("waste envelope: %+v", w)
	}
	if err := wire.CheckWastePayload(w.Schema, w.Payload); err != nil {
		t.Fatalf("the delivered waste record fails its check: %v", err)
	}
	for _, want := range []string{`"code":"900-214-08"`, `"code":"900-052-31"`, `"costlistcode":"HS-WASTE-1"`} {
		if !strings.Contains(string(w.Payload), want) {
			t.Errorf("waste record lacks %s: %s", want, w.Payload)
		}
	}
	for _, secret := range []string{"李四", "13900139000"} {
		if strings.Contains(string(w.Payload), secret) {
			t.Errorf("owner data %q in the waste record", secret)
		}
	}
	// The ledger holds it as stock.
	v := call("GET", "/waste/ledger", "")
	if !strings.Contains(jsonString(v["stock"]), `"stock":"4"`) {
		t.Fatalf("ledger: %v", v)
	}
}

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestConfigRolesAreTheAPIRoles: gateway/config checks role names without importing the API;
// both lists must stay the same, in the same order.
func TestConfigRolesAreTheAPIRoles(t *testing.T) {
	if len(config.TokenRoles) != len(api.Roles) {
		t.Fatalf("config has %v, the API %v", config.TokenRoles, api.Roles)
	}
	for i, r := range config.TokenRoles {
		if string(api.Roles[i]) != r {
			t.Fatalf("config has %v, the API %v", config.TokenRoles, api.Roles)
		}
	}
	if string(api.DefaultRole) != config.DefaultTokenRole {
		t.Fatalf("default role: config %s, API %s", config.DefaultTokenRole, api.DefaultRole)
	}
}
