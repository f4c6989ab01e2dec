package config

import (
	"slices"
	"strings"
	"testing"
)

// The OBD check's counted monitors are configuration: a list replaces the default, the other
// keeps its default, and a monitor that does not exist is named with its line and key path.
func TestEmissionOBDRulesFromYAML(t *testing.T) {
	cfg, err := Parse([]byte(minimal+"emission:\n  obd_check:\n    readiness_spark: [catalyst, evap]\n    max_incomplete: 1\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Emission.OBD
	if !slices.Equal(o.ReadinessSpark, []string{"catalyst", "evap"}) || o.MaxIncomplete != 1 || !slices.Contains(o.ReadinessCompression, "pm_filter") {
		t.Fatalf("obd_check %+v", o)
	}
	_, err = Parse([]byte(minimal+"emission:\n  obd_check:\n    readiness_compression: [nox_scr, dpf]\n"), "t.yaml")
	if err == nil || !strings.Contains(err.Error(), "emission.obd_check.readiness_compression[1]") || !strings.Contains(err.Error(), `"dpf" is not a readiness monitor`) {
		t.Fatalf("unknown monitor: %v", err)
	}
}
