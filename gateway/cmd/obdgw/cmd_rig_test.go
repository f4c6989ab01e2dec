package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startSimRig runs `obdgw sim rig` and returns the pty path from its first line.
func startSimRig(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"sim", "rig"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("sim rig stderr:\n%s", stderr.String())
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("sim rig printed no path: %v (stderr %q)", err, stderr.String())
	}
	path := strings.TrimSpace(line)
	if !strings.HasPrefix(path, "/dev/") {
		t.Fatalf("first line %q is not a device path", path)
	}
	return path
}

func execRigRead(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"rig", "read"}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var rows []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		rows = append(rows, m)
	}
	return rows
}

// The real binary end to end: `obdgw sim rig` on a pty, `obdgw rig read` on its path.
func TestRigCommandsEndToEnd(t *testing.T) {
	bin := obdgwBinary(t)
	t.Run("json count 3 against sim rig nha506", func(t *testing.T) { rigReadJSON(t, bin) })
	t.Run("opacimeter json and text", func(t *testing.T) { rigReadOpacimeter(t, bin) })
	t.Run("wrong model says what to check", func(t *testing.T) { rigReadWrongModel(t, bin) })
	t.Run("unplugged", func(t *testing.T) { rigReadUnplugged(t, bin) })
}

// The acceptance path of issue 5: a simulated NHA-506 on a pty, read by the real command.
func rigReadJSON(t *testing.T, bin string) {
	dev := startSimRig(t, bin, "--model", "nha506")
	out, errOut, code := execRigRead(t, bin, "--port", dev, "--model", "nha506", "--json", "--count", "3", "--interval", "50ms")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	rows := jsonLines(t, out)
	if len(rows) != 3 {
		t.Fatalf("%d JSON lines, want 3:\n%s", len(rows), out)
	}
	for i, r := range rows {
		for _, k := range []string{"hc_ppm", "co_pct", "co2_pct", "o2_pct", "no_ppm", "lambda", "rpm", "oil_c"} {
			if _, ok := r[k].(float64); !ok {
				t.Errorf("line %d: %s = %v, want a number", i+1, k, r[k])
			}
		}
		if _, ok := r["k_m1"]; ok {
			t.Errorf("line %d: an analyzer reading has k_m1", i+1)
		}
		if co2 := r["co2_pct"].(float64); co2 < 14 || co2 > 15.5 {
			t.Errorf("line %d: CO2 %v %% is not an engine's exhaust (sim script idles at 14.6 %%)", i+1, co2)
		}
	}
}

func rigReadOpacimeter(t *testing.T, bin string) {
	dev := startSimRig(t, bin, "--model", "fty100")
	out, errOut, code := execRigRead(t, bin, "--port", dev, "--model", "fty100", "--json", "--count", "2", "--interval", "10ms")
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	for _, r := range jsonLines(t, out) {
		if _, ok := r["opacity_pct"].(float64); !ok {
			t.Errorf("opacity_pct missing: %v", r)
		}
		if _, ok := r["k_m1"].(float64); !ok {
			t.Errorf("k_m1 missing: %v", r)
		}
		if _, ok := r["hc_ppm"]; ok {
			t.Errorf("an opacimeter reading has hc_ppm: %v", r)
		}
	}
	out, errOut, code = execRigRead(t, bin, "--port", dev, "--model", "fty100", "--count", "1")
	if code != 0 || !strings.Contains(out, "N ") || !strings.Contains(out, "m⁻¹") || !strings.Contains(out, "k_computed_from_n") {
		t.Fatalf("text line %q (exit %d, stderr %s)", out, code, errOut)
	}
}

func rigReadWrongModel(t *testing.T, bin string) {
	dev := startSimRig(t, bin, "--model", "nha506")
	// An MQW-50A speaks framed requests the Nanhua simulator refuses or ignores.
	_, errOut, code := execRigRead(t, bin, "--port", dev, "--model", "mqw50a", "--count", "1", "--timeout", "300ms")
	if code == 0 {
		t.Fatal("wrong model exited 0")
	}
	if !strings.Contains(errOut, "--model") || !strings.Contains(errOut, "9600") {
		t.Errorf("stderr does not say to check the model and link speed:\n%s", errOut)
	}
}

func rigReadUnplugged(t *testing.T, bin string) {
	dev := startSimRig(t, bin, "--model", "nht6", "--fault", "unplug=2")
	out, errOut, code := execRigRead(t, bin, "--port", dev, "--model", "nht6", "--json", "--count", "5", "--interval", "10ms", "--timeout", "300ms")
	if code == 0 {
		t.Fatal("unplugged rig exited 0")
	}
	if n := len(jsonLines(t, out)); n != 2 {
		t.Errorf("%d readings before the unplug, want 2", n)
	}
	if !strings.Contains(errOut, "cable") {
		t.Errorf("stderr does not mention the cable:\n%s", errOut)
	}
}

func TestRigUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"rig"}, "which action"},
		{[]string{"rig", "read", "--model", "nha506"}, "--port is required"},
		{[]string{"rig", "read", "--port", "/dev/null"}, "--model is required"},
		{[]string{"rig", "read", "--port", "/dev/null", "--model", "nha999"}, "unknown --model"},
		{[]string{"sim", "rig"}, "--model is required"},
		{[]string{"sim", "rig", "--model", "nha506", "--fault", "sparks=3"}, "unknown fault"},
		{[]string{"sim", "rig", "--model", "nha999"}, "no simulator"},
		{[]string{"rig", "read", "--port", "/dev/null", "--model", "nha506", "--count", "-1"}, "must not be negative"},
	} {
		var out, errb bytes.Buffer
		if code := runMain(tt.args, &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tt.args, code, exitUsage, errb.String())
		}
		if !strings.Contains(errb.String(), tt.want) {
			t.Errorf("%v: stderr %q, want %q", tt.args, errb.String(), tt.want)
		}
	}
	for _, help := range [][]string{{"rig", "read", "-h"}, {"sim", "rig", "-h"}} {
		var out, errb bytes.Buffer
		if code := runMain(help, &out, &errb); code != 0 || !strings.Contains(errb.String(), "--model") {
			t.Errorf("%v: exit %d, stderr %q", help, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := runMain([]string{"rig", "models"}, &out, &errb); code != 0 {
		t.Fatalf("rig models: exit %d", code)
	}
	for _, m := range []string{"nha503", "nha506", "fla502", "mqw511", "fga4100", "mqw50a", "mexa584l", "nht6", "nht1l", "mqy200", "fty100"} {
		if !strings.Contains(out.String(), m) {
			t.Errorf("rig models lacks %s:\n%s", m, out.String())
		}
	}
}

func TestRigReadMissingDevice(t *testing.T) {
	var out, errb bytes.Buffer
	code := runMain([]string{"rig", "read", "--port", filepath.Join(t.TempDir(), "ttyUSB-gone"), "--model", "nha506"}, &out, &errb)
	if code != exitNoDevice {
		t.Fatalf("exit %d, want %d (stderr %q)", code, exitNoDevice, errb.String())
	}
	if !strings.Contains(errb.String(), "plugged in") {
		t.Errorf("stderr %q does not say what to check", errb.String())
	}
}
