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
