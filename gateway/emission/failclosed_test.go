package emission

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/obd"
	"github.com/obdgw/obdgw/obd/obdtest"
)

// scanCar scans a one-ECU car with the MIL on, P0420 and P0171 stored and catalyst and evap not
// ready. With fail set, the adapter answers everything after the bitmaps and the VIN with it,
// as an adapter that lost the bus after a good connect does (CAN ERROR, "?", garbage).
func scanCar(t *testing.T, fail error) *obd.Report {
	t.Helper()
	E, R := obdtest.Ex, obdtest.Resp
	script := []obdtest.Exchange{
		E("0100", R("7E8", "41 00 80 00 00 00")), // 01 only
		E("0900", R("7E8", "49 00 40 00 00 00")), // 02 only
		E("0902", R("7E8", "49 02 01"+hex.EncodeToString([]byte(vin)))),
	}
	after := []obdtest.Exchange{
		E("0101", R("7E8", "41 01 82 07 65 05")),
		E("03", R("7E8", "43 02 04 20 01 71")),
		E("07", R("7E8", "47 00")),
		E("0A", R("7E8", "4A 00")),
		obdtest.ExErr("020000", obd.ErrNoData),
	}
	for _, ex := range after {
		if fail != nil {
			ex = obdtest.ExErr(ex.Req, fail)
		}
		script = append(script, ex)
	}
	// In no bitmap, asked all the same (CALIDs, CVNs, distance since clear, odometer).
	for _, r := range []string{"0904", "0906", "0131", "01A6"} {
		script = append(script, obdtest.ExErr(r, obd.ErrNoData))
	}
	pb := obdtest.New(t, script...)
	rep, err := obd.Scan(context.Background(), obdtest.Profiled{Playback: pb, P: obd.Profile{ProtocolNum: "6"}}, obd.ScanOptions{Lang: "en"})
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	return rep
}

// Issue 18: a scan whose readiness and DTC reads failed came out as "communication works, MIL
// off, no codes, all monitors complete" and passed. It cannot be judged: not pass, not a fail
// of the car.
func TestCheckOBDCannotJudgeWhatWasNotRead(t *testing.T) {
	for _, fail := range []error{
		errors.New("elm327: 0101: can error: CAN trouble"),
		errors.New("elm327: 0101: command not understood"),
		errors.New(`elm327: 0101: unexpected reply "#%&!x"`),
	} {
		t.Run(fail.Error(), func(t *testing.T) {
			c := CheckOBD(OBDInputFromScan(scanCar(t, fail), vin))
			if c.Verdict != CannotJudge || c.Pass {
				t.Errorf("verdict %q pass %v, want %q and not pass", c.Verdict, c.Pass, CannotJudge)
			}
			st := statuses(c)
			if st["communication"] != "fail" {
				t.Errorf("communication %q, want fail (the reads failed)", st["communication"])
			}
			for _, r := range []string{"mil", "dtc", "readiness"} {
				if st[r] != "not_checked" {
					t.Errorf("%s %q, want not_checked: %+v", r, st[r], c.Lines)
				}
			}
			for _, l := range c.Lines {
				if l.Rule == "communication" && (!strings.Contains(l.EN, "cannot judge") || !strings.Contains(l.EN, fail.Error()) || !strings.Contains(l.ZH, "无法判定")) {
					t.Errorf("communication line does not say it cannot judge and why: %+v", l)
				}
				if l.Status == "pass" {
					t.Errorf("line %s passes on values that were not read: %+v", l.Rule, l)
				}
			}
			if c.A7.CommunicationNormal != 0 || c.A7.FailureReason != "3" {
				t.Errorf("A7 %+v, want communication 0, reason 3", c.A7)
			}
			for _, item := range []string{obd.ItemMIL, obd.ItemReadiness, obd.ItemDTCsStored} {
				if c.Read(item) {
					t.Errorf("Read(%s) = true for what failed", item)
				}
			}
			// JSON: the check's DTCs and monitors are unknown, not empty lists.
			var doc map[string]json.RawMessage
			b, _ := json.Marshal(c)
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			if string(doc["dtcs"]) != "null" || string(doc["incomplete"]) != "null" || string(doc["verdict"]) != `"cannot_judge"` || len(doc["unread"]) < 3 {
				t.Errorf("JSON %s", b)
			}
		})
	}
}

// Nothing that was complete becomes incomplete: the good scan of the same car fails on the MIL
// and both codes, with communication normal.
func TestCheckOBDCompleteScanStillFails(t *testing.T) {
	c := CheckOBD(OBDInputFromScan(scanCar(t, nil), vin))
	st := statuses(c)
	if c.Verdict != Fail || c.Pass || c.OResult != OResultFail || st["communication"] != "pass" || st["mil"] != "fail" || st["dtc"] != "fail" || st["readiness"] != "pass" {
		t.Errorf("verdict %q lines %+v", c.Verdict, c.Lines)
	}
	if strings.Join(c.DTCs, " ") != "P0420 P0171" || c.A7.FaultLight != 1 || c.A7.CommunicationNormal != 1 || len(c.Unread) != 0 {
		t.Errorf("check %+v", c)
	}
	for _, item := range []string{obd.ItemMIL, obd.ItemReadiness, obd.ItemDTCsStored} {
		if !c.Read(item) {
			t.Errorf("Read(%s) = false on a complete scan", item)
		}
	}
}
