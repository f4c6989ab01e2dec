// Package cloud moves the outbox to the provincial MQTT broker (Uplink) and, for trials and
// tests, plays the province's side (Receiver). It moves opaque bytes: the wire format (topics,
// envelope, receipts, status) lives in gateway/wire and reaches this package as functions in
// the options, so cloud never imports gateway.
//
// # Why paho is only a pipe
//
// The bbolt outbox (package buffer) is the only durable queue. A record leaves it only when
// the delivery rule says it arrived: on the broker's PUBACK (Delivery "puback") or on the
// receiver's receipt for its id (Delivery "receipt"). A receipt counts only for a record this
// uplink published and still awaits a receipt for; any other is ignored, since anyone allowed
// to publish on the receipt topic could send it (docs/delivery.md, "Identity"). Paho's own
// queueing is not used for durability, because:
//
//   - with the default clean session the broker and paho both discard the session's unacked
//     messages on reconnect;
//   - paho's file store writes files without fsync, so a power cut loses what it "stored";
//   - after an automatic reconnect a publish token can complete before any PUBACK for the
//     message arrived (the token is finished by the resend machinery, not by the broker).
//
// So paho runs with AutoReconnect and ConnectRetry off and CleanSession on, and this package
// runs its own reconnect loop (exponential backoff with full jitter). Every connection is a
// fresh paho client; when a connection ends, everything it had in flight is simply unacked in
// the outbox and is sent again, oldest first, on the next connection. A token counts only
// when it completed with token.Error() == nil while its connection was still the live one; a
// publish on a broken connection completes with an error and is never counted as delivered.
// Duplicates that this causes (a PUBACK or receipt lost with the link) carry the same record
// id and are removed by the receiver's de-duplication.
//
// # Order
//
// Records are published in outbox order over one connection, with up to InFlight QoS 1
// publishes awaiting their PUBACK and (receipt mode) up to ReceiptWindow awaiting a receipt. MQTT keeps the order of QoS 1 messages from one client on one topic, and every
// connection starts again from the oldest unacked record, so the receiver's first sighting of
// each id follows the outbox order of its kind (each kind has its own topic).
//
// # Leaving the outbox
//
// A record acknowledged in the delivery mode's sense (its PUBACK, or its receipt) gives its
// window slot back at once and is queued for the connection's acker, which removes everything
// queued in one outbox transaction (buffer.AckMany, one fsync): at once for a lone record,
// every 20 ms while acknowledgements stream in. Nothing leaves the outbox before its
// acknowledgement; what a crash catches acknowledged but not yet removed is sent again and
// de-duplicated by the receiver, exactly like a PUBACK lost with the link. Status().Delivered
// counts records once their removal is committed.
//
// Publish attempts (Record.Attempts) are counted in memory per connection and stored in one
// transaction when the connection ends (buffer.MarkAttempts). They are a diagnostic for
// people (a record that keeps failing), not part of any guarantee; a crash loses the count of
// the connection it ended, never a record.
//
// # What a PUBACK does not say
//
// A PUBACK says the broker took the message, not that the province stored it: a broker that
// is killed before the receiver took the message loses it, and Mosquitto 2 answers a QoS 1
// publish that its ACL denies with a plain PUBACK on MQTT 3.1.1 (and then closes the
// connection). In puback mode neither is detectable. In receipt mode both show as a missing
// receipt: after ReceiptTimeout the connection is restarted and the record sent again, the
// record stays in the outbox, and Status().LastError says "no receipt for … after …".
// Production uses receipt mode; docs/delivery.md spells out the guarantees.
package cloud
