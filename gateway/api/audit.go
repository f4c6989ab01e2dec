package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/obdgw/obdgw/gateway/audit"
)

func (s *Server) auditRoutes() []Route {
	return []Route{
		{"GET", "/audit", "the audit log, oldest first from ?since= (paged: ?limit=, ?after=)", managers, s.auditLog},
	}
}

// record writes an audit entry for the caller. The action it records has happened (or, for a
// clear, been asked of the car), so a failure to write the entry cannot undo it: it is
// logged as an error for the manager to see.
func (s *Server) record(c *caller, e audit.Entry) {
	if s.opts.Audit == nil {
		return
	}
	e.Token, e.Role = c.name, string(c.role)
	if err := s.opts.Audit.Add(e); err != nil {
		s.log.Error("api: the audit log could not be written", "action", e.Action, "order", e.Order, "bay", e.Bay, "caller", c.name, "err", err)
	}
}

func (s *Server) auditLog(w http.ResponseWriter, r *http.Request, c *caller) {
	if s.opts.Audit == nil {
		writeError(w, &apiError{status: http.StatusNotFound, msg: "this gateway keeps no audit log"})
		return
	}
	q := r.URL.Query()
	var since time.Time
	if v := q.Get("since"); v != "" {
		t, err := parseTime(v)
		if err != nil {
			writeError(w, &apiError{status: http.StatusBadRequest, field: "since", msg: err.Error()})
			return
		}
		since = t
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > audit.MaxPage {
			writeError(w, &apiError{status: http.StatusBadRequest, field: "limit", msg: fmt.Sprintf("%q: want 1 to %d", clip(v), audit.MaxPage)})
			return
		}
		limit = n
	}
	var after uint64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, &apiError{status: http.StatusBadRequest, field: "after", msg: fmt.Sprintf("%q: want the next value of the previous page", clip(v))})
			return
		}
		after = n
	}
	items, next, err := s.opts.Audit.List(since, after, limit)
	if err != nil {
		writeError(w, &apiError{status: http.StatusInternalServerError, msg: err.Error()})
		return
	}
	page := map[string]any{"items": items, "next": ""}
	if next != 0 {
		page["next"] = strconv.FormatUint(next, 10)
	}
	writeJSON(w, http.StatusOK, page)
}
