// Package demo runs a whole simulated workshop on one machine, with no hardware and no
// broker installed: two ELM327 simulators on pseudo-terminals (a petrol car on 11-bit CAN in
// bay 1, a diesel on 29-bit CAN in bay 2), an in-process MQTT broker with TLS, the reference
// provincial receiver and the real daemon on a temporary state directory. It then plays a
// scripted visit through the REST API as a shop's management software would: a work order is
// opened, the car in bay 1 is scanned, repairs and parts are added, the order is settled, and
// the JT/T 1132 record is followed until the receiver has stored it.
//
// `obdgw demo` runs it; the end-to-end test runs the same visit against a real Mosquitto.
package demo
