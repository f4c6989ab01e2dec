package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/gateway/api"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/imrecord"
	"github.com/obdgw/obdgw/gateway/workorder"

	// The rig drivers register their models with drivers/rig.
	_ "github.com/obdgw/obdgw/drivers/fga4100"
	_ "github.com/obdgw/obdgw/drivers/mexa"
	_ "github.com/obdgw/obdgw/drivers/mqw50a"
	_ "github.com/obdgw/obdgw/drivers/nanhua"
	_ "github.com/obdgw/obdgw/drivers/opacity"
)

// SelfTestRequest starts an emission self-test on a bay.
type SelfTestRequest = api.SelfTestRequest

var (
	// ErrNoRig: the bay has no emission rig configured.
	ErrNoRig = fmt.Errorf("%w (bays[].rig in the configuration)", api.ErrNoRig)
	// ErrNoOrder: the self-test has no work order to belong to.
	ErrNoOrder = fmt.Errorf("%w; open one with test_no first", api.ErrNoOrder)
)

func (d *Daemon) bayConfig(name string) (config.Bay, bool) {
	for _, b := range d.cfg.Bays {
		if b.Name == name {
			return b, true
		}
	}
	return config.Bay{}, false
}

// StartSelfTest opens the bay's rig and starts the self-test in the background, for as long as
// Run runs (ErrNotRunning otherwise). The run's progress is published as "selftest.progress"
// events; a judged result is kept on the work order when it ends (gateway/imrecord), where
// settlement picks it up for the M-station record. Run waits for that before it returns.
func (d *Daemon) StartSelfTest(bayName string, req SelfTestRequest) (*emission.Run, string, error) {
	b, ok := d.bayConfig(bayName)
	if !ok {
		return nil, "", fmt.Errorf("%w: %q", api.ErrNoBay, bayName)
	}
	if b.Rig == nil {
		return nil, "", ErrNoRig
	}
	method, err := emission.ParseMethod(req.Method)
	if err != nil {
		return nil, "", err
	}
	ctx, done, err := d.startWork()
	if err != nil {
		return nil, "", err
	}
	following := false
	defer func() {
		if !following {
			done()
		}
	}()
	o, err := d.wo.SelfTestOrder(bayName, req.Order)
	if errors.Is(err, workorder.ErrNoEmissionOrder) {
		if req.Order != "" {
			return nil, "", fmt.Errorf("%w (order %s is settled or not an emission repair)", ErrNoOrder, req.Order)
		}
		return nil, "", ErrNoOrder
	}
	if err != nil {
		return nil, "", err
	}
	open := d.o.OpenRig
	if open == nil {
		open = d.openRig
	}
	r, err := open(b)
	if err != nil {
		return nil, "", err
	}
	fuel, err := emission.ParseFuel(req.Fuel)
	if err != nil {
		r.Close()
		return nil, "", err
	}
	t := emission.Test{
		Method: method,
		Rig:    r,
		Vehicle: emission.Vehicle{VIN: o.VIN, RatedRPM: req.RatedRPM, FuelType: fuel, GrossMassKg: req.GrossMassKg,
			LambdaJudged: req.LambdaJudged},
		Limits:   d.cfg.Emission,
		LimitSet: req.LimitSet,
		Logger:   d.log.With("bay", bayName, "component", "emission"),
		Now:      d.o.Now,
	}
	if m, ok := rig.Lookup(b.Rig.Model); ok {
		t.Instrument = m.Kind
	}
	if s := d.byName[bayName]; s != nil {
		t.Speed = emission.OBDSpeed{Adapter: s}
		// What the bay's last scan of this car says: its engine type, and whether it runs in
		// closed loop (then its λ is judged).
		if rep := s.Status().LastScan; rep != nil && (o.VIN == "" || rep.VIN == "" || strings.EqualFold(rep.VIN, o.VIN)) {
			t.Vehicle.Compression = emission.CompressionOf(rep)
			t.Vehicle.ClosedLoopSeen = emission.ClosedLoopSeen(rep)
		}
		// The full scan does not ask fuel system status: ask it now, once, when it decides
		// whether λ is judged (the engine runs for the test, so closed loop shows if it has it).
		if method == emission.TwoSpeedIdle && req.LambdaJudged == nil && !t.Vehicle.ClosedLoopSeen {
			closed, err := emission.ClosedLoopNow(ctx, s, 0)
			if err != nil {
				d.log.Debug("daemon: fuel system status not read", "bay", bayName, "err", err)
			}
			t.Vehicle.ClosedLoopSeen = closed
		}
	}
	run, err := d.runs.Start(ctx, bayName, t)
	if err != nil {
		r.Close()
		if errors.Is(err, emission.ErrBayBusy) {
			return nil, "", fmt.Errorf("%w: %v", api.ErrTestRunning, err)
		}
		return nil, "", err
	}
	following = true
	go func() {
		defer done()
		d.tests.Follow(run, r, imrecord.SelfTest{Order: o.ID, Bay: bayName, RigModel: b.Rig.Model, RigSerial: b.Rig.Serial})
	}()
	d.bus.Publish("selftest.started", bayName, map[string]string{"order": o.ID, "method": method.String()})
	return run, o.ID, nil
}

func (d *Daemon) openRig(b config.Bay) (rig.Rig, error) {
	port, err := serialport.Open(b.Rig.Address)
	if err != nil {
		return nil, fmt.Errorf("daemon: rig of %s: %w", b.Name, err)
	}
	r, err := rig.Open(b.Rig.Model, port, rig.Options{Log: d.log.With("bay", b.Name, "component", "rig"), Now: d.o.Now})
	if err != nil {
		port.Close()
		return nil, fmt.Errorf("daemon: rig of %s: %w", b.Name, err)
	}
	return r, nil
}

// SelfTest returns the bay's current or last self-test run.
func (d *Daemon) SelfTest(bayName string) (*emission.Run, error) { return d.runs.Get(bayName) }

// selfTests adapts the daemon's runs to the API.
type selfTests struct{ d *Daemon }

func (s selfTests) status(bayName string, run *emission.Run) api.SelfTestStatus {
	st := api.SelfTestStatus{Bay: bayName, Method: run.Method.String()}
	if p, ok := run.Latest(); ok {
		st.Progress = p
	}
	select {
	case <-run.Done():
		res, err := run.Result()
		if res != nil {
			st.Result = res
		}
		if err != nil {
			st.Error = err.Error()
		}
	default:
		st.Running = true
	}
	return st
}

func (s selfTests) Start(bayName string, req api.SelfTestRequest) (api.SelfTestStatus, error) {
	run, order, err := s.d.StartSelfTest(bayName, req)
	if err != nil {
		return api.SelfTestStatus{}, err
	}
	st := s.status(bayName, run)
	st.Order = order
	return st, nil
}

func (s selfTests) run(bayName string) (*emission.Run, error) {
	if _, ok := s.d.bayConfig(bayName); !ok {
		return nil, fmt.Errorf("%w: %q", api.ErrNoBay, bayName)
	}
	run, err := s.d.runs.Get(bayName)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", api.ErrNoSelfTest, err)
	}
	return run, nil
}

func (s selfTests) Status(bayName string) (api.SelfTestStatus, error) {
	run, err := s.run(bayName)
	if err != nil {
		return api.SelfTestStatus{}, err
	}
	return s.status(bayName, run), nil
}

func (s selfTests) Abort(bayName string) error {
	run, err := s.run(bayName)
	if err != nil {
		return err
	}
	run.Abort()
	return nil
}

func (s selfTests) Progress(ctx context.Context, bayName string) (<-chan any, error) {
	run, err := s.run(bayName)
	if err != nil {
		return nil, err
	}
	in, stop := run.Subscribe()
	out := make(chan any)
	go func() {
		defer close(out)
		defer stop()
		for {
			select {
			case <-ctx.Done():
				return
			case p, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- p:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// OBDCheck judges the bay's last scan against the bay's open order's VIN.
func (s selfTests) OBDCheck(bayName string) (any, error) {
	sup := s.d.byName[bayName]
	if sup == nil {
		return nil, fmt.Errorf("%w: %q", api.ErrNoBay, bayName)
	}
	st := sup.Status()
	if st.LastScan == nil {
		return nil, fmt.Errorf("%w: no scan on this bay yet; scan the car first", api.ErrNoSelfTest)
	}
	vin := ""
	if o, ok, err := s.d.wo.BayOrder(bayName); err == nil && ok {
		vin = o.VIN
	}
	in := emission.OBDInputFromScan(st.LastScan, vin)
	in.Rules = s.d.cfg.Emission.OBD
	return emission.CheckOBD(in), nil
}
