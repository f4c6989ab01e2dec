// Package imrecord makes the I/M M-station record (汽车排放性能维护（维修）站 record, kind "im")
// of an emission repair: the repair, the OBD read-outs before and after it, and the judged
// post-repair self-test, in the im/1 schema of gateway/wire (docs/wire-im.md).
//
// Concepts:
//
//   - Build is pure: it turns the facts the gateway holds (Input: the work order's JT/T 1132
//     record, the scans' OBD check, an emission.Result) into a wire.IMPayload and validates it.
//     Only a judged self-test (pass or fail) makes a record; anything else is refused with the
//     reason, naming the field.
//   - Store keeps the last judged self-test of each work order in the buffer file (Bucket).
//     Follow watches a running self-test to its end and stores its result; Record is the
//     workorder.IMHook that builds the M-station record inside the settlement transaction, so
//     the JT/T 1132 record and the M-station record enter the outbox together or not at all.
//
// The schema stays in gateway/wire (standard library only) so that a receiver validating
// records links no emission procedure, rig driver or serial library; this package is where
// the measurements meet it.
package imrecord
