package api

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// fakeSelfTests records what the API asked of it.
type fakeSelfTests struct {
	mu      sync.Mutex
	started []SelfTestRequest
	running bool
}

func (f *fakeSelfTests) Start(bay string, req SelfTestRequest) (SelfTestStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if bay != "bay1" {
		return SelfTestStatus{}, fmt.Errorf("%w: %q", ErrNoBay, bay)
	}
	if f.running {
		return SelfTestStatus{}, ErrTestRunning
	}
	f.running = true
	f.started = append(f.started, req)
	return SelfTestStatus{Bay: bay, Method: req.Method, Running: true}, nil
}

func (f *fakeSelfTests) Status(bay string) (SelfTestStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.started) == 0 {
		return SelfTestStatus{}, ErrNoSelfTest
	}
	return SelfTestStatus{Bay: bay, Method: f.started[0].Method, Running: f.running}, nil
}

func (f *fakeSelfTests) Abort(bay string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running = false
	return nil
}

func (f *fakeSelfTests) Progress(ctx context.Context, bay string) (<-chan any, error) {
	ch := make(chan any, 2)
	ch <- map[string]any{"phase": "high_idle", "seconds_left": 12}
	close(ch)
	return ch, nil
}

func (f *fakeSelfTests) OBDCheck(bay string) (any, error) {
	return map[string]any{"result": 0, "lines": []string{"MIL on"}}, nil
}

func TestSelfTestRoutes(t *testing.T) {
	f := newFixture(t, false)
	st := &fakeSelfTests{}
	f.api.opts.SelfTests = st

	code, m := f.do("POST", "/bays/bay1/selftest", dmsToken, `{"method":"lug_down"}`)
	if code != http.StatusBadRequest || m["field"] != "method" {
		t.Fatalf("unknown method: %d %v", code, m)
	}
	if code, m := f.do("POST", "/bays/bay1/selftest", dmsToken, `{"method":"two_speed_idle","rated_rpm":-5}`); code != 400 || m["field"] != "rated_rpm" {
		t.Fatalf("negative rated speed: %d %v", code, m)
	}
	if code, m := f.do("GET", "/bays/bay1/selftest", dmsToken, ""); code != http.StatusNotFound {
		t.Fatalf("status before any test: %d %v", code, m)
	}
	m = f.mustDo(http.StatusAccepted, "POST", "/bays/bay1/selftest", `{"method":"two_speed_idle","rated_rpm":5600,"limit_set":"b"}`)
	if m["running"] != true || len(st.started) != 1 || st.started[0].RatedRPM != 5600 || st.started[0].LimitSet != "b" {
		t.Fatalf("start: %v, recorded %+v", m, st.started)
	}
	if code, m := f.do("POST", "/bays/bay1/selftest", dmsToken, `{"method":"two_speed_idle","rated_rpm":5600}`); code != http.StatusConflict {
		t.Fatalf("second start while running: %d %v", code, m)
	}
	if code, _ := f.do("POST", "/bays/bay9/selftest", dmsToken, `{"method":"free_acceleration"}`); code != http.StatusNotFound {
		t.Fatalf("unknown bay: %d", code)
	}
	f.mustDo(http.StatusAccepted, "POST", "/bays/bay1/selftest/abort", "")
	if m := f.mustDo(http.StatusOK, "GET", "/bays/bay1/selftest", ""); m["running"] != false {
		t.Fatalf("after abort: %v", m)
	}
	if m := f.mustDo(http.StatusOK, "GET", "/bays/bay1/obd-check", ""); m["result"] != float64(0) {
		t.Fatalf("obd check: %v", m)
	}
}

func TestNoRigsAnswerClearly(t *testing.T) {
	f := newFixture(t, false)
	code, m := f.do("POST", "/bays/bay1/selftest", dmsToken, `{"method":"two_speed_idle","rated_rpm":5600}`)
	if code != http.StatusConflict || m["error"] == nil {
		t.Fatalf("self-test without rigs: %d %v", code, m)
	}
}
