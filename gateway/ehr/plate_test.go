package ehr

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormPlate(t *testing.T) {
	ok := []struct{ in, want string }{
		{"浙A7K2M9", "浙A7K2M9"},
		{"京A12345", "京A12345"},
		{"京A·D12345", "京AD12345"},     // small new-energy car, display dot
		{"京a.d12345", "京AD12345"},     // dot and lower case
		{" 沪 B  F1234 5", "沪BF12345"}, // spaces anywhere
		{"粤BDA1234", "粤BDA1234"},      // small new energy: D, a letter, four digits
		{"粤B12345D", "粤B12345D"},      // large new energy: D last
		{"苏E12345F", "苏E12345F"},
		{"鲁B1234挂", "鲁B1234挂"},
		{"川A1234学", "川A1234学"},
		{"京A0001警", "京A0001警"},
		{"沪A1234领", "沪A1234领"},
		{"粤Z·1234港", "粤Z1234港"},
		{"粤Z1234澳", "粤Z1234澳"},
		{"使014578", "使014578"},
		{"123456使", "123456使"},
		{"琼A12345", "琼A12345"},
	}
	for _, c := range ok {
		got, err := NormPlate(c.in)
		if err != nil || got != c.want {
			t.Errorf("NormPlate(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, reason string }{
		{"hello", "province"},
		{"", "empty"},
		{"浙A1", "too short"},
		{"浙A123456", "new-energy"}, // six digits: neither D/F first nor last
		{"浙AD1234A", "new-energy"}, // small new energy ends with four digits
		{"浙A1D2345", "new-energy"},
		{"浙A12O45", "I and O"},
		{"浙AI2345", "I and O"},
		{"浙A1I345", "I and O"},
		{"浙112345", "authority"},
		{"港A12345", "province"},
		{"浙Z1234港", "粤Z"},
		{"使01457", "embassy"},
		{"使A14578", "embassy"},
		{"浙A1234567", "too long"},
		{"浙A1234-", "characters"},
		{"浙A１２３４５", "characters"}, // full-width digits
	}
	for _, c := range bad {
		_, err := NormPlate(c.in)
		var pe *PlateError
		if !errors.As(err, &pe) {
			t.Errorf("NormPlate(%q) = %v, want a *PlateError", c.in, err)
			continue
		}
		if !strings.Contains(err.Error(), c.reason) || !strings.Contains(err.Error(), "京A12345, 京AD12345") {
			t.Errorf("NormPlate(%q): %q should say %q and show the expected forms", c.in, err, c.reason)
		}
	}
}

// FuzzNormPlate: whatever people type, a plate is either refused with a reason or accepted in a
// normalised form that is a fixed point, fits the record's length and has no I, O, dot or space.
func FuzzNormPlate(f *testing.F) {
	for _, s := range []string{"京A·D12345", "hello", "使014578", "123456使", "粤Z1234港", "浙a 7k2m9", "", "·", "京", "京A"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := NormPlate(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if n := utf8.RuneCountInString(p); n < 7 || n > MaxPlate {
			t.Fatalf("accepted %q (%d characters) from %q", p, n, s)
		}
		if strings.ContainsAny(p, "IO ·.abcdefghijklmnopqrstuvwxyz") {
			t.Fatalf("accepted %q from %q", p, s)
		}
		if again, err := NormPlate(p); err != nil || again != p {
			t.Fatalf("not a fixed point: %q → %q, %v", p, again, err)
		}
	})
}
