package fleet

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/obdgw/obdgw/gateway/wire"
)

// Province of the simulated shops; every shop has its own company code and one gateway.
const province = "33"

// GatewayID is the id (MQTT client id and username) of simulated gateway i.
func GatewayID(i int) string { return fmt.Sprintf("fleet-%04d", i) }

// Topic is simulated gateway i's place in the topic tree.
func Topic(i int) wire.Topic {
	return wire.Topic{Province: province, CompanyCode: fmt.Sprintf("33010600%07d", i), Gateway: GatewayID(i)}
}

// orderEnvelope is the envelope of the n-th order gateway i settles: an ehr/1 record shaped
// like the demo's (docs/wire-format.md), the same size as a real one, passing the receiver's
// payload check.
func orderEnvelope(i, n int, at time.Time) ([]byte, error) {
	top := Topic(i)
	code := fmt.Sprintf("HS-%04d-%06d", i, n)
	date := at.Format("20060102")
	p := wire.EHRPayload{
		Record: wire.EHRRecord{
			Basic: wire.EHRBasicInfo{
				Plate: fmt.Sprintf("浙A%05d", (i*7919+n)%100000), Company: "杭州示例汽车维修有限公司",
				VIN: "LK6ADCE15PB405127", RepairDate: date, MileageKm: fmt.Sprint(20000 + (n*37)%150000), SettleDate: date,
				Fault:      "读码P0420 催化器系统效率低于阈值（第1排）、P0171 系统过稀（第1排）",
				CostListNo: code,
			},
			Parts:    []wire.EHRPart{{Name: "三元催化转化器总成", Code: "1205100-TW01", Quantity: "1"}},
			Projects: []wire.EHRProject{{Name: "排放故障诊断（OBD读码）", Hours: "1.0"}, {Name: "更换三元催化转化器", Hours: "2.5"}},
		},
		Meta: wire.EHRMeta{WorkOrder: fmt.Sprintf("WO%06d", n), CostListCode: code, Revision: 1, VINSource: "obd", CarVIN: "LK6ADCE15PB405127"},
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return wire.Marshal(wire.Envelope{Kind: KindEHR, Schema: wire.SchemaEHR, Gateway: top.Gateway, CompanyCode: top.CompanyCode, CreatedAt: at, Payload: b})
}

// scanEnvelope is the envelope of the n-th scan result gateway i sends as telemetry: the
// summary a bay keeps of a full scan (VIN, stored and pending codes, readiness).
func scanEnvelope(i, n int, at time.Time) ([]byte, error) {
	top := Topic(i)
	b, err := json.Marshal(map[string]any{
		"scan": n, "bay": 1 + n%3, "vin": "LK6ADCE15PB405127", "protocol": "ISO 15765-4 CAN (11 bit ID, 500 kbaud)",
		"stored": []string{"P0420", "P0171"}, "pending": []string{"P0300"}, "mil": true,
		"readiness": map[string]string{"catalyst": "incomplete", "evap": "complete", "o2_sensor": "complete", "egr": "not_supported"},
	})
	if err != nil {
		return nil, err
	}
	return wire.Marshal(wire.Envelope{Kind: KindScan, Schema: KindScan + "/1", Gateway: top.Gateway, CompanyCode: top.CompanyCode, CreatedAt: at, Payload: b})
}
