// Package buffer is the gateway's one durable store: a single bbolt file holding the outbox (a
// durable FIFO of outgoing records, opaque bytes to this package) and the gateway's document
// buckets (work orders, scans, …). Both live in one file so that a caller can commit a document
// and the record it causes in one transaction: a settled work order and its outgoing record
// exist together or not at all.
//
// Every commit is fsynced. Records leave the outbox only when the uplink acknowledges them
// (Ack) or dead-letters them; nothing is dropped silently: regulatory kinds are never dropped
// (an Append past the limits is refused with ErrFull), telemetry kinds may drop their oldest,
// and every drop and refusal is counted.
package buffer
