package obd

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// DecodeError reports bytes from the vehicle that do not have the shape J1979 gives them. It
// keeps the offending bytes so a log or a bug report shows exactly what the ECU sent.
type DecodeError struct {
	What   string // what was being decoded, e.g. "0101 monitor status"
	ECU    string // responder, when known
	Reason string // what was wrong, e.g. "need 4 data bytes, have 2"
	Raw    []byte // the bytes as received
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString("obd: malformed ")
	b.WriteString(e.What)
	if e.ECU != "" {
		b.WriteString(" from ECU ")
		b.WriteString(e.ECU)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	if len(e.Raw) > 0 {
		b.WriteString(" (bytes ")
		b.WriteString(hexSpaced(e.Raw))
		b.WriteString(")")
	}
	return b.String()
}

func decodeErr(what string, raw []byte, format string, args ...any) *DecodeError {
	return &DecodeError{What: what, Reason: fmt.Sprintf(format, args...), Raw: append([]byte(nil), raw...)}
}

// NegativeResponseError is an ECU's refusal of a request (7F service NRC).
type NegativeResponseError struct {
	ECU     string
	Service byte // the refused service, e.g. 0x04
	NRC     byte
	Raw     []byte
}

func (e *NegativeResponseError) Error() string {
	ecu := e.ECU
	if ecu == "" {
		ecu = "?"
	}
	return fmt.Sprintf("obd: ECU %s refused service %02X: %s (NRC %02X)", ecu, e.Service, NRCText(e.Service, e.NRC), e.NRC)
}

// nrcNames are the negative response codes a J1979 / ISO 14229 ECU uses. 10/11/12/21 are
// verified against logs; the rest follow ISO 14229-1 (inferred for J1979 services).
var nrcNames = map[byte]string{
	0x10: "general reject",
	0x11: "service not supported",
	0x12: "sub-function not supported or invalid format",
	0x13: "incorrect message length or invalid format",
	0x14: "response too long",
	0x21: "busy, repeat request",
	0x22: "conditions not correct",
	0x24: "request sequence error",
	0x31: "request out of range",
	0x33: "security access denied",
	0x35: "invalid key",
	0x72: "general programming failure",
	0x78: "response pending",
	0x7E: "sub-function not supported in active session",
	0x7F: "service not supported in active session",
}

// NRCName names a negative response code ("conditions not correct"), or "NRC 0xNN" when the
// code is not one J1979 tools expect.
func NRCName(nrc byte) string {
	if s, ok := nrcNames[nrc]; ok {
		return s
	}
	return fmt.Sprintf("unknown negative response code 0x%02X", nrc)
}

// NRCText is NRCName with the service in mind: a refused clear (04 / 22) almost always means
// the engine is running, and the operator needs to be told so.
func NRCText(service, nrc byte) string {
	if service == 0x04 && nrc == 0x22 {
		return "conditions not correct (engine running?)"
	}
	return NRCName(nrc)
}

// negative returns the NegativeResponseError for r, or nil when r is a positive answer.
func negative(r Response) *NegativeResponseError {
	if len(r.Data) >= 1 && r.Data[0] == 0x7F {
		e := &NegativeResponseError{ECU: r.ECU, Raw: append([]byte(nil), r.Data...)}
		if len(r.Data) >= 2 {
			e.Service = r.Data[1]
		}
		if len(r.Data) >= 3 {
			e.NRC = r.Data[2]
		}
		return e
	}
	return nil
}

func hexSpaced(b []byte) string {
	s := strings.ToUpper(hex.EncodeToString(b))
	var out strings.Builder
	for i := 0; i < len(s); i += 2 {
		if i > 0 {
			out.WriteByte(' ')
		}
		out.WriteString(s[i : i+2])
	}
	return out.String()
}

// HexByte is a byte that reads as two upper-case hex digits in JSON and text ("0C"), the way
// PIDs and services are written in every workshop manual.
type HexByte byte

func (h HexByte) String() string { return fmt.Sprintf("%02X", byte(h)) }

// MarshalText renders the byte as two upper-case hex digits.
func (h HexByte) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads two hex digits.
func (h *HexByte) UnmarshalText(b []byte) error {
	if len(b) != 2 {
		return fmt.Errorf("obd: hex byte %q: want two hex digits", b)
	}
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("obd: hex byte %q: %w", b, err)
	}
	*h = HexByte(v[0])
	return nil
}
