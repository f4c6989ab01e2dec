// Package mexa drives the HORIBA MEXA-584L exhaust gas analyzer.
//
// Requests are `02 n cmd [param…] cs` (n counts command and parameters, cs is 2C); every reply
// starts 06 and the echoed command and sums to 0 mod 256. The instrument needs a per-command
// pause before the reply can be read (150 ms for status up to 290 ms for the channels), which
// the driver waits before reading. Which channels exist (O2, NO, rpm, oil temperature) depends
// on fitted options reported by the subsystem query, so the driver asks for it once and leaves
// absent channels nil.
//
// Source: docs/rig-protocols.md §5 (a public reader derived from HORIBA's v1.00
// executable). Not checked against a real unit.
package mexa
