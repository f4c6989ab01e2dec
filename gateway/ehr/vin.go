package ehr

import "strings"

// vinChars is the VIN alphabet: digits and capitals without I, O and Q (ISO 3779, GB 16735).
const vinChars = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"

// ValidVINSyntax reports whether vin has 17 characters of the VIN alphabet.
func ValidVINSyntax(vin string) bool {
	if len(vin) != 17 {
		return false
	}
	for i := 0; i < len(vin); i++ {
		if !strings.ContainsRune(vinChars, rune(vin[i])) {
			return false
		}
	}
	return true
}

var vinWeights = [17]int{8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2}

func vinValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'H':
		return int(c-'A') + 1
	case c >= 'J' && c <= 'N':
		return int(c-'J') + 1
	case c == 'P':
		return 7
	case c == 'R':
		return 9
	case c >= 'S' && c <= 'Z':
		return int(c-'S') + 2
	}
	return -1
}

// VINCheckDigit returns the position-9 check digit vin should carry ('0'…'9' or 'X'), or 0 when
// vin is not a syntactically valid VIN.
func VINCheckDigit(vin string) byte {
	if !ValidVINSyntax(vin) {
		return 0
	}
	sum := 0
	for i := 0; i < 17; i++ {
		sum += vinValue(vin[i]) * vinWeights[i]
	}
	r := sum % 11
	if r == 10 {
		return 'X'
	}
	return byte('0' + r)
}

// VINCheckDigitOK reports whether a syntactically valid VIN carries the right check digit.
// Some markets do not use the check digit, so a wrong one is a warning, never a rejection.
func VINCheckDigitOK(vin string) bool {
	d := VINCheckDigit(vin)
	return d != 0 && vin[8] == d
}
