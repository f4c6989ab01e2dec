package emission

import (
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
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

// The example the daemon's example configuration includes must parse to exactly the defaults,
// so the example and the code cannot drift apart.
func TestExampleFileMatchesDefaults(t *testing.T) {
	data, err := os.ReadFile("limits.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Emission Limits `yaml:"emission"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Emission != DefaultLimits() {
		t.Errorf("example:\n%+v\ndefaults:\n%+v", doc.Emission, DefaultLimits())
	}
}

func TestParseLimitsOverridesOnlyWhatItNames(t *testing.T) {
	l, err := ParseLimits([]byte("limit_set: b\ntwo_speed_idle:\n  b:\n    idle_co_pct: 0.5\n  sample: 20s\nrig:\n  busy_max: 1m\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultLimits()
	want.LimitSet = "b"
	want.TwoSpeedIdle.B.IdleCOPct = 0.5
	want.TwoSpeedIdle.Sample = 20 * time.Second
	want.Rig.BusyMax = time.Minute
	if l != want {
		t.Errorf("got %+v\nwant %+v", l, want)
	}
	if l, err := ParseLimits(nil); err != nil || l != DefaultLimits() {
		t.Errorf("empty document: %v", err)
	}
}

func TestParseLimitsNamesTheKey(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"limit_set: c", "limit_set"},
		{"two_speed_idle:\n  a:\n    idle_co_pct: -1", "two_speed_idle.a.idle_co_pct"},
		{"two_speed_idle:\n  a:\n    idle_co_ptc: 0.5", "unknown key two_speed_idle.a.idle_co_ptc"},
		{"two_speed_idle:\n  a:\n    idle_co_ptc: 0.5", "line 3"},
		{"two_speed_idle:\n  lambda_min: 1.1", "two_speed_idle.lambda_max"},
		{"two_speed_idle:\n  sample: 0s", "two_speed_idle.sample"},
		{"two_speed_idle:\n  sample: soon", "emission"},
		{"two_speed_idle:\n  idle_rpm_max: 2400", "two_speed_idle.idle_rpm_max"},
		{"free_acceleration:\n  b:\n    k_m1: 0", "free_acceleration.b.k_m1"},
		{"free_acceleration:\n  measured_accelerations: 0", "free_acceleration.measured_accelerations"},
		{"free_acceleration: [1, 2]", "free_acceleration: want a mapping"},
		{"rig:\n  busy_max: -1s", "rig.busy_max"},
		{"two_speed_idle:\n  precondition: 30", "line 2: two_speed_idle.precondition: \"30\": want a duration with its unit"},
		{"- a\n- b", "want a mapping"},
	} {
		_, err := ParseLimits([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one naming %q", c.doc, err, c.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "emission: ") {
			t.Errorf("%q: error %q lacks the package prefix", c.doc, err)
		}
	}
}

func FuzzParseLimits(f *testing.F) {
	if b, err := os.ReadFile("limits.example.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{"", "limit_set: b", "two_speed_idle: {a: {idle_co_pct: .nan}}", "rig: {busy_max: 5}",
		"free_acceleration:\n  a: &x {k_m1: 1}\n  b: *x", "two_speed_idle: !!binary AAAA", "{"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLimits(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "emission: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		if err := l.Validate(); err != nil {
			t.Fatalf("ParseLimits accepted limits that do not validate: %v", err)
		}
	})
}
