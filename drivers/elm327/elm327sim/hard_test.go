package elm327sim_test

// Adapters that misbehave without end — a search that never finishes, an adapter that goes
// silent mid-scan, one that floods the line, one that prints terminal garbage — over a real
// pty. None may hold the caller for ever, none may make memory grow, and none may pass for a
// car that answered.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/elm327"
	"github.com/obdgw/obdgw/drivers/elm327/elm327sim"
	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/obd"
)

// countingPort counts the bytes the driver read from the adapter.
type countingPort struct {
	serialport.Port
	n *atomic.Int64
}

func (p countingPort) Read(b []byte) (int, error) {
	n, err := p.Port.Read(b)
	p.n.Add(int64(n))
	return n, err
}

// openCounting opens r's pty with the real serialport.Open and initialises the adapter over
// a port that counts what the driver reads, reopens included.
func openCounting(t testing.TB, ctx context.Context, r *rig, opts elm327.Options) (*elm327.Adapter, *atomic.Int64, error) {
	t.Helper()
	var n atomic.Int64
	open := func(context.Context) (serialport.Port, error) {
		p, err := serialport.Open(r.addr)
		if err != nil {
			return nil, err
		}
		return countingPort{Port: p, n: &n}, nil
	}
	opts.Reopen = open
	p, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := elm327.NewContext(ctx, p, opts)
	if err != nil {
		p.Close()
		return nil, &n, err
	}
	t.Cleanup(func() { ad.Close() })
	return ad, &n, nil
}

// noControl fails when s holds a control character other than tab or LF: adapter output
// must reach errors and logs escaped.
func noControl(t testing.TB, what, s string) {
	t.Helper()
	for _, c := range s {
		if c < 0x20 && c != '\t' && c != '\n' || c == 0x7F || c == 0x9B {
			t.Errorf("%s holds the raw control character %U: %q", what, c, s)
			return
		}
	}
}

// connectSearchingForever connects to a car whose adapter prints SEARCHING... without end and
// returns the bytes read and the connect's error; a connect that runs into the test's own
// 20 s deadline fails the test.
func connectSearchingForever(t *testing.T, opts elm327.Options) (*atomic.Int64, error) {
	t.Helper()
	sc := quick(t, "petrol")
	sc.Faults.SearchingForever = true
	r := serve(t, sc, fastOpts)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, n, err := openCounting(t, ctx, r, opts)
	if ctx.Err() != nil {
		t.Fatalf("the connect ran into the test's deadline: %v", err)
	}
	return n, err
}

// TestSearchingForever: an adapter that prints SEARCHING... again and again, never a prompt.
// Each line used to extend the read deadline, so the connect never ended (and the bytes
// piled up); the search now has a bounded deadline however many progress lines come, the
// connect fails with ErrNoVehicle and says the adapter kept searching.
func TestSearchingForever(t *testing.T) {
	t.Parallel()
	n, err := connectSearchingForever(t, elm327.Options{SearchTimeout: 500 * time.Millisecond})
	if !errors.Is(err, obd.ErrNoVehicle) || !strings.Contains(err.Error(), "SEARCHING") {
		t.Fatalf("connect: %v, want obd.ErrNoVehicle naming the endless search", err)
	}
	noControl(t, "the error", err.Error())
	if got := n.Load(); got > 2*elm327.MaxReply {
		t.Errorf("read %d bytes during the connect, want at most %d", got, 2*elm327.MaxReply)
	}
}

// TestConnectDeadline: the connect as a whole has one deadline (Options.ConnectTimeout),
// whatever its steps' own ones add up to. (NoQuick: straight to the search, the step named.)
func TestConnectDeadline(t *testing.T) {
	t.Parallel()
	_, err := connectSearchingForever(t, elm327.Options{ConnectTimeout: 300 * time.Millisecond, NoQuick: true})
	if !errors.Is(err, elm327.ErrConnectTimeout) || !strings.Contains(err.Error(), "protocol search") {
		t.Fatalf("connect: %v, want elm327.ErrConnectTimeout naming the step it was in", err)
	}
}

// TestFlood: an adapter that sends frames without end and no prompt. The driver reads at
// most MaxReply bytes of one answer, then fails the request, resets the link and
// re-initialises; the scan stops with the adapter lost, never reading the whole flood.
func TestFlood(t *testing.T) {
	t.Parallel()
	sc := quick(t, "petrol")
	sc.Faults.Flood = true
	r := serve(t, sc, fastOpts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ad, n, err := openCounting(t, ctx, r, elm327.Options{QueryTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	before := n.Load()
	_, err = ad.Query(ctx, obd.Req(0x01, 0x01))
	if ctx.Err() != nil {
		t.Fatalf("the request ran into the test's deadline: %v", err)
	}
	if !errors.Is(err, elm327.ErrDisconnected) || !strings.Contains(err.Error(), "without a prompt") {
		t.Fatalf("query: %v, want elm327.ErrDisconnected naming the flood", err)
	}
	// One answer's cap, the drain before the next command and what is in the pty's buffer
	// when the link is reset; the flood is a mebibyte.
	if got, bound := n.Load()-before, int64(8*elm327.MaxReply); got > bound {
		t.Errorf("read %d bytes for one request, want at most %d", got, bound)
	}
	rep, err := obd.Scan(ctx, ad, obd.ScanOptions{})
	if !errors.Is(err, obd.ErrAdapterLost) || rep == nil {
		t.Fatalf("scan: %v, want obd.ErrAdapterLost and the partial report", err)
	}
	if !rep.IsUnread(obd.ItemMIL) || rep.MIL != nil {
		t.Errorf("MIL %v, unread %+v: want it unknown", rep.MIL, rep.Unread)
	}
	noClear(t, r)
}

// TestGarbage: answers full of escape sequences, bare CRs, NULs and DEL. Every error the
// driver and the scan build from them shows those bytes escaped.
func TestGarbage(t *testing.T) {
	t.Parallel()
	sc := quick(t, "petrol")
	sc.Faults.Garbage = true
	r := serve(t, sc, fastOpts)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ad, _, err := openCounting(t, ctx, r, elm327.Options{Logger: log})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	_, err = ad.Query(ctx, obd.Req(0x01, 0x01))
	if err == nil {
		t.Fatal("a garbage answer was taken as data")
	}
	noControl(t, "the query's error", err.Error())
	rep, err := obd.Scan(ctx, ad, obd.ScanOptions{Logger: log})
	if err == nil && len(rep.Unread) == 0 {
		t.Fatal("a scan of garbage read everything")
	}
	if err != nil {
		noControl(t, "the scan's error", err.Error())
	}
	for _, st := range rep.Steps {
		noControl(t, "step "+st.Name, st.Error)
	}
	for _, x := range rep.Audit {
		noControl(t, "audit of "+x.Request, x.Error)
	}
	for _, u := range rep.Unread {
		noControl(t, "unread "+u.Item, u.Reason)
	}
	noControl(t, "the log", logs.String())
}

// stepStarts runs a good scan of sc and returns, for each step that sends requests, how many
// OBD requests and how many commands in all the adapter had taken before it.
func stepStarts(t *testing.T, sc elm327sim.Scenario) (names []string, requests, commands map[string]int) {
	t.Helper()
	r := serve(t, sc, fastOpts)
	ad, _, err := openCounting(t, context.Background(), r, stallOpts)
	if err != nil {
		t.Fatal(err)
	}
	requests, commands = map[string]int{}, map[string]int{}
	prevReq, prevCmd := r.sim.Stats().Requests, len(r.sim.Stats().Commands)
	log := slog.New(stepHook(func(step string, n int) {
		st := r.sim.Stats()
		if n > 0 {
			names = append(names, step)
			requests[step], commands[step] = prevReq, prevCmd
		}
		prevReq, prevCmd = st.Requests, len(st.Commands)
	}))
	if _, err := obd.Scan(context.Background(), ad, obd.ScanOptions{Logger: log}); err != nil {
		t.Fatal(err)
	}
	return names, requests, commands
}

// stepHook calls f with each finished scan step and its request count.
type stepHook func(step string, requests int)

func (h stepHook) Enabled(context.Context, slog.Level) bool { return true }
func (h stepHook) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "obd scan step" {
		return nil
	}
	var step string
	var n int
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "step":
			step = a.Value.String()
		case "requests":
			n = int(a.Value.Int64())
		}
		return true
	})
	h(step, n)
	return nil
}
func (h stepHook) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h stepHook) WithGroup(string) slog.Handler      { return h }

// stallOpts keep a silent adapter's cost short.
var stallOpts = elm327.Options{QueryTimeout: time.Second, ATTimeout: 300 * time.Millisecond, ResetTimeout: 500 * time.Millisecond}

// TestAdapterGoneAtEveryStep: the adapter goes silent (stall_after) or the link drops and the
// device disappears (disconnect_after) at the first request of each step of the scan. The
// scan ends with obd.ErrAdapterLost and the report of what it read: the step that met the
// fault failed, no step after it ran, and whatever of MIL, readiness and codes was not read
// is marked unread — never a clean car, never a hang.
func TestAdapterGoneAtEveryStep(t *testing.T) {
	t.Parallel()
	names, requests, commands := stepStarts(t, quick(t, "petrol"))
	if len(names) < 8 {
		t.Fatalf("steps with requests: %v", names)
	}
	for _, mode := range []string{"stall", "disconnect"} {
		for _, step := range names {
			t.Run(mode+"/"+step, func(t *testing.T) {
				t.Parallel()
				sc := quick(t, "petrol")
				if mode == "stall" {
					sc.Faults.StallAfter = requests[step]
				} else {
					sc.Faults.DisconnectAfter = commands[step]
				}
				r := serve(t, sc, fastOpts)
				if mode == "disconnect" {
					go func() {
						<-r.done // the plug pulled, as a USB adapter's
						r.close()
					}()
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				ad, _, err := openCounting(t, ctx, r, stallOpts)
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				rep, err := obd.Scan(ctx, ad, obd.ScanOptions{})
				if ctx.Err() != nil {
					t.Fatalf("the scan ran into the test's deadline: %v", err)
				}
				if !errors.Is(err, obd.ErrAdapterLost) {
					t.Fatalf("scan: %v, want obd.ErrAdapterLost", err)
				}
				if rep == nil {
					t.Fatal("no partial report")
				}
				last := rep.Steps[len(rep.Steps)-1]
				if last.Name != step || last.Status != obd.StepFailed {
					t.Errorf("last step %s %s, want %s failed (steps %s)", last.Name, last.Status, step, stepList(rep))
				}
				// An item is read when its step came before the one that met the fault.
				for item, itemStep := range map[string]string{obd.ItemReadiness: "readiness", obd.ItemDTCsStored: "dtcs_stored",
					obd.ItemDTCsPending: "dtcs_pending", obd.ItemDTCsPermanent: "dtcs_permanent"} {
					want := slices.Index(names, itemStep) >= slices.Index(names, step)
					if rep.IsUnread(item) != want {
						t.Errorf("%s unread %v, want %v (unread %+v)", item, !want, want, rep.Unread)
					}
				}
				if rep.MIL == nil && !rep.IsUnread(obd.ItemMIL) {
					t.Error("MIL unknown but not marked unread")
				}
				noClear(t, r)
			})
		}
	}
}

func stepList(rep *obd.Report) string {
	var b strings.Builder
	for _, st := range rep.Steps {
		fmt.Fprintf(&b, "%s:%s ", st.Name, st.Status)
	}
	return b.String()
}
