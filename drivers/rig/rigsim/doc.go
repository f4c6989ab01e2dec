// Package rigsim is the shared engine of the rig simulators (drivers/<family>/<family>sim):
// a clock-driven script of what the instrument measures — a petrol engine going idle → 2500
// r/min → idle with its exhaust gases following, or a diesel's free accelerations with their
// smoke peaks — a warm-up period, fault injection (bad checksums, busy replies, garbage before
// a reply, unplugging), a request reader and the serve loop that applies the faults. The
// family packages only speak their protocol on top of it.
//
// Everything is driven by Config.Now, so tests can run the script on a fake clock, and
// Serve works on any io.ReadWriter: a pty master, one end of net.Pipe.
//
// Simulators register themselves by model name (Register), so `obdgw sim rig --model nha506`
// finds them the way `obdgw rig read` finds drivers through rig.Lookup.
package rigsim
