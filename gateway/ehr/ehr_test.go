package ehr

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/gateway/wire"
)

func day(s string) time.Time {
	t, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return t.Add(10 * time.Hour)
}

func km(n int64) *int64 { return &n }

// exampleInput is the work order behind the example of ehr-record.md §3.1: the technician
// wrote only the inspection result; the scan supplied the codes.
func exampleInput() Input {
	return Input{
		Company:      "杭州示例汽车维修有限公司",
		Plate:        "浙A7K2M9",
		VIN:          "lj8ecm2b2r1063348", // typed in lower case; the record carries capitals
		RepairDate:   day("20240311"),
		MileageKm:    km(86412),
		SettleDate:   day("20240313"),
		Fault:        "双怠速检验CO超标",
		CostListCode: "HS2024031300187",
		Emission:     true,
		DTCs: []DTC{
			{Code: "P0420", Description: "催化器效率低于阈值(第1排)"},
			{Code: "P0171", Description: "系统过稀(第1排)"},
			{Code: "P0420", Description: "催化器效率低于阈值(第1排)"}, // same code from a second ECU
		},
		Items: []Item{
			{Name: "排放故障诊断（OBD读码、尾气检测）", Hours: "1"},
			{Name: "更换三元催化转化器", Hours: "2.5"},
			{Name: "更换后氧传感器", Hours: "0.5"},
		},
		Parts: []Part{
			{Name: "三元催化转化器总成", Code: "1205100-TW01", Quantity: "1"},
			{Name: "后氧传感器", Code: "3612020-TW02", Quantity: "1.00"},
			{Name: "排气管密封垫", Code: "1200013-TW03", Quantity: "2"},
		},
	}
}

func exampleChecks() Checks {
	return Checks{Now: func() time.Time { return day("20240313") }, Emission: true, TestNo: "440600202403110042"}
}

func TestBuildMatchesReferenceExample(t *testing.T) {
	golden, err := os.ReadFile("testdata/example.json")
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, golden); err != nil {
		t.Fatal(err)
	}
	rec := Build(exampleInput())
	rec.Token = "5d0c9e2b7a4f4c18b3e6a1f09d27c4e8" // added by the last hop, not by the gateway
	got, err := rec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("record differs from ehr-record.md §3.1\n got %s\nwant %s", got, want.Bytes())
	}
	res := Validate(Build(exampleInput()), exampleChecks())
	if !res.OK() || len(res.Warnings) != 0 {
		t.Fatalf("the reference example must validate clean: %+v", res)
	}
}

func TestBuildEmptyListsAreArrays(t *testing.T) {
	in := exampleInput()
	in.Items, in.Parts = nil, nil
	b, err := Build(in).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"vehiclepartslist":[],"repairprojectlist":[]`)) {
		t.Fatalf("got %s", b)
	}
	if bytes.Contains(b, []byte("access_token")) {
		t.Fatalf("the gateway must not put a token in the record: %s", b)
	}
}

func TestFaultText(t *testing.T) {
	p0420 := DTC{Code: "P0420", Description: "催化器效率低于阈值(第1排)"}
	long := strings.Repeat("发动机抖动", 5) // 25 characters: not short
	tests := []struct {
		name     string
		tech     string
		emission bool
		dtcs     []DTC
		want     string
	}{
		{"empty stays empty", "", false, nil, ""},
		{"emission prefix added", "CO超标", true, nil, "尾气治理：CO超标"},
		{"emission prefix not doubled", "尾气治理：CO超标", true, nil, "尾气治理：CO超标"},
		{"emission prefix without colon normalised", "尾气治理 CO超标", true, nil, "尾气治理：CO超标"},
		{"codes fill an empty text", "", false, []DTC{p0420}, "读码P0420 催化器效率低于阈值(第1排)"},
		{"codes appended to short text", "亮故障灯", false, []DTC{p0420}, "亮故障灯；读码P0420 催化器效率低于阈值(第1排)"},
		{"long text left alone", long, false, []DTC{p0420}, long},
		{"code already named", "P0420 故障", false, []DTC{p0420}, "P0420 故障"},
		{"code without description", "抖", false, []DTC{{Code: "p0300"}}, "抖；读码P0300"},
		{"only prefix and codes", "", true, []DTC{p0420}, "尾气治理：读码P0420 催化器效率低于阈值(第1排)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := FaultText(tc.tech, tc.emission, tc.dtcs); got != tc.want {
				t.Fatalf("FaultText(%q) = %q, want %q", tc.tech, got, tc.want)
			}
		})
	}
}

func TestFaultTextStopsAddingCodesAtTheLimit(t *testing.T) {
	var dtcs []DTC
	for i := 0; i < 40; i++ {
		dtcs = append(dtcs, DTC{Code: "P0" + string(rune('1'+i%9)) + string(rune('0'+i/9)) + "0", Description: "某个很长很长的故障描述文字"})
	}
	got := FaultText("抖", true, dtcs)
	if n := len([]rune(got)); n > MaxFault || n < MaxFault-30 {
		t.Fatalf("fault text has %d characters, want close to but not over %d: %q", n, MaxFault, got)
	}
}

func TestValidate(t *testing.T) {
	type mod func(in *Input, c *Checks)
	tests := []struct {
		name     string
		mod      mod
		errField string // want exactly one error naming this field ("" = no error)
		errCode  string
		warnCode string // want a warning with this code ("" = none)
	}{
		{"clean", func(in *Input, c *Checks) {}, "", "", ""},
		{"missing plate", func(in *Input, c *Checks) { in.Plate = " " }, "plate", "required", ""},
		{"plate too long", func(in *Input, c *Checks) { in.Plate = "浙A7K2M9XX" }, "plate", "too_long", ""},
		{"missing company", func(in *Input, c *Checks) { in.Company = "" }, "company", "required", ""},
		{"missing vin", func(in *Input, c *Checks) { in.VIN = "" }, "vin", "required", ""},
		{"short vin", func(in *Input, c *Checks) { in.VIN = "LJ8ECM2B2R106334" }, "vin", "length", ""},
		{"vin with O", func(in *Input, c *Checks) { in.VIN = "LJ8ECM2B2R1O63348" }, "vin", "charset", ""},
		{"chinese vin check digit", func(in *Input, c *Checks) { in.VIN = "LJ8ECM2B3R1063348" }, "vin", "check_digit", ""},
		{"chinese vin check digit confirmed", func(in *Input, c *Checks) {
			in.VIN, c.VINCheckDigitConfirmed = "LJ8ECM2B3R1063348", true
		}, "", "", "check_digit"},
		{"foreign vin check digit", func(in *Input, c *Checks) { in.VIN = "1M8GDM9A1KP042788" }, "", "", "check_digit"},
		{"vin mismatch", func(in *Input, c *Checks) {
			c.VINMismatch, c.VINRead, c.VINTyped = true, "LJ8ECM2B2R1063348", "LK6ADCE15PB405127"
		}, "vin", "vin_mismatch", ""},
		{"vin mismatch confirmed", func(in *Input, c *Checks) {
			c.VINMismatch, c.VINMismatchConfirmed, c.VINRead, c.VINTyped = true, true, "LJ8ECM2B2R1063348", "LK6ADCE15PB405127"
		}, "", "", "vin_mismatch"},
		{"plate of no form", func(in *Input, c *Checks) { in.Plate = "HELLO" }, "plate", "plate_format", ""},
		{"plate not normalised", func(in *Input, c *Checks) { in.Plate = "浙A·7K2M9" }, "plate", "plate_format", ""},
		{"repair after settle", func(in *Input, c *Checks) {
			in.RepairDate = day("20240314")
			c.Now = func() time.Time { return day("20240320") }
		}, "settle_date", "before_repair", ""},
		{"settle in the future", func(in *Input, c *Checks) { c.Now = func() time.Time { return day("20240312") } }, "settle_date", "future", ""},
		{"missing settle date", func(in *Input, c *Checks) { in.SettleDate = time.Time{} }, "settle_date", "required", ""},
		{"missing mileage", func(in *Input, c *Checks) { in.MileageKm = nil }, "mileage_km", "required", ""},
		{"negative mileage", func(in *Input, c *Checks) { in.MileageKm = km(-1) }, "mileage_km", "format", ""},
		{"mileage below last record", func(in *Input, c *Checks) { c.LastMileageKm = km(90000) }, "", "", "mileage_decreased"},
		{"mileage equal to last record", func(in *Input, c *Checks) { c.LastMileageKm = km(86412) }, "", "", ""},
		{"empty fault", func(in *Input, c *Checks) { in.Fault, in.DTCs, in.Emission, c.Emission = "", nil, false, false }, "fault_description", "required", ""},
		{"emission without any fault", func(in *Input, c *Checks) { in.Fault, in.DTCs = "", nil }, "fault_description", "required", ""},
		{"fault too long", func(in *Input, c *Checks) { in.Fault = strings.Repeat("抖", 199) }, "fault_description", "too_long", ""},
		{"emission without test_no", func(in *Input, c *Checks) { c.TestNo = "" }, "", "", "test_no_missing"},
		{"emission not flagged on input", func(in *Input, c *Checks) { in.Emission = false }, "fault_description", "emission_prefix", ""},
		{"repair before failed test", func(in *Input, c *Checks) { c.FailedTestEnd = day("20240312") }, "repair_date", "before_failed_test", ""},
		{"missing costlistcode", func(in *Input, c *Checks) { in.CostListCode = "" }, "costlistcode", "required", ""},
		{"costlistcode too long", func(in *Input, c *Checks) { in.CostListCode = strings.Repeat("9", 51) }, "costlistcode", "too_long", ""},
		{"costlistcode duplicate", func(in *Input, c *Checks) { c.CostListCodeUsed = true }, "costlistcode", "duplicate", ""},
		{"part without name", func(in *Input, c *Checks) { in.Parts[1].Name = "" }, "parts[1].name", "required", ""},
		{"part name too long", func(in *Input, c *Checks) { in.Parts[0].Name = strings.Repeat("件", 51) }, "parts[0].name", "too_long", ""},
		{"part code too long", func(in *Input, c *Checks) { in.Parts[2].Code = strings.Repeat("X", 51) }, "parts[2].code", "too_long", ""},
		{"part quantity zero", func(in *Input, c *Checks) { in.Parts[2].Quantity = "0.00" }, "parts[2].quantity", "format", ""},
		{"part quantity three decimals", func(in *Input, c *Checks) { in.Parts[2].Quantity = "1.125" }, "parts[2].quantity", "format", ""},
		{"item without name", func(in *Input, c *Checks) { in.Items[0].Name = "" }, "items[0].name", "required", ""},
		{"item hours two decimals", func(in *Input, c *Checks) { in.Items[1].Hours = "2.25" }, "items[1].hours", "format", ""},
		{"item hours negative", func(in *Input, c *Checks) { in.Items[1].Hours = "-1" }, "items[1].hours", "format", ""},
		{"control character in plate", func(in *Input, c *Checks) { in.Plate = "浙A7K\x002M" }, "plate", "control_char", ""},
		{"escape in part code", func(in *Input, c *Checks) { in.Parts[0].Code = "1205100\x1b[0m" }, "parts[0].code", "control_char", ""},
		{"invalid UTF-8 in fault", func(in *Input, c *Checks) { in.Fault = "抖\xff" }, "fault_description", "control_char", ""},
		{"line break in fault is fine", func(in *Input, c *Checks) { in.Fault = "怠速抖动\n加速无力" }, "", "", ""},
		{"absurd item hours", func(in *Input, c *Checks) { in.Items[1].Hours = "150" }, "", "", "absurd_hours"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, c := exampleInput(), exampleChecks()
			tc.mod(&in, &c)
			res := Validate(Build(in), c)
			if tc.errField == "" && len(res.Errors) != 0 {
				t.Fatalf("unexpected errors: %v", res.Errors)
			}
			if tc.errField != "" {
				if len(res.Errors) != 1 || res.Errors[0].Field != tc.errField || res.Errors[0].Code != tc.errCode {
					t.Fatalf("errors = %+v, want one %s on %s", res.Errors, tc.errCode, tc.errField)
				}
				if res.Errors[0].Message == "" {
					t.Fatal("error without a message")
				}
			}
			found := false
			for _, w := range res.Warnings {
				if w.Code == tc.warnCode {
					found = true
				}
			}
			if tc.warnCode != "" && !found {
				t.Fatalf("warnings = %+v, want %s", res.Warnings, tc.warnCode)
			}
			if tc.warnCode == "" && len(res.Warnings) != 0 {
				t.Fatalf("unexpected warnings: %+v", res.Warnings)
			}
		})
	}
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	res := Validate(wire.EHRRecord{Parts: []wire.EHRPart{{}}, Projects: []wire.EHRProject{}}, Checks{})
	fields := map[string]bool{}
	for _, e := range res.Errors {
		fields[e.Field] = true
	}
	for _, f := range []string{"plate", "company", "vin", "repair_date", "settle_date", "mileage_km", "fault_description", "costlistcode", "parts[0].name", "parts[0].quantity"} {
		if !fields[f] {
			t.Errorf("no error for %s in %+v", f, res.Errors)
		}
	}
}

func TestNormDecimals(t *testing.T) {
	for in, want := range map[string]string{"1": "1", "1.00": "1", "2.50": "2.5", "007": "7", "0.25": "0.25"} {
		if got, err := NormQuantity(in); err != nil || got != want {
			t.Errorf("NormQuantity(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "0.0", "-1", "1.", ".5", "1e3", "1.234", "abc", "1,5"} {
		if got, err := NormQuantity(bad); err == nil {
			t.Errorf("NormQuantity(%q) = %q, want an error", bad, got)
		}
	}
	for in, want := range map[string]string{"1": "1.0", "0": "0.0", "2.5": "2.5", "02.5": "2.5"} {
		if got, err := NormHours(in); err != nil || got != want {
			t.Errorf("NormHours(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-0.5", "2.25", "x"} {
		if got, err := NormHours(bad); err == nil {
			t.Errorf("NormHours(%q) = %q, want an error", bad, got)
		}
	}
}
