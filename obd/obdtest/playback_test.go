package obdtest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/obdgw/obdgw/obd"
	"github.com/obdgw/obdgw/obd/obdtest"
)

type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestPlaybackPlaysInOrder(t *testing.T) {
	pb := obdtest.New(t,
		obdtest.Ex("01 0C", obdtest.Resp("7E8", "41 0C 0C E4")),
		obdtest.ExErr("0902", obd.ErrNoData),
	)
	r, err := pb.Query(context.Background(), obd.Req(0x01, 0x0C))
	if err != nil || len(r) != 1 || r[0].ECU != "7E8" || fmt.Sprintf("% X", r[0].Data) != "41 0C 0C E4" {
		t.Fatalf("first answer %v, %v", r, err)
	}
	r[0].Data[0] = 0 // callers may scribble on answers without changing the script
	if _, err := pb.Query(context.Background(), obd.Req(0x09, 0x02)); !errors.Is(err, obd.ErrNoData) {
		t.Fatalf("second answer err = %v", err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	if pb.Script[0].Resps[0].Data[0] != 0x41 {
		t.Error("script modified through a returned response")
	}
}

func TestPlaybackUnexpected(t *testing.T) {
	rec := &recorder{TB: t}
	pb := obdtest.New(rec, obdtest.Ex("0100", obdtest.Resp("7E8", "41 00 00 00 00 00")))
	if _, err := pb.Query(context.Background(), obd.Req(0x09, 0x02)); !errors.Is(err, obdtest.ErrUnexpected) {
		t.Fatalf("err = %v, want ErrUnexpected", err)
	}
	if len(rec.errs) != 1 || len(pb.Failures()) != 1 {
		t.Errorf("errs %v failures %v", rec.errs, pb.Failures())
	}
	// The script did not advance: the expected request still answers.
	if _, err := pb.Query(context.Background(), obd.Req(0x01, 0x00)); err != nil {
		t.Fatal(err)
	}
	if _, err := pb.Query(context.Background(), obd.Req(0x01, 0x00)); !errors.Is(err, obdtest.ErrUnexpected) {
		t.Errorf("request past the end: err = %v", err)
	}
	if err := pb.Close(); err == nil {
		t.Error("Close hid the unexpected requests")
	}
}

func TestPlaybackUnplayed(t *testing.T) {
	pb := obdtest.New(t, obdtest.ExErr("03", obd.ErrNoData))
	if err := pb.Close(); err == nil {
		t.Error("Close accepted a script that was never played")
	}
}

func TestCANReassembly(t *testing.T) {
	got := obdtest.CAN(
		"7E8 10 0A 43 04 04 20 01 71",
		"7E9 04 43 01 C1 00 00 00 00",
		"7E8 21 03 00 24 63 00 00 00",
		"18 DA F1 10 04 41 0C 0C E4 AA AA AA",
	)
	want := []string{"7E8:43 04 04 20 01 71 03 00 24 63", "7E9:43 01 C1 00", "18DAF110:41 0C 0C E4"}
	if len(got) != len(want) {
		t.Fatalf("got %d responses", len(got))
	}
	for i, r := range got {
		if s := fmt.Sprintf("%s:% X", r.ECU, r.Data); s != want[i] {
			t.Errorf("response %d = %s, want %s", i, s, want[i])
		}
	}
	for _, bad := range [][]string{{"7E8 21 00"}, {"7E8 10 14 49 02 01"}, {"7E8 08 41"}, {"7E8 30 00 00"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("CAN(%q) accepted a broken transcript", bad)
				}
			}()
			obdtest.CAN(bad...)
		}()
	}
}

func TestProfiled(t *testing.T) {
	var a obd.Adapter = obdtest.Profiled{Playback: obdtest.New(t), P: obd.Profile{Version: "ELM327 v1.5", MultiPID: true}}
	p, ok := a.(obd.Profiler)
	if !ok || p.Profile().Version != "ELM327 v1.5" {
		t.Error("Profiled does not describe itself")
	}
	if _, ok := obd.Adapter(obdtest.New(t)).(obd.Profiler); ok {
		t.Error("a bare Playback claims a profile")
	}
}
