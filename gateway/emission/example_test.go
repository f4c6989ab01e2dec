package emission_test

import (
	"context"
	"fmt"

	"github.com/obdgw/obdgw/drivers/rig"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/obd"
)

// How the daemon runs a self-test on a bay: one Runs for the gateway, the bay's rig and OBD
// adapter, the vehicle's facts from the work order, the limits from the configuration.
func ExampleRuns() {
	var (
		daemonCtx = context.Background()
		analyzer  rig.Rig     // opened from the bay's configuration (rig.Open)
		adapter   obd.Adapter // the bay's OBD adapter, nil when it has none
		limits    = emission.DefaultLimits()
	)
	runs := emission.NewRuns(nil)

	t := emission.Test{
		Method:  emission.TwoSpeedIdle,
		Rig:     analyzer,
		Vehicle: emission.Vehicle{VIN: "LSVAU2180N2183294", RatedRPM: 6000},
		Limits:  limits,
	}
	if adapter != nil {
		t.Speed = emission.OBDSpeed{Adapter: adapter} // used only when the rig has no tachometer
	}
	run, err := runs.Start(daemonCtx, "bay1", t) // POST /bays/bay1/selftest
	if err != nil {
		fmt.Println(err) // 409 for ErrBayBusy, 400 otherwise
		return
	}
	updates, stop := run.Subscribe() // GET …/selftest/events (server-sent events)
	defer stop()
	for p := range updates {
		fmt.Println(p.Phase, p.SecondsLeft, p.Prompt.ZH)
	}
	res, err := run.Result() // GET …/selftest: verdict, items, reasons, process data
	if err != nil {
		fmt.Println("rig failed:", err) // res still holds the process data measured so far
	}
	fmt.Println(res.Verdict, res.Reasons)
	// DELETE …/selftest: runs.Abort("bay1")
}

// How the daemon checks OBD after a repair, from the scan it stored with the work order.
func ExampleCheckOBD() {
	var scan *obd.Report // obd.Scan(ctx, adapter, opts); nil when the car did not answer
	c := emission.CheckOBD(emission.OBDInputFromScan(scan, "LSVAU2180N2183294"))
	for _, l := range c.Lines {
		fmt.Println(l.Rule, l.Status, l.ZH)
	}
	fmt.Println("O_RESULT", c.OResult)
}
