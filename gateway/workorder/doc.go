// Package workorder keeps the shop's work orders in the buffer's bbolt file and turns a
// settlement into the JT/T 1132 record in the outbox — both in one transaction, so a settled
// order and its outgoing record exist together or not at all.
//
// Concepts:
//
//   - An Order is opened with a plate (and plate colour), optionally a typed VIN, mileage, fault
//     text, bay, the owner's name and phone (for the shop only), and for an emission repair the
//     failed inspection's report number (test_no). A plate that fits no Chinese form, and a
//     Chinese VIN (L…) with a wrong check digit, are a *RuleError; the VIN is kept only on a
//     Confirmation with a reason.
//   - Scans (obd.Report) are stored in their own bucket and attached to an order: the open order
//     with the scan's VIN, else the open order on the scan's bay (skipping orders whose VIN their
//     own car confirmed and that differ); more than one candidate is an
//     *AmbiguousError listing them, and the technician picks one (AttachStoredScan). The VIN read
//     from the car fills an empty VIN or confirms a typed one; another VIN is a
//     *VINMismatchError and nothing is attached unless a person confirms the typed VIN with a
//     reason (VINTypedConfirmed). A bay scan that meets such an order is kept unattached and the
//     order shows the conflict (VINConflict). The order keeps where its VIN came from
//     (VINSource), and the record's meta says it.
//   - Settle builds and validates the record (gateway/ehr); hard errors are a *ValidationError
//     naming the fields and nothing is stored; warnings are kept on the order and carried in the
//     envelope. A correction after settlement is Revise: a new revision of the record under the
//     same costlistcode, appended to the outbox and listed in the order's history, never an edit
//     in place.
//   - Owner name and phone stay in the order document. They never enter a record, a topic, an
//     event or a log line; View strips them unless the caller asks for them explicitly.
//
// Buckets (documents in the buffer file): "workorders" (id → Order JSON), "workorders.vin"
// (VIN → ids), "workorders.costlist" (company code + "/" + upper-case costlistcode → id; orders
// settled before the number ignored case are found under their number as typed), "workorders.open"
// (ids of open orders), "workorders.records" (id + "/" + revision → the record as sent),
// "scans" (id → stored scan), "meta" (sequences) and "requests" (used request ids).
package workorder
