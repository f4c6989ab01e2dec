package obd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// ScanOptions tunes Scan. The zero value is usable.
type ScanOptions struct {
	// Lang selects the language of DTC descriptions: "zh" (default) or "en".
	Lang string
	// Now is the clock for timestamps and step timing; nil means time.Now.
	Now func() time.Time
	// Logger receives one debug record per finished step, message "obd scan step" with the
	// attributes step, status, requests and ms (`obdgw scan` prints them as progress lines, so
	// keep these names); nil discards.
	Logger *slog.Logger
	// ExpectedVIN is the work order's VIN. When set and different from the car's, the report
	// says so (an I/M fail condition).
	ExpectedVIN string
	// Memory, when set, sizes the answers of a car seen before from what it answered last
	// time, and keeps what this scan learns for the next (see Memory). nil: every scan starts
	// as a first visit.
	Memory Memory
	// OnStep, when set, is called as each step of the plan starts, on the scan's goroutine
	// (it must return quickly): where the scan is, for a progress display.
	OnStep func(StepProgress)
}

// StepProgress says where a running scan is: the step starting (Step.Name), its place in the
// plan counted from 1, and the number of steps in the plan.
type StepProgress struct {
	Step  string `json:"step"`
	Index int    `json:"index"`
	Total int    `json:"total"`
}

// Report is the result of a workshop full scan, and the document `obdgw scan --json` prints.
//
// What the scan could not read is unknown, never "off" or "none": MIL and Readiness are nil
// (JSON null) and a DTC list is nil (JSON null, where a car without codes gives []) when the
// step that reads it failed, was skipped or never ran, and Unread names each such item with
// the step and its error. The other lists are never null in JSON.
type Report struct {
	Time time.Time `json:"time"`
	VIN  string    `json:"vin"`
	// VINValid is true when the VIN is well formed and its position-9 check digit computes
	// (ISO 3779, GB 16735; North American and Chinese VINs carry one).
	VINValid bool `json:"vin_valid"`
	// VINWellFormed is true when the VIN has 17 characters of the VIN alphabet, whatever its
	// check digit: some European VINs carry none, so they are well formed but not VINValid.
	VINWellFormed bool   `json:"vin_well_formed"`
	ExpectedVIN   string `json:"expected_vin,omitempty"`
	VINMismatch   bool   `json:"vin_mismatch,omitempty"`
	Protocol      string `json:"protocol"`
	ElapsedMS     int64  `json:"elapsed_ms"`
	Lang          string `json:"lang"`
	// MIL is on when any ECU reports it on (PID 01 bit A7), off only when the readiness step
	// read every ECU's 0101; nil (unknown) otherwise.
	MIL     *bool       `json:"mil"`
	Adapter Profile     `json:"adapter"`
	ECUs    []ECUReport `json:"ecus"`
	DTCs    DTCLists    `json:"dtcs"`
	// Readiness is the aggregate over every ECU, nil (unknown) unless the readiness step
	// succeeded; per-ECU detail is in ECUs[].readiness.
	Readiness    *Readiness    `json:"readiness"`
	OdometerKM   *float64      `json:"odometer_km,omitempty"`
	FreezeFrames []FreezeFrame `json:"freeze_frames"`
	Live         []Value       `json:"live"`
	Warnings     []string      `json:"warnings"`
	Steps        []Step        `json:"steps"`
	// Unread lists what the scan could not read of MIL, readiness and DTCs; absent when all
	// was read.
	Unread []Unread   `json:"unread,omitempty"`
	Audit  []Exchange `json:"audit"`
}

// Unread is one item of the report that is unknown because its step did not read it.
type Unread struct {
	// Item is "mil", "readiness", "dtcs_stored", "dtcs_pending" or "dtcs_permanent".
	Item string `json:"item"`
	// Step is the step that reads it, Status that step's status (StepFailed, StepSkipped,
	// StepNotSupported, or StepNotRun when the scan stopped before it).
	Step   string `json:"step"`
	Status string `json:"status"`
	// Reason is the step's error, or why it sent nothing.
	Reason string `json:"reason"`
}

// Unread items.
const (
	ItemMIL           = "mil"
	ItemReadiness     = "readiness"
	ItemDTCsStored    = "dtcs_stored"
	ItemDTCsPending   = "dtcs_pending"
	ItemDTCsPermanent = "dtcs_permanent"
)

// IsUnread reports whether item is unknown.
func (r *Report) IsUnread(item string) bool {
	for _, u := range r.Unread {
		if u.Item == item {
			return true
		}
	}
	return false
}

// ECUReport is what one responding ECU said about itself.
type ECUReport struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"` // from 090A, "" when the ECU has none
	VIN         string         `json:"vin,omitempty"`
	CALIDs      []string       `json:"calids"`
	CVNs        []string       `json:"cvns"`
	Supported01 []string       `json:"supported_01"`
	Supported09 []string       `json:"supported_09"`
	Readiness   *MonitorStatus `json:"readiness,omitempty"`
	IUPR        *IUPR          `json:"iupr,omitempty"`

	sup01, sup09, sup02 PIDSet
}

// DTCLists are the codes of every ECU by service. A list is nil (JSON null) when its service
// was not read (see Report.Unread), empty when the car has no such code.
type DTCLists struct {
	Stored    []DTC `json:"stored"`    // service 03, confirmed
	Pending   []DTC `json:"pending"`   // service 07
	Permanent []DTC `json:"permanent"` // service 0A
}

// FreezeFrame is the snapshot an ECU stored with the code that triggered it.
type FreezeFrame struct {
	ECU    string  `json:"ecu"`
	Frame  int     `json:"frame"`
	DTC    string  `json:"dtc"`
	Values []Value `json:"values"`
}

// Step statuses.
const (
	StepOK           = "ok"
	StepNotSupported = "not_supported" // NO DATA or a negative answer: the car does not offer it
	StepSkipped      = "skipped"       // the bitmaps say nothing here is supported; nothing sent
	StepFailed       = "failed"        // adapter or bus error, or malformed answers
	// StepNotRun marks, in Unread only, a step the scan stopped before.
	StepNotRun = "not_run"
)

// Step is one stage of the scan plan with its timing.
type Step struct {
	Name       string   `json:"name"`
	Status     string   `json:"status"`
	Requests   int      `json:"requests"`
	DurationMS float64  `json:"duration_ms"`
	Notes      []string `json:"notes,omitempty"`
	Error      string   `json:"error,omitempty"`

	answered bool
	failed   []error
}

// Exchange is one request and what came back, for the audit log.
type Exchange struct {
	At        time.Time     `json:"at"`
	Request   string        `json:"request"`
	Responses []RawResponse `json:"responses"`
	Error     string        `json:"error,omitempty"`
}

// RawResponse is one ECU's answer as the adapter delivered it.
type RawResponse struct {
	ECU  string `json:"ecu"`
	Data string `json:"data"` // hex bytes separated by spaces
}

// ContextPIDs are the Mode 01 PIDs a workshop scan reads for context, in reading order: the
// OBD standard, distances and times, speed and temperature, then the oxygen sensors (which are
// present, their readings) and the catalyst temperatures a catalyst or fuel-trim code is
// diagnosed from. Only the PIDs an ECU supports are asked.
var ContextPIDs = []byte{0x1C, 0x21, 0x31, 0x4D, 0x4E, 0xA6, 0x0C, 0x0D, 0x05,
	0x13, 0x1D, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B,
	0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B,
	0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B,
	0x3C, 0x3D, 0x3E, 0x3F}

// freezeFramePIDs are the freeze-frame PIDs read when an ECU stored a frame, if it supports them.
var freezeFramePIDs = []byte{0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x1F, 0x21, 0x2F, 0x33, 0x42, 0x46}

const maxMultiPIDs = 6

type scanner struct {
	ctx     context.Context
	a       Adapter
	opts    ScanOptions
	now     func() time.Time
	log     *slog.Logger
	r       *Report
	ecus    map[string]*ECUReport
	step    *Step
	queries int
	fatal   error
	form    DTCForm
	// stored counts the confirmed codes each ECU returned to service 03, to cross-check 0101.
	stored map[string]int
	// carECUs are the ECUs that had answered when the VIN came in: the car as Memory knows
	// it. nil until then (and for a car with no VIN), so nothing is learnt before.
	carECUs []string
	// recalled is what Memory kept of this car, when the same ECUs answered; learnt is what
	// this scan saw of the requests it could not size itself (nil entry: nobody answered).
	recalled *Answers
	learnt   map[string][]Answer
	// dtcAnswers keeps each ECU's answers to 03 and 07 (see Answers.Codes).
	dtcAnswers map[string]map[byte][]byte
	// noBitmap09 is set when no ECU gave a usable 0900 bitmap (NO DATA, a negative answer,
	// an empty or zero bitmap): the Mode 09 steps then ask their PIDs directly.
	noBitmap09 bool
	// index and total count the steps for ScanOptions.OnStep.
	index, total int
}

// needed09 are the Mode 09 PIDs every record needs (VIN, CALIDs, CVNs): asked even when no
// bitmap names them. needed01 are the Mode 01 PIDs the daemon reads (readiness and MIL,
// distance since codes cleared, odometer), asked the same way. A bitmap that is missing or
// wrong costs one request that draws NO DATA; it never hides a value the car gives
// (elm327-obd.md §17).
var (
	needed09 = []byte{0x02, 0x04, 0x06}
	needed01 = []byte{0x01, 0x31, 0xA6}
)

// Scan runs the workshop full scan (elm327-obd.md §17) over a, in this order: adapter profile,
// supported PIDs of services 01 and 09, VIN, 0101 readiness, DTCs (03, 07, 0A), freeze frame,
// CALIDs, CVNs, ECU names, IUPR, context PIDs. PIDs the bitmaps name are requested, and
// those every record needs (needed01, needed09) even when no bitmap names them; without any
// 0900 bitmap every Mode 09 PID of the plan is asked directly, once. Every result keeps its
// ECU, also from an ECU that answered no bitmap. The VIN comes right after the bitmaps, ahead of §17's order, because
// it names the car: with opts.Memory, what the car answered on an earlier visit then sizes
// the answers that follow.
//
// A step the car does not support (NO DATA, a negative answer) is recorded as not supported,
// and the scan goes on. ErrNoVehicle on the first request returns (nil, err): nothing was
// learnt. ErrNoVehicle later, a cancelled ctx, or ErrAdapterLost twice in a row (a request is
// asked once more after the link dropped) returns the partial report with the error.
// Scan never sends service 04.
func Scan(ctx context.Context, a Adapter, opts ScanOptions) (*Report, error) {
	s := &scanner{ctx: ctx, a: a, opts: opts, now: opts.Now, log: opts.Logger, ecus: map[string]*ECUReport{}, stored: map[string]int{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	lang := normLang(opts.Lang)
	start := s.now()
	s.r = &Report{
		Time: start, Lang: lang, ExpectedVIN: opts.ExpectedVIN,
		ECUs: []ECUReport{}, FreezeFrames: []FreezeFrame{},
		Live: []Value{}, Warnings: []string{}, Steps: []Step{}, Audit: []Exchange{},
	}

	steps := []struct {
		name string
		fn   func()
	}{
		{"supported_pids_01", func() { s.supportedChain(0x01, nil, sup01) }},
		// Every OBD ECU answered 0100; one without service 09 stays silent, which only costs
		// the wait the hint was to save, while no ECU can answer 0900 that did not answer
		// 0100.
		{"supported_pids_09", func() {
			s.supportedChain(0x09, s.hint(func(*ECUReport) (Expect, bool) { return Expect{Len: 6, Messages: 1}, true }), sup09)
			if !s.anyBitmap(sup09) {
				s.noBitmap09 = true
				s.note("no ECU gave a 0900 bitmap; 0902, 0904, 0906, 090A, 0908 and 090B are asked directly")
			}
		}},
		{"vin", func() { s.vinStep(); s.recallCar() }},
		{"readiness", s.readinessStep},
		{"dtcs_stored", func() { s.dtcStep(ServiceStored, &s.r.DTCs.Stored) }},
		{"dtcs_pending", func() { s.dtcStep(ServicePending, &s.r.DTCs.Pending) }},
		{"dtcs_permanent", func() { s.dtcStep(ServicePermanent, &s.r.DTCs.Permanent) }},
		{"freeze_frame", s.freezeFrameStep},
		{"calid", func() { s.infoStep(0x04, s.calid) }},
		{"cvn", func() { s.infoStep(0x06, s.cvn) }},
		{"ecu_name", func() { s.infoStep(0x0A, s.ecuName) }},
		{"iupr", s.iuprStep},
		{"context_pids", s.contextStep},
	}
	s.total = 1 + len(steps)
	s.run("adapter", s.adapterStep)
	for _, st := range steps {
		s.run(st.name, st.fn)
		if s.fatal != nil {
			if s.queries == 1 && errors.Is(s.fatal, ErrNoVehicle) {
				return nil, fmt.Errorf("obd: scan: %w", s.fatal)
			}
			s.finish(start)
			return s.r, fmt.Errorf("obd: scan stopped at step %s: %w", st.name, s.fatal)
		}
	}
	s.finish(start)
	s.remember()
	return s.r, nil
}

func (s *scanner) finish(start time.Time) {
	var per []MonitorStatus
	milOn := false
	for _, id := range s.ecuIDs() {
		e := s.ecus[id]
		e.Supported01 = e.sup01.HexList()
		e.Supported09 = e.sup09.HexList()
		s.r.ECUs = append(s.r.ECUs, *e)
		if e.Readiness != nil {
			per = append(per, *e.Readiness)
			milOn = milOn || e.Readiness.MIL
			// 0101 counts the confirmed codes too; a difference points at a lost frame or a
			// legacy answer read as one message (python-OBD #284).
			if n, ok := s.stored[id]; ok && n != e.Readiness.DTCCount {
				s.r.Warnings = append(s.r.Warnings, fmt.Sprintf("ECU %s: 0101 reports %d confirmed DTC(s) but service 03 returned %d", id, e.Readiness.DTCCount, n))
			}
		}
	}
	steps := map[string]Step{}
	for _, st := range s.r.Steps {
		steps[st.Name] = st
	}
	// A step read its item when it ran to the end without failing and asked the car: ok, or
	// not supported (NO DATA, a negative answer — an answer). 0101 unsupported or never sent
	// leaves the MIL and readiness unknown all the same.
	read := func(item, step string, needAnswer bool) bool {
		st, ran := steps[step]
		u := Unread{Item: item, Step: step, Status: st.Status, Reason: st.Error}
		switch {
		case !ran:
			u.Status, u.Reason = StepNotRun, "the scan stopped before this step"
		case st.Status == StepOK, st.Status == StepNotSupported && !needAnswer:
			return true
		case st.Status == StepSkipped:
			u.Reason = "not requested: no ECU lists it as supported"
			if b := steps["supported_pids_01"]; b.Status == StepFailed {
				u.Reason += " (supported_pids_01 failed: " + b.Error + ")"
			}
		case st.Status == StepNotSupported:
			u.Reason = "no ECU answered it: " + strings.Join(st.Notes, "; ")
		}
		s.r.Unread = append(s.r.Unread, u)
		return false
	}
	if read(ItemMIL, "readiness", true) {
		s.r.MIL = &milOn
	} else if milOn {
		// An ECU that did answer said on: that much is known even if another failed.
		s.r.MIL = &milOn
		s.r.Unread = s.r.Unread[:len(s.r.Unread)-1]
	}
	if read(ItemReadiness, "readiness", true) {
		agg := AggregateReadiness(per)
		s.r.Readiness = &agg
	}
	for _, l := range []struct {
		item, step string
		list       *[]DTC
	}{
		{ItemDTCsStored, "dtcs_stored", &s.r.DTCs.Stored},
		{ItemDTCsPending, "dtcs_pending", &s.r.DTCs.Pending},
		{ItemDTCsPermanent, "dtcs_permanent", &s.r.DTCs.Permanent},
	} {
		slices.SortStableFunc(*l.list, func(a, b DTC) int { return strings.Compare(a.ECU, b.ECU) })
		switch {
		case !read(l.item, l.step, false):
			if len(*l.list) == 0 {
				*l.list = nil // unknown; codes that did come in stay, flagged by Unread
			}
		case *l.list == nil:
			*l.list = []DTC{}
		}
	}
	slices.SortStableFunc(s.r.FreezeFrames, func(a, b FreezeFrame) int { return strings.Compare(a.ECU, b.ECU) })
	s.r.ElapsedMS = s.now().Sub(start).Milliseconds()
}

func (s *scanner) run(name string, fn func()) {
	s.index++
	if s.opts.OnStep != nil {
		s.opts.OnStep(StepProgress{Step: name, Index: s.index, Total: s.total})
	}
	st := &Step{Name: name}
	s.step = st
	t0 := s.now()
	fn()
	st.DurationMS = float64(s.now().Sub(t0).Microseconds()) / 1000
	switch {
	case len(st.failed) > 0:
		st.Status = StepFailed
		st.Error = errors.Join(st.failed...).Error()
	case st.answered:
		st.Status = StepOK
	case st.Requests == 0 && st.Status == "":
		st.Status = StepSkipped
	case st.Status == "":
		st.Status = StepNotSupported
	}
	s.log.Debug("obd scan step", "step", name, "status", st.Status, "requests", st.Requests, "ms", st.DurationMS)
	s.r.Steps = append(s.r.Steps, *st)
}

func (s *scanner) ecu(id string) *ECUReport {
	e, ok := s.ecus[id]
	if !ok {
		e = &ECUReport{ID: id, CALIDs: []string{}, CVNs: []string{}}
		s.ecus[id] = e
	}
	return e
}

// query sends req and returns the positive answers, one per ECU (legacy multi-message answers
// joined). A request the scan could not size itself is sized from what the car answered on an
// earlier visit (Memory), else, on CAN, as the usual answer (likely). NO DATA and negative
// answers come back as no responses and a note; a failure is recorded in the step and
// returned.
func (s *scanner) query(req Request) ([]Response, error) {
	if err := s.ctx.Err(); err != nil {
		s.fatal = err
		s.step.failed = append(s.step.failed, err)
		return nil, err
	}
	s.queries++
	s.step.Requests++
	sized := len(req.Expect) > 0 // the scan worked the answer out itself
	if !sized {
		req.Expect = s.recall(req)
		if req.Expect == nil {
			req.Expect = s.likely(req)
			req.Likely = req.Expect != nil
		}
	}
	resps, err := s.a.Query(s.ctx, req)
	if errors.Is(err, ErrAdapterLost) && s.ctx.Err() == nil && req.Service != 0x04 {
		// A link that dropped for a moment (a Bluetooth hiccup) is back by the next request:
		// ask once more. The scan only reads, so asking twice changes nothing in the car.
		s.audit(req, nil, err)
		s.log.Info("obd scan: link to the adapter lost; asking again", "request", req.String(), "err", err)
		resps, err = s.a.Query(s.ctx, req)
	}
	if sr, ok := s.a.(StrayReporter); ok {
		for _, r := range sr.Strays() {
			s.stray(req, r)
		}
	}
	resps = s.dropStrays(req, resps)
	if !sized && (err == nil || errors.Is(err, ErrNoData)) {
		s.learn(req, resps)
	}
	s.audit(req, resps, err)
	switch {
	case errors.Is(err, ErrNoData):
		s.note("%s: no data", req)
		return nil, nil
	case errors.Is(err, ErrNoVehicle), errors.Is(err, ErrAdapterLost), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		s.fatal = err
		s.step.failed = append(s.step.failed, fmt.Errorf("%s: %w", req, err))
		return nil, err
	case err != nil:
		s.step.failed = append(s.step.failed, fmt.Errorf("%s: %w", req, err))
		return nil, err
	}
	var out []Response
	for _, r := range mergeByECU(resps) {
		if ne := negative(r); ne != nil {
			if ne.NRC != 0x78 {
				s.note("%s: ECU %s: %s", req, r.ECU, NRCName(ne.NRC))
			}
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// dropStrays removes, with a note, the responses that answer no part of req: a positive
// answer of another service ("61 A6 …" to 01A6), of another PID, or a late frame of an
// earlier request. They never fail the step nor hide the other answers.
func (s *scanner) dropStrays(req Request, resps []Response) []Response {
	out := resps[:0:0]
	for _, r := range resps {
		if answersRequest(req, r) {
			out = append(out, r)
			continue
		}
		s.stray(req, r)
	}
	return out
}

func (s *scanner) stray(req Request, r Response) {
	ecu := r.ECU
	if ecu == "" {
		ecu = "?"
	}
	s.note("%s: ECU %s: ignored %s, which answers another request", req, ecu, hexSpaced(r.Data))
}

// answersRequest reports whether r answers req: a negative answer to its service, or a
// positive answer of its service and, for services 01, 02, 06 and 09, of one of its PIDs.
func answersRequest(req Request, r Response) bool {
	d := r.Data
	switch {
	case len(d) == 0:
		return false
	case d[0] == 0x7F:
		return len(d) >= 2 && d[1] == req.Service
	case d[0] != req.Service|0x40:
		return false
	}
	switch req.Service {
	case 0x01:
		return len(req.Data) == 0 || len(d) >= 2 && bytes.IndexByte(req.Data, d[1]) >= 0
	case 0x02, 0x06, 0x09:
		return len(req.Data) == 0 || len(d) >= 2 && d[1] == req.Data[0]
	}
	return true
}

// audit records one exchange in the report's audit trail.
func (s *scanner) audit(req Request, resps []Response, err error) {
	ex := Exchange{At: s.now(), Request: req.String(), Responses: []RawResponse{}}
	for _, r := range resps {
		ex.Responses = append(ex.Responses, RawResponse{ECU: r.ECU, Data: hexSpaced(r.Data)})
	}
	if err != nil {
		ex.Error = err.Error()
	}
	s.r.Audit = append(s.r.Audit, ex)
}

func (s *scanner) note(format string, args ...any) {
	s.step.Notes = append(s.step.Notes, fmt.Sprintf(format, args...))
}

// bad records a malformed answer: the step fails, the scan goes on.
func (s *scanner) bad(r Response, err error) {
	var de *DecodeError
	if errors.As(err, &de) {
		if de.ECU == "" {
			de.ECU = r.ECU
		}
		// Decoders see only the payload; the log needs the whole answer as the ECU sent it.
		if len(de.Raw) < len(r.Data) && bytes.HasSuffix(r.Data, de.Raw) {
			de.Raw = append([]byte(nil), r.Data...)
		}
	}
	s.step.failed = append(s.step.failed, err)
}

// mergeByECU joins several messages from one ECU (legacy protocols deliver VINs and DTC lists
// as several lines) and drops exact duplicates, which some clones send.
func mergeByECU(resps []Response) []Response {
	var out []Response
	idx := map[string]int{}
	for _, r := range resps {
		i, ok := idx[r.ECU]
		if !ok {
			idx[r.ECU] = len(out)
			out = append(out, Response{ECU: r.ECU, Data: append([]byte(nil), r.Data...)})
			continue
		}
		if bytes.Equal(out[i].Data, r.Data) {
			continue
		}
		out[i].Data = append(out[i].Data, r.Data...)
	}
	return out
}

func (s *scanner) adapterStep() {
	p, ok := s.a.(Profiler)
	if !ok {
		s.step.Status = StepNotSupported
		s.note("adapter does not describe itself; single-PID requests")
		return
	}
	s.r.Adapter = p.Profile()
	s.r.Protocol = s.r.Adapter.Protocol
	if s.r.Protocol == "" && s.r.Adapter.ProtocolNum != "" {
		s.r.Protocol = "ELM protocol " + s.r.Adapter.ProtocolNum
	}
	switch strings.TrimPrefix(strings.ToUpper(s.r.Adapter.ProtocolNum), "A") {
	case "1", "2", "3", "4", "5":
		s.form = FormLegacy
	case "6", "7", "8", "9", "B", "C":
		s.form = FormCAN
	}
	s.step.answered = true
}

// supportedChain walks one service's bitmaps for the scan, recording answers per ECU.
func (s *scanner) supportedChain(service byte, first []Expect, set func(*ECUReport) *PIDSet) {
	walkSupported(service, first, s.query, func(r Response, pids []byte) {
		e := s.ecu(r.ECU)
		for _, p := range pids {
			set(e).Add(p)
		}
		s.step.answered = true
	}, s.bad)
}

// anyBitmap reports whether some ECU named at least one PID in its bitmaps of set.
func (s *scanner) anyBitmap(set func(*ECUReport) *PIDSet) bool {
	for _, e := range s.ecus {
		if len(set(e).HexList()) > 0 {
			return true
		}
	}
	return false
}

// wants09 reports whether the scan asks Mode 09 pid: some bitmap names it, no ECU gave a
// bitmap, or every record needs it. Asked without a bitmap naming it, the step says so.
func (s *scanner) wants09(pid byte) bool {
	if s.anySupports(sup09, pid) {
		return true
	}
	switch {
	case s.noBitmap09:
		s.note("09%02X asked without a 0900 bitmap", pid)
	case slices.Contains(needed09, pid):
		s.note("09%02X is in no 0900 bitmap; asked all the same", pid)
	default:
		return false
	}
	return true
}

func (s *scanner) anySupports(set func(*ECUReport) *PIDSet, pid byte) bool {
	for _, e := range s.ecus {
		if set(e).Has(pid) {
			return true
		}
	}
	return false
}

func sup01(e *ECUReport) *PIDSet { return &e.sup01 }
func sup09(e *ECUReport) *PIDSet { return &e.sup09 }

// hint builds a request's Expect (the answers the scan knows are coming, so an adapter need
// not wait out its timeout for more): one entry for each ECU that f says answers, in ECU
// order. nil when none does. f sizes the answer from what the ECU already said; an entry it
// cannot size is left zero, which tells the adapter the hint is incomplete.
//
// Only answers the scan can know go in: a hint that is too long costs the wait it was meant
// to save, one too short makes an adapter stop before late frames, which then stand in front
// of the next answer (elm327-obd.md §7).
func (s *scanner) hint(f func(e *ECUReport) (Expect, bool)) []Expect {
	var out []Expect
	for _, id := range s.ecuIDs() {
		if x, ok := f(s.ecus[id]); ok {
			x.ECU = id
			out = append(out, x)
		}
	}
	return out
}

// pidHint is the hint for a Mode 01 request of pids (one, or a CAN multi-PID batch): every
// ECU whose bitmaps name one of them answers with PID + data for each it supports. nil when
// a width is unknown.
func (s *scanner) pidHint(pids ...byte) []Expect {
	for _, p := range pids {
		if PIDWidth(p) == 0 {
			return nil
		}
	}
	return s.hint(func(e *ECUReport) (Expect, bool) {
		n := 1
		for _, p := range pids {
			if e.sup01.Has(p) {
				n += 1 + PIDWidth(p)
			}
		}
		if n == 1 {
			return Expect{}, false
		}
		x := Expect{Len: n}
		if len(pids) == 1 {
			x.Messages = 1 // legacy protocols take one PID per request
		}
		return x, true
	})
}

func (s *scanner) readinessStep() {
	if !s.anySupports(sup01, 0x01) {
		s.note("0101 is in no 0100 bitmap; asked all the same")
	}
	resps, err := s.query(Req(0x01, 0x01).Expecting(s.pidHint(0x01)...))
	if err != nil {
		return
	}
	for _, r := range resps {
		d := r.Data
		if len(d) < 2 || d[0] != 0x41 || d[1] != 0x01 {
			s.bad(r, decodeErr("0101 monitor status", d, "want 41 01 at the start"))
			continue
		}
		m, err := DecodeMonitorStatus(d[2:])
		if err != nil {
			s.bad(r, err)
			continue
		}
		m.ECU = r.ECU
		s.ecu(r.ECU).Readiness = &m
		s.step.answered = true
	}
}

func (s *scanner) dtcStep(service byte, into *[]DTC) {
	req := Req(service)
	if service == ServiceStored {
		req.Expect = s.storedHint()
	}
	// Pending (07) and permanent (0A) codes have no count the scan could read first, and
	// neither follows from 03's (a permanent code can outlive its confirmed one): they are
	// sized from memory or as usual answers (query).
	resps, err := s.query(req)
	if err != nil {
		return
	}
	for _, r := range resps {
		if service != ServicePermanent {
			if s.dtcAnswers == nil {
				s.dtcAnswers = map[string]map[byte][]byte{}
			}
			if s.dtcAnswers[r.ECU] == nil {
				s.dtcAnswers[r.ECU] = map[byte][]byte{}
			}
			s.dtcAnswers[r.ECU][service] = r.Data
		}
		dtcs, err := ParseDTCs(service, r, s.form)
		if err != nil {
			s.bad(r, err)
		}
		for i := range dtcs {
			dtcs[i].Description = DescribeDTC(dtcs[i].Code, s.r.Lang)
		}
		if service == ServiceStored && err == nil {
			s.stored[r.ECU] = len(dtcs)
		}
		*into = append(*into, dtcs...)
		s.ecu(r.ECU)
		s.step.answered = true
	}
}

// freezeFrameStep reads service 02 frame 0: its supported-PID bitmap (02 00 00), the DTC that
// stored the frame (02 02 00), and, for ECUs whose DTC is not 0000, the supported PIDs with
// known formulas (02 xx 00). Requests always carry the frame byte.
// storedHint sizes every ECU's answer to 03 from the confirmed-DTC count it gave in 0101
// (J1979: each OBD ECU answers 03, with 43 00 when it has no code). nil unless every ECU that
// answered gave its count.
func (s *scanner) storedHint() []Expect {
	known := true
	x := s.hint(func(e *ECUReport) (Expect, bool) {
		if e.Readiness == nil {
			known = false
			return Expect{}, false
		}
		n := e.Readiness.DTCCount
		// CAN: 43, the count byte, two bytes a code. Legacy: three codes a message, at
		// least one message.
		return Expect{Len: 2 + 2*n, Messages: max(1, (n+2)/3)}, true
	})
	if !known {
		return nil
	}
	return x
}

func (s *scanner) freezeFrameStep() {
	sup02 := func(e *ECUReport) *PIDSet { return &e.sup02 }
	if len(s.ecus) == 0 {
		return // nothing answered the bitmaps or the DTC requests
	}
	// Supported freeze-frame PIDs of frame 0 (02 00 00, 02 20 00, …). Who answers 02 00 00
	// is not known beforehand (an ECU with no frame may stay silent): query sizes it from
	// memory or as the usual answer.
	walkSupported(0x02, nil, s.query, func(r Response, pids []byte) {
		for _, p := range pids {
			s.ecu(r.ECU).sup02.Add(p)
		}
	}, s.bad)
	if !s.anySupports(sup02, 0x02) {
		return
	}
	resps, err := s.query(Req(0x02, 0x02, 0x00).Expecting(s.hint(func(e *ECUReport) (Expect, bool) {
		return Expect{Len: 5, Messages: 1}, e.sup02.Has(0x02) // 42 02 00 + the DTC
	})...))
	if err != nil {
		return
	}
	frames := map[string]*FreezeFrame{}
	var order []string
	for _, r := range resps {
		d := r.Data
		if len(d) < 5 || d[0] != 0x42 || d[1] != 0x02 {
			s.bad(r, decodeErr("020200 freeze-frame DTC", d, "want 42 02 00 and two DTC bytes"))
			continue
		}
		s.step.answered = true
		code := DecodeDTC(d[3], d[4])
		if code == "" {
			s.note("ECU %s: no freeze frame stored", r.ECU)
			continue
		}
		s.ecu(r.ECU) // an ECU that answered no bitmap is kept in the report like any other
		frames[r.ECU] = &FreezeFrame{ECU: r.ECU, Frame: int(d[2]), DTC: code, Values: []Value{}}
		order = append(order, r.ECU)
	}
	for _, pid := range freezeFramePIDs {
		wanted := false
		for _, id := range order {
			wanted = wanted || s.ecus[id].sup02.Has(pid)
		}
		if !wanted {
			continue
		}
		var hint []Expect
		if w := PIDWidth(pid); w > 0 {
			hint = s.hint(func(e *ECUReport) (Expect, bool) {
				return Expect{Len: 3 + w, Messages: 1}, e.sup02.Has(pid) // 42 PID 00 + data
			})
		}
		resps, err := s.query(Req(0x02, pid, 0x00).Expecting(hint...))
		if err != nil {
			if s.fatal != nil {
				return
			}
			continue
		}
		for _, r := range resps {
			ff, ok := frames[r.ECU]
			if !ok {
				continue
			}
			d := r.Data
			if len(d) < 3 || d[0] != 0x42 || d[1] != pid {
				s.bad(r, decodeErr(fmt.Sprintf("02%02X00 freeze-frame PID", pid), d, "want 42 %02X at the start", pid))
				continue
			}
			v, err := DecodePID(pid, d[3:])
			if err != nil {
				s.bad(r, err)
				continue
			}
			v.ECU = r.ECU
			ff.Values = append(ff.Values, v)
		}
	}
	for _, id := range order {
		s.r.FreezeFrames = append(s.r.FreezeFrames, *frames[id])
	}
}

func (s *scanner) vinStep() {
	if !s.wants09(0x02) {
		return
	}
	// 49 02 01 + 17 characters on CAN (three frames); five messages on legacy (§14, §7).
	resps, err := s.query(Req(0x09, 0x02).Expecting(s.hint(func(e *ECUReport) (Expect, bool) {
		return Expect{Len: 20, Messages: 5}, e.sup09.Has(0x02)
	})...))
	if err != nil {
		return
	}
	slices.SortStableFunc(resps, func(a, b Response) int { return strings.Compare(a.ECU, b.ECU) })
	for _, r := range resps {
		vin, err := DecodeVIN(r.Data)
		if err != nil {
			s.bad(r, err)
			continue
		}
		s.step.answered = true
		s.ecu(r.ECU).VIN = vin
		if s.r.VIN == "" {
			s.r.VIN = vin
		} else if vin != s.r.VIN {
			s.r.Warnings = append(s.r.Warnings, fmt.Sprintf("ECU %s reports VIN %s, ECU %s reported %s", r.ECU, vin, firstVINECU(s), s.r.VIN))
		}
	}
	if s.r.VIN == "" {
		return
	}
	warn, err := CheckVIN(s.r.VIN)
	s.r.VINWellFormed = err == nil
	s.r.VINValid = err == nil && warn == ""
	switch {
	case err != nil:
		s.r.Warnings = append(s.r.Warnings, err.Error())
	case warn != "":
		s.r.Warnings = append(s.r.Warnings, warn)
	}
	if s.opts.ExpectedVIN != "" && !strings.EqualFold(strings.TrimSpace(s.opts.ExpectedVIN), s.r.VIN) {
		s.r.VINMismatch = true
		s.r.Warnings = append(s.r.Warnings, fmt.Sprintf("VIN mismatch: the car reports %s, the work order says %s", s.r.VIN, s.opts.ExpectedVIN))
	}
}

func firstVINECU(s *scanner) string {
	ids := make([]string, 0, len(s.ecus))
	for id, e := range s.ecus {
		if e.VIN == s.r.VIN {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return "?"
	}
	return ids[0]
}

func (s *scanner) infoStep(pid byte, apply func(Response) error) {
	if !s.wants09(pid) {
		return
	}
	req := Req(0x09, pid)
	if pid == 0x0A {
		// The ECU name is one 20-byte item: 49 0A 01 + 20 on CAN. Its legacy message count
		// is not in our reference, so legacy adapters get no count. CALIDs and CVNs come in
		// a number each ECU chooses (on CAN there is no message-count PID to ask first):
		// query sizes them from memory or as usual answers.
		req.Expect = s.hint(func(e *ECUReport) (Expect, bool) { return Expect{Len: 23}, e.sup09.Has(0x0A) })
	}
	resps, err := s.query(req)
	if err != nil {
		return
	}
	for _, r := range resps {
		if err := apply(r); err != nil {
			s.bad(r, err)
		}
		s.step.answered = true
	}
}

func (s *scanner) calid(r Response) error {
	ids, err := DecodeCALIDs(r.Data)
	s.ecu(r.ECU).CALIDs = append(s.ecu(r.ECU).CALIDs, ids...)
	return err
}

func (s *scanner) cvn(r Response) error {
	cvns, err := DecodeCVNs(r.Data)
	s.ecu(r.ECU).CVNs = append(s.ecu(r.ECU).CVNs, cvns...)
	return err
}

func (s *scanner) ecuName(r Response) error {
	n, err := DecodeECUName(r.Data)
	if err == nil {
		s.ecu(r.ECU).Name = n.String()
	}
	return err
}

func (s *scanner) iuprStep() {
	for _, pid := range []byte{0x08, 0x0B} {
		if !s.wants09(pid) {
			continue
		}
		resps, err := s.query(Req(0x09, pid))
		if err != nil {
			if s.fatal != nil {
				return
			}
			continue
		}
		for _, r := range resps {
			u, err := DecodeIUPR(pid, r.Data)
			if err != nil {
				s.bad(r, err)
				continue
			}
			s.ecu(r.ECU).IUPR = &u
			s.step.answered = true
		}
	}
}

func (s *scanner) contextStep() {
	var pids, direct []byte
	for _, p := range ContextPIDs {
		switch {
		case s.anySupports(sup01, p):
			pids = append(pids, p)
		case slices.Contains(needed01, p):
			direct = append(direct, p)
		}
	}
	defer s.odometer()
	defer func() {
		// Asked after the others, one by one, so a batch never draws NO DATA for them.
		for _, p := range direct {
			if s.fatal != nil {
				return
			}
			s.note("01%02X is in no 0100 bitmap; asked all the same", p)
			s.singlePID(p)
		}
	}()
	if len(pids) == 0 {
		return
	}
	if s.r.Adapter.MultiPID && s.form != FormLegacy {
		// Batches of even size (9 PIDs: 5 + 4, not 6 + 3) cost the same requests, and a
		// request of 7 bytes leaves no room for an ELM327's response-count digit.
		batches := (len(pids) + maxMultiPIDs - 1) / maxMultiPIDs
		size := (len(pids) + batches - 1) / batches
		for i := 0; i < len(pids); i += size {
			chunk := pids[i:min(i+size, len(pids))]
			if len(chunk) == 1 {
				s.singlePID(chunk[0])
				continue
			}
			nfailed := len(s.step.failed)
			resps, err := s.query(Req(0x01, chunk...).Expecting(s.pidHint(chunk...)...))
			if s.fatal != nil {
				return
			}
			if err != nil || len(resps) == 0 {
				// §16: some ECUs and clones reject batches; step down to one PID per request.
				s.note("multi-PID request %s unanswered; reading its PIDs one by one", Req(0x01, chunk...))
				s.step.failed = s.step.failed[:nfailed]
				for _, p := range chunk {
					s.singlePID(p)
					if s.fatal != nil {
						return
					}
				}
				continue
			}
			for _, r := range resps {
				vals, err := ParseMultiPID(chunk, r.Data)
				if err != nil {
					s.bad(r, err)
				}
				s.addLive(r.ECU, vals)
			}
		}
	} else {
		for _, p := range pids {
			s.singlePID(p)
			if s.fatal != nil {
				return
			}
		}
	}
}

// odometer sorts the live values by ECU and takes the odometer from the first ECU giving
// PID A6.
func (s *scanner) odometer() {
	slices.SortStableFunc(s.r.Live, func(a, b Value) int { return strings.Compare(a.ECU, b.ECU) })
	for _, v := range s.r.Live {
		if v.PID == 0xA6 {
			km := v.Value
			s.r.OdometerKM = &km
			break
		}
	}
}

func (s *scanner) singlePID(pid byte) {
	resps, err := s.query(Req(0x01, pid).Expecting(s.pidHint(pid)...))
	if err != nil {
		return
	}
	for _, r := range resps {
		d := r.Data
		if len(d) < 2 || d[0] != 0x41 || d[1] != pid {
			s.bad(r, decodeErr(fmt.Sprintf("01%02X", pid), d, "want 41 %02X at the start", pid))
			continue
		}
		v, err := DecodePID(pid, d[2:])
		if err != nil {
			s.bad(r, err)
			continue
		}
		s.addLive(r.ECU, []Value{v})
	}
}

func (s *scanner) addLive(ecu string, vals []Value) {
	e := s.ecus[ecu]
	for _, v := range vals {
		v.ECU = ecu
		// An oxygen sensor's number means a bank and position only in the layout its ECU
		// declares (PID 13 or 1D, elm327-obd.md §15): name them where the ECU says which.
		if has13, has1D := e != nil && e.sup01.Has(0x13), e != nil && e.sup01.Has(0x1D); has13 != has1D {
			if bank, sensor, ok := O2SensorPosition(byte(v.PID), has1D); ok {
				v.Text = fmt.Sprintf("B%dS%d: %s", bank, sensor, v.Text)
			}
		}
		s.r.Live = append(s.r.Live, v)
		s.step.answered = true
	}
}
