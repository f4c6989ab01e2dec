// Package fga4100 drives the Foshan (佛分) FGA-4100 five-gas analyzer.
//
// Every request is the prefix 7E 01 F4 0A followed by a frame `7E len payload… cs`, cs being
// the INV rule (one's complement of the 8-bit sum) over len and payload. The data reply is 51
// bytes: bytes 18–49 are eight 4-character ASCII decimal fields (HC, CO, CO2, O2, NO, λ, rpm,
// oil), byte 50 is INV over 18–49; bytes 0–17 are not public and are not interpreted. Control
// replies are three small frames (two fixed preamble frames and an echo), each passing INV.
//
// The protocol publishes no status, busy or leak-check reply, so the driver reports no warm-up
// and implements rig.Zeroer (the zero command) but not rig.LeakChecker.
//
// Source: docs/rig-protocols.md §2. Not checked against a real unit.
package fga4100
