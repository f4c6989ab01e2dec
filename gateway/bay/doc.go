// Package bay supervises one workshop bay: the OBD adapter plugged into the car there, and the
// status light above it.
//
// A Supervisor owns its adapter from one goroutine (adapters are not safe for concurrent use).
// It notices the dongle being plugged in and pulled out, initialises it, notices the ignition
// coming on, runs the full scan once per vehicle connection and on request, keeps the last
// scans, streams a few live values while someone watches, and clears fault codes only on an
// explicit, confirmed request — with a scan kept from just before and just after.
//
// A Memory keeps, in the buffer file, what the bays learn and use again: each car's answer
// sizes (an obd.Memory for the scan), and each bay's last protocol and adapter baud rate, so a
// returning car is scanned without a protocol search or waiting out the adapter's timeout.
//
// Absent hardware is a state, not an error storm: an empty bay polls quietly and logs only
// when its state changes.
package bay
