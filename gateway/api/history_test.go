package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/gateway/workorder"
	"github.com/obdgw/obdgw/obd"
)

// keptTests is a SelfTests that only keeps judged self-tests (SelfTestKeeper).
type keptTests struct {
	SelfTests
	kept map[string]KeptSelfTest
}

func (k keptTests) Kept(order string) (KeptSelfTest, bool, error) {
	st, ok := k.kept[order]
	return st, ok, nil
}

// TestVehicleHistory: a car's scans (attached or not, on any bay), its work orders and its
// judged self-tests come newest first; another car's do not; the owner never appears.
func TestVehicleHistory(t *testing.T) {
	f := newFixture(t, false)
	const other = "LSVAM4187C2184847"
	o, err := f.store.Create(workorder.NewOrder{Plate: "浙A12345", PlateColor: "blue", VIN: carVIN, Bay: "bay1",
		OwnerName: "王晓明", OwnerPhone: "13905710042", EmissionRepair: true, TestNo: "330100202403120001", FailedTestEnd: "20240312"})
	if err != nil {
		t.Fatal(err)
	}
	day := func(h int) time.Time { return time.Date(2024, 3, 13, h, 0, 0, 0, time.UTC) }
	if _, err := f.store.AddScan("bay1", "automatic scan on connection", obd.Report{VIN: carVIN, Time: day(3)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.AddScan("bay2", "", obd.Report{VIN: carVIN, Time: day(-20)}); err != nil {
		t.Logf("earlier scan on bay2: %v (kept unattached)", err)
	}
	if _, err := f.store.AddScan("bay2", "", obd.Report{VIN: other, Time: day(4)}); err != nil {
		t.Logf("other car: %v", err)
	}
	f.srv.Config.Handler = New(Options{Store: f.store, Bays: f.bays, Tokens: []Token{{Name: "dms", Secret: dmsToken}},
		SelfTests: keptTests{kept: map[string]KeptSelfTest{o.ID: {Order: o.ID, Bay: "bay1", Method: "two_speed_idle", Verdict: "pass",
			Start: day(2).Add(10 * time.Minute), End: day(2).Add(30 * time.Minute), Rig: "nanhua NHA-506 #A1", Result: map[string]any{"verdict": "pass"}}}}}).Handler()

	req, _ := http.NewRequest("GET", f.srv.URL+Prefix+"/vehicles/"+strings.ToLower(carVIN)+"/history", nil)
	req.Header.Set("Authorization", "Bearer "+dmsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil || resp.StatusCode != 200 {
		t.Fatalf("history: %d %v", resp.StatusCode, err)
	}
	if strings.Contains(string(raw), "王晓明") || strings.Contains(string(raw), "13905710042") {
		t.Fatalf("the history shows the owner: %s", raw)
	}
	var h struct {
		VIN   string        `json:"vin"`
		Items []HistoryItem `json:"items"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range h.Items {
		switch it.Kind {
		case "scan":
			got = append(got, "scan "+it.Scan.Bay+" "+it.Scan.Order)
		case "order":
			got = append(got, "order "+it.Order.ID+" "+it.Order.Status)
		case "selftest":
			got = append(got, "selftest "+it.SelfTest.Order+" "+it.SelfTest.Verdict)
		}
	}
	want := []string{"scan bay1 " + o.ID, "selftest " + o.ID + " pass", "order " + o.ID + " open", "scan bay2 " + o.ID}
	if h.VIN != carVIN || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("history of %s:\n got %q\nwant %q", h.VIN, got, want)
	}

	if h.Items[1].SelfTest.Result != nil {
		t.Errorf("the history carries the full self-test result")
	}
	if code, body := f.do("GET", "/workorders/"+o.ID+"/selftest", dmsToken, ""); code != 200 || body["verdict"] != "pass" || body["rig"] != "nanhua NHA-506 #A1" {
		t.Errorf("order self-test: %d %v", code, body)
	}
	o2, err := f.store.Create(workorder.NewOrder{Plate: "浙A54321", PlateColor: "blue", Bay: "bay3"})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := f.do("GET", "/workorders/"+o2.ID+"/selftest", dmsToken, ""); code != 404 || !strings.Contains(body["error"].(string), "no judged self-test") {
		t.Errorf("self-test of an order without one: %d %v", code, body)
	}
	for _, bad := range []string{"LSVAM4187C218484", "LSVAM4187C21848IO", "x"} {
		code, body := f.do("GET", "/vehicles/"+bad+"/history", dmsToken, "")
		if code != 400 || body["field"] != "vin" || !strings.Contains(body["error"].(string), "is not a VIN") {
			t.Errorf("history of %q: %d %v, want 400 naming the VIN", bad, code, body)
		}
	}
	if code, body := f.do("GET", "/vehicles/"+other+"/history", dmsToken, ""); code != 200 || len(body["items"].([]any)) != 1 {
		t.Errorf("other car's history: %d %v, want its one scan", code, body)
	}
	if code, _ := f.do("GET", "/vehicles/"+carVIN+"/history", "", ""); code != 401 {
		t.Errorf("history without a token: %d, want 401", code)
	}
}
