package waste

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/gateway/workorder"
)

func TestHundredthsAddUpExactly(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		out  string
	}{{"4.5", 450, "4.5"}, {"3.75", 375, "3.75"}, {"0.1", 10, "0.1"}, {"12", 1200, "12"}, {"2.50", 250, "2.5"}, {"007", 700, "7"}} {
		got, err := workorder.Hundredths(c.in)
		if err != nil || got != c.want || workorder.FormatHundredths(got) != c.out {
			t.Errorf("Hundredths(%q) = %d %v, format %q; want %d, %q", c.in, got, err, workorder.FormatHundredths(got), c.want, c.out)
		}
	}
	for _, bad := range []string{"", ".5", "5.", "4.555", "-1", "1e3", "1,5", "NaN", "1234567890"} {
		if _, err := workorder.Hundredths(bad); err == nil {
			t.Errorf("Hundredths(%q) accepted", bad)
		}
	}
	if _, err := workorder.NormWasteQuantity("0.00"); err == nil {
		t.Error("a zero quantity accepted")
	}
}

// FuzzHandoverRequest: whatever a client sends as a hand-over, the check answers with a
// hand-over whose every line is in the catalogue with a quantity above 0, or with an error
// naming a field — never a panic.
func FuzzHandoverRequest(f *testing.F) {
	f.Add([]byte(`{"date":"20240612","collector":"杭州立佳环境服务有限公司","licence":"浙危废经第3301000123号","manifest_no":"3301202406120001","lines":[{"category":"waste_mineral_oil","quantity":"5","unit":"L"}]}`))
	f.Add([]byte(`{"collector":"x","licence":"y","manifest_no":"z","lines":[{"category":"scrap_tyre","quantity":"0.01","unit":"piece"},{"category":"scrap_tyre","quantity":"2","unit":"piece"}]}`))
	f.Add([]byte(`{"lines":[{}]}`))
	now := time.Date(2024, 6, 12, 2, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		var req HandoverRequest
		if json.Unmarshal(b, &req) != nil {
			return
		}
		h, asked, err := normHandover(req, now)
		if err != nil {
			var ie *InputError
			if !strings.HasPrefix(err.Error(), "waste: ") || !asError(err, &ie) || ie.Field == "" {
				t.Fatalf("error %v does not name a field", err)
			}
			return
		}
		if len(h.Lines) == 0 || h.Collector == "" || h.Licence == "" || h.ManifestNo == "" || len(h.Date) != 8 {
			t.Fatalf("accepted an incomplete hand-over: %+v", h)
		}
		for _, ln := range h.Lines {
			q, err := workorder.Hundredths(ln.Quantity)
			if err != nil || q <= 0 || asked[key{ln.Category, ln.Unit}] < q {
				t.Fatalf("accepted line %+v (asked %v)", ln, asked)
			}
		}
	})
}

func asError(err error, target **InputError) bool {
	ie, ok := err.(*InputError)
	if ok {
		*target = ie
	}
	return ok
}

// TestConfiguredCodeOfAnUnconfirmedCategory: a shop that sets the code of scrap tyres sends it,
// still marked unconfirmed; a confirmed code cannot be overridden.
func TestConfiguredCodeOfAnUnconfirmedCategory(t *testing.T) {
	db, err := buffer.Open(filepath.Join(t.TempDir(), "obdgw.db"), buffer.Options{GatewayID: "gw-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	l := New(db, Options{CompanyCode: "330106000099901", Codes: map[string]string{"scrap_tyre": "900-005-S17", "waste_mineral_oil": "900-000-00"}})
	o := &workorder.Order{ID: "WO000001", CostListCode: "HS-1", SettleDate: "20240313",
		Items: []workorder.Item{{Name: "换机油", Hours: "0.5", Waste: &workorder.Waste{Category: "waste_mineral_oil", Quantity: "4", Unit: "L"}}},
		Parts: []workorder.Part{{Name: "轮胎", Quantity: "2", Waste: &workorder.Waste{Category: "scrap_tyre", Quantity: "2", Unit: "piece"}}}}
	var payload []byte
	if err := db.Update(func(tx *buffer.Tx) error {
		var err error
		_, payload, err = l.Hook(tx, o, 1, "")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var p wire.WastePayload
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	if e := p.Record.Entries[1]; e.Code != "900-005-S17" || e.CodeConfirmed {
		t.Fatalf("scrap tyre entry %+v", e)
	}
	if e := p.Record.Entries[0]; e.Code != "900-214-08" {
		t.Fatalf("the confirmed oil code was overridden: %+v", e)
	}
	if err := wire.CheckWastePayload(wire.SchemaWaste, payload); err != nil {
		t.Fatal(err)
	}
	v, err := l.View()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range v.Stock {
		if s.Category == "scrap_tyre" && s.Code != "900-005-S17" {
			t.Fatalf("ledger shows %+v", s)
		}
	}
}
