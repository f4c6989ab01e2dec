package elm327sim

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuiltinsParse(t *testing.T) {
	names := Builtins()
	for _, want := range []string{"petrol", "diesel", "kline", "ignition-off", "clone-v15"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("built-in scenario %q missing (have %v)", want, names)
		}
	}
	for _, n := range names {
		sc, err := Builtin(n)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		if sc.Name != n {
			t.Errorf("%s: name %q", n, sc.Name)
		}
	}
	if _, err := Builtin("nope"); err == nil || !strings.Contains(err.Error(), "petrol") {
		t.Errorf("unknown name: %v", err)
	}
}

func TestParseErrorsNameTheKey(t *testing.T) {
	base := func(extra string) string {
		return "name: x\nprotocol: \"6\"\necus:\n  - id: 7E8\n" + extra
	}
	for _, c := range []struct{ doc, want string }{
		{base("    dtcs:\n      stored: [P0420, X0420]\n"), `ecus[0].dtcs.stored[1]: "X0420" is not a fault code`},
		{base("    readiness: 82 07 65\n"), `ecus[0].readiness: "82 07 65" is not 4 bytes`},
		{base("    pids:\n      \"0C\": \"0G E4\"\n"), `ecus[0].pids.0C: "0G E4" is not hex`},
		{base("    pids:\n      \"20\": \"00 00 00 01\"\n"), `ecus[0].pids.20: supported-PID bitmaps are computed`},
		{base("    cvns: [3A9C0F]\n"), `ecus[0].cvns[0]: "3A9C0F" is not 4 bytes`},
		{base("    calids: [ABCDEFGHIJKLMNOPQ]\n"), `ecus[0].calids[0]`},
		{base("    ecu_name: EngineControlModule\n"), `ecus[0].ecu_name`},
		{base("    padding: XY\n"), `ecus[0].padding`},
		{base("    negative:\n      \"0A\": \"1\"\n"), `ecus[0].negative.0A`},
		{base("    colour: red\n"), `line 5: field colour not found under ecus[]`},
		{"protocol: \"6\"\nfaults:\n  echo: true\necus: [{id: 7E8}]\n", `line 3: field echo not found under faults`},
		{base("  - id: 7E8\n"), `ecus[1].id: "7E8" appears twice`},
		{"protocol: \"6\"\necus:\n  - id: 7E0\n", `ecus[0].id: "7E0" is not an 11-bit OBD response ID`},
		{"protocol: \"7\"\necus:\n  - id: 7E8\n", `ecus[0].id: "7E8" is not a 29-bit OBD response ID`},
		{"protocol: \"2\"\necus:\n  - id: \"10\"\n", `protocol: "2" is not a simulated ELM protocol number`},
		{"protocol: \"6\"\n", `ecus: a running vehicle needs at least one ECU`},
		{base("") + "vin: ABC\n", `vin: "ABC" has 3 characters`},
		{base("") + "baud: 12\n", `baud: 12 is not a serial rate`},
		{base("") + "latency: fast\n", `cannot unmarshal`},
		{base("") + "faults:\n  no_count_hint_reply: maybe\n", `faults.no_count_hint_reply`},
		{"", "empty document"},
	} {
		_, err := Parse([]byte(c.doc))
		if err == nil || !errors.Is(err, ErrScenario) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q:\n got %v\nwant an ErrScenario containing %q", c.doc, err, c.want)
		}
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mine.yaml")
	data, _ := builtin.ReadFile("scenarios/petrol.yaml")
	data = []byte(strings.Replace(string(data), "P0171", "P0172", 1))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if sc.ECUs[0].DTCs.Stored[1] != "P0172" {
		t.Errorf("loaded %v", sc.ECUs[0].DTCs.Stored)
	}
	if _, err := Load("petrol"); err != nil {
		t.Errorf("built-in through Load: %v", err)
	}
	os.WriteFile(p, []byte("protocol: \"6\"\necus:\n  - id: 7E8\n    readiness: zz\n"), 0o644)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "mine.yaml") || !strings.Contains(err.Error(), "ecus[0].readiness") {
		t.Errorf("bad file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestInvalidScenarioFailsServe(t *testing.T) {
	sc := Scenario{Protocol: "6", ECUs: []ECUSpec{{ID: "7E8", Readiness: "00"}}}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	err := New(sc, Options{}).Serve(context.Background(), b)
	if !errors.Is(err, ErrScenario) || sc.Validate() == nil {
		t.Errorf("Serve: %v", err)
	}
}

// FuzzParseScenario: scenario files come from users; Parse must reject junk with an error,
// never panic, and whatever it accepts must compile for the simulator.
func FuzzParseScenario(f *testing.F) {
	for _, n := range Builtins() {
		data, _ := builtin.ReadFile("scenarios/" + n + ".yaml")
		f.Add(data)
	}
	f.Add([]byte("protocol: \"6\"\necus:\n  - id: 7E8\n    dtcs: {stored: [U3FFF]}\n"))
	f.Add([]byte("protocol: 5\necus: [{id: \"10\", pids: {\"0c\": \"\"}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrScenario) {
				t.Fatalf("error does not wrap ErrScenario: %v", err)
			}
			return
		}
		if err := sc.Validate(); err != nil {
			t.Fatalf("accepted scenario fails validation: %v", err)
		}
	})
}

// FuzzServe throws arbitrary host bytes at the simulator: it must answer or ignore them and
// never panic or hang (a driver's garbage must not take the simulator down with it).
func FuzzServe(f *testing.F) {
	f.Add([]byte("ATZ\rATE0\rATH1\r0100\r0902\r"), "petrol", uint16(0))
	f.Add([]byte("ATSP0\r\r\r03\r04\r\r"), "kline", uint16(0x0F))
	f.Add([]byte("01001\r0100F\r0\r7F7F\rSTI\rATSH7E1\r0101\r"), "clone-v15", uint16(0))
	f.Add([]byte("ATSPA7\rATH1\rATS0\r0904\r0906\r090A\r0908\r020200\r"), "diesel", uint16(0x1F0))
	f.Add([]byte("ATSP6\r0100\r"), "ignition-off", uint16(0))
	f.Add([]byte("ATH1\r01002\r01001\rATI\r0100\n\r"), "petrol", uint16(0x3FF))
	f.Fuzz(func(t *testing.T, in []byte, name string, faults uint16) {
		sc, err := Builtin(name)
		if err != nil {
			return
		}
		bit := func(i int) bool { return faults&(1<<i) != 0 }
		f := &sc.Faults
		f.EchoAfterReset, f.CRLF, f.IgnitionOff, f.NoCountHint = bit(0), bit(1), f.IgnitionOff || bit(2), bit(3)
		f.NoMultiPID, f.LateSecondECU, f.BTChatter, f.NULBytes = bit(4), bit(5), bit(6), bit(7)
		sc.Adapter.Interleave, sc.Adapter.TrailingSpace = bit(8), bit(9)
		if bit(10) {
			f.LVResetAfter = int(faults>>11) + 1
		} else if faults>>11 != 0 {
			f.DisconnectAfter = int(faults >> 11)
		}
		f.SearchingDelay, sc.Adapter.ResetDelay, f.SplitWrites = 0, 0, false
		a, b := net.Pipe()
		defer a.Close()
		sim := New(sc, Options{Baud: -1, NoLatency: true, Timeout: time.Nanosecond})
		done := make(chan error, 1)
		t0 := time.Now()
		go func() { done <- sim.Serve(context.Background(), b) }()
		defer func() {
			if d := time.Since(t0); d > 2*time.Second {
				t.Errorf("%d input bytes took %v", len(in), d)
			}
		}()
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, err := a.Read(buf); err != nil {
					return
				}
			}
		}()
		go func() {
			// Serve may stop reading (a disconnect fault); the writes must not block the test.
			a.SetWriteDeadline(time.Now().Add(5 * time.Second))
			a.Write(in)
			a.Write([]byte("\rATI\r"))
			a.Close()
			b.Close()
		}()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, ErrDisconnected) && !strings.Contains(err.Error(), "closed") {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve hung")
		}
	})
}
