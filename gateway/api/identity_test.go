package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/obd"
)

// reportJSON is an obd.Report as the DMS sends it: a car with vin, stored and pending codes.
func reportJSON(vin string) string {
	return `{"time":"2024-03-11T03:00:00Z","vin":"` + vin + `","vin_valid":true,"mil":true,"dtcs":{` +
		`"stored":[{"code":"P0420","ecu":"7E8","service":"03","description":"催化器效率低于阈值(第1排)"}],` +
		`"pending":[{"code":"P0171","ecu":"7E8","service":"07","description":"系统过稀(第1排)"}],"permanent":[]}}`
}

// The field report: an order typed with one VIN, the car in the bay reports another. The
// scan is refused with both VINs until a person confirms with a reason; the record then says
// which VIN came from where.
func TestVINMismatchIsRefusedUntilConfirmed(t *testing.T) {
	f := newFixture(t, false)
	o := f.mustDo(201, "POST", "/workorders", `{"plate":"浙A7K2M9","plate_color":"blue","vin":"LK6ADCE15PB405127","mileage_km":86412,"fault_description":"发动机故障灯亮"}`)
	id := o["id"].(string)
	path := "/workorders/" + id + "/scans"

	code, m := f.do("POST", path, dmsToken, `{"bay":"bay1","report":`+reportJSON(carVIN)+`}`)
	if code != 409 || m["order_vin"] != "LK6ADCE15PB405127" || m["car_vin"] != carVIN || m["field"] != "vin" || m["code"] != "vin_mismatch" {
		t.Fatalf("mismatching scan = %d %v", code, m)
	}
	if msg, _ := m["error"].(string); !strings.Contains(msg, "confirm_vin_mismatch") || !strings.Contains(msg, "correct the order's VIN") {
		t.Fatalf("the message must say what to do: %q", msg)
	}
	if g := f.mustDo(200, "GET", "/workorders/"+id, ""); len(g["scans"].([]any)) != 0 || g["vin"] != "LK6ADCE15PB405127" {
		t.Fatalf("refused scan attached: %v", g)
	}
	if all := f.mustDo(200, "GET", "/scans", ""); len(all["items"].([]any)) != 0 {
		t.Fatalf("a refused report is not stored: %v", all)
	}
	// A confirmation needs a reason.
	code, m = f.do("POST", path, dmsToken, `{"bay":"bay1","report":`+reportJSON(carVIN)+`,"confirm_vin_mismatch":{"reason":""}}`)
	if code != 400 || m["field"] != "confirm_vin_mismatch.reason" {
		t.Fatalf("confirmation without a reason = %d %v", code, m)
	}
	o = f.mustDo(200, "POST", path, `{"bay":"bay1","report":`+reportJSON(carVIN)+`,"confirm_vin_mismatch":{"reason":"发动机电脑更换过，读出的是旧车架号"}}`)
	if o["vin"] != "LK6ADCE15PB405127" || o["vin_source"] != "typed_confirmed" || o["vin_read"] != carVIN || o["vin_reason"] != "发动机电脑更换过，读出的是旧车架号" {
		t.Fatalf("confirmed: %v", o)
	}
	if ws := fmt.Sprint(o["warnings"]); !strings.Contains(ws, "vin_mismatch") {
		t.Fatalf("the order must keep warning about the mismatch: %s", ws)
	}
	f.mustDo(200, "POST", "/workorders/"+id+"/items", `{"name":"故障诊断","hours":1}`)
	st := f.mustDo(200, "POST", "/workorders/"+id+"/settle", `{"costlistcode":"HS-MM-1","settle_date":"20240313"}`)
	if ws := fmt.Sprint(st["warnings"]); !strings.Contains(ws, "vin_mismatch") {
		t.Fatalf("settlement warnings %s", ws)
	}
	recs := f.mustDo(200, "GET", "/workorders/"+id+"/records", "")
	meta := recs["items"].([]any)[0].(map[string]any)["meta"].(map[string]any)
	if meta["vin_source"] != "typed_confirmed" || meta["car_vin"] != carVIN || meta["vin_reason"] != "发动机电脑更换过，读出的是旧车架号" {
		t.Fatalf("record meta %v", meta)
	}

	// A stored scan (an ambiguous or conflicting one) is refused the same way and stays
	// stored; the 409 names it.
	o2 := f.mustDo(201, "POST", "/workorders", `{"plate":"浙A12345","plate_color":"blue","vin":"LK6ADCE15PB405127"}`)
	o3 := f.mustDo(201, "POST", "/workorders", `{"plate":"浙A12346","plate_color":"blue"}`)
	o3 = f.mustDo(200, "POST", "/workorders/"+o3["id"].(string)+"/scans", `{"bay":"bay1","report":`+reportJSON("LSVNV2187E2100001")+`}`)
	// An order created without a VIN takes the car's, and says where it came from.
	if o3["vin"] != "LSVNV2187E2100001" || o3["vin_source"] != "obd" || o3["vin_read"] != "LSVNV2187E2100001" {
		t.Fatalf("VIN from the car: %v", o3)
	}
	var rep obd.Report
	if err := json.Unmarshal([]byte(reportJSON("LGBH52E08EY000001")), &rep); err != nil {
		t.Fatal(err)
	}
	res, err := f.store.AddScan("bay9", "", rep) // no order on that bay: kept unattached
	if err != nil || res.Order != nil {
		t.Fatalf("unattached scan: %+v, %v", res, err)
	}
	code, m = f.do("POST", "/workorders/"+o2["id"].(string)+"/scans", dmsToken, `{"scan_id":"`+res.ScanID+`"}`)
	if code != 409 || m["car_vin"] != "LGBH52E08EY000001" || m["order_vin"] != "LK6ADCE15PB405127" || m["scan_id"] != res.ScanID {
		t.Fatalf("stored scan of another car = %d %v", code, m)
	}
	if sc := f.mustDo(200, "GET", "/scans/"+res.ScanID, ""); sc["order"] != nil {
		t.Fatalf("a refused stored scan stays stored and unattached: %v", sc)
	}
	// Typing a VIN over the one the car reported is the same decision.
	code, m = f.do("PATCH", "/workorders/"+o3["id"].(string), dmsToken, `{"vin":"LK6ADCE15PB405127"}`)
	if code != 409 || m["car_vin"] != "LSVNV2187E2100001" || m["order_vin"] != "LK6ADCE15PB405127" {
		t.Fatalf("VIN typed over the car's = %d %v", code, m)
	}
	if strings.Contains(f.logs.String(), ownerPhone) {
		t.Fatal("owner data in the log")
	}
}

// A wrong check digit is said at once, when the order is opened; a Chinese VIN (L…) with a
// wrong check digit is refused unless confirmed.
func TestVINCheckDigitAtCreation(t *testing.T) {
	f := newFixture(t, false)
	code, m := f.do("POST", "/workorders", dmsToken, `{"plate":"浙A7K2M9","plate_color":"blue","vin":"LK6ADCE16PB405127"}`)
	if code != 422 || m["field"] != "vin" || m["code"] != "check_digit" || m["expected_check_digit"] != "5" {
		t.Fatalf("Chinese VIN with a wrong check digit = %d %v", code, m)
	}
	if msg, _ := m["error"].(string); !strings.Contains(msg, "5 is expected") || !strings.Contains(msg, "confirm_vin_check_digit") {
		t.Fatalf("message %q", msg)
	}
	if list := f.mustDo(200, "GET", "/workorders", ""); len(list["items"].([]any)) != 0 {
		t.Fatal("a refused order was stored")
	}
	code, m = f.do("POST", "/workorders", dmsToken, `{"plate":"浙A7K2M9","plate_color":"blue","vin":"LK6ADCE16PB405127","confirm_vin_check_digit":{}}`)
	if code != 400 || m["field"] != "confirm_vin_check_digit.reason" {
		t.Fatalf("confirmation without a reason = %d %v", code, m)
	}
	o := f.mustDo(201, "POST", "/workorders", `{"plate":"浙A7K2M9","plate_color":"blue","vin":"LK6ADCE16PB405127","confirm_vin_check_digit":{"reason":"与行驶证核对无误"}}`)
	ws, _ := o["warnings"].([]any)
	if len(ws) != 1 || ws[0].(map[string]any)["code"] != "check_digit" || o["vin_check_digit_reason"] != "与行驶证核对无误" {
		t.Fatalf("confirmed order %v", o)
	}
	// A VIN from elsewhere (some markets ignore the check digit): created, with the warning.
	o = f.mustDo(201, "POST", "/workorders", `{"plate":"浙A7K2M9","plate_color":"blue","vin":"1M8GDM9A1KP042788"}`)
	if ws, _ := o["warnings"].([]any); len(ws) != 1 || !strings.Contains(fmt.Sprint(ws[0]), "X was expected") {
		t.Fatalf("foreign VIN warnings %v", o["warnings"])
	}
	// Fixed by a PATCH: the warning goes.
	o = f.mustDo(200, "PATCH", "/workorders/"+o["id"].(string), `{"vin":"1M8GDM9AXKP042788"}`)
	if ws, _ := o["warnings"].([]any); len(ws) != 0 {
		t.Fatalf("warnings after the fix %v", o["warnings"])
	}
	// A PATCH to a wrong Chinese VIN is refused like a new order.
	if code, m := f.do("PATCH", "/workorders/"+o["id"].(string), dmsToken, `{"vin":"LK6ADCE16PB405127"}`); code != 422 || m["expected_check_digit"] != "5" {
		t.Fatalf("PATCH = %d %v", code, m)
	}
}

func TestPlatesAreCheckedAndNormalised(t *testing.T) {
	f := newFixture(t, false)
	code, m := f.do("POST", "/workorders", dmsToken, `{"plate":"hello","plate_color":"blue"}`)
	if code != 422 || m["field"] != "plate" || m["code"] != "plate_format" || !strings.Contains(m["error"].(string), "京A12345, 京AD12345") {
		t.Fatalf("plate hello = %d %v", code, m)
	}
	for in, want := range map[string]string{"京A·D12345": "京AD12345", "粤z 1234港": "粤Z1234港", "浙a.7k2m9": "浙A7K2M9", "使014578": "使014578"} {
		o := f.mustDo(201, "POST", "/workorders", `{"plate":"`+in+`","plate_color":"green"}`)
		if o["plate"] != want {
			t.Errorf("plate %q stored as %v, want %q", in, o["plate"], want)
		}
	}
	o := f.mustDo(201, "POST", "/workorders", `{"plate":"京A·D12345","plate_color":"green","vin":"`+carVIN+`","mileage_km":100,"fault_description":"异响"}`)
	id := o["id"].(string)
	if code, m := f.do("PATCH", "/workorders/"+id, dmsToken, `{"plate":"浙A1O345"}`); code != 422 || !strings.Contains(m["error"].(string), "I and O") {
		t.Fatalf("PATCH plate with O = %d %v", code, m)
	}
	f.mustDo(200, "POST", "/workorders/"+id+"/items", `{"name":"检查","hours":0.5}`)
	f.mustDo(200, "POST", "/workorders/"+id+"/settle", `{"costlistcode":"HS-P-1","settle_date":"20240313"}`)
	recs := f.mustDo(200, "GET", "/outbox/records", "")
	b, _ := json.Marshal(recs)
	if !strings.Contains(string(b), `"vehicleplatenumber":"京AD12345"`) {
		t.Fatalf("published plate: %s", b)
	}
	// Found by any way of writing it.
	if l := f.mustDo(200, "GET", "/workorders?plate=%E4%BA%AC%61%C2%B7%64%31%32%33%34%35", ""); len(l["items"].([]any)) != 2 {
		t.Fatalf("list by plate %v", l)
	}
}

func TestCostListCodeIgnoresCase(t *testing.T) {
	f := newFixture(t, false)
	for i, c := range []string{"HS2024031300187", "hs2024031300187"} {
		o := f.mustDo(201, "POST", "/workorders", `{"plate":"浙A7K2M9","plate_color":"blue","vin":"`+carVIN+`","mileage_km":100,"fault_description":"更换机油机滤保养"}`)
		id := o["id"].(string)
		f.mustDo(200, "POST", "/workorders/"+id+"/items", `{"name":"保养","hours":0.5}`)
		code, m := f.do("POST", "/workorders/"+id+"/settle", dmsToken, `{"costlistcode":"`+c+`","settle_date":"20240313"}`)
		if i == 0 && code != 200 {
			t.Fatalf("first settle = %d %v", code, m)
		}
		if i == 1 && (code != 422 || m["field"] != "costlistcode" || !strings.Contains(fmt.Sprint(m["problems"]), "duplicate")) {
			t.Fatalf("same number in lower case = %d %v", code, m)
		}
	}
}

// The order shows the fault text the record will carry, before settlement; pending codes are
// marked as pending, and what is published is exactly that text.
func TestFaultTextShownBeforeSettlement(t *testing.T) {
	f := newFixture(t, false)
	o := f.mustDo(201, "POST", "/workorders", `{"plate":"浙A7K2M9","plate_color":"blue","mileage_km":86412,"fault_description":"灯亮"}`)
	id := o["id"].(string)
	if o["fault_record"] != "灯亮" {
		t.Fatalf("fault_record before a scan: %v", o["fault_record"])
	}
	f.mustDo(200, "POST", "/workorders/"+id+"/scans", `{"bay":"bay1","report":`+reportJSON(carVIN)+`}`)
	g := f.mustDo(200, "GET", "/workorders/"+id, "")
	want := "灯亮；读码P0420 催化器效率低于阈值(第1排)、P0171(待定) 系统过稀(第1排)"
	if g["fault_record"] != want || g["fault_description"] != "灯亮" {
		t.Fatalf("GET fault_record %q, want %q", g["fault_record"], want)
	}
	f.mustDo(200, "POST", "/workorders/"+id+"/items", `{"name":"检查","hours":0.5}`)
	f.mustDo(200, "POST", "/workorders/"+id+"/settle", `{"costlistcode":"HS-F-1","settle_date":"20240313"}`)
	recs := f.mustDo(200, "GET", "/workorders/"+id+"/records", "")
	rec := recs["items"].([]any)[0].(map[string]any)["record"].(map[string]any)["basicInfo"].(map[string]any)
	if rec["faultdescription"] != want {
		t.Fatalf("published %q, order showed %q", rec["faultdescription"], want)
	}
}
