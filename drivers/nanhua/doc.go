// Package nanhua drives the five-gas analyzers that speak the Nanhua single-command protocol:
// Nanhua NHA-503 and NHA-506(I), Fuli FLA-502 and Mingquan MQW-511 (a clone with a shorter data
// frame). The family is named after Nanhua because the others copy its command table.
//
// A request is one command byte. The first reply byte is 06 (ACK), 05 (busy) or 15 (NAK);
// a data reply is a fixed-length frame of signed big-endian words closed by a plain 8-bit SUM.
// Everything that differs between models and firmware — the data command (NHA-503 moved from
// 01 to 81), scales (FLA-502 CO ÷1000, NHA-506I oil unscaled), what byte 17 means, which status
// commands exist, whether the checksum is checked at all (MQW-511: not by any public driver, so
// a mismatch is logged, not fatal) — lives in a Spec per model and firmware, see Specs.
//
// Source: docs/rig-protocols.md §1 and §3. Nothing here has been checked against a
// real unit; commands marked inferred there stay configurable through Spec.
package nanhua
