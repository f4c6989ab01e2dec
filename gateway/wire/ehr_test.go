package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestEHRRecordEncodesEmptyListsAsArrays(t *testing.T) {
	b, err := json.Marshal(EHRRecord{Basic: EHRBasicInfo{VIN: "LJ8ECM2B2R1063348"}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"vehiclepartslist":[]`, `"repairprojectlist":[]`, `"basicInfo":{"vehicleplatenumber":""`} {
		if !strings.Contains(s, want) {
			t.Errorf("encoding %s lacks %s", s, want)
		}
	}
	if strings.Contains(s, "access_token") {
		t.Errorf("empty token must be omitted: %s", s)
	}
}

func TestEHRRecordKeepsChineseAndAmpersandsUnescaped(t *testing.T) {
	b, err := EHRRecord{Basic: EHRBasicInfo{Fault: "尾气治理：<P0420> & 过稀"}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"faultdescription":"尾气治理：<P0420> & 过稀"`) {
		t.Fatalf("got %s", b)
	}
	var back EHRRecord
	if err := json.Unmarshal(b, &back); err != nil || back.Basic.Fault != "尾气治理：<P0420> & 过稀" {
		t.Fatalf("round trip: %v %q", err, back.Basic.Fault)
	}
}

func TestCheckEHRPayload(t *testing.T) {
	good := `{"record":{"basicInfo":{"vehicleplatenumber":"浙A7K2M9","companyname":"c","vin":"LJ8ECM2B2R1063348","repairdate":"20240311","repairmileage":"86412","settledate":"20240313","faultdescription":"f","costlistcode":"HS1"},"vehiclepartslist":[],"repairprojectlist":[]},"meta":{"workorder":"wo-1","costlistcode":"HS1","revision":1,"vin_source":"obd"}}`
	if err := CheckEHRPayload(SchemaEHR, json.RawMessage(good)); err != nil {
		t.Fatalf("good payload: %v", err)
	}
	for _, tc := range []struct{ name, schema, payload, field string }{
		{"other schema", "ehr/2", good, "schema"},
		{"null list", SchemaEHR, strings.Replace(good, `"vehiclepartslist":[]`, `"vehiclepartslist":null`, 1), "record.vehiclepartslist"},
		{"missing list", SchemaEHR, strings.Replace(good, `,"repairprojectlist":[]`, ``, 1), "record.repairprojectlist"},
		{"number instead of string", SchemaEHR, strings.Replace(good, `"86412"`, `86412`, 1), "record.basicInfo.repairmileage"},
		{"unknown field", SchemaEHR, strings.Replace(good, `"vin_source"`, `"owner_phone":"1","vin_source"`, 1), "owner_phone"},
		{"revision zero", SchemaEHR, strings.Replace(good, `"revision":1`, `"revision":0`, 1), "meta.revision"},
		{"costlistcode differs", SchemaEHR, strings.Replace(good, `"costlistcode":"HS1","revision"`, `"costlistcode":"HS2","revision"`, 1), "meta.costlistcode"},
		{"token in record", SchemaEHR, strings.Replace(good, `{"record":{`, `{"record":{"access_token":"x",`, 1), "record.access_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckEHRPayload(tc.schema, json.RawMessage(tc.payload))
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.field != "" && !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
		})
	}
}
