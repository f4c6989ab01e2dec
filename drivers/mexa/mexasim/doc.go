// Package mexasim simulates the HORIBA MEXA-584L of drivers/mexa on any io.ReadWriter:
// status, subsystem (all four options fitted), channels from rigsim's petrol script, PEF,
// MEAS/STANDBY modes, warm-up, and the configured faults (busy = the 5-byte NAK).
package mexasim
