package ehr

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Chinese plate numbers (车牌号码), as the public rules of GA 36-2018 (机动车号牌) and GB 36220
// (新能源汽车号牌) describe them; docs/wire-format.md "Plate numbers" lists the forms with
// examples. A plate is stored and sent in its normalised form: upper case, without the
// display dot or spaces ("京A·d12345" → "京AD12345").

// PlateProvinces are the province abbreviations that start an ordinary plate.
const PlateProvinces = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"

// PlateForms is the list of expected forms an error message shows.
const PlateForms = "京A12345, 京AD12345 or 京A12345D (new energy), 京A1234挂, 京A1234学, 京A1234警, 沪A1234领, 粤Z1234港, 粤Z1234澳, 使014578 or 123456使"

// plateSeparators are what people and printed plates put between the authority letter and the
// serial: the display dot and its look-alikes.
const plateSeparators = "·.•・．"

// PlateError is a plate that fits no form; Plate is the normalised text.
type PlateError struct {
	Plate  string
	Reason string
}

func (e *PlateError) Error() string {
	return fmt.Sprintf("%q is not a Chinese plate number (%s): expected forms %s", clipText(e.Plate), e.Reason, PlateForms)
}

func clipText(s string) string {
	if utf8.RuneCountInString(s) > 20 {
		return string([]rune(s)[:20]) + "…"
	}
	return s
}

// NormPlate removes spaces and display dots, upper-cases the letters, and checks the result
// against the plate forms. It returns the normalised plate or a *PlateError.
func NormPlate(s string) (string, error) {
	var b strings.Builder
	for _, r := range s {
		switch {
		case unicode.IsSpace(r) || strings.ContainsRune(plateSeparators, r):
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		b.WriteRune(r)
	}
	p := b.String()
	if p == "" {
		return "", &PlateError{Plate: p, Reason: "empty"}
	}
	if reason := plateProblem([]rune(p)); reason != "" {
		return "", &PlateError{Plate: p, Reason: reason}
	}
	return p, nil
}

// serialChar: letters A–Z without I and O, and digits (I and O are never issued: they read as 1
// and 0).
func serialChar(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' && r != 'I' && r != 'O'
}

func digit(r rune) bool { return r >= '0' && r <= '9' }

func allOf(rs []rune, ok func(rune) bool) bool {
	for _, r := range rs {
		if !ok(r) {
			return false
		}
	}
	return true
}

// plateProblem returns "" when p fits a form, else a short reason.
func plateProblem(p []rune) string {
	// Embassy plates: 使 and six digits, before or after.
	if p[0] == '使' || p[len(p)-1] == '使' {
		rest := p[1:]
		if p[0] != '使' {
			rest = p[:len(p)-1]
		}
		if len(rest) == 6 && allOf(rest, digit) {
			return ""
		}
		return "an embassy plate is 使 with six digits"
	}
	if !strings.ContainsRune(PlateProvinces, p[0]) {
		return "it does not start with a province abbreviation"
	}
	if len(p) >= 2 && (p[1] == 'I' || p[1] == 'O') {
		return "the letters I and O are not used on plates"
	}
	if len(p) < 2 || !(p[1] >= 'A' && p[1] <= 'Z') {
		return "the province is followed by the issuing authority's letter"
	}
	serial := p[2:]
	for _, r := range serial {
		if r == 'I' || r == 'O' {
			return "the letters I and O are not used on plates"
		}
	}
	switch {
	case len(serial) < 5:
		return "the serial after the authority letter is too short"
	case len(serial) > 6:
		return "the serial after the authority letter is too long"
	}
	last := serial[len(serial)-1:]
	switch {
	case len(serial) == 5 && allOf(serial, serialChar):
		return ""
	case len(serial) == 6 && allOf(serial, serialChar):
		// New energy (GB 36220 plates, numbering rules of the 2016 public notice): a small car
		// has D or F first, then a letter or digit, then four digits; a large vehicle has five
		// digits and D or F last.
		if (serial[0] == 'D' || serial[0] == 'F') && allOf(serial[2:], digit) {
			return ""
		}
		if allOf(serial[:5], digit) && (serial[5] == 'D' || serial[5] == 'F') {
			return ""
		}
		return "a six-character serial is a new-energy plate: D or F first then a letter or digit and four digits (small), or five digits then D or F (large)"
	case len(serial) == 5 && strings.ContainsRune("挂学警领", last[0]) && allOf(serial[:4], serialChar):
		return ""
	case len(serial) == 5 && strings.ContainsRune("港澳", last[0]) && allOf(serial[:4], serialChar):
		if p[0] == '粤' && p[1] == 'Z' {
			return ""
		}
		return "Hong Kong and Macau crossing plates are 粤Z with four characters and 港 or 澳"
	}
	return "the serial has characters other than A–Z and digits"
}
