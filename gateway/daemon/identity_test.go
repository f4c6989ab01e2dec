package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/gateway/bay"
	"github.com/obdgw/obdgw/gateway/config"
)

// TestBayScanOfAnotherCarIsKeptNotAttached: the field report. An order typed with one VIN, a
// real bay scan of a car reporting another: the scan is kept but not attached, the order and
// the bay show both VINs, and only a confirmation with a reason attaches it, which the record
// then says.
func TestBayScanOfAnotherCarIsKeptNotAttached(t *testing.T) {
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	cfg.GatewayID = "gw-test-01"
	cfg.Company = config.Company{Code: "330106000099901", Name: "杭州示例汽车维修有限公司", Province: "33"}
	cfg.Bays = []config.Bay{{Name: "bay1", OBD: "sim://petrol"}}
	cfg.API.Tokens = []config.Token{{Name: "dms", Secret: "dms-token-0123456789abcdef", Role: "manager"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(&cfg, Options{Listener: ln, Dial: simDial(t, "petrol"), Poll: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	defer func() { cancel(); <-done }()

	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, "http://"+ln.Addr().String()+"/api/v1"+path, rd)
		req.Header.Set("Authorization", "Bearer dms-token-0123456789abcdef")
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return resp.StatusCode, m
	}

	waitFor(t, "bay1 ready with a VIN", func() bool { st := d.Bay("bay1").Status(); return st.State == bay.Ready && st.VIN != "" })
	carVIN := d.Bay("bay1").Status().VIN
	const typed = "LJ8ECM2B2R1063348"
	if carVIN == typed {
		t.Fatalf("the simulated car must report another VIN than %s", typed)
	}
	code, o := call("POST", "/workorders", `{"plate":"浙A7K2M9","plate_color":"blue","vin":"`+typed+`","mileage_km":86412,"bay":"bay1","fault_description":"发动机故障灯亮"}`)
	if code != 201 {
		t.Fatalf("create = %d %v", code, o)
	}
	id := o["id"].(string)
	if _, err := d.Bay("bay1").ScanNow(ctx); err != nil {
		t.Fatal(err)
	}
	var conflict map[string]any
	waitFor(t, "the conflict shown on the order", func() bool {
		_, g := call("GET", "/workorders/"+id, "")
		conflict, _ = g["vin_conflict"].(map[string]any)
		return conflict != nil
	})
	if conflict["order_vin"] != typed || conflict["car_vin"] != carVIN || conflict["scan_id"] == "" {
		t.Fatalf("conflict %v", conflict)
	}
	_, g := call("GET", "/workorders/"+id, "")
	if len(g["scans"].([]any)) != 0 || g["vin"] != typed {
		t.Fatalf("the scan of another car was attached: %v", g)
	}
	_, b := call("GET", "/bays/bay1", "")
	if c, _ := b["vin_conflict"].(map[string]any); c == nil || c["car_vin"] != carVIN || c["order_vin"] != typed {
		t.Fatalf("bay status %v", b)
	}
	scanID := conflict["scan_id"].(string)
	code, m := call("POST", "/workorders/"+id+"/scans", `{"scan_id":"`+scanID+`"}`)
	if code != 409 || m["car_vin"] != carVIN || m["order_vin"] != typed {
		t.Fatalf("attach without confirmation = %d %v", code, m)
	}
	code, g = call("POST", "/workorders/"+id+"/scans", `{"scan_id":"`+scanID+`","confirm_vin_mismatch":{"reason":"更换过发动机电脑"}}`)
	if code != 200 || g["vin_conflict"] != nil || len(g["scans"].([]any)) != 1 || g["vin_source"] != "typed_confirmed" || g["vin_read"] != carVIN {
		t.Fatalf("confirmed attach = %d %v", code, g)
	}
	call("POST", "/workorders/"+id+"/items", `{"name":"故障诊断","hours":1}`)
	if code, st := call("POST", "/workorders/"+id+"/settle", `{"costlistcode":"HS-D-1"}`); code != 200 {
		t.Fatalf("settle = %d %v", code, st)
	}
	_, recs := call("GET", "/workorders/"+id+"/records", "")
	meta := recs["items"].([]any)[0].(map[string]any)["meta"].(map[string]any)
	if meta["vin_source"] != "typed_confirmed" || meta["car_vin"] != carVIN || meta["vin_reason"] != "更换过发动机电脑" {
		t.Fatalf("record meta %v", meta)
	}
}
