// Package uplink wires cloud's uplink and reference receiver to the wire format of
// gateway/wire: topics, the framing that stamps a record's id into its envelope, receipts, the
// retained status with its last will, and the receiver's validation. cloud moves opaque bytes
// and never imports the schema; this is the one place the two meet.
//
// The daemon, `obdgw receive`, the demo and the chaos harness all build their uplink and
// receiver options here, so the delivery tests exercise the wiring the gateway runs.
package uplink

import (
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/gateway/wire"
)

// Options completes o, which carries the transport (broker, TLS, credentials, delivery,
// in-flight window, pacing, backoff, logger, clock), with the wire part for gateway t: the
// MQTT client id (the gateway id), the receipt topic and decoder, the retained status topic,
// its payload (reporting version) and last will, and the record framing.
func Options(t wire.Topic, version string, o cloud.UplinkOptions) cloud.UplinkOptions {
	o.ClientID = t.Gateway
	o.ReceiptTopic = t.Receipt()
	o.ParseReceipt = ParseReceipt
	o.StatusTopic = t.Status()
	o.Status = statusPayload(t.Gateway, version, buffer.StoreInfo{}, nil)
	o.Frame = Frame
	return o
}

// ReceiverOptions completes o, which carries the transport and the files, with the wire part
// of the reference receiver: every message checked against the wire schema, receipts in the
// wire format and, unless o names one, the filter of every record topic.
func ReceiverOptions(o cloud.ReceiverOptions) cloud.ReceiverOptions {
	o.Validate = Validate
	o.EncodeReceipt = EncodeReceipt
	if o.Filter == "" {
		o.Filter = wire.SubscribeAll
	}
	return o
}

// Frame is the bytes published for a stored record: its envelope with the record id stamped in.
func Frame(rec buffer.Record) ([]byte, error) { return wire.Frame(rec.ID, rec.Payload) }

// ParseReceipt decodes a wire receipt for the uplink.
func ParseReceipt(b []byte) (cloud.Receipt, error) {
	r, err := wire.ParseReceipt(b)
	if err != nil {
		return cloud.Receipt{}, err
	}
	return cloud.Receipt{ID: r.ID, Status: cloud.ReceiptStatus(r.Status), Reason: r.Reason}, nil
}

// WithStatus completes the status that o (from Options) publishes for gateway t: the
// incarnation of its state file and whether this run started on a new, empty one, and its
// updates as upd says each time the status is composed (nil: nothing to report).
func WithStatus(o cloud.UplinkOptions, t wire.Topic, version string, store buffer.StoreInfo, upd func() *wire.UpdateStatus) cloud.UplinkOptions {
	o.Status = statusPayload(t.Gateway, version, store, upd)
	return o
}

// WithStore is WithStatus with the state file only.
func WithStore(o cloud.UplinkOptions, t wire.Topic, version string, store buffer.StoreInfo) cloud.UplinkOptions {
	return WithStatus(o, t, version, store, nil)
}

// WithUpdate is WithStatus with the updates only.
func WithUpdate(o cloud.UplinkOptions, t wire.Topic, version string, upd func() *wire.UpdateStatus) cloud.UplinkOptions {
	o.Status = statusPayload(t.Gateway, version, buffer.StoreInfo{}, upd)
	return o
}

// statusPayload is the retained online/offline status of gateway.
func statusPayload(gateway, version string, store buffer.StoreInfo, upd func() *wire.UpdateStatus) func(online bool, at time.Time) ([]byte, error) {
	return func(online bool, at time.Time) ([]byte, error) {
		st := wire.Offline
		if online {
			st = wire.Online
		}
		s := wire.Status{State: st, Gateway: gateway, Version: version, At: at, Incarnation: store.Incarnation, NewStore: store.New}
		if upd != nil {
			s.Update = upd()
		}
		return wire.MarshalStatus(s)
	}
}

// Validate is the receiver's check of one message against the wire schema. Messages on a
// gateway's reserved topics (status, receipts) are skipped, not rejected; a rejected record is
// answered on its gateway's receipt topic when the topic names one.
func Validate(topic string, payload []byte) (cloud.Verdict, error) {
	if _, last, err := wire.ParseTopic(topic); err == nil && wire.IsReserved(last) {
		return cloud.Verdict{Skip: true}, nil
	}
	env, t, err := wire.ValidateMessage(topic, payload)
	v := cloud.Verdict{ID: env.ID, Kind: env.Kind}
	if t.Gateway != "" {
		v.ReceiptTopic = t.Receipt()
	}
	if err == nil {
		// A valid record's id names its gateway: the parts order the gateway's records in a
		// store (docs/delivery.md "Several receivers").
		id, perr := wire.ParseIDOf(env.ID, env.Gateway)
		if perr != nil {
			return v, perr
		}
		v.Gateway, v.Incarnation, v.Seq = id.Gateway, id.Incarnation, id.Seq
	}
	return v, err
}

// EncodeReceipt encodes the receiver's verdict as a wire receipt, stamped with the time.
func EncodeReceipt(r cloud.Receipt) ([]byte, error) {
	return wire.MarshalReceipt(wire.Receipt{ID: r.ID, Status: wire.ReceiptStatus(r.Status), Reason: r.Reason, At: time.Now()})
}
