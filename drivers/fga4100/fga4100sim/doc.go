// Package fga4100sim simulates the Foshan FGA-4100 of drivers/fga4100 on any io.ReadWriter:
// prefixed INV frames in, 51-byte ASCII data replies from rigsim's petrol script and
// three-frame control replies out, with the configured checksum, garbage and unplug faults
// (the protocol has no busy reply, so the busy fault does not apply).
package fga4100sim
