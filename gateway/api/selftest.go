package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// SelfTests runs the emission self-tests of an M station's bays (two-speed idle, free
// acceleration) and the inspection station's OBD check. The daemon implements it over
// gateway/emission; the API only moves JSON.
//
// Contract: Start returns at once (the test runs in the background, bounded by the daemon's
// life, not the request's); at most one test runs per bay. Progress streams updates until the
// test ends or ctx ends.
type SelfTests interface {
	Start(bay string, req SelfTestRequest) (SelfTestStatus, error)
	Status(bay string) (SelfTestStatus, error)
	Abort(bay string) error
	Progress(ctx context.Context, bay string) (<-chan any, error)
	// OBDCheck judges the bay's last scan as an inspection station would (MIL, DTCs,
	// readiness, VIN against the work order): verdict pass, fail, or cannot_judge when the
	// scan could not read the MIL, DTCs or readiness — then the car was neither passed nor
	// failed, and the values not read are null.
	OBDCheck(bay string) (any, error)
}

// SelfTestRequest starts a self-test.
type SelfTestRequest struct {
	Method   string  `json:"method"`              // "two_speed_idle" or "free_acceleration"
	Order    string  `json:"order,omitempty"`     // the emission-repair work order; default the bay's open one
	RatedRPM float64 `json:"rated_rpm,omitempty"` // 额定转速 from the vehicle's documents
	LimitSet string  `json:"limit_set,omitempty"` // "a" or "b"; default from the configuration
	// Fuel is the car's fuel: "petrol", "diesel", "lpg" or "cng"; empty: the engine type of
	// the bay's last scan stands in. A method that does not fit the fuel (two-speed idle on a
	// diesel, free acceleration on a petrol car) is refused at the start.
	Fuel string `json:"fuel,omitempty"`
	// GrossMassKg is the gross vehicle mass (总质量); a heavy vehicle holds the heavy high-idle
	// speed.
	GrossMassKg float64 `json:"gross_mass_kg,omitempty"`
	// LambdaJudged says whether the car has closed-loop fuel control and a three-way catalyst,
	// so its λ is judged; absent: yes when the car reports closed loop (PID 03, asked through
	// the bay's adapter at the start), else by the fuel (petrol yes; LPG/CNG as configured).
	// Otherwise λ is shown, not judged.
	LambdaJudged *bool `json:"lambda_judged,omitempty"`
}

// SelfTestStatus is a bay's current or last self-test.
type SelfTestStatus struct {
	Bay     string `json:"bay"`
	Order   string `json:"order,omitempty"`
	Method  string `json:"method"`
	Running bool   `json:"running"`
	// Progress is the latest update (phase, prompt, seconds left, reading, rpm window).
	Progress any `json:"progress,omitempty"`
	// Result is the judged result once the test has ended (verdict, reasons, items, process data).
	Result any    `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Errors a SelfTests implementation wraps so the API answers with the right status.
var (
	ErrNoRig       = errors.New("api: this bay has no emission rig configured")
	ErrNoSelfTest  = errors.New("api: no self-test has run on this bay")
	ErrTestRunning = errors.New("api: a self-test is already running on this bay; abort it or wait for it to end")
	ErrNoOrder     = errors.New("api: no open emission-repair work order (with test_no) on this bay")
)

func (s *Server) selfTestRoutes() []Route {
	return []Route{
		{"POST", "/bays/{bay}/selftest", "start an emission self-test (two-speed idle or free acceleration)", carRisky, s.startSelfTest},
		{"GET", "/bays/{bay}/selftest", "the bay's current or last self-test: progress, then the judged result", anyRole, s.getSelfTest},
		{"POST", "/bays/{bay}/selftest/abort", "abort the running self-test", carRisky, s.abortSelfTest},
		{"GET", "/bays/{bay}/selftest/progress", "self-test progress as a server-sent-event stream", anyRole, s.selfTestProgress},
		{"GET", "/bays/{bay}/obd-check", "the inspection station's OBD check over the bay's last scan", anyRole, s.obdCheck},
	}
}

func selfTestError(err error) *apiError {
	switch {
	case errors.Is(err, ErrNoBay), errors.Is(err, ErrNoSelfTest):
		return &apiError{status: http.StatusNotFound, msg: err.Error()}
	case errors.Is(err, ErrTestRunning), errors.Is(err, ErrNoOrder), errors.Is(err, ErrNoRig):
		return &apiError{status: http.StatusConflict, msg: err.Error()}
	}
	var fe interface{ Field() string }
	if errors.As(err, &fe) {
		return &apiError{status: http.StatusBadRequest, field: fe.Field(), msg: err.Error()}
	}
	return &apiError{status: http.StatusUnprocessableEntity, msg: err.Error()}
}

func (s *Server) startSelfTest(w http.ResponseWriter, r *http.Request, c *caller) {
	var req SelfTestRequest
	if e := decodeBody(r.Body, &req, false); e != nil {
		writeError(w, e)
		return
	}
	req.Method = strings.TrimSpace(req.Method)
	switch {
	case req.Method != "two_speed_idle" && req.Method != "free_acceleration":
		writeError(w, &apiError{status: http.StatusBadRequest, field: "method", msg: fmt.Sprintf("method %q: want two_speed_idle or free_acceleration", req.Method)})
		return
	case req.RatedRPM < 0 || req.RatedRPM > 10000:
		writeError(w, &apiError{status: http.StatusBadRequest, field: "rated_rpm", msg: "rated_rpm: the rated engine speed from the vehicle's documents, 0–10000 r/min"})
		return
	case req.LimitSet != "" && req.LimitSet != "a" && req.LimitSet != "b":
		writeError(w, &apiError{status: http.StatusBadRequest, field: "limit_set", msg: `limit_set: "a" (限值a) or "b" (限值b)`})
		return
	case req.Fuel != "" && req.Fuel != "petrol" && req.Fuel != "diesel" && req.Fuel != "lpg" && req.Fuel != "cng":
		writeError(w, &apiError{status: http.StatusBadRequest, field: "fuel", msg: fmt.Sprintf("fuel %q: want petrol, diesel, lpg or cng", clip(req.Fuel))})
		return
	case !(req.GrossMassKg >= 0 && req.GrossMassKg <= 100000):
		writeError(w, &apiError{status: http.StatusBadRequest, field: "gross_mass_kg", msg: "gross_mass_kg: the gross vehicle mass (总质量) from the registration certificate, 0–100000 kg"})
		return
	}
	st, err := s.opts.SelfTests.Start(r.PathValue("bay"), req)
	if err != nil {
		writeError(w, selfTestError(err))
		return
	}
	s.log.Info("api: self-test started", "bay", r.PathValue("bay"), "method", req.Method, "by", c.name)
	writeJSON(w, http.StatusAccepted, st)
}

func (s *Server) getSelfTest(w http.ResponseWriter, r *http.Request, c *caller) {
	st, err := s.opts.SelfTests.Status(r.PathValue("bay"))
	if err != nil {
		writeError(w, selfTestError(err))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) abortSelfTest(w http.ResponseWriter, r *http.Request, c *caller) {
	var none struct{}
	if e := decodeBody(r.Body, &none, true); e != nil {
		writeError(w, e)
		return
	}
	if err := s.opts.SelfTests.Abort(r.PathValue("bay")); err != nil {
		writeError(w, selfTestError(err))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"bay": r.PathValue("bay"), "state": "aborting"})
}

func (s *Server) selfTestProgress(w http.ResponseWriter, r *http.Request, c *caller) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, &apiError{status: http.StatusInternalServerError, msg: "streaming unsupported"})
		return
	}
	ch, err := s.opts.SelfTests.Progress(r.Context(), r.PathValue("bay"))
	if err != nil {
		writeError(w, selfTestError(err))
		return
	}
	stream(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": self-test progress\n\n")
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case p, ok := <-ch:
			if !ok {
				fmt.Fprint(w, "event: end\ndata: {}\n\n")
				fl.Flush()
				return
			}
			b, err := json.Marshal(p)
			if err != nil {
				continue
			}
			if _, err := fmt.Fprintf(w, "event: progress\ndata: %s\n\n", b); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

func (s *Server) obdCheck(w http.ResponseWriter, r *http.Request, c *caller) {
	res, err := s.opts.SelfTests.OBDCheck(r.PathValue("bay"))
	if err != nil {
		writeError(w, selfTestError(err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// noSelfTests is the SelfTests of a daemon without rigs.
type noSelfTests struct{}

func (noSelfTests) Start(bay string, _ SelfTestRequest) (SelfTestStatus, error) {
	return SelfTestStatus{}, fmt.Errorf("%w: %q", ErrNoRig, bay)
}
func (noSelfTests) Status(bay string) (SelfTestStatus, error) {
	return SelfTestStatus{}, fmt.Errorf("%w: %q", ErrNoSelfTest, bay)
}
func (noSelfTests) Abort(bay string) error { return fmt.Errorf("%w: %q", ErrNoSelfTest, bay) }
func (noSelfTests) Progress(_ context.Context, bay string) (<-chan any, error) {
	return nil, fmt.Errorf("%w: %q", ErrNoSelfTest, bay)
}
func (noSelfTests) OBDCheck(bay string) (any, error) {
	return nil, fmt.Errorf("%w: %q", ErrNoBay, bay)
}
