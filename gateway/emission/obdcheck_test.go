package emission

import (
	"strings"
	"testing"

	"github.com/obdgw/obdgw/obd"
)

const vin = "LSVAU2180N2183294"

func goodOBD() OBDInput {
	return OBDInput{
		CommunicationOK: true, VINRead: vin, VINExpected: vin,
		Calibrations: []Calibration{{ECU: "7E8", CALID: "10190196", CVN: "000087DE"}},
	}
}

func statuses(c OBDCheck) map[string]string {
	m := map[string]string{}
	for _, l := range c.Lines {
		m[l.Rule] = l.Status
		if l.ZH == "" || l.EN == "" {
			panic("line without text: " + l.Rule)
		}
	}
	return m
}

func TestCheckOBDRules(t *testing.T) {
	for _, c := range []struct {
		name    string
		edit    func(*OBDInput)
		pass    bool
		oresult int
		want    map[string]string // rule → status
		text    string            // appears in some line's English text
	}{
		{"clean", func(*OBDInput) {}, true, 1,
			map[string]string{"communication": "pass", "mil": "pass", "dtc": "pass", "readiness": "pass", "vin": "pass", "calid_cvn": "pass"}, "all readiness monitors complete"},
		{"MIL on", func(in *OBDInput) { in.MIL = true }, false, 0, map[string]string{"mil": "fail"}, "MIL) is on"},
		{"DTC stored", func(in *OBDInput) { in.DTCs = []string{"p0420", "P0420", " P0171"} }, false, 0, map[string]string{"dtc": "fail", "mil": "pass"}, "2 trouble code(s) stored: P0420, P0171"},
		{"two incomplete still pass", func(in *OBDInput) { in.Incomplete = []string{obd.MonCatalyst, obd.MonOxygenSensor} }, true, 1,
			map[string]string{"readiness": "pass"}, "2 counted readiness monitor(s) incomplete"},
		{"three incomplete fail", func(in *OBDInput) {
			in.Incomplete = []string{obd.MonCatalyst, obd.MonOxygenHeater, obd.MonOxygenSensor}
		}, false, 0, map[string]string{"readiness": "fail"}, "3 counted readiness monitors incomplete, more than 2"},
		// Evaporative system, secondary air and misfire are not counted by inspection stations:
		// shown, never failed.
		{"uncounted incomplete shown, pass", func(in *OBDInput) {
			spark := false
			in.Compression = &spark
			in.Incomplete = []string{obd.MonCatalyst, obd.MonEvap, obd.MonSecondaryAir, obd.MonHeatedCatalyst}
		}, true, 1, map[string]string{"readiness": "pass"}, "not counted by inspection stations: Evaporative system, Secondary air system, Heated catalyst"},
		{"diesel counts SCR, DOC and DPF", func(in *OBDInput) {
			diesel := true
			in.Compression = &diesel
			in.Incomplete = []string{obd.MonNOxSCR, obd.MonNMHCCatalyst, obd.MonPMFilter, obd.MonExhaustGasSensor}
		}, false, 0, map[string]string{"readiness": "fail"}, "3 counted readiness monitors incomplete, more than 2: NOx / SCR aftertreatment, NMHC catalyst, PM filter (DPF) (drive the car until they complete); incomplete but not counted by inspection stations: Exhaust gas sensor"},
		{"configured list", func(in *OBDInput) {
			in.Rules = OBDRules{ReadinessSpark: []string{obd.MonCatalyst}, ReadinessCompression: []string{obd.MonPMFilter}, MaxIncomplete: 0}
			in.Incomplete = []string{obd.MonOxygenSensor, obd.MonPMFilter}
		}, false, 0, map[string]string{"readiness": "fail"}, "1 counted readiness monitors incomplete, more than 0: PM filter (DPF)"},
		{"VIN mismatch", func(in *OBDInput) { in.VINRead = "LSVAU2180N2183295" }, false, 0, map[string]string{"vin": "fail"}, "VIN mismatch"},
		{"VIN case and spaces", func(in *OBDInput) { in.VINRead = " lsvau2180n2183294 " }, true, 1, map[string]string{"vin": "pass"}, "matches"},
		{"VIN not readable", func(in *OBDInput) { in.VINRead = "" }, true, 1, map[string]string{"vin": "warning"}, "check it by eye"},
		{"no VIN on order", func(in *OBDInput) { in.VINExpected = "" }, true, 1, map[string]string{"vin": "warning"}, "no VIN"},
		{"CALID and CVN empty", func(in *OBDInput) { in.Calibrations = []Calibration{{ECU: "7E8"}} }, true, 1, map[string]string{"calid_cvn": "warning"}, "both empty"},
		{"CVN only", func(in *OBDInput) { in.Calibrations = []Calibration{{ECU: "7E8", CVN: "000087DE"}} }, true, 1, map[string]string{"calid_cvn": "pass"}, "CALID/CVN read"},
		{"no communication", func(in *OBDInput) { in.CommunicationOK, in.FailureReason = false, 2 }, false, 0,
			map[string]string{"communication": "fail", "mil": "not_checked", "dtc": "not_checked", "vin": "not_checked"}, "socket was not found"},
		{"no OBD", func(in *OBDInput) { in.NoOBD = true }, true, 3, map[string]string{"communication": "not_checked"}, "has no OBD"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := goodOBD()
			c.edit(&in)
			got := CheckOBD(in)
			if got.Pass != c.pass || got.OResult != c.oresult || got.A7.Result != c.oresult {
				t.Errorf("pass %v O_RESULT %d A7.RESULT %d, want %v %d", got.Pass, got.OResult, got.A7.Result, c.pass, c.oresult)
			}
			st := statuses(got)
			for rule, want := range c.want {
				if st[rule] != want {
					t.Errorf("%s: %q, want %q (lines %+v)", rule, st[rule], want, got.Lines)
				}
			}
			found := false
			for _, l := range got.Lines {
				found = found || strings.Contains(l.EN, c.text)
			}
			if !found {
				t.Errorf("no line says %q: %+v", c.text, got.Lines)
			}
			verdict := map[bool]Verdict{true: Pass, false: Fail}[c.pass]
			if c.name == "no communication" {
				verdict = CannotJudge // neither a pass nor a fail of the car
			}
			if got.Verdict != verdict {
				t.Errorf("verdict %q, want %q", got.Verdict, verdict)
			}
			if !c.pass && len(got.Failures()) == 0 {
				t.Error("failed check without failure lines")
			}
		})
	}
}

func TestCheckOBDA7Fields(t *testing.T) {
	in := goodOBD()
	in.MIL = true
	in.DTCs = []string{"P0420", "P0420", "P0300"}
	in.Incomplete = []string{"catalyst"}
	in.ModelRequirements = 29
	in.OdometerKm = 123456.4
	a := CheckOBD(in).A7
	want := OBDA7{CommunicationNormal: 1, FaultCodeNum: 2, FaultLight: 1, ModelRequirements: "29", ReadyStateUndone: 1,
		Result: 0, VIN: vin, TotalOdometer: "123456"}
	if a != want {
		t.Errorf("got %+v\nwant %+v", a, want)
	}
	in = goodOBD()
	in.CommunicationOK, in.FailureReason = false, 9
	a = CheckOBD(in).A7
	if a.CommunicationNormal != 0 || a.FailureReason != "3" {
		t.Errorf("unknown failure reason: %+v, want communication 0 reason 3", a)
	}
}

// The decoded examples of elm327-obd.md §12 through the scan report shape.
func TestOBDInputFromScan(t *testing.T) {
	ms, err := obd.DecodeMonitorStatus([]byte{0x82, 0x07, 0x65, 0x05})
	if err != nil {
		t.Fatal(err)
	}
	ms.ECU = "7E8"
	agg := obd.AggregateReadiness([]obd.MonitorStatus{ms})
	rep := &obd.Report{
		VIN: vin, MIL: &ms.MIL,
		DTCs:      obd.DTCLists{Stored: []obd.DTC{{Code: "P0420", ECU: "7E8"}, {Code: "P0171", ECU: "7E8"}}, Pending: []obd.DTC{{Code: "P0300"}}},
		Readiness: &agg,
		ECUs:      []obd.ECUReport{{ID: "7E8", CALIDs: []string{"10190196", "JMB*36761500"}, CVNs: []string{"000087DE"}}},
	}
	in := OBDInputFromScan(rep, vin)
	if !in.CommunicationOK || !in.MIL || len(in.DTCs) != 2 || len(in.Incomplete) != 2 || len(in.Calibrations) != 2 || in.Calibrations[1].CVN != "" {
		t.Fatalf("got %+v", in)
	}
	c := CheckOBD(in)
	st := statuses(c)
	// Two incomplete monitors pass the readiness rule; the DTCs and the MIL fail the check.
	if c.Pass || st["readiness"] != "pass" || st["dtc"] != "fail" || st["mil"] != "fail" {
		t.Errorf("check %+v", c.Lines)
	}
	if got := OBDInputFromScan(nil, vin); got.CommunicationOK || got.FailureReason != 3 {
		t.Errorf("nil report: %+v", got)
	}
}

func TestClosedLoopAndEngineTypeFromScan(t *testing.T) {
	ms, err := obd.DecodeMonitorStatus([]byte{0x81, 0x0F, 0xEB, 0x40}) // diesel.yaml: compression
	if err != nil {
		t.Fatal(err)
	}
	rep := &obd.Report{ECUs: []obd.ECUReport{{ID: "18DAF110", Readiness: &ms}},
		Live: []obd.Value{{ECU: "7E8", PID: 0x04, Value: 2}, {ECU: "7E8", PID: 0x03, Value: 0x01, Text: "open loop (insufficient temperature)"}}}
	if c := CompressionOf(rep); c == nil || !*c {
		t.Errorf("compression %v, want true", c)
	}
	if ClosedLoopSeen(rep) {
		t.Error("open loop taken as closed loop")
	}
	rep.Live = append(rep.Live, obd.Value{ECU: "7E8", PID: 0x03, Value: 0x02, Text: "closed loop"})
	if !ClosedLoopSeen(rep) {
		t.Error("closed loop not seen")
	}
	if CompressionOf(&obd.Report{}) != nil || ClosedLoopSeen(nil) {
		t.Error("a scan without readiness says nothing of the engine type")
	}
}
