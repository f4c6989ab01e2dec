// Package mqw50asim simulates the Mingquan MQW-50A of drivers/mqw50a on any io.ReadWriter:
// framed 2C requests, data and status replies from rigsim's petrol script, warm-up and zeroing
// reported through the status bits, and the configured faults (busy = NAK 15).
package mqw50asim
