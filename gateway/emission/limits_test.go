package emission

import (
	"bytes"
	"errors"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDefaultLimitsAreValidAndFromTheReference(t *testing.T) {
	l := DefaultLimits()
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := l.Idle("a")
	if err != nil {
		t.Fatal(err)
	}
	if a != (IdleLimits{IdleCOPct: 0.6, IdleHCppm: 80, HighIdleCOPct: 0.3, HighIdleHCppm: 50}) {
		t.Errorf("限值a: %+v", a)
	}
	b, _ := l.Idle("b")
	if b != (IdleLimits{IdleCOPct: 0.4, IdleHCppm: 40, HighIdleCOPct: 0.3, HighIdleHCppm: 30}) {
		t.Errorf("限值b: %+v", b)
	}
	if k, _ := l.Opacity("a"); k.KM1 != 1.2 {
		t.Errorf("free acceleration a: %v", k)
	}
	if k, _ := l.Opacity("b"); k.KM1 != 0.7 {
		t.Errorf("free acceleration b: %v", k)
	}
	if _, err := l.Idle("c"); err == nil || !strings.Contains(err.Error(), "limit_set") {
		t.Errorf("set c: %v", err)
	}
}

// The example the daemon's example configuration points to must decode, strictly, to exactly the
// defaults, so the example and the code cannot drift apart.
func TestExampleFileMatchesDefaults(t *testing.T) {
	data, err := os.ReadFile("limits.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc := struct {
		Emission Limits `yaml:"emission"`
	}{Emission: Limits{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(doc.Emission, DefaultLimits()) {
		t.Errorf("example:\n%+v\ndefaults:\n%+v", doc.Emission, DefaultLimits())
	}
}

func TestValidateNamesEveryKey(t *testing.T) {
	for _, c := range []struct {
		change func(*Limits)
		keys   []string
	}{
		{func(l *Limits) { l.LimitSet = "c" }, []string{"limit_set"}},
		{func(l *Limits) { l.TwoSpeedIdle.A.IdleCOPct = -1 }, []string{"two_speed_idle.a.idle_co_pct"}},
		{func(l *Limits) { l.TwoSpeedIdle.LambdaMin = 1.1 }, []string{"two_speed_idle.lambda_max"}},
		{func(l *Limits) { l.TwoSpeedIdle.Sample = 0 }, []string{"two_speed_idle.sample"}},
		{func(l *Limits) { l.TwoSpeedIdle.IdleRPMMax = 2400 }, []string{"two_speed_idle.idle_rpm_max"}},
		{func(l *Limits) { l.FreeAcceleration.B.KM1 = 0 }, []string{"free_acceleration.b.k_m1"}},
		{func(l *Limits) { l.FreeAcceleration.MeasuredAccelerations = 0 }, []string{"free_acceleration.measured_accelerations"}},
		{func(l *Limits) { l.Rig.BusyMax = -time.Second }, []string{"rig.busy_max"}},
		{func(l *Limits) { l.OBD.ReadinessSpark = []string{"catalyst", "catalytic"} }, []string{"obd_check.readiness_spark[1]"}},
		{func(l *Limits) { l.OBD.ReadinessCompression = nil }, []string{"obd_check.readiness_compression"}},
		{func(l *Limits) { l.TwoSpeedIdle.HeavyHighIdleRPM = 0 }, []string{"two_speed_idle.heavy_high_idle_rpm", "two_speed_idle.high_idle_rpm_tolerance", "two_speed_idle.idle_rpm_max"}},
		// Every problem at once, not the first one only.
		{func(l *Limits) { l.TwoSpeedIdle.B.IdleHCppm = math.NaN(); l.Rig.ErrorBurstMax = -1 }, []string{"two_speed_idle.b.idle_hc_ppm", "rig.error_burst_max"}},
	} {
		l := DefaultLimits()
		c.change(&l)
		err := l.Validate()
		var keys []string
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				var le *LimitError
				if !errors.As(e, &le) {
					t.Fatalf("%v is not a *LimitError", e)
				}
				if !strings.HasPrefix(e.Error(), "emission: "+le.Key+": ") {
					t.Errorf("%q does not start with the package prefix and its key", e)
				}
				keys = append(keys, le.Key)
			}
		}
		if !slices.Equal(keys, c.keys) {
			t.Errorf("Validate = %v, want problems at %v", err, c.keys)
		}
	}
}
