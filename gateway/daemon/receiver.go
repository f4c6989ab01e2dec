package daemon

import (
	"time"

	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/gateway/wire"
)

// ValidateForReceiver is gateway/wire's validation in the shape cloud.Receiver takes: the
// reference receiver (obdgw receive, the demo, the end-to-end test) checks every message
// against the one wire schema.
func ValidateForReceiver(topic string, payload []byte) (cloud.Verdict, error) {
	if _, last, err := wire.ParseTopic(topic); err == nil && wire.IsReserved(last) {
		return cloud.Verdict{Skip: true}, nil
	}
	env, t, err := wire.ValidateMessage(topic, payload)
	v := cloud.Verdict{ID: env.ID, Kind: env.Kind}
	if t.Gateway != "" {
		v.ReceiptTopic = t.Receipt()
	}
	return v, err
}

// EncodeReceipt encodes a receiver's verdict as a wire receipt.
func EncodeReceipt(r cloud.Receipt) ([]byte, error) {
	return wire.MarshalReceipt(wire.Receipt{ID: r.ID, Status: wire.ReceiptStatus(r.Status), Reason: r.Reason, At: time.Now()})
}
