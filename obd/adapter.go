package obd

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
)

// Request is one diagnostic request: the service (mode) byte followed by its parameters
// (PIDs, a freeze-frame number, …), as the bytes go on the bus.
type Request struct {
	Service byte
	Data    []byte
	// Expect is an optional hint: one entry per ECU the requester expects to answer, saying
	// how long that answer is. nil means unknown. It never changes what goes on the bus; an
	// adapter may use it to stop listening as soon as every expected answer is in (the
	// ELM327 response-count digit) and may ignore it. A requester only sets it when it knows
	// the answer from what the car already said (supported-PID bitmaps, PID widths, the DTC
	// count of 0101); too short a hint can make an adapter stop early, so when in doubt it
	// leaves the hint out, or marks it Likely.
	Expect []Expect
	// Likely says Expect is what cars usually answer, not what this car has shown: it lists
	// every ECU that may answer, each sized as such answers usually are (one frame of pending
	// codes, one CVN per CALID). Fewer answers than expected are then no sign of trouble (an
	// ECU with nothing to say stays silent); only an answer cut short is.
	Likely bool
}

// Expect is what a requester knows of one ECU's answer before asking (see Request.Expect).
type Expect struct {
	// ECU is the ECU this entry stands for ("7E8"), when the requester knows it.
	ECU string
	// Len is the length of the answer in bytes as ISO 15765-4 (CAN) carries it, which is
	// Response.Data on CAN: the response service byte through the last data byte ("41 0C 0C
	// E4" is 4, a VIN 20). 0: unknown.
	Len int
	// Messages is how many messages the ECU sends on a legacy protocol (J1850, ISO 9141-2,
	// ISO 14230): 1 for a Mode 01 PID, 5 for a VIN, one per three DTCs. 0: unknown.
	Messages int
	// Answers, in a Likely hint, says this ECU is sure to answer, whatever its size: its own
	// bitmap names the PID, or it answered the sister service (03 before 07). An adapter
	// that stopped listening before such an ECU spoke waited too little; an ECU not so
	// marked may have nothing to say.
	Answers bool
}

// Req builds a request from a service and parameter bytes: Req(0x01, 0x0C) is "010C".
func Req(service byte, data ...byte) Request { return Request{Service: service, Data: data} }

// Expecting returns a copy of r carrying the hint e (one entry per ECU expected to answer).
func (r Request) Expecting(e ...Expect) Request {
	r.Expect = e
	return r
}

// Bytes returns the request as it goes on the bus.
func (r Request) Bytes() []byte { return append([]byte{r.Service}, r.Data...) }

// String renders the request as upper-case hex without spaces ("0902").
func (r Request) String() string { return strings.ToUpper(hex.EncodeToString(r.Bytes())) }

// Response is the answer of one ECU to one request, after the adapter has stripped headers,
// PCI bytes, padding and legacy checksums and reassembled multi-frame messages.
type Response struct {
	// ECU names the responder as the adapter saw it: the CAN identifier in hex for ISO 15765-4
	// ("7E8", "18DAF110"), or the source address for legacy protocols ("10"). Empty when the
	// adapter could not tell (headers off).
	ECU string
	// Data starts with the positive response service byte (service|0x40) or 0x7F for a
	// negative response, followed by the payload.
	//
	// On legacy protocols (J1850, ISO 9141-2, ISO 14230) an answer spread over several
	// messages comes back as one Response whose Data is the messages concatenated, each
	// keeping its own service byte (and, for service 09, its PID and sequence byte), in
	// sequence order; the obd decoders read that form.
	Data []byte
}

// Negative reports whether the response is a negative response (7F service NRC), and its NRC.
func (r Response) Negative() (nrc byte, ok bool) {
	if len(r.Data) >= 3 && r.Data[0] == 0x7F {
		return r.Data[2], true
	}
	return 0, false
}

// Adapter sends requests to the vehicle and returns the answers.
//
// Contract:
//   - Query returns every ECU's answer to req, in the order the ECUs answered, or ErrNoData when
//     no ECU answered. Other errors are failures of the adapter or the bus.
//   - Query must honour ctx: a cancelled context ends the exchange promptly.
//   - Query is not safe for concurrent use unless an implementation says otherwise; the bay
//     supervisor owns its adapter.
//   - Query never retries a service 04 (clear DTCs) request, and never sends anything that could
//     repeat one (an ELM327 repeats the previous command on a bare CR).
//   - req.Expect is a hint for speed only. An adapter may ignore it; one that uses it must
//     still return every answer that arrives (a hint that proves too long only costs the
//     wait it was meant to save, one that proves too short must not lose or misplace
//     frames), and must not use it on service 04. A Likely hint is a guess: an adapter
//     that used it returns whatever answered by its timeout and asks again only when an
//     answer was cut short.
type Adapter interface {
	Query(ctx context.Context, req Request) ([]Response, error)
}

// StrayReporter is implemented by adapters that drop frames answering none of their requests
// (a positive answer of another service, a late frame of an earlier request) before they
// return. Strays returns those the last Query dropped, so a scan can note them; nil when
// there were none. An adapter may instead return such frames from Query: the scan drops and
// notes them itself.
type StrayReporter interface {
	Strays() []Response
}

// Profile describes what an adapter proved it can do; adapters that know it implement Profiler.
type Profile struct {
	Device      string  `json:"device,omitempty"`    // e.g. "/dev/ttyUSB0@38400"
	Version     string  `json:"version"`             // banner, e.g. "ELM327 v1.5"
	STN         string  `json:"stn,omitempty"`       // STN firmware ID when present
	Protocol    string  `json:"protocol"`            // human description, "ISO 15765-4 (CAN 11/500)"
	ProtocolNum string  `json:"protocol_num"`        // ELM protocol number, "6"
	VoltageV    float64 `json:"voltage_v,omitempty"` // supply voltage read at connect
	CountHint   bool    `json:"count_hint"`          // the response-count suffix works
	MultiPID    bool    `json:"multi_pid"`           // several Mode 01 PIDs per request work
	// AdaptiveTiming is the ELM327 adaptive timing in use: 1 normal (ATAT1), 2 aggressive
	// (ATAT2: shorter waits, proven at connect to miss no ECU), 0 unknown or refused.
	AdaptiveTiming int  `json:"adaptive_timing"`
	Clone          bool `json:"clone_suspected"` // behaviour betrays a clone
}

// Profiler is implemented by adapters that can describe themselves.
type Profiler interface {
	Profile() Profile
}

var (
	// ErrNoData means no ECU answered the request (ELM327 "NO DATA"): the service or PID is not
	// supported, or nothing is listening. It is an answer, not a failure.
	ErrNoData = errors.New("obd: no data")
	// ErrNoVehicle means the adapter could not talk to any ECU at all: the ignition is off, the
	// adapter is not seated in the socket, or the car has no supported protocol.
	ErrNoVehicle = errors.New("obd: no vehicle responded (is the ignition on and the adapter seated?)")
	// ErrAdapterLost means the link to the adapter broke (USB unplugged, Bluetooth or Wi-Fi
	// dropped): the request may or may not have reached the car. An adapter that reopens the
	// link by itself returns it for the request during which the link broke; the next request
	// may work.
	ErrAdapterLost = errors.New("obd: link to the adapter lost (unplugged, or Bluetooth/Wi-Fi dropped)")
)
