// Package daemon is the one place that wires the gateway together (as tailscale's tsd does):
// the bbolt store, the work-order store, the MQTT uplink, one supervisor per bay with its
// status light and adapter memory, the emission self-test runs and their store, the REST API,
// the web console, metrics and the event stream. Everything else is a package with its own
// seams; only here do they meet. The daemon owns no bucket of the store and no business rule:
// those live in the packages it wires (gateway/bay, gateway/imrecord, gateway/workorder).
//
// Run is a Daemon's whole lifetime. Work that outlives a request — a requested scan, a
// self-test and the storing of its result — runs on Run's context, and Run waits for it
// before it closes the store, so nothing writes to a closed store and a result judged during
// shutdown is kept. The daemon owns the Prometheus registry: /metrics answers with or without
// a broker, and the uplink adds its metrics to it.
//
// `obdgw run` builds a Daemon from the configuration file; `obdgw demo` builds one on a
// temporary state directory against simulated adapters and an in-process broker.
package daemon
