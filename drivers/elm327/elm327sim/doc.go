// Package elm327sim is a scripted ELM327 adapter with a simulated vehicle behind it. It speaks
// the adapter's serial dialect on any io.ReadWriter — the master side of a pty for end-to-end
// tests and `obdgw sim elm327`, or one end of a net.Pipe for in-memory tests — so the real
// driver (drivers/elm327 over drivers/serialport) can be exercised without a car.
//
// Concepts:
//
//   - A Scenario (YAML, see scenarios/*.yaml) describes the adapter (banner, STN firmware,
//     unsupported commands), the bus protocol and wire rate, the ECUs with their identities,
//     fault codes, readiness, live PIDs and freeze frame, and faults that imitate clones and
//     flaky links (echo that ignores ATE0, CR LF line ends, Bluetooth chatter, NUL bytes, split
//     writes, late frames of a second ECU, a link that drops mid-reply).
//   - A Sim plays one scenario. Its state (echo, headers, protocol, the vehicle's fault codes)
//     lives as long as the Sim, like a dongle that stays powered by the car while clients come
//     and go.
//   - The Sim paces its output at the configured baud rate (10 bits per byte) and adds the
//     scenario's ECU latency, and it accounts for what that costs: Stats().Bound is the lower
//     bound of the exchange a client made (bytes on the wire both ways, ECU latency, protocol
//     search), against which benchmarks report their wall time. Time the adapter spent waiting
//     out its response timeout (no or unsatisfied response-count digit, NO DATA) is counted
//     separately, because a good driver avoids it.
//
// Behaviour follows docs/elm327-obd.md; where the reference marks a behaviour as
// inferred (adaptive-timing waits, late frames, what a clone does with a count digit), the
// simulator's choice is marked in a comment and is configurable where it matters.
package elm327sim
