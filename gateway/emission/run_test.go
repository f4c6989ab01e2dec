package emission_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/obdgw/obdgw/gateway/emission"
)

func TestRunsStartSubscribeResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rs := emission.NewRuns(nil)
		if _, err := rs.Get("bay1"); !errors.Is(err, emission.ErrNoRun) {
			t.Fatalf("empty bay: %v", err)
		}
		b := newBench()
		run, err := rs.Start(t.Context(), "bay1", b.test())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rs.Start(t.Context(), "bay1", newBench().test()); !errors.Is(err, emission.ErrBayBusy) {
			t.Fatalf("second start on a busy bay: %v", err)
		}
		if _, err := run.Result(); !errors.Is(err, emission.ErrRunning) {
			t.Fatalf("result while running: %v", err)
		}
		ch, _ := run.Subscribe()
		phases := map[string]bool{}
		n := 0
		for p := range ch { // closed when the run ends
			phases[p.Phase] = true
			n++
		}
		res, err := run.Result()
		if err != nil || res.Verdict != emission.Pass {
			t.Fatalf("result %v %v", res, err)
		}
		if !phases["high_idle_sample"] || !phases["done"] || n < 100 {
			t.Errorf("%d updates, phases %v", n, phases)
		}
		// What the API serves: the result and the progress encode as JSON.
		js, err := json.Marshal(res)
		if err != nil || !bytes.Contains(js, []byte(`"verdict":"pass"`)) || !bytes.Contains(js, []byte(`"method":"two_speed_idle"`)) {
			t.Errorf("result JSON %v: %.200s", err, js)
		}
		if last, ok := run.Latest(); !ok || last.Phase != "done" {
			t.Errorf("latest %+v", last)
		} else if js, err := json.Marshal(last); err != nil || !bytes.Contains(js, []byte(`"phase":"done"`)) {
			t.Errorf("progress JSON %v: %s", err, js)
		}
		// An ended run can be subscribed to: the last update, then closed.
		ch, _ = run.Subscribe()
		if p, ok := <-ch; !ok || p.Phase != "done" {
			t.Errorf("late subscriber got %+v %v", p, ok)
		}
		if _, ok := <-ch; ok {
			t.Error("late subscriber's channel not closed")
		}
		// The bay is free again.
		again, err := rs.Start(t.Context(), "bay1", newBench().test())
		if err != nil {
			t.Fatal(err)
		}
		again.Abort()
		res, err = again.Wait(t.Context())
		if res.Verdict != emission.Aborted || !errors.Is(err, context.Canceled) {
			t.Fatalf("aborted run: %v %v", res.Verdict, err)
		}
	})
}

func TestRunsAbortByBayAndSlowSubscriber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rs := emission.NewRuns(nil)
		run, err := rs.Start(t.Context(), "bay2", newSmoke(1, 1, 1, 0.8, 0.9, 1.0).test())
		if err != nil {
			t.Fatal(err)
		}
		ch, unsubscribe := run.Subscribe() // never read until the abort: must not stall the test
		time.Sleep(20 * time.Second)
		if err := rs.Abort("bay2"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case <-run.Done():
		default:
			t.Fatal("run did not end after Abort")
		}
		res, _ := run.Result()
		if res.Verdict != emission.Aborted || len(res.Accel.Process) < 90 {
			t.Fatalf("verdict %s, %d records", res.Verdict, len(res.Accel.Process))
		}
		got := 0
		for range ch {
			got++
		}
		if got == 0 || got > 16 {
			t.Errorf("slow subscriber got %d buffered updates, want the newest up to 16", got)
		}
		unsubscribe() // after close: harmless
		if err := rs.Abort("bay9"); !errors.Is(err, emission.ErrNoRun) {
			t.Errorf("abort on an empty bay: %v", err)
		}
	})
}

func TestRunsRejectsATestThatCannotStart(t *testing.T) {
	rs := emission.NewRuns(nil)
	tt := newBench().test()
	tt.Vehicle.RatedRPM = 0
	if _, err := rs.Start(context.Background(), "bay1", tt); err == nil {
		t.Fatal("no error for a test without rated speed")
	}
	if _, err := rs.Get("bay1"); !errors.Is(err, emission.ErrNoRun) {
		t.Errorf("a rejected test left a run behind: %v", err)
	}
	tt = newBench().test()
	tt.Rig = nil
	if _, err := rs.Start(context.Background(), "bay1", tt); err == nil {
		t.Fatal("no error for a test without a rig")
	}
}
