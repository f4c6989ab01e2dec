package wire

import (
	"encoding/json"
	"fmt"
	"time"
)

// ReceiptStatus is the receiver's verdict on one record.
type ReceiptStatus string

const (
	// Accepted: the record is on the receiver's disk (de-duplication store and output fsynced).
	Accepted ReceiptStatus = "accepted"
	// Duplicate: the id was accepted before; the record is on disk once.
	Duplicate ReceiptStatus = "duplicate"
	// Rejected: the record will never be accepted as it is (Reason says why); the gateway
	// dead-letters it for a person to look at. A record whose id the receiver already holds
	// with different content is rejected too, its Reason starting "cloud: conflict:": it is
	// not a resend, and acknowledging it as a duplicate would lose it.
	Rejected ReceiptStatus = "rejected"
)

// Receipt is what the receiver publishes (QoS 1, not retained) on the gateway's receipt topic
// (Topic.Receipt) for every record it has handled.
type Receipt struct {
	ID     string        `json:"id"`
	Status ReceiptStatus `json:"status"`
	Reason string        `json:"reason,omitempty"` // required when rejected
	At     time.Time     `json:"at,omitzero"`      // receiver's clock, informational
}

// Validate names the field that is wrong.
func (r Receipt) Validate() error {
	if _, err := ParseID(r.ID); err != nil && !(r.Status == Rejected && r.ID == "") {
		return err
	}
	switch r.Status {
	case Accepted, Duplicate:
	case Rejected:
		if r.Reason == "" {
			return fieldErr("reason", "a rejected receipt must say why")
		}
	default:
		return fieldErr("status", "%q: want accepted, duplicate or rejected", clip(string(r.Status)))
	}
	return nil
}

// MarshalReceipt encodes a valid receipt.
func MarshalReceipt(r Receipt) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if !r.At.IsZero() {
		r.At = r.At.UTC()
	}
	return json.Marshal(r)
}

// ParseReceipt decodes and validates a receipt. A receipt for an unparseable message
// (rejected, no id) is valid but names no record.
func ParseReceipt(b []byte) (Receipt, error) {
	var r Receipt
	if len(b) > 64<<10 {
		return r, fmt.Errorf("wire: receipt is %d bytes, at most 65536", len(b))
	}
	if err := decodeStrict(b, &r, "at"); err != nil {
		return r, fmt.Errorf("wire: receipt: %w", err)
	}
	return r, r.Validate()
}
