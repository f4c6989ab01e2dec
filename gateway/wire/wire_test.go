package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var top = Topic{Province: "33", CompanyCode: "330106000099901", Gateway: "gw-7"}

func sample() Envelope {
	return Envelope{
		Kind: "note", Schema: "note/1", Gateway: "gw-7", CompanyCode: "330106000099901",
		CreatedAt: time.Date(2026, 3, 1, 8, 30, 0, 0, time.FixedZone("CST", 8*3600)),
		Payload:   json.RawMessage(`{"vin":"LSVNV2182E2100001"}`),
	}
}

func TestTopicScheme(t *testing.T) {
	if got, want := top.Record("note"), "obdgw/v1/33/330106000099901/gw-7/note"; got != want {
		t.Errorf("Record = %q, want %q", got, want)
	}
	if got := top.Receipt(); got != "obdgw/v1/33/330106000099901/gw-7/receipt" {
		t.Errorf("Receipt = %q", got)
	}
	p, last, err := ParseTopic(top.Status())
	if err != nil || p != top || last != "status" {
		t.Errorf("ParseTopic(status) = %+v %q %v", p, last, err)
	}
	for topic, field := range map[string]string{
		"obdgw/v2/33/1/gw/ehr":               "does not start",
		"obdgw/v1/33/1/gw":                   "levels",
		"obdgw/v1/33/1/g+w/ehr":              "gateway",
		"obdgw/v1/33/1234567890123456/g/ehr": "company_code",
		"obdgw/v1//1/g/ehr":                  "province",
		"obdgw/v1/33/1/g/EHR":                "kind",
	} {
		if _, _, err := ParseTopic(topic); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("ParseTopic(%q) = %v, want an error naming %q", topic, err, field)
		}
	}
}

func TestFrameStampsIDWithoutReencoding(t *testing.T) {
	stored, err := Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(stored), `{"id":""`) {
		t.Fatalf("stored envelope does not start with an empty id: %s", stored)
	}
	framed, err := Frame("gw-7-42", stored)
	if err != nil {
		t.Fatal(err)
	}
	e, tp, err := ValidateMessage(top.Record("note"), framed)
	if err != nil {
		t.Fatalf("ValidateMessage(%s): %v", framed, err)
	}
	if e.ID != "gw-7-42" || tp != top || !e.CreatedAt.Equal(sample().CreatedAt) || e.CreatedAt.Location() != time.UTC {
		t.Errorf("round trip: %+v", e)
	}
	// Framing a framed envelope with the same id is a no-op; with another id it is an error.
	if again, err := Frame("gw-7-42", framed); err != nil || string(again) != string(framed) {
		t.Errorf("Frame(framed) = %s, %v", again, err)
	}
	if _, err := Frame("gw-7-43", framed); err == nil || !strings.Contains(err.Error(), "field id") {
		t.Errorf("Frame with another id: %v", err)
	}
	if _, err := Frame("nonsense", stored); err == nil {
		t.Error("Frame accepted an id without a sequence")
	}
}

func TestSplitID(t *testing.T) {
	gw, seq, err := SplitID("gw-7-42")
	if err != nil || gw != "gw-7" || seq != 42 {
		t.Errorf("SplitID = %q %d %v", gw, seq, err)
	}
	if MakeID("gw-7", "", 42) != "gw-7-42" {
		t.Error("MakeID disagrees with SplitID")
	}
	for _, bad := range []string{"", "gw", "gw-", "-5", "gw-0", "gw-007", "gw-x", "gw-99999999999999999999", "gw-abcd2345-0"} {
		if _, _, err := SplitID(bad); err == nil {
			t.Errorf("SplitID(%q) accepted", bad)
		}
	}
}

func TestRecordIDs(t *testing.T) {
	id := MakeID("gw-7", "k3v7q2ab", 42)
	if id != "gw-7-k3v7q2ab-42" {
		t.Fatalf("MakeID = %q", id)
	}
	cases := []struct {
		id   string
		want RecordID
	}{
		{id, RecordID{"gw-7", "k3v7q2ab", 42}},
		{"gw-7-42", RecordID{"gw-7", "", 42}},
		{"gw-K3V9Q2AB-1", RecordID{"gw-K3V9Q2AB", "", 1}}, // upper case is no incarnation
		{"gw-k3v7q2a8-1", RecordID{"gw-k3v7q2a8", "", 1}}, // 8 is not base32
		{"gw-k3v7q2a-1", RecordID{"gw-k3v7q2a", "", 1}},   // 7 letters
	}
	for _, c := range cases {
		if got, err := ParseID(c.id); err != nil || got != c.want {
			t.Errorf("ParseID(%q) = %+v, %v; want %+v", c.id, got, err, c.want)
		}
	}
	// A gateway id ending in eight base32 letters: only the gateway tells the old form apart.
	if got, err := ParseIDOf("bay-workshop-5", "bay-workshop"); err != nil || got != (RecordID{"bay-workshop", "", 5}) {
		t.Errorf("ParseIDOf(old form) = %+v, %v", got, err)
	}
	if got, err := ParseIDOf("bay-workshop-k3v7q2ab-5", "bay-workshop"); err != nil || got != (RecordID{"bay-workshop", "k3v7q2ab", 5}) {
		t.Errorf("ParseIDOf(new form) = %+v, %v", got, err)
	}
	for _, bad := range []string{"other-k3v7q2ab-5", "bay-workshop-k3v7q2-5", "bay-workshopx-5", "bay-workshop-0"} {
		if _, err := ParseIDOf(bad, "bay-workshop"); err == nil {
			t.Errorf("ParseIDOf(%q) accepted", bad)
		}
	}
	// Receipts name records of both forms.
	for _, rid := range []string{"gw-7-42", id} {
		b, err := MarshalReceipt(Receipt{ID: rid, Status: Accepted})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := ParseReceipt(b); err != nil || r.ID != rid {
			t.Errorf("receipt for %q: %+v %v", rid, r, err)
		}
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"gw-7-42", "gw-k3v7q2ab-1", "a-b-c-d", "-", "gw-0"} {
		f.Add(s, "gw")
	}
	f.Fuzz(func(t *testing.T, id, gateway string) {
		r, err := ParseID(id)
		if err == nil {
			if MakeID(r.Gateway, r.Incarnation, r.Seq) != id {
				t.Errorf("ParseID(%q) = %+v does not make the id again", id, r)
			}
		}
		if r, err := ParseIDOf(id, gateway); err == nil {
			if r.Gateway != gateway || MakeID(r.Gateway, r.Incarnation, r.Seq) != id {
				t.Errorf("ParseIDOf(%q, %q) = %+v", id, gateway, r)
			}
		}
	})
}

func TestValidateNamesTheField(t *testing.T) {
	good := sample()
	good.ID = "gw-7-1"
	b, _ := json.Marshal(good)
	cases := []struct {
		name, field string
		mutate      func(m map[string]any)
	}{
		{"no id", "id", func(m map[string]any) { delete(m, "id") }},
		{"id of another gateway", "id", func(m map[string]any) { m["id"] = "gw-8-1" }},
		{"bad kind", "kind", func(m map[string]any) { m["kind"] = "receipt" }},
		{"schema of another kind", "schema", func(m map[string]any) { m["schema"] = "im/1" }},
		{"company code too long", "company_code", func(m map[string]any) { m["company_code"] = "3301060000999011" }},
		{"created_at wrong type", "created_at", func(m map[string]any) { m["created_at"] = 5 }},
		{"created_at not RFC 3339", "created_at", func(m map[string]any) { m["created_at"] = "1/3/2026" }},
		{"created_at before sync", "created_at", func(m map[string]any) { m["created_at"] = "1970-01-01T00:00:05Z" }},
		{"payload array", "payload", func(m map[string]any) { m["payload"] = []int{1} }},
		{"unknown field", "extra", func(m map[string]any) { m["extra"] = 1 }},
		{"empty warning", "warnings[0]", func(m map[string]any) { m["warnings"] = []string{""} }},
	}
	for _, c := range cases {
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		c.mutate(m)
		mb, _ := json.Marshal(m)
		_, err := ParseEnvelope(mb)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: err = %v, want a FieldError on %q", c.name, err, c.field)
		}
	}
	if _, err := ParseEnvelope(b); err != nil {
		t.Errorf("good envelope: %v", err)
	}
	if _, err := ParseEnvelope(append(b, '{')); err == nil {
		t.Error("trailing data accepted")
	}
}

func TestValidateMessageTopicAgreement(t *testing.T) {
	e := sample()
	e.ID = "gw-7-3"
	b, _ := json.Marshal(e)
	other := Topic{Province: "33", CompanyCode: "330106000099902", Gateway: "gw-7"}
	got, _, err := ValidateMessage(other.Record("note"), b)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "company_code" {
		t.Errorf("company mismatch: %v", err)
	}
	if got.ID != "gw-7-3" {
		t.Errorf("id not returned with the error: %q", got.ID)
	}
	if _, _, err := ValidateMessage(top.Record("im"), b); err == nil || !strings.Contains(err.Error(), "kind") {
		t.Errorf("kind mismatch: %v", err)
	}
	// A broken envelope still yields its id so the rejection names the record.
	bad := []byte(`{"id":"gw-7-9","kind":"note","schema":"note/1","gateway":"gw-7","company_code":"330106000099901","created_at":"2026-03-01T00:00:00Z","payload":"x"}`)
	got, _, err = ValidateMessage(top.Record("note"), bad)
	if err == nil || got.ID != "gw-7-9" {
		t.Errorf("bad payload: id %q err %v", got.ID, err)
	}
}

func TestPayloadCheckIsApplied(t *testing.T) {
	RegisterPayload("testkind", func(schema string, p json.RawMessage) error {
		if !strings.Contains(string(p), "vin") {
			return &FieldError{Field: "vin", Reason: "missing"}
		}
		return nil
	})
	e := sample()
	e.ID, e.Kind, e.Schema = "gw-7-1", "testkind", "testkind/1"
	if err := e.Validate(); err != nil {
		t.Fatal(err)
	}
	e.Payload = json.RawMessage(`{}`)
	var fe *FieldError
	if err := e.Validate(); !errors.As(err, &fe) || fe.Field != "payload.vin" {
		t.Errorf("payload check: %v", err)
	}
}

func TestReceiptsAndStatus(t *testing.T) {
	for _, r := range []Receipt{
		{ID: "gw-7-1", Status: Accepted},
		{ID: "gw-7-2", Status: Duplicate},
		{ID: "gw-7-3", Status: Rejected, Reason: "wire: field payload: want a JSON object"},
		{Status: Rejected, Reason: "not JSON"},
	} {
		b, err := MarshalReceipt(r)
		if err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		got, err := ParseReceipt(b)
		if err != nil || got.ID != r.ID || got.Status != r.Status || got.Reason != r.Reason {
			t.Errorf("round trip %s: %+v %v", b, got, err)
		}
	}
	for b, field := range map[string]string{
		`{"id":"gw-7-1","status":"ok"}`:       "status",
		`{"id":"gw-7-1","status":"rejected"}`: "reason",
		`{"id":"x","status":"accepted"}`:      "id",
		`{"id":"gw-7-1","status":7}`:          "status",
	} {
		_, err := ParseReceipt([]byte(b))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("ParseReceipt(%s) = %v, want field %s", b, err, field)
		}
	}
	s := Status{State: Online, Gateway: "gw-7", Version: "v1.0.0", At: time.Now()}
	b, err := MarshalStatus(s)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseStatus(b); err != nil || got.State != Online || got.Gateway != "gw-7" {
		t.Errorf("status round trip: %+v %v", got, err)
	}
	if _, err := MarshalStatus(Status{State: "up", Gateway: "g", Version: "v", At: time.Now()}); err == nil {
		t.Error("bad state accepted")
	}
}

func FuzzParseEnvelope(f *testing.F) {
	e := sample()
	e.ID = "gw-7-1"
	b, _ := json.Marshal(e)
	f.Add(string(b))
	f.Add(`{"id":"","kind":"ehr"}`)
	f.Add(`[]`)
	f.Add(`{"id":"gw-7-1","created_at":"2026-13-01T00:00:00Z"}`)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEnvelope([]byte(s))
		if err != nil {
			return
		}
		// What parses must re-encode to something that parses the same.
		b, err := Marshal(e)
		if err != nil {
			t.Fatalf("valid envelope does not marshal: %v", err)
		}
		e2, err := ParseEnvelope(b)
		if err != nil || e2.ID != e.ID || !e2.CreatedAt.Equal(e.CreatedAt) {
			t.Fatalf("re-parse: %+v %v", e2, err)
		}
	})
}

func FuzzParseReceipt(f *testing.F) {
	f.Add(`{"id":"gw-7-1","status":"accepted"}`)
	f.Add(`{"id":"gw-7-1","status":"rejected","reason":"x"}`)
	f.Add(`{"status":"rejected"}`)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReceipt([]byte(s))
		if err != nil {
			return
		}
		if _, err := MarshalReceipt(r); err != nil {
			t.Fatalf("valid receipt does not marshal: %v", err)
		}
	})
}

func FuzzParseTopic(f *testing.F) {
	f.Add(top.Record("ehr"))
	f.Add(top.Receipt())
	f.Add("obdgw/v1/#")
	f.Fuzz(func(t *testing.T, s string) {
		tp, last, err := ParseTopic(s)
		if err != nil {
			return
		}
		var again string
		switch last {
		case StatusLevel:
			again = tp.Status()
		case ReceiptLevel:
			again = tp.Receipt()
		default:
			again = tp.Record(last)
		}
		if again != s {
			t.Fatalf("ParseTopic(%q) rebuilds as %q", s, again)
		}
	})
}

// A status from a gateway before incarnations still parses; the new fields round-trip; a
// malformed incarnation is named.
func TestStatusOldAndNewFormat(t *testing.T) {
	old := []byte(`{"state":"online","gateway":"gw-7","version":"1.2.0","at":"2026-03-01T08:00:00Z"}`)
	st, err := ParseStatus(old)
	if err != nil || st.Incarnation != "" || st.NewStore || st.Gateway != "gw-7" {
		t.Fatalf("old status: %+v, %v", st, err)
	}
	st.Incarnation, st.NewStore = "k3v7q2ab", true
	b, err := MarshalStatus(st)
	if err != nil || !strings.Contains(string(b), `"incarnation":"k3v7q2ab","new_store":true`) {
		t.Fatalf("marshal: %s %v", b, err)
	}
	if got, err := ParseStatus(b); err != nil || got.Incarnation != "k3v7q2ab" || !got.NewStore {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	st.NewStore = false
	if b, _ := MarshalStatus(st); strings.Contains(string(b), "new_store") {
		t.Errorf("new_store written when false: %s", b)
	}
	bad := []byte(`{"state":"online","gateway":"gw-7","version":"1","at":"2026-03-01T08:00:00Z","incarnation":"ABC"}`)
	var fe *FieldError
	if _, err := ParseStatus(bad); !errors.As(err, &fe) || fe.Field != "incarnation" {
		t.Errorf("bad incarnation: %v", err)
	}
}

func TestStatusUpdateField(t *testing.T) {
	// A status of a gateway from before updates: still valid, no update part.
	old := []byte(`{"state":"online","gateway":"gw-7","version":"v1.0.0","at":"2026-03-01T08:30:00Z"}`)
	s, err := ParseStatus(old)
	if err != nil || s.Update != nil || s.Version != "v1.0.0" {
		t.Fatalf("old status: %+v, %v", s, err)
	}
	b, err := MarshalStatus(s)
	if err != nil || strings.Contains(string(b), "update") {
		t.Fatalf("a status without updates gained a field: %s %v", b, err)
	}
	s.Update = &UpdateStatus{Bad: []string{"v3.0.0"}, LastFailure: "v3.0.0: did not become healthy in 3 starts"}
	b, err = MarshalStatus(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseStatus(b)
	if err != nil || got.Update == nil || got.Update.Bad[0] != "v3.0.0" || got.Update.LastFailure != s.Update.LastFailure {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	s.Update = &UpdateStatus{Bad: []string{""}}
	if _, err := MarshalStatus(s); err == nil || !strings.Contains(err.Error(), "update.bad") {
		t.Errorf("empty bad version: %v", err)
	}
	if _, err := ParseStatus([]byte(`{"state":"online","gateway":"gw-7","version":"v1","at":"2026-03-01T08:30:00Z","update":{"bad":"v3"}}`)); err == nil {
		t.Error("update.bad as a string accepted")
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte(`{"state":"online","gateway":"gw-7","version":"v1.0.0","at":"2026-03-01T08:30:00Z"}`))
	f.Add([]byte(`{"state":"offline","gateway":"gw-7","version":"v2.0.0","at":"2026-03-01T08:30:00Z","update":{"trial":"v2.1.0","bad":["v3.0.0"],"last_failure":"x"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStatus(b)
		if err != nil {
			return
		}
		out, err := MarshalStatus(s)
		if err != nil {
			t.Fatalf("a parsed status does not marshal: %v", err)
		}
		if _, err := ParseStatus(out); err != nil {
			t.Fatalf("a marshalled status does not parse: %v\n%s", err, out)
		}
	})
}
