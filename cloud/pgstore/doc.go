// Package pgstore keeps the reference receiver's records in PostgreSQL (cloud.Store): records,
// the ids that say what is stored, and the digests that tell a resend from a reused id, in one
// database that several receivers of one shared-subscription group use together.
//
// One batch is one transaction: each record goes in with INSERT … ON CONFLICT (id) DO NOTHING,
// a record that did not go in is a duplicate when the stored digest is its own and a conflict
// otherwise, and the receipts go out only after COMMIT. Two receivers that get the same record
// (a resend that lands on the other one) both answer it, and the table holds it once: the
// primary key decides, the second insert waits for the first transaction and then does nothing.
// Inserts run in id order, so two batches never wait on each other in a cycle.
//
// The schema is created and migrated by Open, under an advisory lock so receivers starting
// together do not race, and versioned in the table obdgw_schema; a database migrated by a newer
// receiver is refused. The order of a gateway's records is explicit in the table: gateway,
// incarnation and seq (the parts of the record id, docs/wire-format.md), so a consumer reads
// them with ORDER BY gateway, incarnation, seq (docs/delivery.md "Several receivers").
//
// The password never appears in a URL: it comes from a mode 0600 file, or from PGPASSFILE
// (libpq's password file) when the URL names only the user. Logs and errors name the server
// by URL without it.
package pgstore
