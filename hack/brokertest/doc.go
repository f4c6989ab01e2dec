// Package brokertest starts a real Mosquitto (/usr/sbin/mosquitto) for tests: on random free
// loopback ports, with a generated config (plain and TLS listeners, certificates made here with
// crypto/x509, an optional password file and ACL), waits until it listens, and stops it when the
// test ends. A test can kill it with SIGKILL and restart it on the same ports, and put a TCP
// Proxy between client and broker to cut and restore the link.
//
// Like every helper that needs an outside program it goes through testenv.Program: without
// mosquitto the test is skipped on a laptop and fails under CI.
//
// Never the system broker on 1883: every broker here is the test's own.
package brokertest
