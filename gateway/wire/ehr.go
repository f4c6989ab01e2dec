package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Kind and schema of the JT/T 1132 maintenance record (汽车维修电子健康档案) in the outbox.
// Schema ehr/1 is an EHRPayload: the national form under "record", our metadata under "meta".
const (
	KindEHR   = "ehr"
	SchemaEHR = "ehr/1"
)

// EHRPayload is the envelope payload of kind ehr. The last hop forwards Record unchanged (adding
// its access_token) to the platform's lcipprocarfixrecordadd call; Meta stays on our side.
type EHRPayload struct {
	Record EHRRecord `json:"record"`
	Meta   EHRMeta   `json:"meta"`
}

// EHRRecord is the national-style maintenance record as it goes to the platform's
// lcipprocarfixrecordadd call (docs/ehr-record.md §3). Field order follows the
// national form and every value is a string on the wire, numbers and dates included.
//
// Token is filled by the last hop (the HTTPS adapter that holds the platform login), never by
// the gateway: secrets do not belong in the outbox or on the broker, so it is omitted when empty.
type EHRRecord struct {
	Token    string       `json:"access_token,omitempty"`
	Basic    EHRBasicInfo `json:"basicInfo"`
	Parts    []EHRPart    `json:"vehiclepartslist"`  // never nil: encoded [] when empty
	Projects []EHRProject `json:"repairprojectlist"` // never nil
}

// EHRBasicInfo is the header of the record: eight of the thirteen national data elements.
type EHRBasicInfo struct {
	Plate      string `json:"vehicleplatenumber"` // 车牌号码, ≤ 8
	Company    string `json:"companyname"`        // 维修企业名称, ≤ 100
	VIN        string `json:"vin"`                // 车辆识别代码, 17
	RepairDate string `json:"repairdate"`         // 送修日期 yyyyMMdd
	MileageKm  string `json:"repairmileage"`      // 送修里程, integer km as text
	SettleDate string `json:"settledate"`         // 结算日期 yyyyMMdd
	Fault      string `json:"faultdescription"`   // 故障描述, ≤ 200
	CostListNo string `json:"costlistcode"`       // 结算清单编号, ≤ 50, unique per company
}

// EHRPart is one line of 维修配件列表.
type EHRPart struct {
	Name     string `json:"partsname"`     // 配件名称, ≤ 50
	Code     string `json:"partscode"`     // 配件编码, ≤ 50
	Quantity string `json:"partsquantity"` // 配件数量, decimal text ≤ 2 places
}

// EHRProject is one line of 维修项目列表.
type EHRProject struct {
	Name  string `json:"repairproject"` // 维修项目, ≤ 200
	Hours string `json:"workinghours"`  // 维修工时, decimal text ≤ 1 place
}

// MarshalJSON encodes the record with both lists present ([] rather than null). Note that
// encoding/json re-escapes <, > and & in the result of a MarshalJSON method; use Encode for the
// exact bytes the national clients send.
func (r EHRRecord) MarshalJSON() ([]byte, error) { return r.Encode() }

// Encode returns the record as compact JSON without HTML escaping, lists never null.
func (r EHRRecord) Encode() ([]byte, error) {
	type plain EHRRecord // drops this method, so the encoder below does not recurse
	p := plain(r)
	if p.Parts == nil {
		p.Parts = []EHRPart{}
	}
	if p.Projects == nil {
		p.Projects = []EHRProject{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// EHRMeta travels next to the record (in the envelope, never inside the national form) so the
// receiver can tell a correction from a first submission and link an emission repair to its
// failed inspection. None of it is personal data.
type EHRMeta struct {
	WorkOrder    string `json:"workorder"`         // the gateway's work-order id
	CostListCode string `json:"costlistcode"`      // idempotency key with the company code
	Revision     int    `json:"revision"`          // 1 for the first submission, +1 per correction
	VINSource    string `json:"vin_source"`        // "obd", "typed" or "typed_confirmed"
	TestNo       string `json:"test_no,omitempty"` // 检验报告编号 of the failed I-station test
	Reason       string `json:"reason,omitempty"`  // why a revision was made
	// CarVIN is the VIN the car itself reported (OBD Mode 09), when a scan read one: equal to
	// record.basicInfo.vin unless vin_source is typed_confirmed.
	CarVIN string `json:"car_vin,omitempty"`
	// VINReason is why the typed VIN was kept against the car's (vin_source typed_confirmed).
	VINReason string `json:"vin_reason,omitempty"`
	// VINCheckDigitReason is why a Chinese VIN with a wrong check digit was accepted.
	VINCheckDigitReason string `json:"vin_check_digit_reason,omitempty"`
}

// The receiver checks every ehr payload's structure.
func init() { RegisterPayload(KindEHR, CheckEHRPayload) }

// CheckEHRPayload is the structural check of an ehr payload a receiver can run: schema ehr/1,
// strict decoding (every value a string, no unknown field), both lists present, revision ≥ 1 and
// the metadata's costlistcode equal to the record's. The business rules (lengths, dates, VIN)
// are the gateway's validator's (gateway/ehr), applied before the record enters the outbox.
//
// It has the PayloadCheck signature so it can be installed with RegisterPayload(KindEHR, …).
func CheckEHRPayload(schema string, payload json.RawMessage) error {
	if schema != SchemaEHR {
		return fieldErr("schema", "%q: this gateway writes %s", clip(schema), SchemaEHR)
	}
	var p EHRPayload
	if err := decodeStrict(payload, &p, "payload"); err != nil {
		return err
	}
	var lists struct {
		Record struct {
			Parts    json.RawMessage `json:"vehiclepartslist"`
			Projects json.RawMessage `json:"repairprojectlist"`
		} `json:"record"`
	}
	if err := json.Unmarshal(payload, &lists); err != nil {
		return fmt.Errorf("wire: ehr payload: %w", err)
	}
	for name, raw := range map[string]json.RawMessage{"record.vehiclepartslist": lists.Record.Parts, "record.repairprojectlist": lists.Record.Projects} {
		if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '[' {
			return fieldErr(name, "want a list ([] when empty)")
		}
	}
	if p.Record.Token != "" {
		return fieldErr("record.access_token", "must not be sent by the gateway")
	}
	if p.Meta.Revision < 1 {
		return fieldErr("meta.revision", "%d: want 1 or more", p.Meta.Revision)
	}
	if p.Meta.CostListCode != p.Record.Basic.CostListNo {
		return fieldErr("meta.costlistcode", "%q differs from record.basicInfo.costlistcode %q", clip(p.Meta.CostListCode), clip(p.Record.Basic.CostListNo))
	}
	return nil
}
