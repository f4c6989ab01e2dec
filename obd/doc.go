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
//   - A Request is the service byte and its parameters, exactly as they go on the bus. It
//     may carry Expect, a hint of who will answer and how long each answer is, so an adapter
//     can stop listening once everything expected is in; Scan fills it wherever what the car
//     already said (bitmaps, PID widths, 0101's DTC count) makes the answer certain, from an
//     earlier visit of the same car (Memory), or, on CAN, with the usual answer marked Likely.
//   - A Response is one ECU's reassembled answer; several ECUs may answer one request, and
//     every result keeps the ECU it came from (a workshop needs to know which module reported
//     a fault code).
//   - ErrNoData means "no ECU answered": an answer, not a failure.
//   - Clearing fault codes (service 04) is a write to the car. It is reachable only through
//     ClearDTCs with an explicit Confirmation and is never retried.
//   - Decoders (ParseDTCs, DecodeMonitorStatus, DecodePID, ParseMultiPID, ParseSupported,
//     DecodeVIN, DecodeCALIDs, DecodeCVNs, DecodeECUName, DecodeIUPR) take bytes exactly as an
//     ECU sent them and return a *DecodeError keeping those bytes when they do not fit J1979.
//     They never panic on any input (each has a fuzz target).
//   - VINs: VINWellFormed (17 characters of the VIN alphabet) and VINCheckDigitOK (the
//     position-9 digit computes, ISO 3779 / GB 16735) are the one implementation the record
//     builders and the API use too; a well-formed VIN without a valid digit is normal for some
//     European makers, so it is a warning, and the report's vin_valid is false for it.
//   - Scan runs the workshop full scan (elm327-obd.md §17) and returns a Report, the document
//     `obdgw scan --json` prints; WriteText renders it for people in Chinese or English.
//   - The DTC catalogue (dtcdata/dtc.tsv, SAE J2012 generic codes in English and Chinese) is
//     embedded and parsed on first lookup, so start-up on a small ARM box stays fast. Codes
//     it lacks are described by category ("manufacturer-specific powertrain fault").
//   - Values whose meaning is inferred rather than verified (most PID formulas, IUPR item names,
//     NRCs beyond 10/11/12/21) say so where they are defined.
package obd
