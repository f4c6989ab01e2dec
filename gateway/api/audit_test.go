package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/workorder"
)

// auditItems reads the whole audit log as the manager.
func (f *fixture) auditItems(query string) []map[string]any {
	f.t.Helper()
	m := f.mustDo(200, "GET", "/audit"+query, "")
	var out []map[string]any
	for _, it := range m["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

// TestAuditLogRecordsWhoDidWhat: an owner read, a settlement, a correction, a fault-code clear,
// a requeue and a backup each leave one entry naming the token, its role, the action and what
// it touched — and no entry holds the owner data, and none enters the outbox.
func TestAuditLogRecordsWhoDidWhat(t *testing.T) {
	f := newFixture(t, false)
	o := f.mustDo(201, "POST", "/workorders", strings.Replace(newOrderBody, `"emission_repair":true`, `"emission_repair":false,"vin":"`+carVIN+`"`, 1))
	id := o["id"].(string)
	if len(f.auditItems("")) != 0 {
		t.Fatal("opening an order without include=owner was audited")
	}
	f.mustDo(200, "POST", "/workorders/"+id+"/items", `{"name":"更换三元催化器","hours":2}`)
	if code, m := f.do("GET", "/workorders/"+id+"?include=owner", roleToken(RoleFrontDesk), ""); code != 200 {
		t.Fatalf("front desk owner read: %d %v", code, m)
	}
	if code, m := f.do("POST", "/workorders/"+id+"/settle", roleToken(RoleShopSoftware), `{"costlistcode":"HS-A-1","settle_date":"20240313"}`); code != 200 {
		t.Fatalf("settle: %d %v", code, m)
	}
	if code, m := f.do("POST", "/workorders/"+id+"/revisions", roleToken(RoleManager), `{"reason":"里程录错","mileage_km":86421}`); code != 200 {
		t.Fatalf("revise: %d %v", code, m)
	}
	if code, m := f.do("POST", "/bays/bay1/clear-dtcs", roleToken(RoleTechnician), `{"confirm":true,"vin":"`+carVIN+`","request_id":"clr-1"}`); code != 200 {
		t.Fatalf("clear: %d %v", code, m)
	}
	r, err := f.db.Append(context.Background(), "ehr", "obdgw/v1/33/330106000099901/gw-test/ehr", []byte(`{"id":"","kind":"ehr"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.DeadLetter(r.Seq, "platform: -1 参数无效"); err != nil {
		t.Fatal(err)
	}
	f.mustDo(200, "POST", fmt.Sprintf("/deadletters/%d/requeue", r.Seq), "")
	req, _ := http.NewRequest("POST", f.srv.URL+Prefix+"/backup", nil)
	req.Header.Set("Authorization", "Bearer "+roleToken(RoleManager))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("backup: %v %v", resp, err)
	}
	backup, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	// A settlement refused inside its transaction (no VIN) leaves no entry: the entry commits
	// with the settlement or not at all.
	novin := f.mustDo(201, "POST", "/workorders", strings.Replace(newOrderBody, `"emission_repair":true`, `"emission_repair":false`, 1))
	if code, _ := f.do("POST", "/workorders/"+novin["id"].(string)+"/settle", dmsToken, `{"costlistcode":"HS-A-2"}`); code != 422 {
		t.Fatalf("settling without a VIN = %d", code)
	}

	got := f.auditItems("")
	want := []struct{ token, role, action, order, bay, vin, detail string }{
		{"the-front_desk", "front_desk", "owner.read", id, "bay1", carVIN, ""},
		{"the-shop_software", "shop_software", "workorder.settle", id, "bay1", carVIN, "costlistcode HS-A-1 revision 1"},
		{"the-manager", "manager", "workorder.revise", id, "bay1", carVIN, "revision 2"},
		{"the-technician", "technician", "bay.clear_dtcs", "", "bay1", carVIN, "clr-1: cleared"},
		{"dms", "manager", "outbox.requeue", "", "", "", fmt.Sprintf("seq %d requeued", r.Seq)},
		{"the-manager", "manager", "store.backup", "", "", "", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("audit log has %d entries, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		e := got[i]
		str := func(k string) string { s, _ := e[k].(string); return s }
		if str("token") != w.token || str("role") != w.role || str("action") != w.action || str("order") != w.order ||
			str("bay") != w.bay || str("vin") != w.vin || !strings.Contains(str("detail"), w.detail) || str("at") == "" {
			t.Errorf("entry %d = %v, want %+v", i, e, w)
		}
	}
	// Never the owner data itself, and never published.
	all := fmt.Sprint(got)
	if strings.Contains(all, ownerName) || strings.Contains(all, ownerPhone) {
		t.Fatalf("the audit log holds owner data: %s", all)
	}
	recs, err := f.db.Peek(100)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Kind != "ehr" && r.Kind != "im" {
			t.Errorf("outbox holds a %q record", r.Kind)
		}
		if strings.Contains(string(r.Payload), "owner.read") || strings.Contains(string(r.Payload), "the-front_desk") {
			t.Errorf("an audit entry reached the outbox: %s", r.Payload)
		}
	}
	// The log lives in the buffer file: the backup holds it.
	if !strings.Contains(string(backup), "owner.read") {
		t.Error("the backup of the buffer file holds no audit entry")
	}

	// Paging: two by two, oldest first, next empty on the last page.
	var paged []string
	after := ""
	for range 10 {
		m := f.mustDo(200, "GET", "/audit?limit=2"+after, "")
		for _, it := range m["items"].([]any) {
			paged = append(paged, it.(map[string]any)["action"].(string))
		}
		if m["next"] == "" {
			break
		}
		after = "&after=" + m["next"].(string)
	}
	if len(paged) != len(want) || paged[0] != "owner.read" || paged[len(paged)-1] != "store.backup" {
		t.Fatalf("paged %v", paged)
	}
	// since: entries at or after it (the fixture's clock is 2024-03-13T02:00Z).
	if n := len(f.auditItems("?since=20240314")); n != 0 {
		t.Fatalf("since after every entry: %d entries", n)
	}
	if n := len(f.auditItems("?since=2024-03-13T02:00:00Z")); n != len(want) {
		t.Fatalf("since at the entries: %d entries", n)
	}
	for _, q := range []string{"?limit=0", "?limit=1001", "?since=yesterday", "?after=x"} {
		if code, m := f.do("GET", "/audit"+q, dmsToken, ""); code != 400 || m["field"] == "" {
			t.Errorf("GET /audit%s = %d %v", q, code, m)
		}
	}
	// Only a manager reads it.
	if code, m := f.do("GET", "/audit", roleToken(RoleFrontDesk), ""); code != 403 || !strings.Contains(fmt.Sprint(m["error"]), "manager") {
		t.Fatalf("front desk reads the audit log: %d %v", code, m)
	}
}

// TestSettlementWithoutItsAuditEntryIsNotStored: the entry is written in the settlement's
// transaction, so when it cannot be written the settlement is not stored either.
func TestSettlementWithoutItsAuditEntryIsNotStored(t *testing.T) {
	f := newFixture(t, false)
	o := f.mustDo(201, "POST", "/workorders", strings.Replace(newOrderBody, `"emission_repair":true`, `"emission_repair":false,"vin":"`+carVIN+`"`, 1))
	f.mustDo(200, "POST", "/workorders/"+o["id"].(string)+"/items", `{"name":"更换三元催化器","hours":2}`)
	// A damaged sequence makes the audit log refuse to write.
	if err := f.db.Update(func(tx *buffer.Tx) error { return tx.Put("audit.meta", "seq", []byte("x")) }); err != nil {
		t.Fatal(err)
	}
	if code, m := f.do("POST", "/workorders/"+o["id"].(string)+"/settle", dmsToken, `{"costlistcode":"HS-T-1"}`); code != 500 {
		t.Fatalf("settlement with an unwritable audit log = %d %v", code, m)
	}
	if got, _ := f.store.Get(o["id"].(string)); got.Status != workorder.Open {
		t.Fatalf("the order was settled without its audit entry: %s", got.Status)
	}
	if rs, _ := f.db.Peek(10); len(rs) != 0 {
		t.Fatalf("records queued without the audit entry: %d", len(rs))
	}
	if err := f.db.Update(func(tx *buffer.Tx) error { return tx.Put("audit.meta", "seq", []byte("0")) }); err != nil {
		t.Fatal(err)
	}
	f.mustDo(200, "POST", "/workorders/"+o["id"].(string)+"/settle", `{"costlistcode":"HS-T-1"}`)
	if items := f.auditItems(""); len(items) != 1 || items[0]["action"] != "workorder.settle" {
		t.Fatalf("audit after the settlement: %v", items)
	}
}
