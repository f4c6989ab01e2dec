package api

import (
	"errors"
	"net/http"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/audit"
	"github.com/obdgw/obdgw/gateway/waste"
)

func (s *Server) wasteRoutes() []Route {
	return []Route{
		{"GET", "/waste/ledger", "the waste ledger: stock per category, what is due for hand-over, the hand-overs", anyRole, s.wasteLedger},
		{"POST", "/waste/handovers", "record a hand-over of waste to a licensed collector (transfer manifest 联单)", wasteDesk, s.wasteHandover},
	}
}

func (s *Server) wasteLedger(w http.ResponseWriter, r *http.Request, c *caller) {
	if s.opts.Waste == nil {
		writeError(w, &apiError{status: http.StatusNotFound, msg: "this gateway keeps no waste ledger"})
		return
	}
	v, err := s.opts.Waste.View()
	if err != nil {
		writeError(w, storeError(err))
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) wasteHandover(w http.ResponseWriter, r *http.Request, c *caller) {
	if s.opts.Waste == nil {
		writeError(w, &apiError{status: http.StatusNotFound, msg: "this gateway keeps no waste ledger"})
		return
	}
	var req waste.HandoverRequest
	if e := decodeBody(r.Body, &req, false); e != nil {
		writeError(w, e)
		return
	}
	var trail func(*buffer.Tx, waste.Handover) error
	if s.opts.Audit != nil {
		trail = func(tx *buffer.Tx, h waste.Handover) error {
			return s.opts.Audit.AddTx(tx, audit.Entry{Token: c.name, Role: string(c.role), Action: audit.ActionWasteHandover,
				Detail: "hand-over " + h.ID + " manifest " + h.ManifestNo + " to licence " + h.Licence})
		}
	}
	h, err := s.opts.Waste.Handover(req, c.name, trail)
	var (
		ie *waste.InputError
		se *waste.StockError
	)
	switch {
	case errors.As(err, &ie):
		writeError(w, &apiError{status: http.StatusBadRequest, field: ie.Field, msg: ie.Msg})
		return
	case errors.As(err, &se):
		writeError(w, &apiError{status: http.StatusConflict, field: se.Field, msg: se.Error()[len("waste: "):], extra: map[string]any{"code": "stock", "stock": se.Stock}})
		return
	case errors.Is(err, waste.ErrManifestUsed):
		writeError(w, &apiError{status: http.StatusConflict, field: "manifest_no", msg: err.Error()[len("waste: "):]})
		return
	case err != nil:
		writeError(w, storeError(err))
		return
	}
	writeJSON(w, http.StatusCreated, h)
}
