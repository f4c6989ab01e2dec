package obd_test

import (
	"context"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/obd"
	"github.com/obdgw/obdgw/obd/obdtest"
)

// TestScanReportsItsSteps: OnStep hears every step of the plan as it starts, in order, with
// its place and the size of the plan, and the names are the report's step names.
func TestScanReportsItsSteps(t *testing.T) {
	pb := obdtest.New(t, petrolScript()...)
	prof := obd.Profile{Version: "ELM327 v1.5", Protocol: "ISO 15765-4 (CAN 11/500)", ProtocolNum: "6", CountHint: true, MultiPID: true}
	var got []obd.StepProgress
	rep, err := obd.Scan(context.Background(), obdtest.Profiled{Playback: pb, P: prof}, obd.ScanOptions{
		OnStep: func(p obd.StepProgress) { got = append(got, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(rep.Steps) || len(got) < 10 {
		t.Fatalf("OnStep heard %d steps, the report has %d", len(got), len(rep.Steps))
	}
	var names []string
	for i, p := range got {
		if p.Index != i+1 || p.Total != len(rep.Steps) || p.Step != rep.Steps[i].Name {
			t.Errorf("step %d: %+v, want %s %d/%d", i+1, p, rep.Steps[i].Name, i+1, len(rep.Steps))
		}
		names = append(names, p.Step)
	}
	if !strings.HasPrefix(strings.Join(names, " "), "adapter supported_pids_01 supported_pids_09 vin readiness") {
		t.Errorf("steps in the order %v", names)
	}
}
