// Package opacity drives the opacimeters (不透光烟度计) found in Chinese I/M and M stations:
// Nanhua NHT-6 and NHT-1L, Mingquan MQY-200 and Foshan FTY-100.
//
// They share one framing — a request closed by a 2C checksum, a reply whose first byte alone
// says NAK (15, followed by an error code) or a fixed-length answer — but NOT their command
// tables: A6 is real-time data on the MQY-200 and the maxima on the NHT-6. So every model has
// its own Spec (requests, reply length, field offsets), and nothing is shared by command code.
//
// The FTY-100 sends opacity N but no k: the driver computes k = −ln(1 − N/100) / L with the
// effective optical path L = 0.430 m (GB 3847), flags the reading "k_computed_from_n", and clamps
// N at 99.9 % (flag "k_clamped") because k is infinite at 100 %. No public FTY-100 driver checks
// its reply checksum, so a 2C mismatch there is logged, never fatal.
//
// Source: docs/rig-protocols.md §6. Not checked against real units.
package opacity
