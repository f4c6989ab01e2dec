package daemon

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/drivers/elm327/elm327sim"
	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/drivers/serialport/ptypair"
	"github.com/obdgw/obdgw/gateway/bay"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/obd"
)

func openMemory(t *testing.T, max int) (*memory, *buffer.DB, *time.Time) {
	t.Helper()
	db, err := buffer.Open(filepath.Join(t.TempDir(), StoreFile), buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	m := &memory{db: db, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: func() time.Time { return now }, max: max}
	return m, db, &now
}

func TestMemoryKeepsAnswersInTheBufferFile(t *testing.T) {
	m, _, _ := openMemory(t, 10)
	if _, ok := m.Recall("LK6ADCE15PB405127"); ok {
		t.Fatal("an empty memory recalled a car")
	}
	a := obd.Answers{ECUs: []string{"7E8", "7E9"}, Requests: map[string][]obd.Answer{"0904": {{ECU: "7E8", Len: 19}}}, Codes: map[string]string{"7E8": "43 00 | 47 00"}}
	m.Remember("LK6ADCE15PB405127", a)
	got, ok := m.Recall("LK6ADCE15PB405127")
	if !ok || !slices.Equal(got.ECUs, a.ECUs) || got.Requests["0904"][0] != a.Requests["0904"][0] || got.Codes["7E8"] != "43 00 | 47 00" {
		t.Errorf("recalled %+v, %v", got, ok)
	}
}

// TestMemoryForgetsTheOldestCar: past its limit the memory forgets the car scanned longest ago.
func TestMemoryForgetsTheOldestCar(t *testing.T) {
	m, _, now := openMemory(t, 3)
	vins := []string{"VIN00000000000001", "VIN00000000000002", "VIN00000000000003", "VIN00000000000004", "VIN00000000000005"}
	for _, v := range vins {
		*now = now.Add(time.Hour)
		m.Remember(v, obd.Answers{ECUs: []string{"7E8"}})
	}
	*now = now.Add(time.Hour)
	m.Remember(vins[2], obd.Answers{ECUs: []string{"7E8"}}) // seen again: now the newest
	*now = now.Add(time.Hour)
	m.Remember("VIN00000000000006", obd.Answers{ECUs: []string{"7E8"}})
	for _, v := range vins {
		_, ok := m.Recall(v)
		if want := v == vins[2] || v == vins[4]; ok != want {
			t.Errorf("%s kept %v, want %v", v, ok, want)
		}
	}
	if _, ok := m.Recall("VIN00000000000006"); !ok {
		t.Error("the newest car was not kept")
	}
}

// TestMemoryIgnoresUnreadableEntries: a damaged entry is a car not seen before, not a failure,
// and the entries beside it stay readable.
func TestMemoryIgnoresUnreadableEntries(t *testing.T) {
	m, db, _ := openMemory(t, 10)
	m.Remember("GOOD0000000000001", obd.Answers{ECUs: []string{"7E8"}})
	if err := db.Update(func(tx *buffer.Tx) error {
		if err := tx.Put(bucketAnswers, "BAD00000000000001", []byte("\x00\x00\x00\x00\x00\x00\x00\x01{not json")); err != nil {
			return err
		}
		if err := tx.Put(bucketAnswers, "BAD00000000000002", []byte("{}")); err != nil {
			return err
		}
		if err := tx.Put(bucketBaud, "bay1", []byte("fast")); err != nil {
			return err
		}
		return tx.Put(bucketProtocol, "bay1", []byte("66; rm -rf"))
	}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"BAD00000000000001", "BAD00000000000002"} {
		if _, ok := m.Recall(v); ok {
			t.Errorf("%s recalled", v)
		}
	}
	if _, ok := m.Recall("GOOD0000000000001"); !ok {
		t.Error("a good entry was lost")
	}
	if p := m.protocol("bay1"); p != "" {
		t.Errorf("protocol %q from a damaged entry", p)
	}
	m.setProtocol("bay1", "A6")
	if p := m.protocol("bay1"); p != "6" {
		t.Errorf("protocol %q after ATDPN said A6, want 6", p)
	}
	if b := m.baud("bay1"); b != 0 {
		t.Errorf("baud %d from a damaged entry", b)
	}
	m.setBaud("bay1", 115200)
	if b := m.baud("bay1"); b != 115200 {
		t.Errorf("baud %d after the adapter answered at 115200", b)
	}
}

// TestBayRemembersProtocolAndCar: a bay's adapter is opened the way `obdgw run` opens it, over
// a real pty, at 115200 baud behind an address that names no rate (the simulator answers
// only a client at its rate). After one session the buffer file holds the rate found, the
// protocol the car talked and the sizes of its answers; a gateway restarted on the same file
// opens the adapter at that rate first (no noise), tells it to try that protocol first
// (ATSP A6, no search) and scans the returning car without waiting out the adapter's timeout
// after any request.
func TestBayRemembersProtocolAndCar(t *testing.T) {
	sc, err := elm327sim.Builtin("petrol")
	if err != nil {
		t.Fatal(err)
	}
	sc.Adapter.ResetDelay = 0
	p, err := ptypair.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	hostBaud := func() int { b, _ := serialport.PTYBaud(p.Master); return b }
	sim := elm327sim.New(sc, elm327sim.Options{Baud: 115200, NoLatency: true, HostBaud: hostBaud})
	simCtx, stopSim := context.WithCancel(context.Background())
	defer stopSim()
	go sim.Serve(simCtx, p.Master)

	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	cfg.GatewayID = "gw-test-01"
	cfg.Company = config.Company{Code: "330106000099901", Name: "杭州示例汽车维修有限公司", Province: "33"}
	cfg.Bays = []config.Bay{{Name: "bay1", OBD: "serial://" + p.SlavePath}}

	session := func() (before, after elm327sim.Stats) {
		before = sim.Stats()
		d, err := New(&cfg, Options{Poll: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx, nil) }()
		waitFor(t, "bay1 scanned", func() bool { st := d.Bay("bay1").Status(); return st.State == bay.Ready && st.LastScan != nil })
		after = sim.Stats()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return before, after
	}

	b1, a1 := session()
	if cmds := a1.Commands[len(b1.Commands):]; !slices.Contains(cmds, "ATSP0") || a1.Search == b1.Search {
		t.Errorf("first session: want a protocol search (ATSP0); sent %q", cmds)
	}
	db, err := buffer.Open(filepath.Join(cfg.StateDir, StoreFile), buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := &memory{db: db, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now, max: maxAnswers}
	if got := m.protocol("bay1"); got != "6" {
		t.Errorf("bay1 protocol remembered as %q, want 6", got)
	}
	if got := m.baud("bay1"); got != 115200 || a1.Garbled == b1.Garbled {
		t.Errorf("bay1 rate remembered as %d after %d noise bytes, want 115200 found by trying", got, a1.Garbled-b1.Garbled)
	}
	if a, ok := m.Recall(sc.VIN); !ok || len(a.Requests) == 0 {
		t.Errorf("the car's answers were not remembered: %+v", a)
	}
	db.Close()

	b2, a2 := session()
	cmds := a2.Commands[len(b2.Commands):]
	if !slices.Contains(cmds, "ATSPA6") || a2.Search != b2.Search {
		t.Errorf("second session: want ATSPA6 and no search; sent %q", cmds)
	}
	if a2.Garbled != b2.Garbled {
		t.Errorf("second session: %d noise bytes; the remembered rate was not tried first", a2.Garbled-b2.Garbled)
	}
	// One wait is left: the adapter's first 0100 at connect, which learns who answers.
	if got := a2.TimeoutWaits - b2.TimeoutWaits; got != 1 {
		var plain []string
		for _, c := range cmds {
			if !strings.HasPrefix(c, "AT") && !strings.HasPrefix(c, "ST") && len(c)%2 == 0 {
				plain = append(plain, c)
			}
		}
		t.Errorf("returning car: %d timeout waits, want 1; requests without a count digit %q", got, plain)
	}
}
