package daemon

import (
	"context"
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
)

// TestBayRemembersProtocolAndCar: a bay's adapter is opened the way `obdgw run` opens it, over
// a real pty, at 115200 baud behind an address that names no rate (the simulator answers
// only a client at its rate). The car talks CAN 11/250, which the connect does not try
// directly unless remembered: the first session tries CAN 11/500 and 29/500, then searches.
// After it the buffer file holds the rate found, the protocol the car talked and the sizes of
// its answers; a gateway restarted on the same file opens the adapter at that rate first (no
// noise), tries that protocol first and alone (ATSP8, no search) and scans the returning car
// without waiting out the adapter's timeout after any request.
func TestBayRemembersProtocolAndCar(t *testing.T) {
	sc, err := elm327sim.Builtin("petrol")
	if err != nil {
		t.Fatal(err)
	}
	sc.Adapter.ResetDelay = 0
	sc.Protocol = "8"
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
	if cmds := a1.Commands[len(b1.Commands):]; !slices.Contains(cmds, "ATSP6") || !slices.Contains(cmds, "ATSP0") || a1.Search == b1.Search {
		t.Errorf("first session: want CAN 11/500 tried, then a protocol search (ATSP0); sent %q", cmds)
	}
	db, err := buffer.Open(filepath.Join(cfg.StateDir, StoreFile), buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := bay.NewMemory(db, bay.MemoryOptions{})
	if got := m.Protocol("bay1"); got != "8" {
		t.Errorf("bay1 protocol remembered as %q, want 8", got)
	}
	if got := m.Baud("bay1"); got != 115200 || a1.Garbled == b1.Garbled {
		t.Errorf("bay1 rate remembered as %d after %d noise bytes, want 115200 found by trying", got, a1.Garbled-b1.Garbled)
	}
	if a, ok := m.Recall(sc.VIN); !ok || len(a.Requests) == 0 {
		t.Errorf("the car's answers were not remembered: %+v", a)
	}
	db.Close()

	b2, a2 := session()
	cmds := a2.Commands[len(b2.Commands):]
	var sp []string
	for _, c := range cmds {
		if strings.HasPrefix(c, "ATSP") {
			sp = append(sp, c)
		}
	}
	if !slices.Equal(sp, []string{"ATSP8"}) || a2.Search != b2.Search {
		t.Errorf("second session: want ATSP8 alone and no search; sent %q", cmds)
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
