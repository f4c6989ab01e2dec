// Package buffer is the gateway's one durable store: a single bbolt file holding the outbox (a
// durable FIFO of outgoing records, opaque bytes to this package) and the gateway's document
// buckets (work orders, scans, …). Both live in one file so that a caller can commit a document
// and the record it causes in one transaction (DB.Update with Tx.Put and Tx.Append): a settled
// work order and its outgoing record exist together or not at all.
//
// # Outbox
//
// Append gives each record the next sequence number (Seq 1, 2, 3, …, kept in the file's meta
// bucket and committed with the record, so it is gap-free and never reused, not even after an
// Ack) and the ID "<gateway id>-<incarnation>-<seq>", which the receiver uses to de-duplicate
// retries. The incarnation is 8 random lowercase base32 characters drawn once when the file is
// created (Info), so a gateway that has to start on a new file never repeats an ID. A file
// from before incarnations gets one at Open; its records keep their "<gateway id>-<seq>" IDs. FIFO
// order is Seq order. A record leaves the outbox only by Ack (delivered), DeadLetter (rejected
// for good; Requeue puts it back at the tail with a new Seq and its old ID) or a telemetry drop.
//
// # Limits
//
// The outbox is bounded by payload bytes and by record count (Options). When full, a telemetry
// kind drops the oldest records of its own kind; a regulatory kind (the default) is never
// dropped: it takes the place of the oldest telemetry records, and with none left its Append is
// refused with ErrFull, so the caller can show "outbox full … check the uplink". Every append,
// delivery, drop, refusal, dead letter and requeue is counted by kind (drops and refusals also
// by reason) in Stats. These event counters live in memory since Open: a refusal happens in a
// transaction that is rolled back, so it could not be stored with it. What Stats says about the
// stored records (depth, payload bytes, depth by kind, dead letters) is stored instead, in the
// transactions that change the records, so it is exact after a crash and Stats costs the same
// with ten records waiting or a hundred thousand.
//
// # Durability
//
// Every commit is fsynced (bbolt's NoSync is never set). Concurrent writes share commits
// (group commit: writers arriving during an fsync are committed together by the next one), so
// many writers cost fewer fsyncs while a lone writer waits for no one. A failed write (a full
// disk) rolls back its transaction and nothing stored before is affected.
//
// Open reads the whole file before using it: every key and value (records decoded), then
// bbolt's consistency check. Only a missing file starts a new store. A file that is empty,
// truncated, not a bbolt file, fails a check, or is behind its sidecar is refused with a
// *CorruptError (ErrCorrupt) and left in place byte for byte: losing a state file means
// losing undelivered records and the record numbering, which a person must decide about
// (MoveAside, Restore, Salvage). Damage can make reads fault or bbolt's check spin; the first
// is recovered, the second is bounded by a time budget, and a marker file "<path>.checking"
// counts checks that killed the process, so that the second such start refuses the file
// instead of crashing again.
//
// # Rollback
//
// bbolt keeps two meta pages; when the newer one is damaged it opens the older one without a
// word, one commit back: a settlement disappears and the next record would reuse its number.
// The sidecar "<path>.last" records the incarnation, bbolt's transaction id and the next
// sequence after every commit that added records, durably before the call returns (so before
// the uplink can publish the record); Open refuses a file that is behind it (ErrRolledBack).
// See sidecar.go for its layout.
// bbolt has no checksums on data pages: a flipped bit inside a payload is not detected here.
// Another process holding the file gives ErrLocked after Options.LockTimeout.
//
// # Memory
//
// bbolt maps the whole file into memory and every page read through the map stays in the
// process's resident set until the kernel wants the memory back. Open (which reads the whole
// file) and the outbox's reader (PeekAfter) therefore drop the pages they have read
// every few megabytes (madvise MADV_DONTNEED on bbolt's read-only shared map, Linux only; see
// release_linux.go for why that is safe): draining a large backlog keeps the gateway's RSS
// near its heap instead of growing to the size of the outbox file.
//
// # On disk
//
// Buckets meta (format, next seq, depth, bytes, dead count), outbox (seq → record), dead
// (seq → dead record), kinds (per-kind index of the outbox, to find the oldest record of a kind
// without a scan), bykind (kind → number of its records in the outbox) and docs (one nested
// bucket per document bucket). Record values carry a version byte; see codec.go. Open checks
// the counts against the records at every start, rebuilds them when they disagree and writes
// them when a file from an older obdgw has none.
package buffer
