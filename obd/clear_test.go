package obd_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/obd"
	"github.com/obdgw/obdgw/obd/obdtest"
)

var confirmed = obd.Confirmation{VIN: "LK6ADCE15PB405127", ConfirmedBy: "tech-07", At: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)}

func TestClearDTCsSendsExactly04Once(t *testing.T) {
	pb := obdtest.New(t, obdtest.Ex("04", obdtest.CAN("7E8 01 44", "7E9 01 44")...))
	res, err := obd.ClearDTCs(context.Background(), pb, confirmed)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Cleared, ",") != "7E8,7E9" {
		t.Errorf("cleared %v", res.Cleared)
	}
	if got := pb.Sent(); len(got) != 1 || got[0] != "04" {
		t.Errorf("sent %v, want exactly [04]", got)
	}
	if err := pb.Close(); err != nil {
		t.Error(err)
	}
}

func TestClearDTCsEngineRunning(t *testing.T) {
	pb := obdtest.New(t, obdtest.Ex("04", obdtest.CAN("7E8 03 7F 04 22", "7E9 01 44")...))
	res, err := obd.ClearDTCs(context.Background(), pb, confirmed)
	var ne *obd.NegativeResponseError
	if !errors.As(err, &ne) || ne.Service != 0x04 || ne.NRC != 0x22 || ne.ECU != "7E8" {
		t.Fatalf("err = %v, want the 7E8 refusal", err)
	}
	if !strings.Contains(err.Error(), "conditions not correct (engine running?)") || !strings.Contains(err.Error(), "switch the engine off") {
		t.Errorf("message %q does not tell the operator what to do", err)
	}
	if len(res.Cleared) != 1 || res.Cleared[0] != "7E9" {
		t.Errorf("cleared %v, want 7E9 only", res.Cleared)
	}
	if len(pb.Sent()) != 1 {
		t.Errorf("sent %v: a refused clear must not be retried", pb.Sent())
	}
}

func TestClearDTCsNeverRetried(t *testing.T) {
	for _, failure := range []error{errors.New("elm327: STOPPED"), obd.ErrNoData} {
		pb := obdtest.New(t, obdtest.ExErr("04", failure))
		_, err := obd.ClearDTCs(context.Background(), pb, confirmed)
		if !errors.Is(err, failure) {
			t.Errorf("err = %v, want it to wrap %v", err, failure)
		}
		if len(pb.Sent()) != 1 {
			t.Errorf("%v: sent %v, want one request", failure, pb.Sent())
		}
	}
}

func TestClearDTCsNeedsConfirmation(t *testing.T) {
	for name, c := range map[string]obd.Confirmation{
		"zero":          {},
		"no vin":        {ConfirmedBy: "tech-07"},
		"nobody":        {VIN: "LK6ADCE15PB405127"},
		"not a vin":     {VIN: "LK6ADCE15PB4O5127", ConfirmedBy: "tech-07"},
		"blank confirm": {VIN: "LK6ADCE15PB405127", ConfirmedBy: "  "},
	} {
		pb := obdtest.New(t)
		if _, err := obd.ClearDTCs(context.Background(), pb, c); err == nil {
			t.Errorf("%s: clear accepted", name)
		}
		if len(pb.Sent()) != 0 {
			t.Errorf("%s: sent %v without a valid confirmation", name, pb.Sent())
		}
	}
}
