package fleet

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/gateway/uplink"
	"github.com/obdgw/obdgw/hack/brokertest"
	"github.com/obdgw/obdgw/hack/chaos"
)

// Config shapes one simulation. Zero values take the defaults named on each field.
type Config struct {
	Gateways  int // simulated gateways (shops), 2,000 in `make fleet`
	Receivers int // receivers in the one shared-subscription group

	// Seconds is how long the simulated working day (08:00–20:00) lasts in real time.
	Seconds time.Duration
	// Outage is how long the broker stays down after a SIGKILL; 0 = no outage.
	Outage time.Duration
	// OutageAt is when, after the day starts, the broker is killed; default two fifths of
	// the day, just after the noon peak.
	OutageAt time.Duration
	// Burst is the records each gateway sends at once in the two capacity bursts before the
	// day, the first with one receiver, the second with all; 0 = no bursts.
	Burst int

	OrdersMin, OrdersMax int     // settled orders per shop and day: 20, 60
	ScansPerHour         float64 // scan results per shop and hour: 3

	// The gateways' uplink settings; defaults are the daemon's: backoff 1 s to 2 min,
	// receipt timeout 30 s, in_flight 8, drain_rate 20.
	BackoffMin, BackoffMax time.Duration
	ReceiptTimeout         time.Duration
	InFlight               int
	DrainRate              float64

	// Settle bounds each wait for everything to be stored or connected (default 10 min).
	Settle time.Duration
	Seed   uint64
	Dir    string                        // default t.TempDir()
	Logf   func(format string, a ...any) // progress; nil = quiet
}

func (c *Config) defaults(t testing.TB) error {
	switch {
	case c.Gateways < 1:
		return fmt.Errorf("fleet: gateways %d: want at least 1", c.Gateways)
	case c.Gateways > 9999:
		return fmt.Errorf("fleet: gateways %d: at most 9999 (the ids have four digits)", c.Gateways)
	case c.Receivers < 1:
		return fmt.Errorf("fleet: receivers %d: want at least 1", c.Receivers)
	case c.Seconds <= 0:
		return fmt.Errorf("fleet: seconds %v: want a day longer than 0", c.Seconds)
	case c.Outage < 0:
		return fmt.Errorf("fleet: outage %v: must not be negative", c.Outage)
	}
	if c.OutageAt == 0 {
		c.OutageAt = c.Seconds * 2 / 5
	}
	if c.OrdersMin == 0 && c.OrdersMax == 0 {
		c.OrdersMin, c.OrdersMax = 20, 60
	}
	if c.OrdersMax < c.OrdersMin {
		return fmt.Errorf("fleet: orders %d..%d: the maximum is below the minimum", c.OrdersMin, c.OrdersMax)
	}
	if c.ScansPerHour == 0 {
		c.ScansPerHour = 3
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = time.Second
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 2 * time.Minute
	}
	if c.ReceiptTimeout == 0 {
		c.ReceiptTimeout = 30 * time.Second
	}
	if c.InFlight == 0 {
		c.InFlight = 8
	}
	if c.DrainRate == 0 {
		c.DrainRate = 20
	}
	if c.Settle == 0 {
		c.Settle = 10 * time.Minute
	}
	if c.Dir == "" {
		c.Dir = t.TempDir()
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	// Each gateway holds a socket and its outbox file here, and the broker a socket per
	// gateway; the broker inherits this process's starting limit.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(2*c.Gateways+256) {
		return fmt.Errorf("fleet: %d open files allowed, %d gateways need about %d: raise it (ulimit -n %d)", lim.Cur, c.Gateways, 2*c.Gateways+256, 2*c.Gateways+256)
	}
	return nil
}

type gateway struct {
	i    int
	box  *buffer.DB
	up   *cloud.Uplink
	done chan struct{}
	n    map[string]int // records of each kind so far
	mu   sync.Mutex     // Append order = numbering order
}

type receiver struct {
	rx   *cloud.Receiver
	out  string
	done chan struct{}
}

// sim is one running simulation.
type sim struct {
	c     Config
	b     *brokertest.Broker
	ctx   context.Context
	gws   []*gateway
	rxs   []*receiver
	pw    map[string]string // username → password file
	track *tracker
}

// Run runs one simulation: the broker, one receiver, the gateways; a capacity burst with one
// receiver; the other receivers; a burst with all of them; the working day with the broker
// killed and restarted; then it waits until every record is stored, stops everything and
// checks the receivers' output.
func Run(t testing.TB, c Config) (*Report, error) {
	if err := c.defaults(t); err != nil {
		return nil, err
	}
	s := &sim{c: c, pw: map[string]string{}, track: newTracker()}
	rep := &Report{Config: c}

	users := map[string]string{}
	var rxNames []string
	for r := 1; r <= c.Receivers; r++ {
		rxNames = append(rxNames, fmt.Sprintf("receiver-%d", r))
	}
	names := append([]string(nil), rxNames...)
	for i := 1; i <= c.Gateways; i++ {
		names = append(names, GatewayID(i))
	}
	pwDir := filepath.Join(c.Dir, "secrets")
	if err := os.MkdirAll(pwDir, 0o700); err != nil {
		return nil, err
	}
	for _, n := range names {
		p := make([]byte, 12)
		crand.Read(p)
		users[n] = hex.EncodeToString(p)
		s.pw[n] = filepath.Join(pwDir, n)
		if err := os.WriteFile(s.pw[n], []byte(users[n]+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	s.b = brokertest.Start(t, brokertest.Config{Users: users, ACL: brokertest.IdentityACL(rxNames, KindEHR, KindScan)})

	ctx, cancel := context.WithCancel(context.Background())
	s.ctx = ctx
	defer s.stop(cancel)

	if err := s.startReceiver(0); err != nil {
		return nil, err
	}
	if err := s.waitReceivers(); err != nil {
		return nil, err
	}

	start := time.Now()
	for i := 1; i <= c.Gateways; i++ {
		if err := s.startGateway(i); err != nil {
			return nil, err
		}
	}
	if err := s.waitConnected(start); err != nil {
		return nil, err
	}
	rep.ColdConnect = time.Since(start)
	c.Logf("fleet: %d gateways connected in %v", c.Gateways, rep.ColdConnect.Round(time.Millisecond))

	if c.Burst > 0 {
		var err error
		if rep.BurstOne, err = s.burst(1); err != nil {
			return nil, err
		}
	}
	for r := 1; r < c.Receivers; r++ {
		if err := s.startReceiver(r); err != nil {
			return nil, err
		}
	}
	if err := s.waitReceivers(); err != nil {
		return nil, err
	}
	if c.Burst > 0 && c.Receivers > 1 {
		var err error
		if rep.BurstAll, err = s.burst(c.Receivers); err != nil {
			return nil, err
		}
	}

	if err := s.day(rep); err != nil {
		return nil, err
	}
	for _, r := range s.rxs {
		st := r.rx.Status()
		rep.RxAccepted = append(rep.RxAccepted, st.Accepted)
		rep.RxReconnects = append(rep.RxReconnects, st.Reconnects)
		rep.RxRunning = append(rep.RxRunning, st.Running)
	}
	for _, g := range s.gws {
		st := g.up.Status()
		rep.GwReconnects += st.Reconnects
		rep.DeadLetters += g.box.Stats().DeadLetters
	}
	s.stop(cancel)

	// The checker of hack/chaos on everything together (lost, duplicated anywhere) and on
	// each receiver's own file (duplicated by one receiver, reordered within one).
	entries := s.track.entries()
	var outs []string
	for _, r := range s.rxs {
		outs = append(outs, r.out)
	}
	all := filepath.Join(c.Dir, "all.jsonl")
	if err := concat(all, outs); err != nil {
		return nil, err
	}
	var err error
	if rep.Check, err = chaos.Check(entries, all); err != nil {
		return nil, err
	}
	for _, o := range outs {
		one, err := chaos.Check(entries, o)
		if err != nil {
			return nil, err
		}
		rep.DuplicatedByOne += one.Duplicated
		rep.ReorderedByOne += one.Reordered
	}
	return rep, nil
}

func (s *sim) startReceiver(r int) error {
	name := fmt.Sprintf("receiver-%d", r+1)
	out := filepath.Join(s.c.Dir, name+".jsonl")
	rx, err := cloud.NewReceiver(uplink.ReceiverOptions(cloud.ReceiverOptions{
		Broker: s.b.URL(), Username: name, PasswordFile: s.pw[name],
		ClientID: "fleet-" + name, Group: "fleet",
		StatePath: filepath.Join(s.c.Dir, name+".db"), OutPath: out,
	}))
	if err != nil {
		return err
	}
	rv := &receiver{rx: rx, out: out, done: make(chan struct{})}
	go func() { defer close(rv.done); rx.Run(s.ctx) }()
	s.rxs = append(s.rxs, rv)
	s.track.follow(s.ctx, out)
	return nil
}

func (s *sim) waitReceivers() error {
	return s.until("every receiver subscribed", func() bool {
		for _, r := range s.rxs {
			if !r.rx.Status().Connected {
				return false
			}
		}
		return true
	})
}

func (s *sim) startGateway(i int) error {
	id := GatewayID(i)
	box, err := buffer.Open(filepath.Join(s.c.Dir, "gateways", id+".db"), buffer.Options{GatewayID: id})
	if err != nil {
		return err
	}
	up, err := cloud.NewUplink(box, uplink.Options(Topic(i), "fleet", cloud.UplinkOptions{
		Broker: s.b.URL(), Username: id, PasswordFile: s.pw[id],
		Delivery: cloud.DeliveryReceipt, InFlight: s.c.InFlight, ReceiptTimeout: s.c.ReceiptTimeout,
		DrainRate: s.c.DrainRate, BackoffMin: s.c.BackoffMin, BackoffMax: s.c.BackoffMax,
	}))
	if err != nil {
		box.Close()
		return err
	}
	g := &gateway{i: i, box: box, up: up, done: make(chan struct{}), n: map[string]int{}}
	go func() { defer close(g.done); up.Run(s.ctx) }()
	s.gws = append(s.gws, g)
	return nil
}

// waitConnected waits until every gateway has connected after since.
func (s *sim) waitConnected(since time.Time) error {
	return s.until("every gateway connected", func() bool {
		for _, g := range s.gws {
			if st := g.up.Status(); !st.Connected || st.LastConnect.Before(since) {
				return false
			}
		}
		return true
	})
}

// firstConnects waits until every gateway has connected once after since and returns when
// the last of them did. A gateway may lose that connection again (no receipt while the
// receivers are still away): the storm is over once each has been back.
func (s *sim) firstConnects(since time.Time) (time.Duration, error) {
	back := make([]time.Time, len(s.gws))
	var last time.Time
	err := s.until("every gateway reconnected", func() bool {
		all := true
		for k, g := range s.gws {
			if !back[k].IsZero() {
				continue
			}
			if st := g.up.Status(); st.LastConnect.After(since) {
				back[k] = st.LastConnect
				if st.LastConnect.After(last) {
					last = st.LastConnect
				}
			} else {
				all = false
			}
		}
		return all
	})
	return last.Sub(since), err
}

// until polls ok every 50 ms for at most Settle.
func (s *sim) until(what string, ok func() bool) error {
	deadline := time.Now().Add(s.c.Settle)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("fleet: %s: not within %v", what, s.c.Settle)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// send settles one record on gateway g: its envelope, stamped with the settle time, is
// appended to the outbox and the tracker notes when.
func (s *sim) send(g *gateway, kind string, phase Phase) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n[kind]++
	at := time.Now()
	var env []byte
	var err error
	if kind == KindEHR {
		env, err = orderEnvelope(g.i, g.n[kind], at)
	} else {
		env, err = scanEnvelope(g.i, g.n[kind], at)
	}
	if err != nil {
		return err
	}
	rec, err := g.box.Append(s.ctx, kind, Topic(g.i).Record(kind), env)
	if err != nil {
		return fmt.Errorf("fleet: %s append: %w", GatewayID(g.i), err)
	}
	s.track.appended(rec.ID, kind, at, phase)
	return nil
}

// burst has every gateway send Burst scan results at once and waits until all are stored.
func (s *sim) burst(receivers int) (Burst, error) {
	phase := PhaseBurstOne
	if receivers > 1 {
		phase = PhaseBurstAll
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(s.gws))
	for _, g := range s.gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range s.c.Burst {
				if err := s.send(g, KindScan, phase); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	appended := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return Burst{}, err
	}
	if err := s.until("burst stored", s.track.allStored); err != nil {
		return Burst{}, err
	}
	b := s.track.burst(phase, start)
	b.Receivers, b.Appending = receivers, appended
	s.c.Logf("fleet: burst of %d records with %d receiver(s): %.0f records/s (appends done after %v)", b.Records, receivers, b.Rate(), appended.Round(time.Millisecond))
	return b, nil
}

// day runs the working day: every gateway settles its orders and sends its scans at their
// moments, while the broker is killed at OutageAt and restarted Outage later.
func (s *sim) day(rep *Report) error {
	c := s.c
	rnd := rand.New(rand.NewPCG(c.Seed, 1))
	plans := make([][]Event, len(s.gws))
	for i := range plans {
		plans[i] = Day(rnd, c.OrdersMin, c.OrdersMax, c.ScansPerHour)
	}
	start := time.Now()
	rep.DayStart = start
	var wg sync.WaitGroup
	errs := make(chan error, len(s.gws))
	for k, g := range s.gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ev := range plans[k] {
				time.Sleep(time.Until(start.Add(time.Duration(ev.At * float64(c.Seconds)))))
				if err := s.send(g, ev.Kind, PhaseDay); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	c.Logf("fleet: day of %v started (08:00–20:00, 1 s = %.0f simulated s)", c.Seconds, dayHours*3600/c.Seconds.Seconds())
	var storm error
	if c.Outage > 0 {
		time.Sleep(time.Until(start.Add(c.OutageAt)))
		s.b.Kill()
		rep.KilledAt = time.Now()
		c.Logf("fleet: broker killed at %v into the day", rep.KilledAt.Sub(start).Round(time.Second))
		time.Sleep(c.Outage)
		s.b.Start()
		rep.RestartedAt = time.Now()
		rep.BacklogAtRestart = s.track.unstored()
		c.Logf("fleet: broker restarted after %v; %d records waiting", c.Outage, rep.BacklogAtRestart)
		rep.AllReconnected, storm = s.firstConnects(rep.RestartedAt)
		c.Logf("fleet: every gateway reconnected %v after the restart", rep.AllReconnected.Round(time.Millisecond))
		if storm == nil {
			storm = s.waitReceivers()
		}
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if storm != nil {
		return storm
	}
	c.Logf("fleet: day over, %d records settled; waiting until all are stored", s.track.count(PhaseDay))
	if err := s.until("every record stored", s.track.allStored); err != nil {
		return err
	}
	s.track.dayFigures(rep)
	if c.Outage > 0 {
		rep.Attempts = connectAttempts(s.b.Log(), rep.RestartedAt, rep.RestartedAt.Add(rep.AllReconnected))
	}
	return nil
}

// stop ends the uplinks and receivers and closes their files (idempotent).
func (s *sim) stop(cancel context.CancelFunc) {
	cancel()
	for _, g := range s.gws {
		if g.done != nil {
			<-g.done
			g.box.Close()
			g.done = nil
		}
	}
	for _, r := range s.rxs {
		if r.done != nil {
			<-r.done
			r.rx.Close()
			r.done = nil
		}
	}
	s.track.wait()
}

func concat(dst string, srcs []string) error {
	var all []byte
	for _, p := range srcs {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		all = append(all, b...)
	}
	return errors.Join(os.WriteFile(dst, all, 0o644))
}
