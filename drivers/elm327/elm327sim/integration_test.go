package elm327sim_test

// End-to-end through a real pseudo-terminal: the simulator on the master, the real
// serialport.Open (go-serial, termios, deadlines) and elm327.Open on the slave, and obd.Scan
// on top. Runs fast: unpaced output and no ECU latency unless a test is about pacing.

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/elm327"
	"github.com/obdgw/obdgw/drivers/elm327/elm327sim"
	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/hack/testenv"
	"github.com/obdgw/obdgw/obd"
)

// rig is a simulator serving a pty.
type rig struct {
	sim   *elm327sim.Sim
	addr  string
	done  chan error
	close func()
}

func serve(t testing.TB, sc elm327sim.Scenario, opts elm327sim.Options) *rig {
	t.Helper()
	return serveOn(t, sc, opts, false)
}

// serveOn is serve; with strictBaud the simulator answers only a host at its own rate.
func serveOn(t testing.TB, sc elm327sim.Scenario, opts elm327sim.Options, strictBaud bool) *rig {
	t.Helper()
	p := testenv.PTY(t)
	m := p.Master
	if strictBaud {
		opts.HostBaud = func() int { b, _ := serialport.PTYBaud(m); return b }
	}
	r := &rig{sim: elm327sim.New(sc, opts), addr: "serial://" + p.SlavePath, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- r.sim.Serve(ctx, m) }()
	var once sync.Once
	r.close = func() {
		once.Do(func() {
			cancel()
			p.Close()
		})
	}
	t.Cleanup(r.close)
	return r
}

func quick(t testing.TB, name string) elm327sim.Scenario {
	t.Helper()
	sc, err := elm327sim.Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	sc.Faults.SearchingDelay = 0
	sc.Adapter.ResetDelay = 0
	return sc
}

var fastOpts = elm327sim.Options{Baud: -1, NoLatency: true}

func open(t testing.TB, r *rig) *elm327.Adapter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ad, err := elm327.OpenContext(ctx, r.addr, elm327.Options{})
	if err != nil {
		t.Fatalf("elm327.Open(%s): %v\ncommands: %q", r.addr, err, r.sim.Stats().Commands)
	}
	t.Cleanup(func() { ad.Close() })
	return ad
}

func scan(t testing.TB, r *rig) *obd.Report {
	t.Helper()
	ad := open(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := obd.Scan(ctx, ad, obd.ScanOptions{Lang: "en"})
	if err != nil {
		t.Fatalf("scan: %v\ncommands: %q", err, r.sim.Stats().Commands)
	}
	noClear(t, r)
	return rep
}

// noClear: a scan must never send service 04 (elm327-obd.md §18).
func noClear(t testing.TB, r *rig) {
	t.Helper()
	st := r.sim.Stats()
	if st.Clears != 0 {
		t.Errorf("the scan cleared fault codes %d times", st.Clears)
	}
	if st.BareCRs != 0 {
		t.Errorf("the driver sent %d bare CRs (each repeats the previous command)", st.BareCRs)
	}
	for _, c := range st.Commands {
		if c == "04" || strings.HasPrefix(c, "04") && len(c)%2 == 1 {
			t.Errorf("the scan sent %q", c)
		}
	}
}

type code struct{ code, ecu string }

func codes(l []obd.DTC) []code {
	var out []code
	for _, d := range l {
		out = append(out, code{d.Code, d.ECU})
	}
	slices.SortFunc(out, func(a, b code) int { return strings.Compare(a.ecu+a.code, b.ecu+b.code) })
	return out
}

func wantCodes(t testing.TB, what string, got []obd.DTC, want ...code) {
	t.Helper()
	slices.SortFunc(want, func(a, b code) int { return strings.Compare(a.ecu+a.code, b.ecu+b.code) })
	if g := codes(got); !slices.Equal(g, want) {
		t.Errorf("%s: got %v, want %v", what, g, want)
	}
}

func ecu(t testing.TB, rep *obd.Report, id string) obd.ECUReport {
	t.Helper()
	for _, e := range rep.ECUs {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("no ECU %s in the report (have %v)", id, rep.ECUs)
	return obd.ECUReport{}
}

func checkPetrol(t testing.TB, rep *obd.Report, withTCU bool) {
	t.Helper()
	if rep.VIN != "LK6ADCE15PB405127" || !rep.VINValid {
		t.Errorf("VIN %q valid=%v", rep.VIN, rep.VINValid)
	}
	if rep.MIL == nil || !*rep.MIL {
		t.Error("MIL should be on")
	}
	stored := []code{{"P0420", "7E8"}, {"P0171", "7E8"}}
	if withTCU {
		stored = append(stored, code{"U0100", "7E9"})
	}
	wantCodes(t, "stored", rep.DTCs.Stored, stored...)
	wantCodes(t, "pending", rep.DTCs.Pending, code{"P0300", "7E8"})
	wantCodes(t, "permanent", rep.DTCs.Permanent, code{"P0420", "7E8"})
	inc := slices.Clone(rep.Readiness.Incomplete)
	slices.Sort(inc)
	if !slices.Equal(inc, []string{obd.MonCatalyst, obd.MonEvap}) {
		t.Errorf("incomplete monitors %v, want catalyst and evap", rep.Readiness.Incomplete)
	}
	if rep.OdometerKM == nil || *rep.OdometerKM != 123456.7 {
		t.Errorf("odometer %v", rep.OdometerKM)
	}
	e := ecu(t, rep, "7E8")
	if !slices.Equal(e.CALIDs, []string{"CNG6ECM-2205A311"}) || !slices.Equal(e.CVNs, []string{"3A9C0F5D", "000B7E21"}) {
		t.Errorf("7E8 CALIDs %v CVNs %v", e.CALIDs, e.CVNs)
	}
	if withTCU {
		e = ecu(t, rep, "7E9")
		if !slices.Equal(e.CALIDs, []string{"TCU8AT0301-0000"}) || !slices.Equal(e.CVNs, []string{"1F2E3D4C"}) {
			t.Errorf("7E9 CALIDs %v CVNs %v", e.CALIDs, e.CVNs)
		}
	}
}

func TestScanPetrol(t *testing.T) {
	t.Parallel()
	r := serve(t, quick(t, "petrol"), fastOpts)
	rep := scan(t, r)
	checkPetrol(t, rep, true)
	if !strings.Contains(rep.Protocol, "CAN 11/500") {
		t.Errorf("protocol %q", rep.Protocol)
	}
	if n := ecu(t, rep, "7E9").Name; !strings.Contains(n, "TransmissionCtl") {
		t.Errorf("7E9 name %q", n)
	}
	if !rep.Adapter.CountHint || !rep.Adapter.MultiPID || rep.Adapter.AdaptiveTiming != 2 {
		t.Errorf("a genuine adapter's profile: %+v, want count hint, multi-PID and ATAT2", rep.Adapter)
	}
}

// TestSlowECUKeepsPatientTiming: the transmission answers 20 ms after the engine. The
// search's 0100 under ATAT1 (which waits 30 ms for more here) hears both; under ATAT2 (10 ms)
// the adapter would stop before the transmission speaks, so the connect's probe catches it
// and the adapter stays at ATAT1, and the scan reads all of the transmission's data. With the
// count digit the probe runs again under ATAT1 and the digit stays in use; without it, 0100
// without a digit is the probe.
func TestSlowECUKeepsPatientTiming(t *testing.T) {
	for _, c := range []struct {
		name    string
		noCount bool
		connect []string // from ATAT2 on
	}{
		{"count digit", false, []string{"ATAT2", "01002", "ATAT1", "01002"}},
		{"no count digit", true, []string{"ATAT2", "01002", "0100", "ATAT1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sc := quick(t, "petrol")
			sc.ECUs[1].Delay = 20 * time.Millisecond
			sc.Faults.NoCountHint = c.noCount
			r := serve(t, sc, fastOpts)
			rep := scan(t, r)
			checkPetrol(t, rep, true)
			if rep.Adapter.CountHint == c.noCount || rep.Adapter.AdaptiveTiming != 1 {
				t.Errorf("profile %+v, want ATAT1 and count hint %v", rep.Adapter, !c.noCount)
			}
			cmds := r.sim.Stats().Commands
			if i := slices.Index(cmds, "ATAT2"); i < 0 || !slices.Equal(cmds[i:i+4], c.connect) {
				t.Errorf("connect did not try ATAT2 and fall back as %q: %q", c.connect, cmds)
			}
		})
	}
}

func TestScanDiesel29Bit(t *testing.T) {
	t.Parallel()
	r := serve(t, quick(t, "diesel"), fastOpts)
	rep := scan(t, r)
	if rep.VIN != "LZGJLGN47MX012345" || !rep.VINValid {
		t.Errorf("VIN %q valid=%v", rep.VIN, rep.VINValid)
	}
	wantCodes(t, "stored", rep.DTCs.Stored, code{"P2463", "18DAF110"})
	wantCodes(t, "pending", rep.DTCs.Pending, code{"P2002", "18DAF110"})
	wantCodes(t, "permanent", rep.DTCs.Permanent, code{"P2463", "18DAF110"})
	if !slices.Equal(rep.Readiness.Incomplete, []string{obd.MonPMFilter}) || !slices.Contains(rep.Readiness.Supported, obd.MonNOxSCR) {
		t.Errorf("readiness %+v", rep.Readiness)
	}
	if e := ecu(t, rep, "18DAF110"); !slices.Equal(e.CVNs, []string{"5E0A77C1"}) || e.IUPR == nil {
		t.Errorf("ECU %+v", e)
	}
}

func TestScanKLine(t *testing.T) {
	t.Parallel()
	r := serve(t, quick(t, "kline"), fastOpts)
	rep := scan(t, r)
	if rep.VIN != "LFV2A21K7N3056789" {
		t.Errorf("VIN %q", rep.VIN)
	}
	// five codes on two Mode 03 lines: a parser that reads one line shows three (python-OBD #284)
	wantCodes(t, "stored", rep.DTCs.Stored, code{"P0420", "10"}, code{"P0171", "10"}, code{"P0300", "10"}, code{"P2463", "10"}, code{"P0133", "10"})
	wantCodes(t, "pending", rep.DTCs.Pending, code{"P0301", "10"})
	wantCodes(t, "permanent", rep.DTCs.Permanent)
	if len(rep.Readiness.Incomplete) != 3 {
		t.Errorf("readiness %+v", rep.Readiness)
	}
	if e := ecu(t, rep, "10"); !slices.Equal(e.CALIDs, []string{"KWP14230ECU0042"}) || !slices.Equal(e.CVNs, []string{"0A0B0C0D"}) {
		t.Errorf("ECU %+v", e)
	}
}

func TestIgnitionOff(t *testing.T) {
	r := serve(t, quick(t, "ignition-off"), fastOpts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ad, err := elm327.OpenContext(ctx, r.addr, elm327.Options{})
	if err == nil {
		defer ad.Close()
		_, err = obd.Scan(ctx, ad, obd.ScanOptions{})
	}
	if !errors.Is(err, obd.ErrNoVehicle) {
		t.Fatalf("got %v, want obd.ErrNoVehicle", err)
	}
	if !strings.Contains(err.Error(), "ignition") {
		t.Errorf("the error should tell the user about the ignition: %v", err)
	}
	noClear(t, r)
}

func TestScanCloneV15(t *testing.T) {
	t.Parallel()
	r := serve(t, quick(t, "clone-v15"), fastOpts)
	rep := scan(t, r)
	if rep.VIN != "LK6ADCE15PB405127" {
		t.Errorf("VIN %q", rep.VIN)
	}
	wantCodes(t, "stored", rep.DTCs.Stored, code{"P0420", "7E8"}, code{"P0171", "7E8"}, code{"U0100", "7E9"})
	wantCodes(t, "pending", rep.DTCs.Pending, code{"P0300", "7E8"})
	if rep.Adapter.CountHint {
		t.Error("the clone does not support the count digit; the profile says it does")
	}
	if e := ecu(t, rep, "7E8"); !slices.Equal(e.CVNs, []string{"3A9C0F5D", "000B7E21"}) {
		t.Errorf("CVNs %v", e.CVNs)
	}
}

// TestFaults runs the petrol car with each fault on its own.
func TestFaults(t *testing.T) {
	for _, c := range []struct {
		name   string
		set    func(f *elm327sim.Faults)
		tcu    bool // the second ECU's data must come through
		expect func(t *testing.T, r *rig, rep *obd.Report)
	}{
		{name: "echo_after_reset", set: func(f *elm327sim.Faults) { f.EchoAfterReset = true }, tcu: true},
		{name: "crlf", set: func(f *elm327sim.Faults) { f.CRLF = true }, tcu: true},
		{name: "searching_delay", set: func(f *elm327sim.Faults) { f.SearchingDelay = 1500 * time.Millisecond }, tcu: true},
		{name: "no_count_hint", set: func(f *elm327sim.Faults) { f.NoCountHint = true }, tcu: true,
			expect: func(t *testing.T, r *rig, rep *obd.Report) {
				if rep.Adapter.CountHint || rep.Adapter.AdaptiveTiming != 2 {
					t.Errorf("profile %+v, want no count hint and ATAT2 (0100 without a digit proved it)", rep.Adapter)
				}
			}},
		{name: "no_count_hint_nodata", set: func(f *elm327sim.Faults) { f.NoCountHint, f.NoCountHintReply = true, "NO DATA" }, tcu: true},
		{name: "no_count_hint_ignored", set: func(f *elm327sim.Faults) { f.NoCountHint, f.NoCountHintReply = true, "ignore" }, tcu: true},
		{name: "no_multi_pid", set: func(f *elm327sim.Faults) { f.NoMultiPID = true }, tcu: true,
			expect: func(t *testing.T, r *rig, rep *obd.Report) {
				if rep.Adapter.MultiPID {
					t.Error("profile claims multi-PID")
				}
			}},
		{name: "late_second_ecu", set: func(f *elm327sim.Faults) { f.LateSecondECU = true }, tcu: false,
			expect: func(t *testing.T, r *rig, rep *obd.Report) {
				// Late frames may be dropped, never attributed to another request: no 7E9 code
				// may show up under a service that did not report it.
				for _, d := range append(rep.DTCs.Pending, rep.DTCs.Permanent...) {
					if d.ECU == "7E9" {
						t.Errorf("late frame misread as %+v", d)
					}
				}
			}},
		{name: "lv_reset_mid_scan", set: func(f *elm327sim.Faults) { f.LVResetAfter = 24 }, tcu: true,
			expect: func(t *testing.T, r *rig, rep *obd.Report) {
				if n := len(r.sim.Stats().Commands); n <= 25 {
					t.Errorf("the brown-out never happened (%d commands)", n)
				}
			}},
		{name: "bt_chatter", set: func(f *elm327sim.Faults) { f.BTChatter = true }, tcu: true},
		{name: "split_writes", set: func(f *elm327sim.Faults) { f.SplitWrites = true }, tcu: true},
		{name: "nul_bytes", set: func(f *elm327sim.Faults) { f.NULBytes = true }, tcu: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel() // each scan mostly waits on the simulated adapter
			sc := quick(t, "petrol")
			c.set(&sc.Faults)
			r := serve(t, sc, fastOpts)
			rep := scan(t, r)
			checkPetrol(t, rep, c.tcu)
			if c.expect != nil {
				c.expect(t, r, rep)
			}
		})
	}
}

// TestDisconnectMidReply: the link drops in the middle of an answer and the device is gone
// (the plug pulled). The open or the scan must end with an error naming the broken link —
// obd.ErrAdapterLost to the scan, which stops instead of failing every step left — never hang
// and never invent data.
func TestDisconnectMidReply(t *testing.T) {
	for _, after := range []int{3, 14, 25} {
		t.Run(strconv.Itoa(after), func(t *testing.T) {
			t.Parallel()
			sc := quick(t, "petrol")
			sc.Faults.DisconnectAfter = after
			r := serve(t, sc, fastOpts)
			go func() {
				<-r.done // Serve returned ErrDisconnected: pull the plug like a USB adapter would
				r.close()
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			ad, err := elm327.OpenContext(ctx, r.addr, elm327.Options{})
			var rep *obd.Report
			if err == nil {
				rep, err = obd.Scan(ctx, ad, obd.ScanOptions{})
				ad.Close()
			}
			if ctx.Err() != nil {
				t.Errorf("after %d replies: ran into the test's deadline: %v", after, err)
			}
			cancel()
			if !errors.Is(err, elm327.ErrDisconnected) {
				t.Errorf("after %d replies: %v, want elm327.ErrDisconnected", after, err)
			}
			if rep != nil {
				failed := 0
				for _, st := range rep.Steps {
					if st.Status == obd.StepFailed {
						failed++
					}
				}
				if failed != 1 {
					t.Errorf("after %d replies: %d failed steps, want the one where the link broke: %+v", after, failed, rep.Steps)
				}
			}
			if rep != nil && rep.VIN != "" && rep.VIN != "LK6ADCE15PB405127" {
				t.Errorf("after %d replies: invented VIN %q", after, rep.VIN)
			}
			noClear(t, r)
		})
	}
}

// TestClearOnceThroughTheDriver: a confirmed clear sends 04 exactly once; the codes are gone
// and every supported monitor is incomplete afterwards.
func TestClearOnceThroughTheDriver(t *testing.T) {
	t.Parallel()
	r := serve(t, quick(t, "petrol"), fastOpts)
	ad := open(t, r)
	ctx := context.Background()
	res, err := obd.ClearDTCs(ctx, ad, obd.Confirmation{VIN: "LK6ADCE15PB405127", ConfirmedBy: "staff-17", At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(slices.Values(res.Cleared)); !slices.Equal(got, []string{"7E8", "7E9"}) {
		t.Errorf("cleared %v", res.Cleared)
	}
	rep, err := obd.Scan(ctx, ad, obd.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := r.sim.Stats(); st.Clears != 1 {
		t.Errorf("04 reached the car %d times, want exactly once (commands %q)", st.Clears, st.Commands)
	}
	wantCodes(t, "stored after clear", rep.DTCs.Stored)
	wantCodes(t, "permanent after clear", rep.DTCs.Permanent, code{"P0420", "7E8"})
	if rep.MIL == nil || *rep.MIL || rep.Readiness == nil || len(rep.Readiness.Incomplete) != len(rep.Readiness.Supported) {
		t.Errorf("after a clear: MIL %v, readiness %+v", rep.MIL, rep.Readiness)
	}
}

// TestReopenSameSim: a client closes the pty and another opens it; the adapter answers again.
func TestReopenSameSim(t *testing.T) {
	t.Parallel()
	r := serve(t, quick(t, "petrol"), fastOpts)
	for i := 0; i < 2; i++ {
		ad := open(t, r)
		if _, err := ad.Query(context.Background(), obd.Req(0x01, 0x0D)); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		ad.Close()
	}
}

// TestPacedScanStaysNearItsBound checks the accounting, not the clock: the simulator's bound
// is positive and the scan's requests were counted.
func TestPacedScanAccounting(t *testing.T) {
	t.Parallel()
	sc := quick(t, "petrol")
	r := serve(t, sc, elm327sim.Options{Baud: 115200, Latency: 2 * time.Millisecond})
	scan(t, r)
	st := r.sim.Stats()
	if st.Requests < 20 || st.BytesOut < 1000 || st.ECULatency < time.Duration(st.Requests-st.NoDataWaits)*2*time.Millisecond/2 {
		t.Errorf("stats %+v", st)
	}
	if st.Bound() != st.Wire+st.ECULatency+st.Search {
		t.Errorf("bound %v", st.Bound())
	}
}

// TestFirstScanHints: on a first scan (nothing learned, no memory) every request goes out
// with a count digit: the sizes the car's own answers give, and for the rest the usual answer
// (obd Likely). The adapter waits out its timeout only where the petrol car differs from the
// usual: its transmission holds no freeze frame (02 00 00) and its engine sends 16 IUPR
// counters, not 20 (09 08). Its engine also sends two CVNs for one CALID: the adapter stops
// at the count with the transmission left out, and 09 06 goes again with the engine's two
// frames and the transmission's usual one, which costs no wait. Nothing is lost on the way,
// and a second scan, with every count learned, waits after none. Counts, not times: the
// simulator counts the waits it models.
func TestFirstScanHints(t *testing.T) {
	r := serve(t, quick(t, "petrol"), fastOpts)
	ad := open(t, r)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st0 := r.sim.Stats()
	rep, err := obd.Scan(ctx, ad, obd.ScanOptions{Lang: "en"})
	if err != nil {
		t.Fatal(err)
	}
	checkPetrol(t, rep, true)
	st1 := r.sim.Stats()
	sent := st1.Commands[len(st0.Commands):]
	if bare := bareRequests(sent); len(bare) != 0 {
		t.Errorf("requests without a count digit %q, want none; sent %q", bare, sent)
	}
	if !slices.Contains(sent, "09063") {
		t.Errorf("09 06 not asked again with three frames; sent %q", sent)
	}
	if got, want := st1.WaitedAfter[len(st0.WaitedAfter):], []string{"0200002", "09087"}; !slices.Equal(got, want) {
		t.Errorf("first scan waited after %q, want %q; sent %q", got, want, sent)
	}
	if _, err := obd.Scan(ctx, ad, obd.ScanOptions{}); err != nil {
		t.Fatal(err)
	}
	if st2 := r.sim.Stats(); st2.TimeoutWaits != st1.TimeoutWaits {
		t.Errorf("second scan waited after %q, want none; sent %q", st2.WaitedAfter[len(st1.WaitedAfter):], st2.Commands[len(st1.Commands):])
	}
	noClear(t, r)
}

// TestReturningCarHints: a car scanned before, on a new connection (the dongle re-plugged
// after the repair), is scanned with every answer sized from memory: the only wait left is the
// one at connect, where the adapter's first 0100 must learn who answers.
func TestReturningCarHints(t *testing.T) {
	r := serve(t, quick(t, "petrol"), fastOpts)
	mem := &obd.MapMemory{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for visit := 1; visit <= 2; visit++ {
		st0 := r.sim.Stats()
		ad := open(t, r)
		st1 := r.sim.Stats()
		rep, err := obd.Scan(ctx, ad, obd.ScanOptions{Memory: mem, Lang: "en"})
		if err != nil {
			t.Fatal(err)
		}
		ad.Close()
		checkPetrol(t, rep, true)
		st2 := r.sim.Stats()
		if visit == 1 {
			continue
		}
		if got := st1.TimeoutWaits - st0.TimeoutWaits; got != 1 {
			t.Errorf("connect: %d timeout waits, want 1 (the first 0100)", got)
		}
		if got := st2.TimeoutWaits - st1.TimeoutWaits; got != 0 {
			t.Errorf("returning car: %d timeout waits in the scan, want 0; sent %q", got, st2.Commands[len(st1.Commands):])
		}
		if bare := bareRequests(st2.Commands[len(st1.Commands):]); len(bare) > 0 {
			t.Errorf("%q went out without a count digit", bare)
		}
	}
	noClear(t, r)
}

// TestFirstScanInterleaved: with the ECUs' frames interleaved, the usual one-CVN count stops
// the adapter after the engine's first frame and the transmission's answer, so the engine's
// message is cut short; its first frame announces 11 bytes, so 09 06 goes again for three
// frames, without a wait, and nothing is lost.
func TestFirstScanInterleaved(t *testing.T) {
	t.Parallel()
	sc := quick(t, "petrol")
	sc.Adapter.Interleave = true
	r := serve(t, sc, fastOpts)
	rep := scan(t, r)
	checkPetrol(t, rep, true)
	st := r.sim.Stats()
	if i := slices.Index(st.Commands, "09062"); i < 0 || i+1 == len(st.Commands) || st.Commands[i+1] != "09063" {
		t.Errorf("09 06 not asked again for three frames: %q", st.Commands)
	}
	// Only the connect's resync and search go without a digit.
	if bare := bareRequests(st.Commands); slices.Contains(st.WaitedAfter, "09063") || !slices.Equal(bare, []string{"7F7F", "7F7F", "0100"}) {
		t.Errorf("waited after %q; requests without a digit %q", st.WaitedAfter, bare)
	}
	if e := ecu(t, rep, "7E8"); !slices.Equal(e.CVNs, []string{"3A9C0F5D", "000B7E21"}) {
		t.Errorf("engine CVNs %q", e.CVNs)
	}
}

// bareRequests lists the OBD requests among cmds sent without a count digit: an even number
// of hex digits, short of the 7 bytes that leave no room for one.
func bareRequests(cmds []string) []string {
	var out []string
	for _, c := range cmds {
		if !strings.HasPrefix(c, "AT") && !strings.HasPrefix(c, "ST") && len(c)%2 == 0 && len(c) < 14 {
			out = append(out, c)
		}
	}
	return out
}

// TestRememberedSizeTooSmall: memory that undersizes an answer (the car has more CALIDs than
// last time) costs a repeat, not an answer: the adapter sees the cut-short message, asks again
// without the digit, and the late frames do not leak into the next answer.
func TestRememberedSizeTooSmall(t *testing.T) {
	r := serve(t, quick(t, "petrol"), fastOpts)
	mem := &obd.MapMemory{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ad := open(t, r)
	if _, err := obd.Scan(ctx, ad, obd.ScanOptions{Memory: mem}); err != nil {
		t.Fatal(err)
	}
	ad.Close()
	a, ok := mem.Recall("LK6ADCE15PB405127")
	if !ok {
		t.Fatal("nothing remembered")
	}
	a.Requests["0904"] = []obd.Answer{{ECU: "7E8", Len: 7}, {ECU: "7E9", Len: 7}} // one frame each; three come
	a.Requests["0906"] = []obd.Answer{{ECU: "7E8", Len: 7}, {ECU: "7E9", Len: 7}} // the engine sends two CVNs
	mem.Remember("LK6ADCE15PB405127", a)

	rep, err := obd.Scan(ctx, open(t, r), obd.ScanOptions{Memory: mem, Lang: "en"})
	if err != nil {
		t.Fatal(err)
	}
	checkPetrol(t, rep, true)
	if e := ecu(t, rep, "7E8"); !slices.Equal(e.CVNs, []string{"3A9C0F5D", "000B7E21"}) {
		t.Errorf("engine CVNs %v", e.CVNs)
	}
	if e := ecu(t, rep, "7E9"); !slices.Equal(e.CALIDs, []string{"TCU8AT0301-0000"}) || !slices.Equal(e.CVNs, []string{"1F2E3D4C"}) {
		t.Errorf("transmission CALIDs %v CVNs %v", e.CALIDs, e.CVNs)
	}
	// What the car really answered replaced the wrong sizes.
	if a, _ := mem.Recall("LK6ADCE15PB405127"); len(a.Requests["0904"]) != 2 || a.Requests["0904"][0].Len != 19 {
		t.Errorf("0904 remembered as %v", a.Requests["0904"])
	}
	noClear(t, r)
}

// TestBaudSearch: an adapter at 115200 behind an address that names no rate is found by trying
// the usual rates over a real pty whose line rate the simulator checks: the scan is complete,
// the user is told what was tried and which rate to write into the address. An address that
// names a rate is opened at that rate only, and a wrong one fails with the usual hint.
func TestBaudSearch(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("a pty's line rate can be read on Linux only (serialport.PTYBaud)")
	}
	t.Parallel()
	r := serveOn(t, quick(t, "petrol"), elm327sim.Options{Baud: 115200, NoLatency: true}, true)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var said []string
	ad, err := elm327.OpenContext(ctx, r.addr, elm327.Options{BaudProgress: func(m string) { said = append(said, m) }})
	if err != nil {
		t.Fatalf("open: %v (said %q)", err, said)
	}
	if d := ad.Profile().Device; !strings.HasSuffix(d, "@115200") {
		t.Errorf("device %q, want it opened at 115200", d)
	}
	rep, err := obd.Scan(ctx, ad, obd.ScanOptions{Lang: "en"})
	ad.Close()
	if err != nil {
		t.Fatal(err)
	}
	checkPetrol(t, rep, true)
	if len(said) == 0 || !strings.Contains(said[0], "no answer at 38400 baud") || !strings.Contains(said[len(said)-1], "?baud=115200") {
		t.Errorf("progress %q", said)
	}
	garbled := r.sim.Stats().Garbled
	if garbled == 0 {
		t.Error("no rate was tried but the right one: the test proves nothing")
	}
	if ad.Baud() != 115200 {
		t.Errorf("Baud() %d, want 115200", ad.Baud())
	}
	// The rate found, given back (the daemon keeps it per bay), is tried first.
	said = nil
	ad, err = elm327.OpenContext(ctx, r.addr, elm327.Options{Baud: 115200, BaudProgress: func(m string) { said = append(said, m) }})
	if err != nil {
		t.Fatal(err)
	}
	ad.Close()
	if g := r.sim.Stats().Garbled; g != garbled || ad.Baud() != 115200 {
		t.Errorf("remembered rate not tried first: %d more noise bytes, Baud() %d; said %q", g-garbled, ad.Baud(), said)
	}

	said = nil
	_, err = elm327.OpenContext(ctx, r.addr+"?baud=38400", elm327.Options{ATTimeout: 200 * time.Millisecond, ResetTimeout: 300 * time.Millisecond, BaudProgress: func(m string) { said = append(said, m) }})
	var te *elm327.TimeoutError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "baud rate") {
		t.Errorf("wrong configured rate: %v, want a timeout naming the baud rate", err)
	}
	if len(said) != 0 {
		t.Errorf("a configured rate was searched: %q", said)
	}
	noClear(t, r)
}
