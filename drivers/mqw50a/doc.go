// Package mqw50a drives the Mingquan (鸣泉) MQW-50A five-gas analyzer.
//
// Requests are framed `02 cmd len [param…] cs` with len the number of bytes before the
// checksum and cs the 2C rule (the whole frame sums to 0). Replies start with 06 and the echoed
// command and sum to 0 as well: 28 bytes of signed words for data (60), 11 bytes for status
// (61), 4 bytes for control commands. λ comes in thousandths here, unlike the Nanhua family.
//
// The leak-check command (66) exists but its result is not public, so the driver implements
// rig.Zeroer but not rig.LeakChecker.
//
// Source: docs/rig-protocols.md §4. Not checked against a real unit.
package mqw50a
