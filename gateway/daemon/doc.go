// Package daemon is the one place that wires the gateway together (as tailscale's tsd does):
// the bbolt store, the work-order store, the MQTT uplink, one supervisor per bay with its
// status light, the emission self-test runs, the REST API, the web console, metrics and the
// event stream. Everything else is a package with its own seams; only here do they meet.
//
// `obdgw run` builds a Daemon from the configuration file; `obdgw demo` builds one on a
// temporary state directory against simulated adapters and an in-process broker.
package daemon
