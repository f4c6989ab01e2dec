package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/elm327"
	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/hack/testenv"
	"github.com/obdgw/obdgw/obd"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// obdgwBinary builds the real binary once per test run: these tests exercise what a user runs
// (flags, exit codes, stdout/stderr split, signals), not runMain in-process.
func obdgwBinary(t *testing.T) string {
	t.Helper()
	testenv.SkipShort(t, testenv.TierBinary)
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "obdgw-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "obdgw")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", binPath, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("build obdgw: %v", binErr)
	}
	return binPath
}

// startSim runs `obdgw sim elm327` and returns the pty path it printed first.
func startSim(t *testing.T, args ...string) (path string, stop func() (int, string)) {
	t.Helper()
	cmd := exec.Command(obdgwBinary(t), append([]string{"sim", "elm327"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() {
		}
	}()
	select {
	case path = <-lines:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("sim printed no path; stderr %s", stderr.String())
	}
	if !strings.HasPrefix(path, "/dev/") {
		cmd.Process.Kill()
		t.Fatalf("first line of stdout %q is not a device path; stderr %s", path, stderr.String())
	}
	var once sync.Once
	var code int
	stop = func() (int, string) {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				code = cmd.ProcessState.ExitCode()
				_ = err
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				code = -1
			}
		})
		return code, stderr.String()
	}
	t.Cleanup(func() { stop() })
	return path, stop
}

// runScan runs `obdgw scan` and returns its exit code, stdout and stderr. Each run has a
// state directory of its own, so nothing is remembered from one run to the next (nor written
// in the home directory of whoever runs the tests).
func runScanBinary(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, obdgwBinary(t), append([]string{"scan"}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir(), scanStateEnv+"=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("scan %v did not finish: stderr %s", args, stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// errorLines are the lines of stderr that carry the command's error (main prints exactly one).
func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "obdgw scan: ") {
			out = append(out, l)
		}
	}
	return out
}

func TestBinarySimThenScanJSON(t *testing.T) {
	path, stop := startSim(t, "--scenario", "petrol", "--baud", "2000000", "--latency", "0")
	code, stdout, stderr := runScanBinary(t, "--port", "serial://"+path, "--json", "--lang", "en")
	if code != 0 {
		t.Fatalf("scan exit %d\nstderr:\n%s", code, stderr)
	}
	// CAN 11/500, tried directly: no search.
	for _, want := range []string{"connecting to serial://" + path, "protocol 6 (ISO 15765-4 (CAN 11/500))", "dtcs_stored", "vin"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress on stderr lacks %q:\n%s", want, stderr)
		}
	}
	var rep struct {
		VIN        string   `json:"vin"`
		VINValid   bool     `json:"vin_valid"`
		Protocol   string   `json:"protocol"`
		ElapsedMS  *int64   `json:"elapsed_ms"`
		MIL        bool     `json:"mil"`
		OdometerKM *float64 `json:"odometer_km"`
		ECUs       []struct {
			ID     string   `json:"id"`
			Name   string   `json:"name"`
			CALIDs []string `json:"calids"`
			CVNs   []string `json:"cvns"`
		} `json:"ecus"`
		DTCs map[string][]struct {
			Code        string `json:"code"`
			ECU         string `json:"ecu"`
			Description string `json:"description"`
		} `json:"dtcs"`
		Readiness struct {
			Supported  []string `json:"supported"`
			Incomplete []string `json:"incomplete"`
		} `json:"readiness"`
		Adapter struct {
			Version   string `json:"version"`
			CountHint *bool  `json:"count_hint"`
			MultiPID  *bool  `json:"multi_pid"`
		} `json:"adapter"`
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
	}
	if rep.VIN != "LK6ADCE15PB405127" || !rep.VINValid || !rep.MIL || !strings.Contains(rep.Protocol, "CAN 11/500") {
		t.Errorf("vin %q valid %v mil %v protocol %q", rep.VIN, rep.VINValid, rep.MIL, rep.Protocol)
	}
	if rep.ElapsedMS == nil || *rep.ElapsedMS <= 0 || rep.OdometerKM == nil || *rep.OdometerKM != 123456.7 {
		t.Errorf("elapsed_ms %v odometer_km %v", rep.ElapsedMS, rep.OdometerKM)
	}
	if len(rep.ECUs) != 2 || rep.ECUs[0].ID != "7E8" || rep.ECUs[1].ID != "7E9" ||
		!strings.Contains(rep.ECUs[0].Name, "EngineControl") || len(rep.ECUs[0].CVNs) != 2 || rep.ECUs[0].CVNs[1] != "000B7E21" ||
		len(rep.ECUs[1].CALIDs) != 1 || rep.ECUs[1].CALIDs[0] != "TCU8AT0301-0000" {
		t.Errorf("ecus %+v", rep.ECUs)
	}
	var stored []string
	for _, d := range rep.DTCs["stored"] {
		stored = append(stored, d.Code+"@"+d.ECU)
		if d.Description == "" {
			t.Errorf("%s has no description", d.Code)
		}
	}
	if strings.Join(stored, " ") != "P0420@7E8 P0171@7E8 U0100@7E9" {
		t.Errorf("stored %v", stored)
	}
	if p := rep.DTCs["pending"]; len(p) != 1 || p[0].Code != "P0300" {
		t.Errorf("pending %+v", p)
	}
	if p, ok := rep.DTCs["permanent"]; !ok || len(p) != 1 {
		t.Errorf("permanent %+v", p)
	}
	if strings.Join(rep.Readiness.Incomplete, ",") != "catalyst,evap" || len(rep.Readiness.Supported) < 5 {
		t.Errorf("readiness %+v", rep.Readiness)
	}
	if rep.Adapter.Version != "ELM327 v1.5" || rep.Adapter.CountHint == nil || !*rep.Adapter.CountHint || rep.Adapter.MultiPID == nil {
		t.Errorf("adapter %+v", rep.Adapter)
	}

	// The same simulator serves the next client on the same pty: a text report this time.
	code, stdout, stderr = runScanBinary(t, "--port", "serial://"+path, "--lang", "en")
	if code != 0 || !strings.Contains(stdout, "LK6ADCE15PB405127") || !strings.Contains(stdout, "P0420") {
		t.Errorf("second scan: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	if code, serr := stop(); code != 0 {
		t.Errorf("sim exit %d after SIGTERM\n%s", code, serr)
	}
}

func TestBinaryScanIgnitionOff(t *testing.T) {
	path, _ := startSim(t, "--scenario", "ignition-off", "--baud", "2000000")
	code, stdout, stderr := runScanBinary(t, "--port", "serial://"+path)
	if code != exitNoVehicle {
		t.Errorf("exit %d, want %d\nstderr:\n%s", code, exitNoVehicle, stderr)
	}
	if el := errorLines(stderr); len(el) != 1 || !strings.Contains(el[0], "ignition") {
		t.Errorf("want one error line about the ignition, got %q\nstderr:\n%s", el, stderr)
	}
	if stdout != "" {
		t.Errorf("no report expected on stdout: %q", stdout)
	}
}

// TestBinaryScanOxygenSensors: a China 6 car whose VIN has a wrong check digit and whose engine
// supports oxygen-sensor and catalyst PIDs. The printed report shows them with units, reads PID
// 1C = 29 as CN-OBD-6, and never calls the VIN valid.
func TestBinaryScanOxygenSensors(t *testing.T) {
	petrol, err := os.ReadFile(filepath.Join("..", "..", "..", "drivers", "elm327", "elm327sim", "scenarios", "petrol.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sc := strings.Replace(string(petrol), "vin: LK6ADCE15PB405127\n", "vin: LK6ADCE15PB405128\n", 1)
	sc = strings.Replace(sc, "      \"1C\": \"06\"\n", "      \"13\": \"33\"\n      \"14\": \"5A 8A\"\n      \"1C\": \"1D\"\n      \"24\": \"80 00 80 00\"\n      \"3C\": \"11 94\"\n", 1)
	if strings.Count(sc, "LK6ADCE15PB405128") != 1 || !strings.Contains(sc, "\"3C\": \"11 94\"") {
		t.Fatal("petrol.yaml no longer has the VIN or the PID 1C line this test changes")
	}
	file := filepath.Join(t.TempDir(), "china6.yaml")
	if err := os.WriteFile(file, []byte(sc), 0o644); err != nil {
		t.Fatal(err)
	}
	path, _ := startSim(t, "--scenario", file, "--baud", "2000000", "--latency", "0")
	code, stdout, stderr := runScanBinary(t, "--port", "serial://"+path, "--lang", "zh")
	if code != 0 {
		t.Fatalf("scan exit %d\nstderr:\n%s", code, stderr)
	}
	for _, want := range []string{"LK6ADCE15PB405128  校验位错误（第9位应为 7）", "B1S1 B1S2 B2S1 B2S2",
		"氧传感器1 电压、短期燃油修正", "B1S1: 0.45 V, short term fuel trim 7.8 %", "B1S1: λ 1, 4 V", "410 °C",
		"CN-OBD-6 (HJ 1238) / J1979: OBDBr-2 (Brazil OBD phase 2)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "有效") {
		t.Errorf("a VIN with a wrong check digit is printed as valid:\n%s", stdout)
	}
}

// TestBinaryScanAdapterPulled: the adapter goes away in the middle of the scan (the simulator
// drops the link mid-answer and exits, like a dongle pulled from the socket). The scan stops
// there: the partial report is printed, and one error line says the link broke and what to
// do, with exit 1.
func TestBinaryScanAdapterPulled(t *testing.T) {
	petrol, err := os.ReadFile(filepath.Join("..", "..", "..", "drivers", "elm327", "elm327sim", "scenarios", "petrol.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sc := strings.Replace(string(petrol), "faults:\n", "faults:\n  disconnect_after: 30\n", 1)
	if sc == string(petrol) {
		t.Fatal("petrol.yaml has no faults section to extend")
	}
	file := filepath.Join(t.TempDir(), "pulled.yaml")
	if err := os.WriteFile(file, []byte(sc), 0o644); err != nil {
		t.Fatal(err)
	}
	path, stop := startSim(t, "--scenario", file, "--baud", "2000000")
	code, stdout, stderr := runScanBinary(t, "--port", "serial://"+path, "--lang", "en")
	if code != exitFailure {
		t.Errorf("exit %d, want %d\nstderr:\n%s", code, exitFailure, stderr)
	}
	if el := errorLines(stderr); len(el) != 1 || !strings.Contains(el[0], "link to the adapter broke") || !strings.Contains(el[0], "scan again") {
		t.Errorf("want one error line about the broken link, got %q\nstderr:\n%s", el, stderr)
	}
	if !strings.Contains(stdout, "LK6ADCE15PB405127") {
		t.Errorf("the partial report (VIN read before the link broke) is missing:\n%s", stdout)
	}
	if code, _ := stop(); code == 0 {
		t.Error("the simulator did not report the dropped link")
	}
}

// TestBinaryScanFindsTheBaudRate: an adapter at 115200 (the simulator answers only a client at
// that rate) behind an address without ?baud= is found; the user sees what was tried and the
// rate to write into the address, and the scan completes.
func TestBinaryScanFindsTheBaudRate(t *testing.T) {
	path, _ := startSim(t, "--scenario", "petrol", "--baud", "115200", "--strict-baud")
	code, stdout, stderr := runScanBinary(t, "--port", "serial://"+path, "--json")
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "no answer at 38400 baud") || !strings.Contains(stderr, "?baud=115200") {
		t.Errorf("the rate search is not shown:\n%s", stderr)
	}
	var rep struct {
		VIN     string `json:"vin"`
		Adapter struct {
			AdaptiveTiming int `json:"adaptive_timing"`
		} `json:"adapter"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || rep.VIN != "LK6ADCE15PB405127" {
		t.Errorf("report: %v %q", err, rep.VIN)
	}
	// The genuine adapter proved aggressive adaptive timing at connect.
	if rep.Adapter.AdaptiveTiming != 2 || !strings.Contains(stderr, "timing aggressive (ATAT2)") {
		t.Errorf("adaptive timing %d, want 2 and shown:\n%s", rep.Adapter.AdaptiveTiming, stderr)
	}
}

func TestBinaryScanNotAnELM327(t *testing.T) {
	// A device that talks, but not ELM: a GPS receiver's NMEA sentences, no '>' ever.
	p := testenv.PTY(t)
	m := p.Master
	stopGPS := make(chan struct{})
	defer close(stopGPS)
	go func() {
		buf := make([]byte, 256)
		go func() {
			for {
				if _, err := m.Read(buf); err != nil {
					return
				}
			}
		}()
		for {
			select {
			case <-stopGPS:
				return
			case <-time.After(50 * time.Millisecond):
				m.Write([]byte("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"))
			}
		}
	}()
	code, _, stderr := runScanBinary(t, "--port", "serial://"+p.SlavePath)
	if code != exitNotAdapter {
		t.Errorf("exit %d, want %d\nstderr:\n%s", code, exitNotAdapter, stderr)
	}
	if el := errorLines(stderr); len(el) != 1 || !strings.Contains(el[0], "does not answer like an ELM327") {
		t.Errorf("want one error line saying it is not an ELM327, got %q\nstderr:\n%s", el, stderr)
	}
}

func TestBinaryScanMissingPort(t *testing.T) {
	code, _, stderr := runScanBinary(t, "--port", "serial:///dev/ttyUSB-obdgw-missing")
	if code != exitNoDevice {
		t.Errorf("exit %d, want %d\nstderr:\n%s", code, exitNoDevice, stderr)
	}
	if el := errorLines(stderr); len(el) != 1 || !strings.Contains(el[0], "plugged in") {
		t.Errorf("want one error line about the device, got %q", el)
	}
}

func TestScanUsage(t *testing.T) {
	for _, args := range [][]string{
		{"scan"},
		{"scan", "--port", "serial:///dev/null", "--lang", "fr"},
		{"scan", "--port", "serial:///dev/null", "--timeout", "0s"},
		{"scan", "--port", "x", "extra"},
	} {
		var out, errb bytes.Buffer
		if code := runMain(args, &out, &errb); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, errb.String())
		}
	}
}

// TestScanOpenErrorMapping covers causes a test cannot stage for real here (a busy port when
// running as root, who bypasses TIOCEXCL; a permission problem): one line, the right exit code.
func TestScanOpenErrorMapping(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		err  error
		code int
		want string
	}{
		{fmt.Errorf("elm327: %w", fmt.Errorf("serialport: open /dev/ttyUSB0: %w", serialport.ErrBusy)), exitNoDevice, "in use by another program"},
		{fmt.Errorf("elm327: %w", serialport.ErrPermission), exitNoDevice, "dialout"},
		{fmt.Errorf("elm327: %w", serialport.ErrNotFound), exitNoDevice, "plugged in"},
		{fmt.Errorf("elm327: 0100: %w", obd.ErrNoVehicle), exitNoVehicle, "ignition"},
		{&elm327.TimeoutError{Command: "ATZ", Raw: "\xff\xfe garbage\r\n"}, exitNotAdapter, "does not answer like an ELM327"},
		{errors.New("elm327: something else\non two lines"), exitFailure, "something else on two lines"},
	} {
		err := scanOpenError("serial:///dev/ttyUSB0", c.err, ctx)
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != c.code || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v → %v (code %v), want code %d and %q on one line", c.err, err, ee, c.code, c.want)
		}
	}
}

// TestBinaryScanAdapterFailsAfterConnect is issue 18: a car with the MIL on, P0420 and P0171
// behind an adapter that connects well and then answers every request with CAN ERROR, "?" or
// garbage. The scan must not come out as a clean car: MIL, codes and readiness are unknown
// (null in JSON, "unknown (step failed: …)" in text) and the exit code is 1.
func TestBinaryScanAdapterFailsAfterConnect(t *testing.T) {
	petrol, err := os.ReadFile(filepath.Join("..", "..", "..", "drivers", "elm327", "elm327sim", "scenarios", "petrol.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		word  string
		modes []string // "json", "en", "zh"
	}{
		{"CAN ERROR", []string{"json", "en", "zh"}},
		{"?", []string{"en"}},
		{"#%&!x", []string{"json"}},
	} {
		t.Run(c.word, func(t *testing.T) {
			sc := strings.Replace(string(petrol), "faults:\n", "faults:\n  fail_after_connect: '"+c.word+"'\n", 1)
			if sc == string(petrol) {
				t.Fatal("petrol.yaml has no faults section to extend")
			}
			file := filepath.Join(t.TempDir(), "fails.yaml")
			if err := os.WriteFile(file, []byte(sc), 0o644); err != nil {
				t.Fatal(err)
			}
			path, _ := startSim(t, "--scenario", file, "--baud", "2000000", "--latency", "0")
			for _, mode := range c.modes {
				args := []string{"--port", "serial://" + path, "--lang", mode}
				if mode == "json" {
					args = []string{"--port", "serial://" + path, "--json", "--lang", "en"}
				}
				code, stdout, stderr := runScanBinary(t, args...)
				if code != exitFailure {
					t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", mode, code, exitFailure, stdout, stderr)
				}
				if el := errorLines(stderr); len(el) != 1 || !strings.Contains(el[0], "readiness") || !strings.Contains(el[0], "dtcs_stored") {
					t.Errorf("%s: want one error line naming the steps that failed, got %q\nstderr:\n%s", mode, el, stderr)
				}
				switch mode {
				case "json":
					var rep struct {
						MIL       json.RawMessage            `json:"mil"`
						Readiness json.RawMessage            `json:"readiness"`
						DTCs      map[string]json.RawMessage `json:"dtcs"`
						Unread    []struct {
							Item, Step, Status, Reason string
						} `json:"unread"`
					}
					if err := json.NewDecoder(strings.NewReader(stdout)).Decode(&rep); err != nil {
						t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
					}
					if string(rep.MIL) != "null" || string(rep.Readiness) != "null" {
						t.Errorf("mil %s readiness %s, want null", rep.MIL, rep.Readiness)
					}
					for _, k := range []string{"stored", "pending", "permanent"} {
						if string(rep.DTCs[k]) != "null" {
							t.Errorf("dtcs.%s = %s, want null", k, rep.DTCs[k])
						}
					}
					failed := map[string]bool{}
					for _, u := range rep.Unread {
						failed[u.Item] = u.Status == "failed" && u.Reason != ""
					}
					for _, item := range []string{"mil", "readiness", "dtcs_stored", "dtcs_pending", "dtcs_permanent"} {
						if !failed[item] {
							t.Errorf("unread lacks %s as a failed step: %+v", item, rep.Unread)
						}
					}
				case "en", "zh":
					unknown := map[string]string{"en": "unknown (step failed: ", "zh": "未知（步骤失败："}[mode]
					if n := strings.Count(stdout, unknown); n < 3 {
						t.Errorf("%s text says %q %d times, want MIL, codes and readiness:\n%s", mode, unknown, n, stdout)
					}
					for _, clean := range map[string][]string{"en": {"none", " off"}, "zh": {"  无\n", "熄灭"}}[mode] {
						if strings.Contains(stdout, clean) {
							t.Errorf("%s text says %q for what was not read:\n%s", mode, clean, stdout)
						}
					}
				}
			}
		})
	}
}

// TestBinaryScanAdapterStalls: the adapter stops answering in the middle of the scan (the USB
// link stays up, nothing comes back). After two silent requests the link counts as lost: the
// scan ends with what it read (the VIN), what it did not read is unknown, not clean, and the
// exit code is 1 with one error line saying what to do.
func TestBinaryScanAdapterStalls(t *testing.T) {
	petrol, err := os.ReadFile(filepath.Join("..", "..", "..", "drivers", "elm327", "elm327sim", "scenarios", "petrol.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The connect's 0100, the supported-PID chains and the VIN come first; the stall starts
	// after them, inside the readiness and trouble-code steps.
	sc := strings.Replace(string(petrol), "faults:\n", "faults:\n  stall_after: 12\n", 1)
	if sc == string(petrol) {
		t.Fatal("petrol.yaml has no faults section to extend")
	}
	file := filepath.Join(t.TempDir(), "stalls.yaml")
	if err := os.WriteFile(file, []byte(sc), 0o644); err != nil {
		t.Fatal(err)
	}
	path, _ := startSim(t, "--scenario", file, "--baud", "2000000", "--latency", "0")
	code, stdout, stderr := runScanBinary(t, "--port", "serial://"+path, "--json", "--lang", "en")
	if code != exitFailure {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, exitFailure, stdout, stderr)
	}
	if el := errorLines(stderr); len(el) != 1 || !strings.Contains(el[0], "link to the adapter") {
		t.Errorf("want one error line about the lost link, got %q\nstderr:\n%s", el, stderr)
	}
	var rep struct {
		VIN    string          `json:"vin"`
		MIL    json.RawMessage `json:"mil"`
		Unread []struct {
			Item, Status string
		} `json:"unread"`
		Steps []struct {
			Name, Status string
		} `json:"steps"`
	}
	if err := json.NewDecoder(strings.NewReader(stdout)).Decode(&rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, stdout)
	}
	if rep.VIN != "LK6ADCE15PB405127" {
		t.Errorf("VIN %q: what was read before the stall is lost", rep.VIN)
	}
	unread := map[string]bool{}
	for _, u := range rep.Unread {
		unread[u.Item] = true
	}
	if !unread["dtcs_permanent"] || !unread["dtcs_pending"] {
		t.Errorf("trouble codes not marked unread after the stall: %+v\nsteps %+v", rep.Unread, rep.Steps)
	}
	if len(rep.Steps) == 0 || rep.Steps[len(rep.Steps)-1].Status != "failed" {
		t.Errorf("the scan did not end at the failed step: %+v", rep.Steps)
	}
	if testing.Verbose() {
		t.Logf("steps %+v", rep.Steps)
	}
}
