// Package fleet simulates a province's gateways against a real Mosquitto and the reference
// receivers, and measures what the provincial ingest sees: records stored per second, the
// settle-to-stored latency, and the reconnect storm after a broker outage.
//
// Every simulated gateway is a real MQTT client with its own client id, username and password
// (the broker's ACL of docs/wire-format.md "Identity and ACL" keyed on the username), and a real
// uplink: cloud.Uplink over its own bbolt outbox, wired by gateway/uplink exactly as the daemon
// is, in receipt mode with the daemon's defaults (in_flight 8, drain_rate 20, backoff 1 s to
// 2 min). A shop's working day (08:00–20:00) is compressed into the run: 20–60 settled orders
// per shop, most of them around noon and in the evening, each an ehr/1 record, and a few OBD
// scans an hour as telemetry. The receivers share one subscription group ($share/fleet/…).
//
// Run drives one simulation and returns its Report; lost and duplicated records are counted
// with hack/chaos's checker. TestFleetSmall runs it in every `go test`; `make fleet`
// (hack/fleet.sh) runs TestFleet (build tag fleet) with 2,000 gateways and prints the figures
// the README's Performance section quotes.
package fleet
