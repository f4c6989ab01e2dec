package workorder

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/ehr"
	"github.com/obdgw/obdgw/gateway/wire"
)

// Settlement is what Settle and Revise produced.
type Settlement struct {
	Order    Order          `json:"order"`
	Record   wire.EHRRecord `json:"record"`
	Warnings []ehr.Problem  `json:"warnings"`
	Seq      uint64         `json:"outbox_seq"`                 // the ehr record in the outbox
	IMSeq    uint64         `json:"im_outbox_seq,omitempty"`    // the M-station record, 0 when none
	WasteSeq uint64         `json:"waste_outbox_seq,omitempty"` // the waste record, 0 when none
}

// KindIM is the outbox kind of the I/M M-station record appended through Options.IM.
const KindIM = "im"

// KindWaste is the outbox kind of the waste record appended through Options.Waste.
const KindWaste = wire.KindWaste

// costListKey is the uniqueness key of a settlement number: the number ignores case (HS-1
// and hs-1 are the same list on paper).
func costListKey(company, code string) string { return company + "/" + strings.ToUpper(code) }

// legacyCostListKey is the key of orders settled before the number ignored case.
func legacyCostListKey(company, code string) string { return company + "/" + code }

// input gathers the record builder's input from an order.
func (s *Store) input(o *Order) ehr.Input {
	in := ehr.Input{
		Company: s.opts.Company, Plate: o.Plate, VIN: o.VIN, MileageKm: o.MileageKm, Fault: o.Fault,
		CostListCode: o.CostListCode, Emission: o.EmissionRepair,
	}
	in.RepairDate, _ = ehr.ParseDate(o.RepairDate)
	in.SettleDate, _ = ehr.ParseDate(o.SettleDate)
	in.DTCs = faultDTCs(o)
	for _, it := range o.Items {
		in.Items = append(in.Items, ehr.Item{Name: it.Name, Hours: it.Hours.String()})
	}
	for _, p := range o.Parts {
		in.Parts = append(in.Parts, ehr.Part{Name: p.Name, Code: p.Code, Quantity: p.Quantity.String()})
	}
	return in
}

// faultDTCs lists the attached scans' codes for the fault text: confirmed codes (stored,
// permanent) first, then pending ones, so a code seen both ways is not marked pending.
func faultDTCs(o *Order) []ehr.DTC {
	var conf, pend []ehr.DTC
	for _, sc := range o.Scans {
		for _, d := range sc.DTCs {
			if d.Kind == "pending" {
				pend = append(pend, ehr.DTC{Code: d.Code, Description: d.Description, Pending: true})
			} else {
				conf = append(conf, ehr.DTC{Code: d.Code, Description: d.Description})
			}
		}
	}
	return append(conf, pend...)
}

// checks gathers what validation needs beyond the record, inside the transaction.
func (s *Store) checks(tx *buffer.Tx, o *Order) ehr.Checks {
	c := ehr.Checks{Now: s.now, Emission: o.EmissionRepair, TestNo: o.TestNo,
		VINMismatch: o.VINMismatch, VINRead: o.VINRead, VINTyped: o.VIN, VINMismatchConfirmed: o.VINReason != "",
		VINCheckDigitConfirmed: o.VINCheckDigitReason != "" || (o.VIN != "" && o.VIN == o.VINRead)}
	if o.FailedTestEnd != "" {
		c.FailedTestEnd, _ = ehr.ParseDate(o.FailedTestEnd[:min(8, len(o.FailedTestEnd))])
	}
	for _, key := range []string{costListKey(s.opts.CompanyCode, o.CostListCode), legacyCostListKey(s.opts.CompanyCode, o.CostListCode)} {
		if id := tx.Get(bucketCostList, key); id != nil && string(id) != o.ID {
			c.CostListCodeUsed = true
		}
	}
	// The last record of this VIN: the most recently settled other order.
	var last *Order
	for _, id := range vinIndex(tx, o.VIN) {
		if id == o.ID {
			continue
		}
		other, err := getOrder(tx, id)
		if err != nil || other.Status != Settled || other.SettledAt == nil || other.MileageKm == nil {
			continue
		}
		if last == nil || other.SettledAt.After(*last.SettledAt) {
			last = other
		}
	}
	if last != nil {
		km := *last.MileageKm
		c.LastMileageKm = &km
	}
	return c
}

// Settle settles an open order: builds the JT/T 1132 record, validates it, and in one
// transaction stores the settled order and appends the record (and the M-station record of an
// emission repair, through Options.IM) to the outbox. A *ValidationError names the fields to
// fix; nothing is stored then.
func (s *Store) Settle(id string, req SettleRequest) (Settlement, error) {
	code := strings.TrimSpace(req.CostListCode)
	if code == "" {
		return Settlement{}, inputErr("costlistcode", "missing: the number of the settlement list (结算清单编号)")
	}
	settle, err := normDate("settle_date", req.SettleDate)
	if err != nil {
		return Settlement{}, err
	}
	if settle == "" {
		settle = s.today()
	}
	noTest := strings.TrimSpace(req.NoSelfTestReason)
	if err := checkText("no_selftest_reason", noTest, maxReason); err != nil {
		return Settlement{}, err
	}
	var out Settlement
	err = s.db.Update(func(tx *buffer.Tx) error {
		o, err := getOrder(tx, id)
		if err != nil {
			return err
		}
		if o.Status != Open {
			return ErrSettled
		}
		o.CostListCode, o.SettleDate, o.NoSelfTestReason = code, settle, noTest
		if err := s.submit(tx, o, 1, "", nil, &out); err != nil {
			return err
		}
		if err := tx.Delete(bucketOpen, o.ID); err != nil {
			return err
		}
		if err := tx.Put(bucketCostList, costListKey(s.opts.CompanyCode, code), []byte(o.ID)); err != nil {
			return err
		}
		if req.Trail != nil {
			return req.Trail(tx, &out)
		}
		return nil
	})
	if err != nil {
		return Settlement{}, err
	}
	s.log.Info("workorder: settled", "id", id, "costlistcode", code, "outbox_seq", out.Seq, "im_outbox_seq", out.IMSeq, "warnings", problemCodes(out.Warnings))
	s.publish("workorder.settled", out.Order.Bay, map[string]any{"id": id, "costlistcode": code, "revision": 1, "warnings": len(out.Warnings)})
	return out, nil
}

// Revise corrects a settled order: the changes are applied, the record is rebuilt and
// validated, and a new revision under the same costlistcode goes to the outbox with the reason.
// The order keeps the history of its revisions.
func (s *Store) Revise(id string, req RevisionRequest) (Settlement, error) {
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		return Settlement{}, inputErr("reason", "missing: say why the settled record is corrected")
	}
	if err := checkText("reason", reason, maxReason); err != nil {
		return Settlement{}, err
	}
	var out Settlement
	err := s.db.Update(func(tx *buffer.Tx) error {
		o, err := getOrder(tx, id)
		if err != nil {
			return err
		}
		if o.Status != Settled {
			return ErrNotSettled
		}
		oldVIN := o.VIN
		changed, err := req.Patch.apply(o, s.opts.KnownBay)
		if err != nil {
			return err
		}
		if req.SettleDate != nil {
			d, err := normDate("settle_date", *req.SettleDate)
			if err != nil {
				return err
			}
			if d == "" {
				return inputErr("settle_date", "the settlement date cannot be cleared")
			}
			if d != o.SettleDate {
				o.SettleDate = d
				changed = append(changed, "settle_date")
			}
		}
		if req.NoSelfTestReason != nil {
			r := strings.TrimSpace(*req.NoSelfTestReason)
			if err := checkText("no_selftest_reason", r, maxReason); err != nil {
				return err
			}
			if r != o.NoSelfTestReason {
				o.NoSelfTestReason = r
				changed = append(changed, "no_selftest_reason")
			}
		}
		if len(changed) == 0 {
			return inputErr("reason", "the revision changes nothing in the record")
		}
		if err := s.submit(tx, o, o.Revision+1, reason, changed, &out); err != nil {
			return err
		}
		if err := setVIN(tx, o.ID, oldVIN, o.VIN); err != nil {
			return err
		}
		if req.Trail != nil {
			return req.Trail(tx, &out)
		}
		return nil
	})
	if err != nil {
		return Settlement{}, err
	}
	s.log.Info("workorder: revised", "id", id, "costlistcode", out.Order.CostListCode, "revision", out.Order.Revision, "changed", out.Order.Revisions[len(out.Order.Revisions)-1].Changed, "outbox_seq", out.Seq)
	s.publish("workorder.revised", out.Order.Bay, map[string]any{"id": id, "costlistcode": out.Order.CostListCode, "revision": out.Order.Revision})
	return out, nil
}

// submit builds, validates and appends revision rev of o's record, and stores o.
func (s *Store) submit(tx *buffer.Tx, o *Order, rev int, reason string, changed []string, out *Settlement) error {
	rec := ehr.Build(s.input(o))
	res := ehr.Validate(rec, s.checks(tx, o))
	if !res.OK() {
		return &ValidationError{Problems: res.Errors, Warnings: res.Warnings}
	}
	now := s.now()
	meta := wire.EHRMeta{WorkOrder: o.ID, CostListCode: o.CostListCode, Revision: rev, VINSource: o.VINSource, TestNo: o.TestNo, Reason: reason,
		CarVIN: o.VINRead, VINReason: o.VINReason, VINCheckDigitReason: o.VINCheckDigitReason}
	payload, err := encode(wire.EHRPayload{Record: rec, Meta: meta})
	if err != nil {
		return err
	}
	warnings := make([]string, len(res.Warnings))
	for i, w := range res.Warnings {
		warnings[i] = w.Code + ": " + w.String()
	}
	env, err := s.envelope(wire.KindEHR, wire.SchemaEHR, payload, warnings, now)
	if err != nil {
		return err
	}
	r, err := tx.Append(wire.KindEHR, s.opts.Topic(wire.KindEHR), env)
	if err != nil {
		return fmt.Errorf("workorder: queue the record: %w", err)
	}
	out.Seq = r.Seq
	if s.opts.IM != nil && o.EmissionRepair && o.TestNo != "" {
		schema, p, err := s.opts.IM(tx, o, &rec, rev, reason)
		if err != nil {
			return fmt.Errorf("workorder: M-station record: %w", err)
		}
		if p != nil {
			env, err := s.envelope(KindIM, schema, p, nil, now)
			if err != nil {
				return fmt.Errorf("workorder: M-station record: %w", err)
			}
			r, err := tx.Append(KindIM, s.opts.Topic(KindIM), env)
			if err != nil {
				return fmt.Errorf("workorder: queue the M-station record: %w", err)
			}
			out.IMSeq = r.Seq
		}
	}
	if s.opts.Waste != nil {
		schema, p, err := s.opts.Waste(tx, o, rev, reason)
		if err != nil {
			return fmt.Errorf("workorder: waste record: %w", err)
		}
		if p != nil {
			env, err := s.envelope(KindWaste, schema, p, nil, now)
			if err != nil {
				return fmt.Errorf("workorder: waste record: %w", err)
			}
			r, err := tx.Append(KindWaste, s.opts.Topic(KindWaste), env)
			if err != nil {
				return fmt.Errorf("workorder: queue the waste record: %w", err)
			}
			out.WasteSeq = r.Seq
		}
	}
	o.Status = Settled
	o.Revision = rev
	o.Warnings = res.Warnings
	o.Updated = now
	if o.SettledAt == nil {
		t := now
		o.SettledAt = &t
	}
	o.Revisions = append(o.Revisions, Revision{N: rev, At: now, Reason: reason, Changed: changed, RecordID: out.Seq})
	if err := putOrder(tx, o); err != nil {
		return err
	}
	if err := tx.Put(bucketRecords, fmt.Sprintf("%s/%04d", o.ID, rev), payload); err != nil {
		return err
	}
	if s.opts.afterPut != nil {
		if err := s.opts.afterPut(); err != nil {
			return err
		}
	}
	out.Order, out.Record, out.Warnings = *o, rec, res.Warnings
	return nil
}

// envelope wraps a payload for the outbox; the uplink stamps the id (wire.Frame) when it sends.
func (s *Store) envelope(kind, schema string, payload []byte, warnings []string, now time.Time) ([]byte, error) {
	b, err := wire.Marshal(wire.Envelope{Kind: kind, Schema: schema, Gateway: s.opts.GatewayID, CompanyCode: s.opts.CompanyCode,
		CreatedAt: now, Payload: payload, Warnings: warnings})
	if err != nil {
		return nil, fmt.Errorf("workorder: envelope: %w", err)
	}
	return b, nil
}

// Records returns every revision of an order's record as sent, oldest first.
func (s *Store) Records(id string) ([]wire.EHRPayload, error) {
	var out []wire.EHRPayload
	err := s.db.View(func(tx *buffer.Tx) error {
		o, err := getOrder(tx, id)
		if err != nil {
			return err
		}
		for _, r := range o.Revisions {
			b := tx.Get(bucketRecords, fmt.Sprintf("%s/%04d", id, r.N))
			if b == nil {
				return fmt.Errorf("workorder: revision %d of %s missing", r.N, id)
			}
			var p wire.EHRPayload
			if err := json.Unmarshal(b, &p); err != nil {
				return fmt.Errorf("workorder: revision %d of %s unreadable: %w", r.N, id, err)
			}
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("workorder: encode: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func problemCodes(ps []ehr.Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Field + ":" + p.Code
	}
	return out
}
