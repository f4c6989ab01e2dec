// Package chaos holds the pieces of the delivery torture tests: a gateway process that appends
// numbered records to a real bbolt outbox while a real uplink drains it (RunGateway, meant to
// be run as a child process and killed with SIGKILL at random), and the checker that compares
// what the receiver stored with what was appended (Check): lost, duplicated and reordered.
// The uplink and the receiver are wired to the wire format by gateway/uplink, as in the
// daemon and `obdgw receive`, so the torture runs the code the gateway ships.
//
// `make chaos` (hack/chaos.sh) runs TestChaos (build tag chaos): 10,000 records while the
// broker is killed 10 times and the gateway 10 times. The cloud package's broker tests use the
// same pieces for their smaller kill tests.
package chaos
