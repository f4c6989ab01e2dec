// Package api is the daemon's REST API under /api/v1, used by the shop's management software
// (DMS) and the web console: work orders (create, list, get, update, items, parts, scans,
// settle, revise), bays (status, scan, clear DTCs, live values), the outbox and the dead letter,
// the uplink status and the event stream. openapi.yaml in this directory describes it; a test
// keeps every registered route in that file.
//
// Rules every handler follows:
//
//   - Bearer tokens from the configuration, compared in constant time. Every write (POST, PUT,
//     PATCH, DELETE) needs a token; reads do too unless the configuration allows anonymous
//     reads. Owner personal data is returned only on GET /workorders/{id}?include=owner with a
//     token, never in lists, events or logs.
//   - Bodies are JSON objects, at most Options.MaxBodyBytes, decoded strictly: an unknown field,
//     a wrong type or trailing data is a 400 naming the field. Errors are
//     {"error": "...", "field": "..."} with a 4xx code (5xx only when the gateway itself fails).
//   - Clearing DTCs needs {"confirm": true, "vin": "<the car's VIN>", "request_id": "..."}; a
//     request id is executed at most once — a repeat is refused with 409, never replayed.
package api
