package wire

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readWaste(t testing.TB) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "waste.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWastePayloadChecks(t *testing.T) {
	good := string(readWaste(t))
	if err := CheckWastePayload(SchemaWaste, json.RawMessage(good)); err != nil {
		t.Fatalf("the example is refused: %v", err)
	}
	for _, c := range []struct{ name, from, to, schema, want string }{
		{"schema", "", "", "waste/2", "field schema"},
		{"unknown field", `"unit":"L"`, `"unit":"L","owner":"x"`, SchemaWaste, "unknown field"},
		{"quantity as number", `"quantity":"4.5"`, `"quantity":4.5`, SchemaWaste, "quantity"},
		{"zero quantity", `"quantity":"4.5"`, `"quantity":"0.00"`, SchemaWaste, "record.entries[0].quantity"},
		{"three decimals", `"quantity":"4.5"`, `"quantity":"4.125"`, SchemaWaste, "record.entries[0].quantity"},
		{"unit", `"unit":"L"`, `"unit":"piece"`, SchemaWaste, "record.entries[0].unit"},
		{"wrong code", `"code":"900-214-08"`, `"code":"900-214-09"`, SchemaWaste, "record.entries[0].code"},
		{"unconfirmed code not a code", `"code":""`, `"code":"any text"`, SchemaWaste, "record.entries[1].code"},
		{"unconfirmed code confirmed", `"code_confirmed":false`, `"code_confirmed":true`, SchemaWaste, "record.entries[1].code"},
		{"category", `"category":"scrap_tyre"`, `"category":"tyre"`, SchemaWaste, "record.entries[1].category"},
		{"source", `"source":"part"`, `"source":"box"`, SchemaWaste, "record.entries[1].source"},
		{"date", `"settle_date":"20240313"`, `"settle_date":"20241313"`, SchemaWaste, "record.settle_date"},
		{"revision", `"revision":1`, `"revision":0`, SchemaWaste, "meta.revision"},
		{"company", `"company_code":"330106000099901"`, `"company_code":""`, SchemaWaste, "record.company_code"},
	} {
		body := strings.Replace(good, c.from, c.to, 1)
		err := CheckWastePayload(c.schema, json.RawMessage(body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.want)
		}
	}
	// A code the shop configured for an unconfirmed category passes, still unconfirmed.
	if err := CheckWastePayload(SchemaWaste, json.RawMessage(strings.Replace(good, `"code":""`, `"code":"900-005-S17"`, 1))); err != nil {
		t.Errorf("a configured code refused: %v", err)
	}
	// An empty list is a revision saying the repair produced no waste after all.
	var p WastePayload
	if err := json.Unmarshal(readWaste(t), &p); err != nil {
		t.Fatal(err)
	}
	p.Record.Entries = nil
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "record.entries") {
		t.Fatalf("null entries: %v", err)
	}
	b, err := p.Encode()
	if err != nil || !strings.Contains(string(b), `"entries":[]`) {
		t.Fatalf("encode without entries: %s %v", b, err)
	}
	if err := CheckWastePayload(SchemaWaste, b); err != nil {
		t.Fatalf("no entries refused: %v", err)
	}
	// The envelope check runs it for kind waste.
	if CheckKind(KindWaste) != nil {
		t.Fatal("kind waste refused")
	}
}

func TestWasteCatalogue(t *testing.T) {
	want := map[string]string{"waste_mineral_oil": "HW08 900-214-08", "lead_acid_battery": "HW31 900-052-31", "exhaust_catalyst": "HW50 900-049-50"}
	for name, code := range want {
		c, ok := WasteCategoryByName(name)
		if !ok || c.Class+" "+c.Code != code || !c.Hazardous || !c.CodeConfirmed {
			t.Errorf("%s = %+v, want %s, hazardous, confirmed", name, c, code)
		}
	}
	for _, name := range []string{"scrap_steel", "scrap_tyre"} {
		c, ok := WasteCategoryByName(name)
		if !ok || c.Hazardous || c.CodeConfirmed {
			t.Errorf("%s = %+v, want general solid waste with an unconfirmed code", name, c)
		}
	}
}

func FuzzCheckWastePayload(f *testing.F) {
	f.Add(readWaste(f))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"record":{"entries":[{}]},"meta":{"revision":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := CheckWastePayload(SchemaWaste, b)
		if err == nil {
			var p WastePayload
			if json.Unmarshal(b, &p) != nil || p.Validate() != nil {
				t.Fatal("accepted a payload that does not decode and validate")
			}
			return
		}
		if !strings.HasPrefix(err.Error(), "wire: ") {
			t.Fatalf("error without the package prefix: %v", err)
		}
	})
}
