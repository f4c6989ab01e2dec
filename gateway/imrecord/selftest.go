package imrecord

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/emission"
	"github.com/obdgw/obdgw/gateway/events"
	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/gateway/workorder"
)

// Bucket holds the last judged post-repair self-test of each work order in the buffer file
// (order id → SelfTest JSON). Settlement reads it to build the M-station record.
const Bucket = "selftests"

// SelfTest is what settlement needs of a finished self-test: the work order it belongs to, the
// rig it ran on (model and serial go into the record) and the judged result.
type SelfTest struct {
	Order     string           `json:"order"`
	Bay       string           `json:"bay"`
	RigModel  string           `json:"rig_model"`
	RigSerial string           `json:"rig_serial"`
	Result    *emission.Result `json:"result"`
}

// ErrNotJudged: only a pass or a fail is kept; a refused, aborted or failed run says nothing
// about the car.
var ErrNotJudged = errors.New("imrecord: only a judged self-test (pass or fail) is kept")

// Options configure a Store. The zero value publishes nothing and logs nothing.
type Options struct {
	Events *events.Bus  // "selftest.progress" and "selftest.done" go here; nil publishes nothing
	Logger *slog.Logger // nil discards
	// OBD are the OBD check's configured rules (emission.Limits.OBD); zero → the defaults.
	OBD emission.OBDRules
}

// Store keeps the judged self-tests of work orders in the buffer file and turns them into the
// M-station record when the order settles. It is safe for concurrent use; it holds no
// goroutine of its own (Follow runs on the caller's).
type Store struct {
	db  *buffer.DB
	bus *events.Bus
	log *slog.Logger
	obd emission.OBDRules
}

// NewStore returns a store over db's Bucket.
func NewStore(db *buffer.DB, o Options) *Store {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Store{db: db, bus: o.Events, log: log, obd: o.OBD}
}

func (s *Store) publish(typ, bay string, data any) {
	if s.bus != nil {
		s.bus.Publish(typ, bay, data)
	}
}

// Keep stores st as its order's self-test, replacing an earlier one. st.Result must be judged.
func (s *Store) Keep(st SelfTest) error {
	if st.Result == nil || !st.Result.Verdict.Judged() {
		return ErrNotJudged
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("imrecord: encode self-test of %s: %w", st.Order, err)
	}
	return s.db.Update(func(tx *buffer.Tx) error { return tx.Put(Bucket, st.Order, b) })
}

// Get returns the kept self-test of an order; ok is false when there is none.
func (s *Store) Get(order string) (st SelfTest, ok bool, err error) {
	err = s.db.View(func(tx *buffer.Tx) error {
		st, ok, err = get(tx, order)
		return err
	})
	return st, ok, err
}

func get(tx *buffer.Tx, order string) (SelfTest, bool, error) {
	raw := tx.Get(Bucket, order)
	if raw == nil {
		return SelfTest{}, false, nil
	}
	var st SelfTest
	if err := json.Unmarshal(raw, &st); err != nil {
		return SelfTest{}, false, fmt.Errorf("imrecord: stored self-test of %s unreadable: %w", order, err)
	}
	return st, true, nil
}

// Follow publishes run's progress, closes the rig when the run ends and keeps a judged result
// as st's self-test. It returns once the result is stored (or known not to be kept), so a
// caller that waits for Follow before closing the buffer file loses no judged self-test, also
// one that ends while the gateway shuts down.
func (s *Store) Follow(run *emission.Run, rig io.Closer, st SelfTest) {
	ch, stop := run.Subscribe()
	for p := range ch {
		s.publish("selftest.progress", st.Bay, p)
	}
	stop()
	<-run.Done()
	if rig != nil {
		rig.Close()
	}
	res, err := run.Result()
	if err != nil && res == nil {
		s.log.Warn("self-test ended without a result", "bay", st.Bay, "err", err)
		s.publish("selftest.done", st.Bay, map[string]string{"order": st.Order, "error": err.Error()})
		return
	}
	st.Result = res
	if res.Verdict.Judged() {
		if err := s.Keep(st); err != nil {
			s.log.Error("self-test result not stored", "order", st.Order, "err", err)
		}
	}
	s.publish("selftest.done", st.Bay, map[string]any{"order": st.Order, "verdict": res.Verdict})
}

// Record is the workorder.IMHook: at settlement of an emission repair with a judged
// post-repair self-test, the M-station record goes into the outbox in the same transaction.
// Without one the settlement is refused (workorder.ErrNoSelfTest) unless the order states why
// none was made (Order.NoSelfTestReason): then the record goes without a self-test and says
// why.
func (s *Store) Record(tx *buffer.Tx, o *workorder.Order, rec *wire.EHRRecord, revision int, reason string) (string, []byte, error) {
	if !o.EmissionRepair || o.TestNo == "" {
		return "", nil, nil
	}
	st, ok, err := get(tx, o.ID)
	if err != nil {
		return "", nil, err
	}
	if !ok && strings.TrimSpace(o.NoSelfTestReason) == "" {
		return "", nil, workorder.ErrNoSelfTest
	}
	in := Input{
		WorkOrder: o.ID,
		Revision:  revision,
		Reason:    reason,
		TestNo:    o.TestNo,
		Repair:    *rec,
		SelfTest:  st.Result,
		RigModel:  st.RigModel,
		RigSerial: st.RigSerial,
	}
	if !ok {
		in.NoSelfTestReason = o.NoSelfTestReason // counts only when no self-test was kept
	}
	var endTimed bool
	if o.FailedTestEnd != "" {
		if t, timed, err := workorder.FailedEnd(o.FailedTestEnd, wire.IMZone); err == nil {
			in.FailedEnd, endTimed = t, timed
		}
	}
	in.RepairTime = repairTime(o, in.FailedEnd, endTimed)
	if o.MileageKm != nil {
		in.OdometerKm = float64(*o.MileageKm)
	}
	// The diagnosis is the first scan of the order (the car as it came in); the OBD check is
	// the last one (after the repair).
	if n := len(o.Scans); n > 0 {
		first, err := workorder.ScanReportInTx(tx, o.Scans[0].ID)
		if err != nil {
			return "", nil, err
		}
		last, err := workorder.ScanReportInTx(tx, o.Scans[n-1].ID)
		if err != nil {
			return "", nil, err
		}
		in.Diagnosis = emission.OBDInputFromScan(first, o.VIN)
		in.Diagnosis.Rules = s.obd
		after := emission.OBDInputFromScan(last, o.VIN)
		after.Rules = s.obd
		in.OBDCheck = emission.CheckOBD(after)
	}
	p, err := Build(in)
	if err != nil {
		return "", nil, err
	}
	b, err := p.Encode()
	if err != nil {
		return "", nil, err
	}
	return wire.SchemaIM, b, nil
}

// repairTime is when the repair began, kept to the second so a platform comparing it with the
// failed test's end (MaintenanceTime ≥ DetectEndTime, im-emission.md §2) accepts a repair that
// began the same day: the moment the order was opened when that was on the repair date, else
// the start of the repair date. A repair does not begin before the failure it repairs, so on
// the day the failed test ended (with its time known) it is at the earliest that end.
func repairTime(o *workorder.Order, failedEnd time.Time, endTimed bool) time.Time {
	day, err := time.ParseInLocation("20060102", o.RepairDate, wire.IMZone)
	if err != nil {
		return time.Time{}
	}
	t := day
	if c := o.Created.In(wire.IMZone); !o.Created.IsZero() && c.Format("20060102") == o.RepairDate {
		t = c.Truncate(time.Second)
	}
	if endTimed && failedEnd.In(wire.IMZone).Format("20060102") == o.RepairDate && t.Before(failedEnd) {
		t = failedEnd
	}
	return t
}
