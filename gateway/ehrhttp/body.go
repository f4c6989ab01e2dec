package ehrhttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/obdgw/obdgw/gateway/wire"
)

// Body is the request body of lcipprocarfixrecordadd for rec (docs/ehr-record.md §3): the
// national form as the ehr/1 payload carries it — basicInfo, vehiclepartslist,
// repairprojectlist, every value a string, keys in lower case, both lists present — with
// token as its access_token, first, as the national clients send it.
func Body(rec wire.EHRRecord, token string) ([]byte, error) {
	if token == "" {
		return nil, errors.New("ehrhttp: no access token")
	}
	rec.Token = token
	return rec.Encode()
}

// RecordOf takes the national record out of a published ehr envelope (id stamped), after the
// wire checks of the envelope and the ehr/1 payload. Meta (revision, work order, VIN source)
// stays on our side: the national form has no place for it.
func RecordOf(envelope []byte) (wire.EHRRecord, wire.Envelope, error) {
	env, err := wire.ParseEnvelope(envelope)
	if err != nil {
		return wire.EHRRecord{}, env, err
	}
	if env.Kind != wire.KindEHR {
		return wire.EHRRecord{}, env, fmt.Errorf("ehrhttp: kind %q: the eHR platform takes only %s records", clip(env.Kind), wire.KindEHR)
	}
	if err := wire.CheckEHRPayload(env.Schema, env.Payload); err != nil {
		return wire.EHRRecord{}, env, err
	}
	var p wire.EHRPayload
	if err := json.Unmarshal(env.Payload, &p); err != nil {
		return wire.EHRRecord{}, env, fmt.Errorf("ehrhttp: ehr payload: %w", err)
	}
	return p.Record, env, nil
}

// Answer is the platform's reply to either call: {"code":"1","status":"新增成功"} for an add,
// with "access_token" for a login (docs/ehr-record.md §4.1).
type Answer struct {
	Code   string // "1" is success; kept as text even when the platform sends a number
	Status string // status text (some platforms call it message or msg)
	Token  string // access_token of a login
}

// ParseAnswer decodes an answer. The code may come as a string or a number; a reply with no
// code, or that is not a JSON object, is an error naming what was wrong (a proxy's HTML page,
// a wrong path). Status texts are cut to 200 characters for logs and reasons.
func ParseAnswer(b []byte) (Answer, error) {
	var raw struct {
		Code    json.RawMessage `json:"code"`
		Status  json.RawMessage `json:"status"`
		Message json.RawMessage `json:"message"`
		Msg     json.RawMessage `json:"msg"`
		Token   json.RawMessage `json:"access_token"`
	}
	t := bytes.TrimSpace(b)
	if len(t) == 0 {
		return Answer{}, errors.New("ehrhttp: empty answer")
	}
	if t[0] != '{' {
		return Answer{}, fmt.Errorf("ehrhttp: answer is not a JSON object: %q", clip(string(t)))
	}
	if err := json.Unmarshal(t, &raw); err != nil {
		return Answer{}, fmt.Errorf("ehrhttp: answer: %v", err)
	}
	code, err := scalar(raw.Code)
	if err != nil {
		return Answer{}, fmt.Errorf("ehrhttp: answer field code: %v", err)
	}
	if code == "" {
		return Answer{}, errors.New("ehrhttp: answer has no code")
	}
	var a Answer
	a.Code = code
	for _, s := range []json.RawMessage{raw.Status, raw.Message, raw.Msg} {
		if v, err := scalar(s); err == nil && v != "" {
			a.Status = v
			break
		}
	}
	if a.Status = strings.ToValidUTF8(a.Status, "�"); utf8.RuneCountInString(a.Status) > 200 {
		a.Status = string([]rune(a.Status)[:200]) + "…"
	}
	if a.Token, err = scalar(raw.Token); err != nil {
		return Answer{}, fmt.Errorf("ehrhttp: answer field access_token: %v", err)
	}
	return a, nil
}

// scalar reads a JSON string or number as text; absent or null is "".
func scalar(v json.RawMessage) (string, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return "", nil
	}
	switch v[0] {
	case '"':
		var s string
		err := json.Unmarshal(v, &s)
		return strings.TrimSpace(s), err
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return "", err
		}
		return n.String(), nil
	}
	return "", fmt.Errorf("want a string or a number, got %q", clip(string(v)))
}
