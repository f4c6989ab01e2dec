package wire

import (
	"fmt"
	"strings"
)

// Root is the first two levels of every topic. The version level lets a future format run
// beside this one on the same broker (a receiver subscribes to one version).
const Root = "obdgw/v1"

// Reserved last topic levels: they are not record kinds.
const (
	StatusLevel  = "status"  // retained gateway status (and its last will)
	ReceiptLevel = "receipt" // receipts from the receiver to one gateway
)

// Topic names one gateway's place in the topic tree:
//
//	obdgw/v1/{province}/{company_code}/{gateway_id}/{kind|status|receipt}
//
// Province first so a provincial broker can bridge or ACL a whole province with one pattern;
// company then gateway so a shop's gateways sit together; the gateway id is the common name of
// the gateway's client certificate, so a Mosquitto ACL on it (`pattern write
// obdgw/v1/+/+/%u/ehr` with use_identity_as_username) pins each gateway to its own subtree
// (wire-format.md, "Identity and ACL").
type Topic struct {
	Province    string // e.g. "33" or "330000" (GB/T 2260 code, as the province configures it)
	CompanyCode string // the platform's companycode (15 digits in every known example)
	Gateway     string // gateway id, also the MQTT client id
}

// Record is the topic records of kind are published on.
func (t Topic) Record(kind string) string { return t.prefix() + "/" + kind }

// Status is the gateway's retained status topic (its last will goes there too).
func (t Topic) Status() string { return t.prefix() + "/" + StatusLevel }

// Receipt is the topic the receiver publishes this gateway's receipts on.
func (t Topic) Receipt() string { return t.prefix() + "/" + ReceiptLevel }

func (t Topic) prefix() string {
	return Root + "/" + t.Province + "/" + t.CompanyCode + "/" + t.Gateway
}

// Validate checks every level, naming the one that is wrong.
func (t Topic) Validate() error {
	if err := checkLevel("province", t.Province, 12); err != nil {
		return err
	}
	if err := checkCompanyCode(t.CompanyCode); err != nil {
		return err
	}
	return checkLevel("gateway", t.Gateway, 64)
}

// SubscribeAll is the filter a receiver uses for every record of this version; it also matches
// status and receipt topics, which a receiver skips (IsReserved).
const SubscribeAll = Root + "/#"

// ParseTopic splits a record, status or receipt topic. last is the kind (or "status",
// "receipt").
func ParseTopic(topic string) (t Topic, last string, err error) {
	if !strings.HasPrefix(topic, Root+"/") {
		return Topic{}, "", fmt.Errorf("wire: topic %q: does not start with %s/", clip(topic), Root)
	}
	parts := strings.Split(strings.TrimPrefix(topic, Root+"/"), "/")
	if len(parts) != 4 {
		return Topic{}, "", fmt.Errorf("wire: topic %q: want %s/{province}/{company_code}/{gateway}/{kind}, got %d levels after %s", clip(topic), Root, len(parts), Root)
	}
	t = Topic{Province: parts[0], CompanyCode: parts[1], Gateway: parts[2]}
	if err := t.Validate(); err != nil {
		return Topic{}, "", fmt.Errorf("wire: topic %q: %w", clip(topic), err)
	}
	last = parts[3]
	if last != StatusLevel && last != ReceiptLevel {
		if err := CheckKind(last); err != nil {
			return Topic{}, "", fmt.Errorf("wire: topic %q: %w", clip(topic), err)
		}
	}
	return t, last, nil
}

// IsReserved reports whether a last topic level is a status or receipt level, not a kind.
func IsReserved(last string) bool { return last == StatusLevel || last == ReceiptLevel }

// CheckKind: a kind is a short lowercase word ("ehr", "im", "telemetry"), never a reserved level.
func CheckKind(kind string) error {
	if kind == "" {
		return fmt.Errorf("kind: empty")
	}
	if len(kind) > 32 {
		return fmt.Errorf("kind: %d characters, at most 32", len(kind))
	}
	for _, c := range kind {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("kind: %q: only a-z, 0-9, '_' and '-'", clip(kind))
		}
	}
	if IsReserved(kind) {
		return fmt.Errorf("kind: %q is reserved for the %s topic", kind, kind)
	}
	return nil
}

// checkLevel accepts what is safe as one MQTT topic level and one ACL pattern substitution:
// letters, digits, '_', '-', '.' (no '/', '+', '#', no spaces, nothing empty).
func checkLevel(field, v string, max int) error {
	if v == "" {
		return fmt.Errorf("%s: empty", field)
	}
	if len(v) > max {
		return fmt.Errorf("%s: %d characters, at most %d", field, len(v), max)
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("%s: %q: only letters, digits, '_', '-' and '.' are allowed", field, clip(v))
		}
	}
	return nil
}

// checkCompanyCode: every known companycode is 15 digits in a varchar(15) column; "always 15
// digits" is inferred, not confirmed, so we accept 1–15 letters or digits.
func checkCompanyCode(v string) error {
	if v == "" {
		return fmt.Errorf("company_code: empty")
	}
	if len(v) > 15 {
		return fmt.Errorf("company_code: %d characters, at most 15", len(v))
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return fmt.Errorf("company_code: %q: only letters and digits", clip(v))
		}
	}
	return nil
}

// clip keeps error messages short when the input is garbage.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
