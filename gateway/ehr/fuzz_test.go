package ehr

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/obdgw/obdgw/obd"
)

// FuzzBuildValidate feeds arbitrary work-order text (what a DMS or a technician types) through
// Build and Validate: no panic, and whatever validates clean respects the wire rules.
func FuzzBuildValidate(f *testing.F) {
	f.Add("浙A7K2M9", "LJ8ECM2B2R1063348", "双怠速检验CO超标", "HS2024031300187", "2.5", "1.00", "P0420", true)
	f.Add("", "", "", "", "", "", "", false)
	f.Add("粤B12345D", "lj8ecm2b2r1063348", "尾气治理：", "X", "0", "0.01", "p0171", true)
	f.Add("A", "1M8GDM9AXKP042788", strings.Repeat("抖", 201), "\x00", "-1", "1e3", "\xff", false)
	f.Fuzz(func(t *testing.T, plate, vin, fault, code, hours, qty, dtc string, emission bool) {
		in := exampleInput()
		in.Plate, in.VIN, in.Fault, in.CostListCode, in.Emission = plate, vin, fault, code, emission
		in.Items = []Item{{Name: "项目", Hours: hours}}
		in.Parts = []Part{{Name: "配件", Code: code, Quantity: qty}}
		in.DTCs = []DTC{{Code: dtc, Description: "描述"}}
		rec := Build(in)
		res := Validate(rec, Checks{Now: exampleChecks().Now, Emission: emission, TestNo: "1"})
		if _, err := rec.Encode(); err != nil {
			t.Fatalf("encode: %v", err)
		}
		if !res.OK() {
			for _, e := range res.Errors {
				if e.Field == "" || e.Message == "" {
					t.Fatalf("problem without field or message: %+v", e)
				}
			}
			return
		}
		b := rec.Basic
		if !obd.VINWellFormed(b.VIN) || utf8.RuneCountInString(b.Plate) > MaxPlate || b.Plate == "" ||
			utf8.RuneCountInString(b.Fault) > MaxFault || utf8.RuneCountInString(b.CostListNo) > MaxCostListCode || strings.TrimSpace(b.CostListNo) == "" {
			t.Fatalf("accepted an invalid record: %+v", b)
		}
		if emission && !strings.HasPrefix(b.Fault, EmissionPrefix) {
			t.Fatalf("emission repair without the prefix: %q", b.Fault)
		}
		if _, err := NormHours(rec.Projects[0].Hours); err != nil {
			t.Fatalf("accepted hours %q", rec.Projects[0].Hours)
		}
		if _, err := NormQuantity(rec.Parts[0].Quantity); err != nil {
			t.Fatalf("accepted quantity %q", rec.Parts[0].Quantity)
		}
	})
}
