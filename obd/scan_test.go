package obd_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/obd"
	"github.com/obdgw/obdgw/obd/obdtest"
)

// fakeClock advances only when the car answers, so step timings follow the request counts.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

const perQuery = 20 * time.Millisecond

// timed is the adapter under the scan: the playback, its profile, and a clock that moves
// perQuery on every request.
type timed struct {
	obdtest.Profiled
	clock *fakeClock
}

func (a timed) Query(ctx context.Context, req obd.Request) ([]obd.Response, error) {
	a.clock.t = a.clock.t.Add(perQuery)
	return a.Profiled.Query(ctx, req)
}

var t0 = time.Date(2026, 11, 22, 8, 30, 0, 0, time.UTC)

// noData scripts NO DATA for each request: the PIDs a scan asks although no bitmap names
// them (needed01, needed09, or every Mode 09 PID when there is no 0900 bitmap).
func noData(reqs ...string) []obdtest.Exchange {
	var out []obdtest.Exchange
	for _, r := range reqs {
		out = append(out, obdtest.ExErr(r, obd.ErrNoData))
	}
	return out
}

// withNoData puts ex, then the NO DATA exchanges of reqs.
func withNoData(ex []obdtest.Exchange, reqs ...string) []obdtest.Exchange {
	return append(ex, noData(reqs...)...)
}

func asciiHex(s string) string { return hex.EncodeToString([]byte(s)) }

func u16Hex(vals ...uint16) string {
	var b strings.Builder
	for _, v := range vals {
		fmt.Fprintf(&b, "%04X", v)
	}
	return b.String()
}

// petrolScript is a two-ECU petrol car on CAN 11/500: engine 7E8 with two stored codes, one
// pending code and a freeze frame; transmission 7E9 with a pending code. The adapter does
// multi-PID requests.
func petrolScript() []obdtest.Exchange {
	E, R := obdtest.Ex, obdtest.Resp
	return []obdtest.Exchange{
		// Mode 01 bitmaps: 7E8 01 04 05 0C 0D 0F 10 11 1C 1F (+20), 21 2F 31 (+40),
		// 41 42 46 4D 4E 5C (+60), (+80), (+A0), A6; 7E9 01 05 0C 0D.
		E("0100", obdtest.CAN("7E8 06 41 00 98 1B 80 13", "7E9 06 41 00 88 18 00 00")...),
		E("0120", R("7E8", "41 20 80 02 80 01")),
		E("0140", R("7E8", "41 40 C4 0C 00 11")),
		E("0160", R("7E8", "41 60 00 00 00 01")),
		E("0180", R("7E8", "41 80 00 00 00 01")),
		E("01A0", R("7E8", "41 A0 04 00 00 00")),
		// Mode 09: 7E8 02 04 06 08 0A, 7E9 04 06 0A.
		E("0900", R("7E8", "49 00 55 40 00 00"), R("7E9", "49 00 14 40 00 00")),
		E("0902", obdtest.CAN("7E8 10 14 49 02 01 4C 4B 36", "7E8 21 41 44 43 45 31 35 50", "7E8 22 42 34 30 35 31 32 37")...),
		E("0101", obdtest.CAN("7E8 06 41 01 82 07 65 05", "7E9 06 41 01 00 04 00 00")...),
		E("03", obdtest.CAN("7E8 06 43 02 04 20 01 71", "7E9 02 43 00")...),
		E("07", obdtest.CAN("7E8 04 47 01 03 00", "7E9 04 47 01 07 00")...),
		E("0A", obdtest.CAN("7E8 03 7F 0A 11")...),
		// Freeze frame 0: 7E8 supports 02 04 05 0C 0D; P0420 stored it.
		E("020000", obdtest.CAN("7E8 07 42 00 00 58 18 00 00")...),
		E("020200", obdtest.CAN("7E8 05 42 02 00 04 20")...),
		E("020400", obdtest.CAN("7E8 04 42 04 00 80")...),
		E("020500", obdtest.CAN("7E8 04 42 05 00 5A")...),
		E("020C00", obdtest.CAN("7E8 05 42 0C 00 1F 40")...),
		E("020D00", obdtest.CAN("7E8 04 42 0D 00 3C")...),
		E("0904", obdtest.CAN(
			"7E8 10 13 49 04 01 43 4E 47", "7E8 21 36 45 43 4D 2D 32 32", "7E8 22 30 35 41 33 31 31 00",
			"7E9 10 13 49 04 01 54 43 55", "7E9 21 38 41 54 30 33 30 31", "7E9 22 2D 30 30 30 30 00 00")...),
		E("0906", obdtest.CAN("7E8 07 49 06 01 3A 9C 0F 5D", "7E9 07 49 06 01 00 0B 7E 21")...),
		E("090A", append([]obd.Response{R("7E8", "49 0A 01"+asciiHex("ECM\x00-EngineControl\x00\x00"))},
			obdtest.CAN("7E9 10 17 49 0A 01 54 43 4D", "7E9 21 00 2D 54 72 61 6E 73", "7E9 22 6D 69 73 73 69 6F 6E", "7E9 23 43 74 6C 55 55 55 55")...)...),
		E("0908", R("7E8", "49 08 10"+u16Hex(100, 300, 40, 90, 0, 0, 55, 90, 0, 0, 30, 90, 0, 0, 12, 95))),
		// Context PIDs in even batches: 1C 21 31 4D 4E, then A6 0C 0D 05.
		E("011C21314D4E", R("7E8", "41 1C 06 21 00 0A 31 0B B8 4D 00 1E 4E 01 2C")),
		E("01A60C0D05", R("7E8", "41 A6 00 12 D6 87 0C 0C E4 0D 00 05 7B"), R("7E9", "41 0C 0C E0 0D 00 05 7A")),
	}
}

func TestScanPetrolTwoECUs(t *testing.T) {
	script := petrolScript()
	pb := obdtest.New(t, script...)
	clock := &fakeClock{t: t0}
	prof := obd.Profile{Version: "ELM327 v1.5", Protocol: "ISO 15765-4 (CAN 11/500)", ProtocolNum: "6", CountHint: true, MultiPID: true}
	rep, err := obd.Scan(context.Background(), timed{obdtest.Profiled{Playback: pb, P: prof}, clock}, obd.ScanOptions{Lang: "en", Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	ff := func(pid byte, data string) obd.Value {
		v, err := obd.DecodePID(pid, obdtest.MustHex(data))
		if err != nil {
			t.Fatal(err)
		}
		v.ECU = "7E8"
		return v
	}
	want := map[string]any{
		"time":            t0,
		"vin":             "LK6ADCE15PB405127",
		"vin_valid":       true,
		"vin_well_formed": true,
		"protocol":        "ISO 15765-4 (CAN 11/500)",
		// 24 requests × 20 ms.
		"elapsed_ms": int64(len(script)) * perQuery.Milliseconds(),
		"lang":       "en",
		"mil":        true,
		"adapter":    prof,
		"ecus": []map[string]any{
			{
				"id": "7E8", "name": "ECM-EngineControl", "vin": "LK6ADCE15PB405127",
				"calids": []string{"CNG6ECM-2205A311"}, "cvns": []string{"3A9C0F5D"},
				"supported_01": strings.Fields("01 04 05 0C 0D 0F 10 11 1C 1F 20 21 2F 31 40 41 42 46 4D 4E 5C 60 80 A0 A6"),
				"supported_09": strings.Fields("02 04 06 08 0A"),
				"readiness":    monitorJSON(t, "7E8", "82 07 65 05"),
				"iupr": map[string]any{"pid": "08", "items": iuprItems(
					[]string{"OBDCOND", "IGNCNTR", "CATCOMP1", "CATCOND1", "CATCOMP2", "CATCOND2", "O2SCOMP1", "O2SCOND1", "O2SCOMP2", "O2SCOND2", "EGRCOMP", "EGRCOND", "AIRCOMP", "AIRCOND", "EVAPCOMP", "EVAPCOND"},
					[]uint16{100, 300, 40, 90, 0, 0, 55, 90, 0, 0, 30, 90, 0, 0, 12, 95})},
			},
			{
				"id": "7E9", "name": "TCM-TransmissionCtl",
				"calids": []string{"TCU8AT0301-0000"}, "cvns": []string{"000B7E21"},
				"supported_01": strings.Fields("01 05 0C 0D"),
				"supported_09": strings.Fields("04 06 0A"),
				"readiness":    monitorJSON(t, "7E9", "00 04 00 00"),
			},
		},
		"dtcs": map[string]any{
			"stored": []obd.DTC{
				{Code: "P0420", ECU: "7E8", Service: 0x03, Description: "Catalyst System Efficiency Below Threshold (Bank 1)"},
				{Code: "P0171", ECU: "7E8", Service: 0x03, Description: "System Too Lean (Bank 1)"},
			},
			"pending": []obd.DTC{
				{Code: "P0300", ECU: "7E8", Service: 0x07, Description: "Random/Multiple Cylinder Misfire Detected"},
				{Code: "P0700", ECU: "7E9", Service: 0x07, Description: "Transmission Control System (MIL Request)"},
			},
			"permanent": []obd.DTC{},
		},
		"readiness": obd.Readiness{
			Supported:  []string{"misfire", "fuel_system", "components", "catalyst", "evap", "oxygen_sensor", "oxygen_sensor_heater"},
			Incomplete: []string{"catalyst", "evap"},
		},
		"odometer_km": 123456.7,
		"freeze_frames": []obd.FreezeFrame{{ECU: "7E8", Frame: 0, DTC: "P0420", Values: []obd.Value{
			ff(0x04, "80"), ff(0x05, "5A"), ff(0x0C, "1F 40"), ff(0x0D, "3C"),
		}}},
		"live": liveValues(t, []string{
			"7E8 1C 06", "7E8 21 00 0A", "7E8 31 0B B8", "7E8 4D 00 1E", "7E8 4E 01 2C", "7E8 A6 00 12 D6 87",
			"7E8 0C 0C E4", "7E8 0D 00", "7E8 05 7B", "7E9 0C 0C E0", "7E9 0D 00", "7E9 05 7A",
		}),
		"warnings": []string{},
		"steps": steps(
			step{"adapter", "ok", 0, nil},
			step{"supported_pids_01", "ok", 6, nil},
			step{"supported_pids_09", "ok", 1, nil},
			step{"vin", "ok", 1, nil},
			step{"readiness", "ok", 1, nil},
			step{"dtcs_stored", "ok", 1, nil},
			step{"dtcs_pending", "ok", 1, nil},
			step{"dtcs_permanent", "not_supported", 1, []string{"0A: ECU 7E8: service not supported"}},
			step{"freeze_frame", "ok", 6, nil},
			step{"calid", "ok", 1, nil},
			step{"cvn", "ok", 1, nil},
			step{"ecu_name", "ok", 1, nil},
			step{"iupr", "ok", 1, nil},
			step{"context_pids", "ok", 2, nil},
		),
		"audit": auditOf(script, t0),
	}
	assertJSON(t, rep, want)

	// Spot checks a reader can follow without the helpers.
	if rep.OdometerKM == nil || *rep.OdometerKM != 123456.7 {
		t.Errorf("odometer = %v", rep.OdometerKM)
	}
	if got := rep.FreezeFrames[0].Values[2].Value; got != 2000 {
		t.Errorf("freeze-frame engine speed = %v, want 2000", got)
	}
}

// dieselScript is a one-ECU diesel on CAN with an adapter that cannot batch PIDs: one PID per
// request, no freeze frame, no odometer, compression-ignition readiness and 090B IUPR.
func dieselScript() []obdtest.Exchange {
	E, R := obdtest.Ex, obdtest.Resp
	return []obdtest.Exchange{
		// 01 05 0C 0D 1C 20 | 21 31.
		E("0100", R("7E8", "41 00 88 18 00 11")),
		E("0120", R("7E8", "41 20 80 00 80 00")),
		// Mode 09: 02 04 06 0A 0B.
		E("0900", R("7E8", "49 00 54 60 00 00")),
		E("0902", R("7E8", "49 02 01"+asciiHex("LJ8ECM2B2R1063348"))),
		E("0101", R("7E8", "41 01 00 0F EB 40")),
		E("03", R("7E8", "43 00")),
		obdtest.ExErr("07", obd.ErrNoData),
		E("0A", R("7E8", "4A 00")),
		obdtest.ExErr("020000", obd.ErrNoData),
		E("0904", R("7E8", "49 04 02"+asciiHex("WD6E2051X11\x00\x00\x00\x00\x00")+asciiHex("WD6E2051X11-NOX\x00"))),
		E("0906", R("7E8", "49 06 02 20 0B 00 0B 12 34 56 78")),
		E("090A", R("7E8", "49 0A 01"+asciiHex("ECM\x00-DieselCtl\x00\x00\x00\x00\x00\x00"))),
		E("090B", R("7E8", "49 0B 10"+u16Hex(80, 200, 5, 10, 6, 12, 7, 14, 8, 16, 9, 18, 10, 20, 11, 22))),
		E("011C", R("7E8", "41 1C 06")),
		E("0121", R("7E8", "41 21 00 00")),
		obdtest.ExErr("0131", obd.ErrNoData),
		E("010C", R("7E8", "41 0C 0B B8")),
		E("010D", R("7E8", "41 0D 00")),
		E("0105", R("7E8", "41 05 55")),
		// The odometer is in no bitmap: asked all the same, once.
		obdtest.ExErr("01A6", obd.ErrNoData),
	}
}

func TestScanDiesel(t *testing.T) {
	script := dieselScript()
	pb := obdtest.New(t, script...)
	clock := &fakeClock{t: t0}
	prof := obd.Profile{Version: "ELM327 v2.1", Protocol: "ISO 15765-4 (CAN 11/500)", ProtocolNum: "A6", Clone: true}
	rep, err := obd.Scan(context.Background(), timed{obdtest.Profiled{Playback: pb, P: prof}, clock},
		obd.ScanOptions{Now: clock.now, ExpectedVIN: "LK6ADCE15PB405127"})
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"time": t0, "vin": "LJ8ECM2B2R1063348", "vin_valid": true, "vin_well_formed": true,
		"expected_vin": "LK6ADCE15PB405127", "vin_mismatch": true,
		"protocol": "ISO 15765-4 (CAN 11/500)", "elapsed_ms": int64(len(script)) * perQuery.Milliseconds(),
		"lang": "zh", "mil": false, "adapter": prof,
		"ecus": []map[string]any{{
			"id": "7E8", "name": "ECM-DieselCtl", "vin": "LJ8ECM2B2R1063348",
			"calids":       []string{"WD6E2051X11", "WD6E2051X11-NOX"},
			"cvns":         []string{"200B000B", "12345678"},
			"supported_01": strings.Fields("01 05 0C 0D 1C 20 21 31"),
			"supported_09": strings.Fields("02 04 06 0A 0B"),
			"readiness":    monitorJSON(t, "7E8", "00 0F EB 40"),
			"iupr": map[string]any{"pid": "0B", "items": iuprItems(
				[]string{"OBDCOND", "IGNCNTR", "HCCATCOMP", "HCCATCOND", "NCATCOMP", "NCATCOND", "NADSCOMP", "NADSCOND", "PMCOMP", "PMCOND", "EGSCOMP", "EGSCOND", "EGRCOMP", "EGRCOND", "BPCOMP", "BPCOND"},
				[]uint16{80, 200, 5, 10, 6, 12, 7, 14, 8, 16, 9, 18, 10, 20, 11, 22})},
		}},
		"dtcs": map[string]any{"stored": []obd.DTC{}, "pending": []obd.DTC{}, "permanent": []obd.DTC{}},
		"readiness": obd.Readiness{
			Supported:  []string{"misfire", "fuel_system", "components", "nmhc_catalyst", "nox_scr", "boost_pressure", "exhaust_gas_sensor", "pm_filter", "egr_vvt"},
			Incomplete: []string{"pm_filter"},
		},
		"freeze_frames": []obd.FreezeFrame{},
		"live":          liveValues(t, []string{"7E8 1C 06", "7E8 21 00 00", "7E8 0C 0B B8", "7E8 0D 00", "7E8 05 55"}),
		"warnings":      []string{"VIN mismatch: the car reports LJ8ECM2B2R1063348, the work order says LK6ADCE15PB405127"},
		"steps": steps(
			step{"adapter", "ok", 0, nil},
			step{"supported_pids_01", "ok", 2, nil},
			step{"supported_pids_09", "ok", 1, nil},
			step{"vin", "ok", 1, nil},
			step{"readiness", "ok", 1, nil},
			step{"dtcs_stored", "ok", 1, nil},
			step{"dtcs_pending", "not_supported", 1, []string{"07: no data"}},
			step{"dtcs_permanent", "ok", 1, nil},
			step{"freeze_frame", "not_supported", 1, []string{"020000: no data"}},
			step{"calid", "ok", 1, nil},
			step{"cvn", "ok", 1, nil},
			step{"ecu_name", "ok", 1, nil},
			step{"iupr", "ok", 1, nil},
			step{"context_pids", "ok", 7, []string{"0131: no data", "01A6 is in no 0100 bitmap; asked all the same", "01A6: no data"}},
		),
		"audit": auditOf(script, t0),
	}
	assertJSON(t, rep, want)
	if rep.OdometerKM != nil {
		t.Errorf("odometer %v without PID A6", *rep.OdometerKM)
	}
}

// A legacy (ISO 9141) car answers each DTC message separately; all codes must survive (python-OBD
// #284), and no multi-PID request may be sent even if the profile claims it.
func TestScanLegacyDTCs(t *testing.T) {
	E, R := obdtest.Ex, obdtest.Resp
	var script []obdtest.Exchange
	script = append(script,
		E("0100", R("10", "41 00 08 18 00 00")), // 05 0C 0D
		obdtest.ExErr("0900", obd.ErrNoData))
	// Without a 0900 bitmap the VIN and 0101 (in no bitmap) are asked all the same.
	script = withNoData(script, "0902", "0101")
	script = append(script,
		E("03", obdtest.Legacy("10", "43 04 20 01 71 03 00", "43 24 63 00 00 00 00")...),
		E("07", obdtest.Legacy("10", "47 00 00 00 00 00 00")...),
		obdtest.ExErr("0A", obd.ErrNoData),
		obdtest.ExErr("020000", obd.ErrNoData))
	script = withNoData(script, "0904", "0906", "090A", "0908", "090B")
	script = append(script,
		E("010C", R("10", "41 0C 0C E4")),
		E("010D", R("10", "41 0D 00")),
		E("0105", R("10", "41 05 7B")))
	script = withNoData(script, "0131", "01A6")
	pb := obdtest.New(t, script...)
	prof := obd.Profile{Version: "ELM327 v1.5", Protocol: "ISO 9141-2", ProtocolNum: "3", MultiPID: true}
	rep, err := obd.Scan(context.Background(), obdtest.Profiled{Playback: pb, P: prof}, obd.ScanOptions{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, d := range rep.DTCs.Stored {
		got = append(got, d.ECU+":"+d.Code+":"+d.Description)
	}
	want := []string{"10:P0420:" + obd.DescribeDTC("P0420", "zh"), "10:P0171:" + obd.DescribeDTC("P0171", "zh"),
		"10:P0300:" + obd.DescribeDTC("P0300", "zh"), "10:P2463:" + obd.DescribeDTC("P2463", "zh")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored = %v, want %v", got, want)
	}
	if len(rep.DTCs.Pending) != 0 || rep.VIN != "" || rep.VINValid {
		t.Errorf("pending %v, VIN %q valid %v", rep.DTCs.Pending, rep.VIN, rep.VINValid)
	}
	for _, s := range rep.Steps {
		if s.Name == "readiness" && (s.Status != obd.StepNotSupported || s.Requests != 1) {
			t.Errorf("readiness step %+v: PID 01 is in no bitmap, it should be asked once and found not supported", s)
		}
	}
}

func TestScanNoVehicle(t *testing.T) {
	pb := obdtest.New(t, obdtest.ExErr("0100", obd.ErrNoVehicle))
	rep, err := obd.Scan(context.Background(), pb, obd.ScanOptions{})
	if !errors.Is(err, obd.ErrNoVehicle) || rep != nil {
		t.Fatalf("Scan = %v, %v; want nil and ErrNoVehicle", rep, err)
	}
	if err := pb.Close(); err != nil {
		t.Error(err)
	}
}

// Losing the car mid-scan returns what was read so far together with the error.
func TestScanVehicleLostMidway(t *testing.T) {
	pb := obdtest.New(t,
		obdtest.Ex("0100", obdtest.Resp("7E8", "41 00 80 00 00 00")),
		obdtest.ExErr("0900", obd.ErrNoVehicle),
	)
	rep, err := obd.Scan(context.Background(), pb, obd.ScanOptions{})
	if !errors.Is(err, obd.ErrNoVehicle) || rep == nil {
		t.Fatalf("Scan = %v, %v; want a partial report and ErrNoVehicle", rep, err)
	}
	if len(rep.ECUs) != 1 || rep.ECUs[0].ID != "7E8" || len(rep.Audit) != 2 {
		t.Errorf("partial report: ecus %+v, audit %d", rep.ECUs, len(rep.Audit))
	}
	if err := pb.Close(); err != nil {
		t.Error(err)
	}
}

// A failing bitmap part must neither loop nor stop the scan; a malformed answer fails its step
// with the bytes named; a rejected batch steps down to single PIDs.
func TestScanToleratesFailures(t *testing.T) {
	E, R := obdtest.Ex, obdtest.Resp
	busErr := errors.New("elm327: CAN ERROR")
	script := []obdtest.Exchange{
		E("0100", R("7E8", "41 00 88 18 00 01")), // 01 05 0C 0D, next part announced
		obdtest.ExErr("0120", busErr),            // the part fails: keep what we have, go on
		E("0900", R("7E8", "49 00 00 00 00 00")), // a zero bitmap: Mode 09 is asked directly
		obdtest.ExErr("0902", obd.ErrNoData),
		E("0101", R("7E8", "41 01 82")), // truncated
		E("03", R("7E8", "43 00")),
		E("07", R("7E8", "47 00")),
		E("0A", R("7E8", "4A 00")),
		obdtest.ExErr("020000", obd.ErrNoData),
	}
	script = withNoData(script, "0904", "0906", "090A", "0908", "090B")
	script = append(script,
		obdtest.ExErr("010C0D05", obd.ErrNoData), // the ECU ignores batches
		E("010C", R("7E8", "41 0C 0C E4")),
		E("010D", R("7E8", "41 0D 00")),
		E("0105", R("7E8", "41 05 7B")))
	script = withNoData(script, "0131", "01A6")
	pb := obdtest.New(t, script...)
	rep, err := obd.Scan(context.Background(), obdtest.Profiled{Playback: pb, P: obd.Profile{ProtocolNum: "6", MultiPID: true}}, obd.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	status := map[string]obd.Step{}
	for _, s := range rep.Steps {
		status[s.Name] = s
	}
	if s := status["supported_pids_01"]; s.Status != obd.StepFailed || !strings.Contains(s.Error, "CAN ERROR") || s.Requests != 2 {
		t.Errorf("supported_pids_01 = %+v", s)
	}
	if s := status["readiness"]; s.Status != obd.StepFailed || !strings.Contains(s.Error, "41 01 82") {
		t.Errorf("readiness = %+v, want a failure naming the bytes", s)
	}
	if s := status["context_pids"]; s.Status != obd.StepOK || s.Requests != 6 {
		t.Errorf("context_pids = %+v", s)
	}
	if len(rep.Live) != 3 || rep.Live[0].Value != 825 {
		t.Errorf("live = %+v", rep.Live)
	}
	if rep.ECUs[0].Readiness != nil {
		t.Error("a truncated 0101 produced readiness")
	}
}

func TestScanUnexpectedRequestIsReported(t *testing.T) {
	rec := &recorder{TB: t}
	pb := obdtest.New(rec, obdtest.ExErr("0100", obd.ErrNoData))
	if _, err := obd.Scan(context.Background(), pb, obd.ScanOptions{}); err != nil {
		t.Fatal(err)
	}
	// After NO DATA for 0100 the scan still asks for 0900 and the DTC services; the script
	// does not have them, so the playback must have complained.
	if len(pb.Failures()) == 0 || len(rec.errs) == 0 || !strings.Contains(rec.errs[0], "0900") {
		t.Errorf("failures %v, reported %v", pb.Failures(), rec.errs)
	}
	if err := pb.Close(); err == nil {
		t.Error("Close after unexpected requests returned nil")
	}
}

type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestScanCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pb := obdtest.New(t)
	if _, err := obd.Scan(ctx, pb, obd.ScanOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if len(pb.Sent()) != 0 {
		t.Errorf("sent %v after cancel", pb.Sent())
	}
}

// --- helpers computing expectations from the scripted bytes

func monitorJSON(t *testing.T, ecu, abcd string) obd.MonitorStatus {
	m, err := obd.DecodeMonitorStatus(obdtest.MustHex(abcd))
	if err != nil {
		t.Fatal(err)
	}
	m.ECU = ecu
	return m
}

func iuprItems(names []string, counts []uint16) []obd.IUPRItem {
	out := []obd.IUPRItem{}
	for i := range names {
		out = append(out, obd.IUPRItem{Name: names[i], Count: counts[i]})
	}
	return out
}

// liveValues decodes "ECU PID data…" lines with the PID table.
func liveValues(t *testing.T, lines []string) []obd.Value {
	out := []obd.Value{}
	for _, l := range lines {
		f := strings.Fields(l)
		b := obdtest.MustHex(strings.Join(f[1:], ""))
		v, err := obd.DecodePID(b[0], b[1:])
		if err != nil {
			t.Fatal(err)
		}
		v.ECU = f[0]
		out = append(out, v)
	}
	return out
}

type step struct {
	name, status string
	requests     int
	notes        []string
}

func steps(s ...step) []obd.Step {
	out := []obd.Step{}
	for _, x := range s {
		out = append(out, obd.Step{Name: x.name, Status: x.status, Requests: x.requests, Notes: x.notes,
			DurationMS: float64(x.requests) * float64(perQuery.Milliseconds())})
	}
	return out
}

// auditOf is the audit log the scan must keep for a script played with a clock that moves
// perQuery per request.
func auditOf(script []obdtest.Exchange, start time.Time) []obd.Exchange {
	out := []obd.Exchange{}
	for i, ex := range script {
		a := obd.Exchange{At: start.Add(time.Duration(i+1) * perQuery), Request: strings.ToUpper(strings.ReplaceAll(ex.Req, " ", "")), Responses: []obd.RawResponse{}}
		for _, r := range ex.Resps {
			a.Responses = append(a.Responses, obd.RawResponse{ECU: r.ECU, Data: spaced(r.Data)})
		}
		if ex.Err != nil {
			a.Error = ex.Err.Error()
		}
		out = append(out, a)
	}
	return out
}

func spaced(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = fmt.Sprintf("%02X", c)
	}
	return strings.Join(parts, " ")
}

// assertJSON compares the report's JSON with want's JSON key by key (floats to 1e-9), so the
// comparison covers exactly what `obdgw scan --json` prints.
func assertJSON(t *testing.T, rep *obd.Report, want map[string]any) {
	t.Helper()
	var got, exp map[string]any
	roundTrip(t, rep, &got)
	roundTrip(t, want, &exp)
	for k := range got {
		if _, ok := exp[k]; !ok {
			t.Errorf("report has unexpected key %q = %v", k, got[k])
		}
	}
	for k, e := range exp {
		g, ok := got[k]
		if !ok {
			t.Errorf("report lacks key %q", k)
			continue
		}
		if path, ok := jsonEqual(g, e, k); !ok {
			gj, _ := json.Marshal(g)
			ej, _ := json.Marshal(e)
			t.Errorf("report %s differs at %s:\n got  %s\n want %s", k, path, gj, ej)
		}
	}
}

func roundTrip(t *testing.T, v any, into *map[string]any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
}

func jsonEqual(g, e any, path string) (string, bool) {
	switch ev := e.(type) {
	case map[string]any:
		gv, ok := g.(map[string]any)
		if !ok || len(gv) != len(ev) {
			return path, false
		}
		for k := range ev {
			if p, ok := jsonEqual(gv[k], ev[k], path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		gv, ok := g.([]any)
		if !ok || len(gv) != len(ev) {
			return path, false
		}
		for i := range ev {
			if p, ok := jsonEqual(gv[i], ev[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	case float64:
		gv, ok := g.(float64)
		return path, ok && math.Abs(gv-ev) <= 1e-9*math.Max(1, math.Abs(ev))
	default:
		return path, g == e
	}
}

// A VIN whose check digit does not compute is well formed (European makers use no check
// digit) but not valid, with a warning. A VIN with letters no VIN uses is neither.
func TestScanVINChecks(t *testing.T) {
	for _, tc := range []struct {
		vin, warning      string
		valid, wellFormed bool
	}{
		{"WVWZZZ1KZ8W123456", "check digit at position 9", false, true},
		{"LK6ADCE15PB405128", "check digit at position 9", false, true},
		{"LK6ADCE15PB405127", "", true, true},
		{"LK6ADCE15PB4O5127", "never used in a VIN", false, false},
	} {
		E, R := obdtest.Ex, obdtest.Resp
		pb := obdtest.New(t, withNoData([]obdtest.Exchange{
			obdtest.ExErr("0100", obd.ErrNoData),
			E("0900", R("7E8", "49 00 40 00 00 00")),
			E("0902", R("7E8", "49 02 01"+asciiHex(tc.vin))),
			obdtest.ExErr("0101", obd.ErrNoData),
			obdtest.ExErr("03", obd.ErrNoData), obdtest.ExErr("07", obd.ErrNoData), obdtest.ExErr("0A", obd.ErrNoData),
			obdtest.ExErr("020000", obd.ErrNoData),
		}, "0904", "0906", "0131", "01A6")...)
		rep, err := obd.Scan(context.Background(), pb, obd.ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := pb.Close(); err != nil {
			t.Fatal(err)
		}
		warned := len(rep.Warnings) == 1 && tc.warning != "" && strings.Contains(rep.Warnings[0], tc.warning)
		if tc.warning == "" {
			warned = len(rep.Warnings) == 0
		}
		if rep.VIN != tc.vin || rep.VINValid != tc.valid || rep.VINWellFormed != tc.wellFormed || !warned {
			t.Errorf("%s: VIN %q valid %v well formed %v warnings %q", tc.vin, rep.VIN, rep.VINValid, rep.VINWellFormed, rep.Warnings)
		}
	}
}

// obdgw scan prints these records as progress; the message and keys are a contract.
func TestScanLogsSteps(t *testing.T) {
	var recs []string
	h := &captureHandler{fn: func(r slog.Record) {
		attrs := []string{}
		r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a.Key+"="+a.Value.String()); return true })
		recs = append(recs, r.Message+" "+strings.Join(attrs, " "))
	}}
	clock := &fakeClock{t: t0}
	pb := obdtest.New(t, dieselScript()...)
	prof := obd.Profile{ProtocolNum: "6"}
	if _, err := obd.Scan(context.Background(), timed{obdtest.Profiled{Playback: pb, P: prof}, clock}, obd.ScanOptions{Now: clock.now, Logger: slog.New(h)}); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 14 || recs[1] != "obd scan step step=supported_pids_01 status=ok requests=2 ms=40" ||
		recs[8] != "obd scan step step=freeze_frame status=not_supported requests=1 ms=20" {
		t.Errorf("records:\n%s", strings.Join(recs, "\n"))
	}
}

type captureHandler struct{ fn func(slog.Record) }

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.fn(r)
	return nil
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

// The gateway stores reports as JSON and reads them back (work orders, the DMS API): a report
// must survive the round trip unchanged.
func TestReportJSONRoundTrip(t *testing.T) {
	clock := &fakeClock{t: t0}
	pb := obdtest.New(t, petrolScript()...)
	rep, err := obd.Scan(context.Background(), timed{obdtest.Profiled{Playback: pb, P: obd.Profile{ProtocolNum: "6", MultiPID: true}}, clock}, obd.ScanOptions{Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	first, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back obd.Report
	if err := json.Unmarshal(first, &back); err != nil {
		t.Fatal(err)
	}
	second, err := json.Marshal(&back)
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != string(second) {
		t.Errorf("round trip changed the report:\n%s\n%s", first, second)
	}
	var a, b strings.Builder
	_ = rep.WriteText(&a, "zh")
	_ = back.WriteText(&b, "zh")
	if a.String() != b.String() {
		t.Error("text of a stored report differs from the original")
	}
}

// 0101 says two confirmed codes, 03 delivers one: the report must say so rather than look clean.
func TestScanDTCCountMismatch(t *testing.T) {
	E, R := obdtest.Ex, obdtest.Resp
	script := []obdtest.Exchange{
		E("0100", R("7E8", "41 00 80 00 00 00")),
		obdtest.ExErr("0900", obd.ErrNoData),
		obdtest.ExErr("0902", obd.ErrNoData),
		E("0101", R("7E8", "41 01 82 07 65 05")),
		E("03", R("7E8", "43 01 04 20")),
		obdtest.ExErr("07", obd.ErrNoData), obdtest.ExErr("0A", obd.ErrNoData), obdtest.ExErr("020000", obd.ErrNoData),
	}
	pb := obdtest.New(t, withNoData(script, "0904", "0906", "090A", "0908", "090B", "0131", "01A6")...)
	rep, err := obd.Scan(context.Background(), pb, obd.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	want := "ECU 7E8: 0101 reports 2 confirmed DTC(s) but service 03 returned 1"
	if len(rep.Warnings) != 1 || rep.Warnings[0] != want {
		t.Errorf("warnings %q, want %q", rep.Warnings, want)
	}
}

func TestScanCancelledMidway(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pb := obdtest.New(t, obdtest.Ex("0100", obdtest.Resp("7E8", "41 00 80 00 00 00")))
	a := cancelAfter{Playback: pb, cancel: cancel}
	rep, err := obd.Scan(ctx, a, obd.ScanOptions{})
	if !errors.Is(err, context.Canceled) || rep == nil {
		t.Fatalf("Scan = %v, %v", rep, err)
	}
	last := rep.Steps[len(rep.Steps)-1]
	if last.Name != "supported_pids_09" || last.Status != obd.StepFailed || last.Requests != 0 {
		t.Errorf("last step %+v, want supported_pids_09 failed without a request", last)
	}
	if len(pb.Sent()) != 1 {
		t.Errorf("sent %v after cancel", pb.Sent())
	}
}

// cancelAfter cancels the scan's context as soon as the first answer is delivered.
type cancelAfter struct {
	*obdtest.Playback
	cancel func()
}

func (c cancelAfter) Query(ctx context.Context, req obd.Request) ([]obd.Response, error) {
	defer c.cancel()
	return c.Playback.Query(ctx, req)
}

// TestScanAdapterLost: a link that drops for one request (a Bluetooth hiccup) costs a repeat
// of that request, kept in the audit trail, and the scan is complete. A link that stays down
// stops the scan at once with the partial report and an error that says so, instead of
// failing every remaining step.
func TestScanAdapterLost(t *testing.T) {
	at := func(script []obdtest.Exchange, req string) int {
		for i, ex := range script {
			if ex.Req == req {
				return i
			}
		}
		t.Fatalf("no %s in the script", req)
		return 0
	}
	lost := fmt.Errorf("elm327: 0904: %w", obd.ErrAdapterLost)

	script := petrolScript()
	i := at(script, "0904")
	script = slices.Insert(script, i, obdtest.ExErr("0904", lost))
	pb := obdtest.New(t, script...)
	rep, err := obd.Scan(context.Background(), obdtest.Profiled{Playback: pb, P: canProfile}, obd.ScanOptions{})
	if err != nil {
		t.Fatalf("one dropped request: %v", err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	var calids []string
	for _, e := range rep.ECUs {
		calids = append(calids, e.CALIDs...)
	}
	if len(calids) != 2 {
		t.Errorf("CALIDs %v after the repeat", calids)
	}
	n := 0
	for _, ex := range rep.Audit {
		if ex.Request == "0904" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("0904 appears %d times in the audit trail, want 2 (the lost attempt too)", n)
	}
	for _, st := range rep.Steps {
		if st.Status == obd.StepFailed {
			t.Errorf("step %s failed: %s", st.Name, st.Error)
		}
	}

	script = petrolScript()
	i = at(script, "0904")
	script = append(script[:i:i], obdtest.ExErr("0904", lost), obdtest.ExErr("0904", lost))
	pb = obdtest.New(t, script...)
	rep, err = obd.Scan(context.Background(), obdtest.Profiled{Playback: pb, P: canProfile}, obd.ScanOptions{})
	if !errors.Is(err, obd.ErrAdapterLost) || !strings.Contains(err.Error(), "step calid") {
		t.Fatalf("link down: %v, want ErrAdapterLost at step calid", err)
	}
	if rep == nil || rep.VIN != "LK6ADCE15PB405127" || len(rep.DTCs.Stored) == 0 {
		t.Errorf("partial report lost what was read: %+v", rep)
	}
	if err := pb.Close(); err != nil {
		t.Error(err) // a request after the second loss
	}
}

// A car that supports the oxygen-sensor and catalyst PIDs has them read as live data, decoded
// with units, in the JSON report and in the text a technician reads.
func TestScanReadsOxygenSensors(t *testing.T) {
	E, R := obdtest.Ex, obdtest.Resp
	pb := obdtest.New(t,
		// 13 14 15 (+20); 24 3C.
		E("0100", R("7E8", "41 00 00 00 38 01")),
		E("0120", R("7E8", "41 20 10 00 00 10")),
		// No 0900 bitmap: the VIN and readiness are asked all the same, and every mode 09 item.
		obdtest.ExErr("0900", obd.ErrNoData), obdtest.ExErr("0902", obd.ErrNoData), obdtest.ExErr("0101", obd.ErrNoData),
		obdtest.ExErr("03", obd.ErrNoData), obdtest.ExErr("07", obd.ErrNoData), obdtest.ExErr("0A", obd.ErrNoData),
		obdtest.ExErr("020000", obd.ErrNoData),
		obdtest.ExErr("0904", obd.ErrNoData), obdtest.ExErr("0906", obd.ErrNoData), obdtest.ExErr("090A", obd.ErrNoData),
		obdtest.ExErr("0908", obd.ErrNoData), obdtest.ExErr("090B", obd.ErrNoData),
		E("0113", R("7E8", "41 13 33")),
		E("0114", R("7E8", "41 14 5A 8A")),
		E("0115", R("7E8", "41 15 B4 FF")),
		E("0124", R("7E8", "41 24 80 00 80 00")),
		E("013C", R("7E8", "41 3C 11 94")),
		obdtest.ExErr("0131", obd.ErrNoData), obdtest.ExErr("01A6", obd.ErrNoData),
	)
	rep, err := obd.Scan(context.Background(), pb, obd.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[obd.HexByte]string{
		0x13: "B1S1 B1S2 B2S1 B2S2",
		0x14: "B1S1: 0.45 V, short term fuel trim 7.8 %",
		0x15: "B1S2: 0.9 V, not used for fuel trim",
		0x24: "B1S1: λ 1, 4 V",
		0x3C: "410 °C",
	}
	got := map[obd.HexByte]string{}
	for _, v := range rep.Live {
		got[v.PID] = v.String()
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("live %q, want %q", got, want)
	}
	var b strings.Builder
	if err := rep.WriteText(&b, "zh"); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"氧传感器1 电压、短期燃油修正", "B1S1: 0.45 V, short term fuel trim 7.8 %", "催化器温度 第1列 传感器1", "410 °C", "B1S1: λ 1, 4 V"} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("text lacks %q:\n%s", line, b.String())
		}
	}

	// An ECU with the 4 banks × 2 layout (PID 1D): sensor 3 is bank 2 sensor 1.
	pb = obdtest.New(t,
		E("0100", R("7E8", "41 00 00 00 04 08")), // 16 1D
		// No 0900 bitmap: the VIN and readiness are asked all the same, and every mode 09 item.
		obdtest.ExErr("0900", obd.ErrNoData), obdtest.ExErr("0902", obd.ErrNoData), obdtest.ExErr("0101", obd.ErrNoData),
		obdtest.ExErr("03", obd.ErrNoData), obdtest.ExErr("07", obd.ErrNoData), obdtest.ExErr("0A", obd.ErrNoData),
		obdtest.ExErr("020000", obd.ErrNoData),
		obdtest.ExErr("0904", obd.ErrNoData), obdtest.ExErr("0906", obd.ErrNoData), obdtest.ExErr("090A", obd.ErrNoData),
		obdtest.ExErr("0908", obd.ErrNoData), obdtest.ExErr("090B", obd.ErrNoData),
		E("011D", R("7E8", "41 1D 0F")),
		E("0116", R("7E8", "41 16 5A 80")),
		obdtest.ExErr("0131", obd.ErrNoData), obdtest.ExErr("01A6", obd.ErrNoData),
	)
	rep, err = obd.Scan(context.Background(), pb, obd.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Close(); err != nil {
		t.Fatal(err)
	}
	got = map[obd.HexByte]string{}
	for _, v := range rep.Live {
		got[v.PID] = v.String()
	}
	want = map[obd.HexByte]string{0x1D: "B1S1 B1S2 B2S1 B2S2", 0x16: "B2S1: 0.45 V, short term fuel trim 0 %"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("4-bank live %q, want %q", got, want)
	}
}
