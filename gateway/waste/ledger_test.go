package waste

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

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
