package api

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/audit"
	"github.com/obdgw/obdgw/gateway/ehr"
	"github.com/obdgw/obdgw/gateway/workorder"
	"github.com/obdgw/obdgw/obd"
)

//go:embed openapi.yaml
var openapiYAML []byte

// table is every route. Paths are under Prefix.
func (s *Server) table() []Route {
	return []Route{
		{"GET", "/health", "liveness (no token needed)", nil, s.health},
		{"GET", "/openapi.yaml", "this API's OpenAPI description (no token needed)", nil, s.openapi},

		{"GET", "/workorders", "list work orders (owner data never included)", anyRole, s.listOrders},
		{"POST", "/workorders", "open a work order", orderDesk, s.createOrder},
		{"GET", "/workorders/{id}", "get a work order (?include=owner with a token for owner data)", anyRole, s.getOrder},
		{"PATCH", "/workorders/{id}", "change an open work order", orderWork, s.patchOrder},
		{"POST", "/workorders/{id}/items", "add a repair item", orderWork, s.addItem},
		{"POST", "/workorders/{id}/parts", "add a part", orderWork, s.addPart},
		{"POST", "/workorders/{id}/scans", "attach a scan (a stored one by id, or a report)", carWork, s.attachScan},
		{"POST", "/workorders/{id}/settle", "settle: build, validate and queue the JT/T 1132 record", orderDesk, s.settle},
		{"POST", "/workorders/{id}/revisions", "correct a settled order: a new revision of its record", corrector, s.revise},
		{"GET", "/workorders/{id}/records", "every revision of the order's record as sent", anyRole, s.records},
		{"GET", "/workorders/{id}/selftest", "the order's judged self-test with its full result (for the printed report)", anyRole, s.orderSelfTest},

		{"GET", "/scans", "stored scans, newest first (?bay=, ?unattached=true to pick one after an ambiguous match)", anyRole, s.listScans},
		{"GET", "/scans/{id}", "a stored scan with its full report", anyRole, s.getScan},
		{"GET", "/vehicles/{vin}/history", "every scan, work order and self-test of a car, newest first", anyRole, s.vehicleHistory},

		{"GET", "/bays", "status of every bay", anyRole, s.listBays},
		{"GET", "/bays/{bay}", "status of one bay with its last scan", anyRole, s.getBay},
		{"POST", "/bays/{bay}/scan", "start a full scan now", carWork, s.scanBay},
		{"POST", "/bays/{bay}/clear-dtcs", "clear DTCs (mode 04) once, confirmed with the car's VIN", carRisky, s.clearDTCs},
		{"GET", "/bays/{bay}/live", "live values as a server-sent-event stream (?pids=0C,05,06 picks Mode 01 PIDs)", anyRole, s.live},

		{"GET", "/outbox", "outbox statistics", anyRole, s.outboxStats},
		{"GET", "/outbox/records", "records waiting in the outbox, oldest first", anyRole, s.outboxRecords},
		{"GET", "/deadletters", "records the receiver rejected for good", anyRole, s.deadLetters},
		{"POST", "/deadletters/{seq}/requeue", "send a dead record again", managers, s.requeue},

		{"GET", "/uplink", "uplink (broker) status", anyRole, s.uplink},
		{"GET", "/events", "live notices as a server-sent-event stream", anyRole, s.events},
		{"GET", "/whoami", "the caller's token name and role, and the routes it may call", anyRole, s.whoami},
	}
}

// health is 200 "ok", or 503 "degraded" while writes fail for a full disk (the last write
// was refused for it; the next one that goes through clears it), so a monitor sees the
// gateway cannot take settlements.
func (s *Server) health(w http.ResponseWriter, r *http.Request, c *caller) {
	if msg := s.degraded.Load(); msg != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "degraded", "error": *msg})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) openapi(w http.ResponseWriter, r *http.Request, c *caller) {
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Write(openapiYAML)
}

// ---- work orders ----------------------------------------------------------------------

func (s *Server) listOrders(w http.ResponseWriter, r *http.Request, c *caller) {
	q := r.URL.Query()
	f := workorder.Filter{VIN: q.Get("vin"), Plate: q.Get("plate"), Bay: q.Get("bay"), CostListCode: q.Get("costlistcode"), After: q.Get("after")}
	switch st := q.Get("status"); st {
	case "", "open", "settled":
		f.Status = workorder.Status(st)
	default:
		writeError(w, &apiError{status: http.StatusBadRequest, field: "status", msg: fmt.Sprintf("%q: want open or settled", clip(st))})
		return
	}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := parseTime(v)
			if err != nil {
				writeError(w, &apiError{status: http.StatusBadRequest, field: p.name, msg: err.Error()})
				return
			}
			*p.t = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, &apiError{status: http.StatusBadRequest, field: "limit", msg: fmt.Sprintf("%q: want 1 to 1000", clip(v))})
			return
		}
		f.Limit = n
	}
	list, next, err := s.opts.Store.List(f)
	if err != nil {
		writeError(w, storeError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": list, "next": next})
}

func parseTime(v string) (time.Time, error) {
	if len(v) == 8 {
		if t, err := ehr.ParseDate(v); err == nil {
			return t, nil
		}
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want yyyyMMdd or an RFC 3339 time", clip(v))
	}
	return t, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// wantOwner reports whether the caller asked for owner data and may have it.
func wantOwner(w http.ResponseWriter, r *http.Request, c *caller) (bool, bool) {
	switch inc := r.URL.Query().Get("include"); inc {
	case "":
		return false, true
	case "owner":
		if !c.authenticated() {
			w.Header().Set("WWW-Authenticate", `Bearer realm="obdgw"`)
			writeError(w, &apiError{status: http.StatusUnauthorized, field: "include", msg: "owner data is shown only to a caller with a token"})
			return false, false
		}
		return true, true
	default:
		writeError(w, &apiError{status: http.StatusBadRequest, field: "include", msg: fmt.Sprintf("%q: the only value is owner", clip(inc))})
		return false, false
	}
}

func (s *Server) orderAnswer(w http.ResponseWriter, r *http.Request, c *caller, status int, o workorder.Order, err error) {
	if err != nil {
		writeError(w, storeError(err))
		return
	}
	withOwner, ok := wantOwner(w, r, c)
	if !ok {
		return
	}
	if withOwner {
		s.record(c, audit.Entry{Action: audit.ActionOwnerRead, Order: o.ID, Bay: o.Bay, VIN: o.VIN})
	}
	writeJSON(w, status, o.View(withOwner))
}

func (s *Server) createOrder(w http.ResponseWriter, r *http.Request, c *caller) {
	var in workorder.NewOrder
	if e := decodeBody(r.Body, &in, false); e != nil {
		writeError(w, e)
		return
	}
	o, err := s.opts.Store.Create(in)
	if err == nil {
		w.Header().Set("Location", Prefix+"/workorders/"+o.ID)
	}
	s.orderAnswer(w, r, c, http.StatusCreated, o, err)
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request, c *caller) {
	o, err := s.opts.Store.Get(r.PathValue("id"))
	s.orderAnswer(w, r, c, http.StatusOK, o, err)
}

func (s *Server) patchOrder(w http.ResponseWriter, r *http.Request, c *caller) {
	var p workorder.Patch
	if e := decodeBody(r.Body, &p, false); e != nil {
		writeError(w, e)
		return
	}
	o, err := s.opts.Store.Update(r.PathValue("id"), p)
	s.orderAnswer(w, r, c, http.StatusOK, o, err)
}

func (s *Server) addItem(w http.ResponseWriter, r *http.Request, c *caller) {
	var it workorder.Item
	if e := decodeBody(r.Body, &it, false); e != nil {
		writeError(w, e)
		return
	}
	o, err := s.opts.Store.AddItems(r.PathValue("id"), it)
	s.orderAnswer(w, r, c, http.StatusOK, o, err)
}

func (s *Server) addPart(w http.ResponseWriter, r *http.Request, c *caller) {
	var p workorder.Part
	if e := decodeBody(r.Body, &p, false); e != nil {
		writeError(w, e)
		return
	}
	o, err := s.opts.Store.AddParts(r.PathValue("id"), p)
	s.orderAnswer(w, r, c, http.StatusOK, o, err)
}

// AttachScanRequest is the body of POST /workorders/{id}/scans: a stored scan's id (the
// technician's choice after an ambiguous match) or a full obd.Report (from the DMS or a
// handheld scanner).
type AttachScanRequest struct {
	ScanID string          `json:"scan_id,omitempty"`
	Report json.RawMessage `json:"report,omitempty"`
	Bay    string          `json:"bay,omitempty"`
	Note   string          `json:"note,omitempty"`
	// ConfirmVINMismatch attaches a scan whose VIN differs from the order's, keeping the
	// order's VIN, with the reason; without it such a scan is refused with 409.
	ConfirmVINMismatch *workorder.Confirmation `json:"confirm_vin_mismatch,omitempty"`
}

func (s *Server) attachScan(w http.ResponseWriter, r *http.Request, c *caller) {
	var req AttachScanRequest
	if e := decodeBody(r.Body, &req, false); e != nil {
		writeError(w, e)
		return
	}
	id := r.PathValue("id")
	var (
		o   workorder.Order
		err error
	)
	switch {
	case req.ScanID != "" && len(req.Report) > 0:
		writeError(w, &apiError{status: http.StatusBadRequest, field: "report", msg: "send scan_id or report, not both"})
		return
	case req.ScanID != "":
		o, err = s.opts.Store.AttachStoredScan(id, req.ScanID, req.ConfirmVINMismatch)
	case len(req.Report) > 0:
		var rep obd.Report
		if e := decodeBody(bytes.NewReader(req.Report), &rep, false); e != nil {
			if e.field != "" {
				e.field = "report." + e.field
			}
			writeError(w, e)
			return
		}
		if len(req.Note) > 100 {
			writeError(w, &apiError{status: http.StatusBadRequest, field: "note", msg: "at most 100 characters"})
			return
		}
		o, err = s.opts.Store.AttachScanTo(id, req.Bay, req.Note, rep, req.ConfirmVINMismatch)
	default:
		writeError(w, &apiError{status: http.StatusBadRequest, field: "scan_id", msg: "missing: send scan_id (a stored scan) or report (an obd scan report)"})
		return
	}
	s.orderAnswer(w, r, c, http.StatusOK, o, err)
}

// settlementAnswer is what settle and revise return.
type settlementAnswer struct {
	Order    workorder.Order `json:"order"`
	Warnings []ehr.Problem   `json:"warnings"`
	Seq      uint64          `json:"outbox_seq"`
	IMSeq    uint64          `json:"im_outbox_seq,omitempty"`
	WasteSeq uint64          `json:"waste_outbox_seq,omitempty"`
}

func (s *Server) settle(w http.ResponseWriter, r *http.Request, c *caller) {
	var req workorder.SettleRequest
	if e := decodeBody(r.Body, &req, false); e != nil {
		writeError(w, e)
		return
	}
	req.Trail = s.trail(c, audit.ActionSettle)
	st, err := s.opts.Store.Settle(r.PathValue("id"), req)
	s.settlementAnswer(w, r, c, st, err)
}

func (s *Server) revise(w http.ResponseWriter, r *http.Request, c *caller) {
	var req workorder.RevisionRequest
	if e := decodeBody(r.Body, &req, false); e != nil {
		writeError(w, e)
		return
	}
	req.Trail = s.trail(c, audit.ActionRevise)
	st, err := s.opts.Store.Revise(r.PathValue("id"), req)
	s.settlementAnswer(w, r, c, st, err)
}

// trail writes the audit entry of a settlement or correction inside its transaction: the
// entry commits with the settlement, or neither does.
func (s *Server) trail(c *caller, action string) workorder.Trail {
	if s.opts.Audit == nil {
		return nil
	}
	return func(tx *buffer.Tx, st *workorder.Settlement) error {
		o := st.Order
		return s.opts.Audit.AddTx(tx, audit.Entry{Token: c.name, Role: string(c.role), Action: action, Order: o.ID, Bay: o.Bay, VIN: o.VIN,
			Detail: fmt.Sprintf("costlistcode %s revision %d outbox_seq %d", o.CostListCode, o.Revision, st.Seq)})
	}
}

func (s *Server) settlementAnswer(w http.ResponseWriter, r *http.Request, c *caller, st workorder.Settlement, err error) {
	if err != nil {
		writeError(w, storeError(err))
		return
	}
	o := st.Order
	withOwner, ok := wantOwner(w, r, c)
	if !ok {
		return
	}
	if withOwner {
		s.record(c, audit.Entry{Action: audit.ActionOwnerRead, Order: o.ID, Bay: o.Bay, VIN: o.VIN})
	}
	writeJSON(w, http.StatusOK, settlementAnswer{Order: st.Order.View(withOwner), Warnings: st.Warnings, Seq: st.Seq, IMSeq: st.IMSeq, WasteSeq: st.WasteSeq})
}

func (s *Server) records(w http.ResponseWriter, r *http.Request, c *caller) {
	recs, err := s.opts.Store.Records(r.PathValue("id"))
	if err != nil {
		writeError(w, storeError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": nonNil(recs)})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *Server) listScans(w http.ResponseWriter, r *http.Request, c *caller) {
	q := r.URL.Query()
	unattached := false
	switch v := q.Get("unattached"); v {
	case "", "false":
	case "true":
		unattached = true
	default:
		writeError(w, &apiError{status: http.StatusBadRequest, field: "unattached", msg: fmt.Sprintf("%q: want true or false", clip(v))})
		return
	}
	n := 0
	if v := q.Get("limit"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 500 {
			writeError(w, &apiError{status: http.StatusBadRequest, field: "limit", msg: fmt.Sprintf("%q: want 1 to 500", clip(v))})
			return
		}
	}
	list, err := s.opts.Store.ListScans(q.Get("bay"), unattached, n)
	if err != nil {
		writeError(w, storeError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": list})
}

func (s *Server) getScan(w http.ResponseWriter, r *http.Request, c *caller) {
	sc, err := s.opts.Store.Scan(r.PathValue("id"))
	if err != nil {
		writeError(w, storeError(err))
		return
	}
	writeJSON(w, http.StatusOK, sc)
}

// ---- bays -----------------------------------------------------------------------------

func (s *Server) listBays(w http.ResponseWriter, r *http.Request, c *caller) {
	writeJSON(w, http.StatusOK, map[string]any{"items": nonNil(s.opts.Bays.List())})
}

func (s *Server) getBay(w http.ResponseWriter, r *http.Request, c *caller) {
	b, err := s.opts.Bays.Status(r.PathValue("bay"))
	if err != nil {
		writeError(w, bayError(err))
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) scanBay(w http.ResponseWriter, r *http.Request, c *caller) {
	var none struct{}
	if e := decodeBody(r.Body, &none, true); e != nil {
		writeError(w, e)
		return
	}
	name := r.PathValue("bay")
	if err := s.opts.Bays.Scan(r.Context(), name); err != nil {
		writeError(w, bayError(err))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"bay": name, "state": "scanning"})
}

func (s *Server) clearDTCs(w http.ResponseWriter, r *http.Request, c *caller) {
	var req ClearRequest
	if e := decodeBody(r.Body, &req, false); e != nil {
		writeError(w, e)
		return
	}
	req.VIN = strings.ToUpper(strings.TrimSpace(req.VIN))
	switch {
	case !req.Confirm:
		writeError(w, &apiError{status: http.StatusBadRequest, field: "confirm", msg: "clearing fault codes erases them from the car: send \"confirm\": true"})
		return
	case req.VIN == "":
		writeError(w, &apiError{status: http.StatusBadRequest, field: "vin", msg: "missing: type the VIN of the car on the bay to confirm which car is cleared"})
		return
	case !obd.VINWellFormed(req.VIN):
		writeError(w, &apiError{status: http.StatusBadRequest, field: "vin", msg: fmt.Sprintf("%q is not a VIN (17 characters, no I, O, Q)", clip(req.VIN))})
		return
	case strings.TrimSpace(req.RequestID) == "":
		writeError(w, &apiError{status: http.StatusBadRequest, field: "request_id", msg: "missing: a fresh id for this request (it is executed at most once)"})
		return
	}
	name := r.PathValue("bay")
	if _, err := s.opts.Bays.Status(name); err != nil {
		writeError(w, bayError(err))
		return
	}
	// The id is claimed durably before anything is sent: a repeat of this request (a retrying
	// proxy, a double tap) is refused, never executed a second time.
	if err := s.opts.Store.ClaimRequest("clear-dtcs", req.RequestID); err != nil {
		if errors.Is(err, workorder.ErrDuplicate) {
			writeError(w, &apiError{status: http.StatusConflict, field: "request_id", msg: "this request id was already used: the clear is not repeated (send a new id to clear again)"})
			return
		}
		writeError(w, storeError(err))
		return
	}
	s.log.Info("api: clearing DTCs", "bay", name, "request_id", req.RequestID)
	res, err := s.opts.Bays.ClearDTCs(r.Context(), name, req)
	outcome := "cleared"
	if err != nil {
		outcome = "not cleared: " + err.Error()
	} else if !res.Cleared {
		outcome = "not cleared"
	}
	s.record(c, audit.Entry{Action: audit.ActionClearDTCs, Bay: name, VIN: req.VIN, Order: req.Order,
		Detail: "request_id " + clip(req.RequestID) + ": " + outcome})
	if err != nil {
		writeError(w, bayError(err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) live(w http.ResponseWriter, r *http.Request, c *caller) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, &apiError{status: http.StatusInternalServerError, msg: "streaming unsupported"})
		return
	}
	pids, perr := ParseLivePIDs(r.URL.Query().Get("pids"))
	if perr != nil {
		writeError(w, &apiError{status: http.StatusBadRequest, field: "pids", msg: perr.Error()})
		return
	}
	var ch <-chan LiveValues
	var err error
	if pids == nil {
		ch, err = s.opts.Bays.Live(r.Context(), r.PathValue("bay"))
	} else if lp, ok := s.opts.Bays.(LivePicker); ok {
		ch, err = lp.LivePIDs(r.Context(), r.PathValue("bay"), pids)
	} else {
		writeError(w, &apiError{status: http.StatusBadRequest, field: "pids", msg: "api: this gateway samples only its default live values; leave pids out"})
		return
	}
	if err != nil {
		writeError(w, bayError(err))
		return
	}
	stream(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": live values\n\n")
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case v, ok := <-ch:
			if !ok {
				return
			}
			b, err := json.Marshal(v)
			if err != nil {
				continue // NaN or Inf from a sensor: skip the sample
			}
			if _, err := fmt.Fprintf(w, "event: live\ndata: %s\n\n", b); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// ---- outbox ---------------------------------------------------------------------------

func (s *Server) outboxStats(w http.ResponseWriter, r *http.Request, c *caller) {
	st := s.opts.Outbox.Stats()
	writeJSON(w, http.StatusOK, map[string]any{
		"depth": st.Depth, "bytes": st.Bytes, "oldest_age_s": st.OldestAge.Seconds(), "dead_letters": st.DeadLetters,
		"appended": nonNilMap(st.Appended), "delivered": nonNilMap(st.Delivered), "dropped": nonNilMap(st.Dropped),
		"refused": nonNilMap(st.Refused), "dead_lettered": nonNilMap(st.DeadByKind),
	})
}

func nonNilMap(m map[string]uint64) map[string]uint64 {
	if m == nil {
		return map[string]uint64{}
	}
	return m
}

// RecordView is an outbox or dead-letter record as the API lists it.
type RecordView struct {
	Seq      uint64          `json:"seq"`
	ID       string          `json:"id"`
	Kind     string          `json:"kind"`
	Topic    string          `json:"topic"`
	Created  time.Time       `json:"created"`
	Attempts int             `json:"attempts"`
	Bytes    int             `json:"bytes"`
	Payload  json.RawMessage `json:"payload,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	At       *time.Time      `json:"at,omitempty"`
}

func view(r buffer.Record) RecordView {
	v := RecordView{Seq: r.Seq, ID: r.ID, Kind: r.Kind, Topic: r.Topic, Created: r.Created, Attempts: r.Attempts, Bytes: len(r.Payload)}
	if json.Valid(r.Payload) {
		v.Payload = r.Payload
	}
	return v
}

func (s *Server) outboxRecords(w http.ResponseWriter, r *http.Request, c *caller) {
	n := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 1000 {
			writeError(w, &apiError{status: http.StatusBadRequest, field: "limit", msg: fmt.Sprintf("%q: want 1 to 1000", clip(v))})
			return
		}
	}
	rs, err := s.opts.Outbox.Peek(n)
	if err != nil {
		writeError(w, &apiError{status: http.StatusInternalServerError, msg: err.Error()})
		return
	}
	out := make([]RecordView, 0, len(rs))
	for _, r := range rs {
		out = append(out, view(r))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request, c *caller) {
	ds, err := s.opts.Outbox.DeadLetters()
	if err != nil {
		writeError(w, &apiError{status: http.StatusInternalServerError, msg: err.Error()})
		return
	}
	out := make([]RecordView, 0, len(ds))
	for _, d := range ds {
		v := view(d.Record)
		v.Reason = d.Reason
		at := d.At
		v.At = &at
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

func (s *Server) requeue(w http.ResponseWriter, r *http.Request, c *caller) {
	var none struct{}
	if e := decodeBody(r.Body, &none, true); e != nil {
		writeError(w, e)
		return
	}
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		writeError(w, &apiError{status: http.StatusBadRequest, field: "seq", msg: fmt.Sprintf("%q: want the record's sequence number", clip(r.PathValue("seq")))})
		return
	}
	rec, err := s.opts.Outbox.Requeue(seq)
	if err != nil {
		if errors.Is(err, buffer.ErrNotFound) {
			writeError(w, &apiError{status: http.StatusNotFound, field: "seq", msg: fmt.Sprintf("no dead record with sequence %d", seq)})
			return
		}
		writeError(w, storeError(err))
		return
	}
	s.log.Info("api: requeued", "seq", seq, "new_seq", rec.Seq, "id", rec.ID)
	s.record(c, audit.Entry{Action: audit.ActionRequeue, Detail: fmt.Sprintf("%s record %s: seq %d requeued as %d", rec.Kind, rec.ID, seq, rec.Seq)})
	writeJSON(w, http.StatusOK, view(rec))
}

func (s *Server) uplink(w http.ResponseWriter, r *http.Request, c *caller) {
	if s.opts.Uplink == nil {
		writeJSON(w, http.StatusOK, map[string]any{"connected": false, "configured": false})
		return
	}
	writeJSON(w, http.StatusOK, s.opts.Uplink())
}

func (s *Server) events(w http.ResponseWriter, r *http.Request, c *caller) {
	if s.opts.Events == nil {
		writeError(w, &apiError{status: http.StatusNotFound, msg: "no event stream in this daemon"})
		return
	}
	stream(w)
	s.opts.Events.ServeHTTP(w, r)
}
