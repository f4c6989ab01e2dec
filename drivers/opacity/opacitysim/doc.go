// Package opacitysim simulates the opacimeters of drivers/opacity (NHT-6, NHT-1L, MQY-200,
// FTY-100) on any io.ReadWriter, each with its own command table, running rigsim's diesel
// free-acceleration script: smoke peaks of 35–45 % every 12 s, warm-up, zero calibration,
// maxima, and the configured faults (busy = NAK 15 02).
package opacitysim
