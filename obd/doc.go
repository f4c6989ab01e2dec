// Package obd holds the meaning of SAE J1979 (OBD-II / EOBD / CN-OBD) diagnostics: requests and
// responses, PIDs with their units and formulas, diagnostic trouble codes and their catalogue,
// the VIN, readiness monitors, and the full workshop scan plan.
//
// The package does no I/O. It talks to the car through an Adapter (drivers/elm327 is the real
// one; obd/obdtest plays back canned answers in tests), so everything here is testable with
// literal bytes.
//
// Concepts:
//
//   - A Request is the service byte and its parameters, exactly as they go on the bus.
//   - A Response is one ECU's reassembled answer; several ECUs may answer one request, and
//     every result keeps the ECU it came from (a workshop needs to know which module reported
//     a fault code).
//   - ErrNoData means "no ECU answered": an answer, not a failure.
//   - Clearing fault codes (service 04) is a write to the car. It is reachable only through
//     ClearDTCs with an explicit Confirmation and is never retried.
package obd
