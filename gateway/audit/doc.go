// Package audit keeps the shop's audit log in the buffer file: who (token name and role) did
// what (an action with the work order, bay or VIN it touched) and when, for the actions a
// shop must be able to account for — every read of owner data, settlement, correction of a
// settled order, fault-code clear, requeue, backup and waste hand-over (api.md "Audit log").
//
// The log is the shop's own: it lives in its own document buckets, never enters the outbox,
// and never holds the owner data whose reading it records. Entries are append-only; the
// manager reads them through GET /api/v1/audit.
package audit
