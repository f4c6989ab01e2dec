package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxEnvelopeBytes bounds what ParseEnvelope accepts; a maintenance record with its parts and
// labour lists is a few kilobytes.
const MaxEnvelopeBytes = 256 << 10

// Envelope is what every record travels in. Field order is fixed (id first) so that Frame can
// stamp the id into a stored envelope without re-encoding it.
type Envelope struct {
	// ID is "<gateway>-<incarnation>-<seq>": the incarnation of the gateway's state file and
	// the outbox sequence, stable across retries and never reused; the receiver
	// de-duplicates on it. Records from before incarnations carry "<gateway>-<seq>".
	ID string `json:"id"`
	// Kind is the record kind and the last topic level ("ehr", "im", …).
	Kind string `json:"kind"`
	// Schema names the payload's schema and its major version: "<kind>/<n>", e.g. "ehr/1".
	Schema string `json:"schema"`
	// Gateway is the gateway id (also the MQTT client id and a topic level).
	Gateway string `json:"gateway"`
	// CompanyCode is the shop's companycode on the provincial platform.
	CompanyCode string `json:"company_code"`
	// CreatedAt is when the gateway made the record (RFC 3339, UTC), not when it was sent.
	CreatedAt time.Time `json:"created_at"`
	// Payload is the record itself; its schema depends on Kind and Schema.
	Payload json.RawMessage `json:"payload"`
	// Warnings are checks the record passed only partly (e.g. a field the province marks
	// optional was missing). Optional.
	Warnings []string `json:"warnings,omitempty"`
}

// FieldError names the envelope or payload field that is wrong.
type FieldError struct {
	Field  string // JSON name, dotted for nested fields ("payload.vin")
	Reason string
}

func (e *FieldError) Error() string { return "wire: field " + e.Field + ": " + e.Reason }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, a...)}
}

// PayloadCheck validates one kind's payload for a schema. Files of this package that define a
// kind's payload (ehr.go, im.go) register one with RegisterPayload in init.
type PayloadCheck func(schema string, payload json.RawMessage) error

var (
	payloadMu     sync.RWMutex
	payloadChecks = map[string]PayloadCheck{}
)

// RegisterPayload installs the payload check of a kind. Kinds without one get only the
// envelope checks (the payload must still be a JSON object).
func RegisterPayload(kind string, check PayloadCheck) {
	payloadMu.Lock()
	defer payloadMu.Unlock()
	if _, dup := payloadChecks[kind]; dup {
		panic("wire: payload check registered twice for kind " + kind)
	}
	payloadChecks[kind] = check
}

// IncarnationLen is the length of a store incarnation: 8 characters of lowercase base32
// (a–z, 2–7), drawn at random when the gateway's state file is created.
const IncarnationLen = 8

// RecordID is a record id taken apart. Incarnation is "" for the old form "<gateway>-<seq>",
// which stores from before incarnations still carry and receipts for them still name.
type RecordID struct {
	Gateway     string
	Incarnation string
	Seq         uint64
}

// MakeID is the record id for a gateway, the incarnation of its state file and an outbox
// sequence: "<gateway>-<incarnation>-<seq>". An empty incarnation gives the old form
// "<gateway>-<seq>".
func MakeID(gateway, incarnation string, seq uint64) string {
	if incarnation == "" {
		return gateway + "-" + strconv.FormatUint(seq, 10)
	}
	return gateway + "-" + incarnation + "-" + strconv.FormatUint(seq, 10)
}

// IsIncarnation reports whether s has the form of a store incarnation.
func IsIncarnation(s string) bool {
	if len(s) != IncarnationLen {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// ParseID reads "<gateway>-<incarnation>-<seq>" or the old "<gateway>-<seq>". The gateway id
// may itself contain '-', so an old-form id whose gateway ends in "-<8 base32 letters>" reads
// as the new form; where the gateway is known, ParseIDOf decides without guessing.
func ParseID(id string) (RecordID, error) {
	gw, seq, err := splitSeq(id)
	if err != nil {
		return RecordID{}, err
	}
	if i := strings.LastIndexByte(gw, '-'); i > 0 && IsIncarnation(gw[i+1:]) {
		return RecordID{Gateway: gw[:i], Incarnation: gw[i+1:], Seq: seq}, nil
	}
	return RecordID{Gateway: gw, Seq: seq}, nil
}

// ParseIDOf reads the id of a record of gateway: "<gateway>-<incarnation>-<seq>" or
// "<gateway>-<seq>". An id of another gateway is an error naming both.
func ParseIDOf(id, gateway string) (RecordID, error) {
	gw, seq, err := splitSeq(id)
	if err != nil {
		return RecordID{}, err
	}
	if gw == gateway {
		return RecordID{Gateway: gw, Seq: seq}, nil
	}
	if inc, ok := strings.CutPrefix(gw, gateway+"-"); ok && IsIncarnation(inc) {
		return RecordID{Gateway: gateway, Incarnation: inc, Seq: seq}, nil
	}
	return RecordID{}, fieldErr("id", "%q does not start with the gateway id %q", clip(id), clip(gateway))
}

// SplitID splits a record id into the gateway id and the sequence (see ParseID); the
// incarnation, if any, is dropped.
func SplitID(id string) (gateway string, seq uint64, err error) {
	r, err := ParseID(id)
	return r.Gateway, r.Seq, err
}

// splitSeq splits "<prefix>-<seq>" at the last '-'.
func splitSeq(id string) (prefix string, seq uint64, err error) {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 || i == len(id)-1 {
		return "", 0, fieldErr("id", "%q: want <gateway>-<incarnation>-<sequence>", clip(id))
	}
	seq, err = strconv.ParseUint(id[i+1:], 10, 64)
	if err != nil || seq == 0 || id[i+1] == '0' {
		return "", 0, fieldErr("id", "%q: sequence after the last '-' must be a positive decimal number", clip(id))
	}
	return id[:i], seq, nil
}

// Marshal encodes an envelope. An empty ID is allowed here (the gateway stores envelopes before
// the outbox has numbered them; Frame stamps the id at send time) but everything else is
// validated.
func Marshal(e Envelope) ([]byte, error) {
	if err := e.validate(e.ID == ""); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	e.CreatedAt = e.CreatedAt.UTC()
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("wire: encode envelope: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

var unstamped = []byte(`{"id":""`)

// Frame returns the stored envelope with its id set to id: what the uplink publishes. It is
// the uplink's frame function (cloud.UplinkOptions.Frame). An envelope that already carries
// an id must carry this one.
func Frame(id string, stored []byte) ([]byte, error) {
	if _, err := ParseID(id); err != nil {
		return nil, err
	}
	if bytes.HasPrefix(stored, unstamped) {
		q, _ := json.Marshal(id)
		out := make([]byte, 0, len(stored)+len(q))
		out = append(out, `{"id":`...)
		out = append(out, q...)
		return append(out, stored[len(unstamped):]...), nil
	}
	e, err := ParseEnvelope(stored)
	if err != nil {
		return nil, err
	}
	if e.ID != id {
		return nil, fieldErr("id", "stored envelope has id %q, the outbox record is %q", clip(e.ID), id)
	}
	return stored, nil
}

// ParseEnvelope decodes and validates a published envelope (id required).
func ParseEnvelope(b []byte) (Envelope, error) {
	var e Envelope
	if len(b) > MaxEnvelopeBytes {
		return e, fmt.Errorf("wire: envelope is %d bytes, at most %d", len(b), MaxEnvelopeBytes)
	}
	if err := decodeStrict(b, &e, "created_at"); err != nil {
		return e, fmt.Errorf("wire: envelope: %w", err)
	}
	return e, e.validate(false)
}

// decodeStrict rejects unknown fields and trailing data, and names the field of a type error.
func decodeStrict(b []byte, v any, timeField string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fieldErr(te.Field, "want a JSON %s, got %s", te.Type, te.Value)
		}
		var pe *time.ParseError
		if errors.As(err, &pe) || strings.Contains(err.Error(), "Time.UnmarshalJSON") {
			// Only one time field per message type; the caller names it.
			return fieldErr(timeField, "want an RFC 3339 time like 2026-03-01T08:30:00Z: %v", err)
		}
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return fieldErr(strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`), "unknown field")
		}
		return fmt.Errorf("not valid JSON: %w", err)
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// Validate checks a complete envelope (id required), naming the field that is wrong.
func (e Envelope) Validate() error { return e.validate(false) }

func (e Envelope) validate(allowNoID bool) error {
	if !(allowNoID && e.ID == "") {
		var err error
		if e.Gateway != "" {
			_, err = ParseIDOf(e.ID, e.Gateway)
		} else {
			_, err = ParseID(e.ID)
		}
		if err != nil {
			return err
		}
	}
	if err := CheckKind(e.Kind); err != nil {
		return fieldErr("kind", "%s", strings.TrimPrefix(err.Error(), "kind: "))
	}
	if !strings.HasPrefix(e.Schema, e.Kind+"/") || len(e.Schema) == len(e.Kind)+1 || len(e.Schema) > 64 {
		return fieldErr("schema", "%q: want %s/<version>, e.g. %s/1", clip(e.Schema), e.Kind, e.Kind)
	}
	if err := checkLevel("gateway", e.Gateway, 64); err != nil {
		return fieldErr("gateway", "%s", strings.TrimPrefix(err.Error(), "gateway: "))
	}
	if err := checkCompanyCode(e.CompanyCode); err != nil {
		return fieldErr("company_code", "%s", strings.TrimPrefix(err.Error(), "company_code: "))
	}
	if e.CreatedAt.IsZero() {
		return fieldErr("created_at", "missing")
	}
	if y := e.CreatedAt.UTC().Year(); y < 2020 || y > 2200 {
		return fieldErr("created_at", "%s is not a plausible record time (was the clock synced?)", e.CreatedAt.Format(time.RFC3339))
	}
	p := bytes.TrimSpace(e.Payload)
	if len(p) == 0 || p[0] != '{' {
		return fieldErr("payload", "want a JSON object")
	}
	for i, w := range e.Warnings {
		if w == "" {
			return fieldErr(fmt.Sprintf("warnings[%d]", i), "empty")
		}
	}
	payloadMu.RLock()
	check := payloadChecks[e.Kind]
	payloadMu.RUnlock()
	if check != nil {
		if err := check(e.Schema, e.Payload); err != nil {
			var fe *FieldError
			if errors.As(err, &fe) && !strings.HasPrefix(fe.Field, "payload") {
				return &FieldError{Field: "payload." + fe.Field, Reason: fe.Reason}
			}
			return fmt.Errorf("wire: field payload: %w", err)
		}
	}
	return nil
}

// ValidateMessage is the receiver's check of one published message: the topic parses, the
// envelope is valid, and envelope and topic agree (gateway, company and kind). It returns what
// it could read even on error, so a receipt can still name the id.
func ValidateMessage(topic string, payload []byte) (Envelope, Topic, error) {
	t, kind, err := ParseTopic(topic)
	if err != nil {
		return Envelope{}, t, err
	}
	if IsReserved(kind) {
		return Envelope{}, t, fmt.Errorf("wire: topic %q: a %s topic carries no record", clip(topic), kind)
	}
	e, err := ParseEnvelope(payload)
	if err != nil {
		// Best effort: read the id alone so the rejection can be tied to the record.
		var idOnly struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(payload, &idOnly) == nil {
			if _, e2 := ParseIDOf(idOnly.ID, t.Gateway); e2 == nil {
				e.ID = idOnly.ID
			} else {
				e.ID = ""
			}
		}
		return e, t, err
	}
	switch {
	case e.Gateway != t.Gateway:
		return e, t, fieldErr("gateway", "%q but the topic's gateway level is %q", e.Gateway, t.Gateway)
	case e.CompanyCode != t.CompanyCode:
		return e, t, fieldErr("company_code", "%q but the topic's company level is %q", e.CompanyCode, t.CompanyCode)
	case e.Kind != kind:
		return e, t, fieldErr("kind", "%q but the topic's kind level is %q", e.Kind, kind)
	}
	return e, t, nil
}
