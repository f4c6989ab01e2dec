// Package waste keeps the shop's waste ledger in the buffer file and sends a settled repair's
// waste to the province (api.md "Waste", wire-format.md "Payload: waste").
//
// Waste is generated when an order whose items or parts carry a waste entry is settled
// (Ledger.Hook, a workorder.WasteHook: the ledger's lines and the waste record are written in
// the settlement transaction, and a revision replaces both); it is stored at the shop until it
// is handed over to a licensed collector with a transfer manifest (联单, Ledger.Handover). The
// ledger shows the stock per category and unit and what is due for hand-over: stock older than
// a number of days the shop sets (waste.due_days, 90 by default — a shop policy, the licence
// and local rules decide the real limit). Hand-overs consume the oldest stock first.
package waste
