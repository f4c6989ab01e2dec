package obd

import (
	"fmt"
	"strings"
)

// VINError says why a string is not a VIN. It keeps the string as received.
type VINError struct {
	VIN    string
	Reason string
}

func (e *VINError) Error() string { return fmt.Sprintf("obd: invalid VIN %q: %s", e.VIN, e.Reason) }

// vinValue is the ISO 3779 transliteration; 0 marks letters that never appear in a VIN.
func vinValue(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'A' && c <= 'Z':
		v := [26]int{1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5, 0, 7, 0, 9, 2, 3, 4, 5, 6, 7, 8, 9}[c-'A']
		return v, v != 0
	}
	return 0, false
}

var vinWeights = [17]int{8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2}

// VINCheckDigit computes the position-9 check digit of a structurally valid VIN ('0'-'9' or 'X').
func VINCheckDigit(vin string) (byte, error) {
	if err := vinShape(vin); err != nil {
		return 0, err
	}
	sum := 0
	for i := 0; i < 17; i++ {
		v, _ := vinValue(vin[i])
		sum += v * vinWeights[i]
	}
	r := sum % 11
	if r == 10 {
		return 'X', nil
	}
	return byte('0' + r), nil
}

func vinShape(vin string) error {
	if len(vin) != 17 {
		return &VINError{VIN: vin, Reason: fmt.Sprintf("want 17 characters, have %d", len(vin))}
	}
	for i := 0; i < len(vin); i++ {
		c := vin[i]
		switch {
		case c == 'I' || c == 'O' || c == 'Q':
			return &VINError{VIN: vin, Reason: fmt.Sprintf("letter %c at position %d is never used in a VIN (mistyped 1 or 0?)", c, i+1)}
		case c >= 'a' && c <= 'z':
			return &VINError{VIN: vin, Reason: fmt.Sprintf("lower-case %c at position %d; VINs are upper case", c, i+1)}
		}
		if _, ok := vinValue(c); !ok {
			return &VINError{VIN: vin, Reason: fmt.Sprintf("character %q at position %d is not allowed (0-9, A-Z without I, O, Q)", c, i+1)}
		}
	}
	return nil
}

// VINWellFormed reports whether vin has 17 characters of the VIN alphabet (0-9, A-Z without I,
// O and Q; ISO 3779, GB 16735). It says nothing of the check digit: European makers leave
// position 9 free, so a well-formed VIN whose digit does not compute can still be a real one.
func VINWellFormed(vin string) bool { return vinShape(vin) == nil }

// VINCheckDigitOK reports whether vin is well formed and carries the right position-9 check
// digit. North American and Chinese VINs (GB 16735) must; some European VINs do not.
func VINCheckDigitOK(vin string) bool {
	want, err := VINCheckDigit(vin)
	return err == nil && vin[8] == want
}

// CheckVIN validates a VIN: 17 characters from 0-9 and A-Z without I, O and Q (a *VINError
// otherwise). A wrong position-9 check digit (ISO 3779, GB 16735) is returned as a warning
// string, not an error: European VINs carry no check digit, and the I/M station compares the
// VIN against the registration, not against the digit.
func CheckVIN(vin string) (warning string, err error) {
	want, err := VINCheckDigit(vin)
	if err != nil {
		return "", err
	}
	if vin[8] != want {
		return fmt.Sprintf("VIN %s: check digit at position 9 is %c, computed %c (normal for some European VINs; compare with the VIN plate)", vin, vin[8], want), nil
	}
	return "", nil
}

// DecodeVIN extracts the VIN from one ECU's answer to 0902: CAN "49 02 01" + 17 bytes, or
// legacy messages "49 02 seq" + 4 bytes each (the first padded with 00), concatenated. Leading
// 00 padding and trailing pad bytes are dropped; the result is not validated (use CheckVIN).
func DecodeVIN(data []byte) (string, error) {
	items, _, err := infoPayload(0x02, data)
	if err != nil {
		return "", err
	}
	// Some pre-2008 CAN ECUs leave out the item count: 49 02 + 17 characters (inferred from
	// emulator captures). A count byte is 01; a VIN character never is.
	if len(data) == 19 && data[2] != 0x01 {
		items = data[2:]
	}
	b := items
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	b = trimPad(b)
	if len(b) == 0 {
		return "", decodeErr("VIN (0902)", data, "no VIN characters")
	}
	return strings.TrimSpace(string(b)), nil
}
