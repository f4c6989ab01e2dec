package obd

import "fmt"

// DTC is one diagnostic trouble code as one ECU reported it through one service.
type DTC struct {
	Code string `json:"code"` // "P0420"
	ECU  string `json:"ecu"`  // responder, e.g. "7E8"
	// Service is the service that reported the code: 03 confirmed (stored), 07 pending,
	// 0A permanent. The same code can appear under several services.
	Service     HexByte `json:"service"`
	Description string  `json:"description,omitempty"`
}

// DTC services.
const (
	ServiceStored    byte = 0x03
	ServicePending   byte = 0x07
	ServicePermanent byte = 0x0A
)

// DecodeDTC turns the two bytes of a J1979 DTC into its five-character form (04 20 → P0420).
// It returns "" for the 00 00 padding, which is not a code.
func DecodeDTC(b0, b1 byte) string {
	if b0 == 0 && b1 == 0 {
		return ""
	}
	const sys = "PCBU"
	const hexd = "0123456789ABCDEF"
	return string([]byte{
		sys[b0>>6],
		hexd[(b0>>4)&0x3],
		hexd[b0&0xF],
		hexd[b1>>4],
		hexd[b1&0xF],
	})
}

// EncodeDTC is the inverse of DecodeDTC, for tests and simulators.
func EncodeDTC(code string) (b0, b1 byte, err error) {
	if !validDTCCode(code) {
		return 0, 0, fmt.Errorf("obd: %q is not a DTC (want a letter P, C, B or U and four hex digits, first 0-3)", code)
	}
	var sys byte
	switch code[0] {
	case 'C':
		sys = 1
	case 'B':
		sys = 2
	case 'U':
		sys = 3
	}
	d := func(c byte) byte {
		if c <= '9' {
			return c - '0'
		}
		return c - 'A' + 10
	}
	return sys<<6 | d(code[1])<<4 | d(code[2]), d(code[3])<<4 | d(code[4]), nil
}

func validDTCCode(code string) bool {
	if len(code) != 5 {
		return false
	}
	switch code[0] {
	case 'P', 'C', 'B', 'U':
	default:
		return false
	}
	if code[1] < '0' || code[1] > '3' {
		return false
	}
	for i := 2; i < 5; i++ {
		c := code[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// DTCForm says how a DTC response is laid out.
type DTCForm int

const (
	// FormAuto picks CAN when the responder looks like a CAN identifier (3 or 8 hex digits)
	// and the count byte is consistent with the length, legacy otherwise.
	FormAuto DTCForm = iota
	// FormCAN is ISO 15765-4: 43 NN followed by NN two-byte codes.
	FormCAN
	// FormLegacy is J1850 / ISO 9141 / KWP: no count byte, three codes per 7-byte message
	// (43 + 6 bytes), 00 00 padding. Several messages may arrive as separate responses or
	// concatenated, each starting with the reply byte.
	FormLegacy
)

// ParseDTCs decodes one ECU's answer to service 03, 07 or 0A. Codes keep the ECU and service.
// On malformed input it returns the codes it could decode together with a *DecodeError.
func ParseDTCs(service byte, r Response, form DTCForm) ([]DTC, error) {
	what := fmt.Sprintf("service %02X DTC list", service)
	if ne := negative(r); ne != nil {
		return nil, ne
	}
	d := r.Data
	if len(d) == 0 || d[0] != service|0x40 {
		e := decodeErr(what, d, "want reply byte %02X", service|0x40)
		e.ECU = r.ECU
		return nil, e
	}
	if form == FormAuto {
		form = guessDTCForm(r)
	}
	var codes []string
	var err *DecodeError
	if form == FormCAN {
		codes, err = dtcsCAN(what, d)
	} else {
		codes, err = dtcsLegacy(what, service|0x40, d)
	}
	if err != nil {
		err.ECU = r.ECU
	}
	out := make([]DTC, 0, len(codes))
	for _, c := range codes {
		out = append(out, DTC{Code: c, ECU: r.ECU, Service: HexByte(service)})
	}
	if err != nil {
		return out, err
	}
	return out, nil
}

func guessDTCForm(r Response) DTCForm {
	switch len(r.ECU) {
	case 3, 8:
		return FormCAN
	case 2:
		return FormLegacy
	}
	// Unknown responder (headers off): trust the count byte when it matches the length exactly.
	if len(r.Data) >= 2 && 2+2*int(r.Data[1]) == len(r.Data) {
		return FormCAN
	}
	return FormLegacy
}

func dtcsCAN(what string, d []byte) ([]string, *DecodeError) {
	if len(d) < 2 {
		return nil, decodeErr(what, d, "no count byte after %02X", d[0])
	}
	n := int(d[1])
	body := d[2:]
	var err *DecodeError
	if len(body) < 2*n {
		err = decodeErr(what, d, "count byte says %d codes, only %d bytes follow", n, len(body))
		n = len(body) / 2
	}
	codes := make([]string, 0, n)
	for i := 0; i < n; i++ {
		if c := DecodeDTC(body[2*i], body[2*i+1]); c != "" {
			codes = append(codes, c)
		}
	}
	return codes, err
}

func dtcsLegacy(what string, reply byte, d []byte) ([]string, *DecodeError) {
	var body []byte
	if len(d) > 7 && len(d)%7 == 0 && everyChunkStarts(d, 7, reply) {
		for i := 0; i < len(d); i += 7 {
			body = append(body, d[i+1:i+7]...)
		}
	} else {
		body = d[1:]
	}
	var err *DecodeError
	if len(body)%2 != 0 {
		err = decodeErr(what, d, "odd number of code bytes (%d)", len(body))
	}
	var codes []string
	for i := 0; i+1 < len(body); i += 2 {
		if c := DecodeDTC(body[i], body[i+1]); c != "" {
			codes = append(codes, c)
		}
	}
	return codes, err
}

func everyChunkStarts(d []byte, size int, b byte) bool {
	for i := 0; i < len(d); i += size {
		if d[i] != b {
			return false
		}
	}
	return true
}
