// Package ptypair opens the pseudo-terminal pairs that stand in for a serial line wherever no
// adapter or rig is plugged in: `obdgw sim`, the demo, and the tests that run a simulator on the
// master and the real serialport.Open on the slave.
//
// A Pair comes in raw mode (no echo, no line editing, no CR→LF, 8-bit clean: the ELM327 ends
// lines with CR and the rig protocols are binary), so nothing the line discipline does before a
// client configures the slave can garble the first exchange. Its master is non-blocking, so the
// runtime poller manages it: deadlines work and Close unblocks a pending Read.
//
// Linux only (the gateway's platform); elsewhere Open returns an error.
package ptypair
