package obd_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/obd"
	"github.com/obdgw/obdgw/obd/obdtest"
)

// elm327-obd.md §13 table.
func TestDecodeDTC(t *testing.T) {
	for _, tc := range []struct {
		hex, want string
	}{
		{"04 20", "P0420"}, {"01 71", "P0171"}, {"03 00", "P0300"}, {"24 63", "P2463"},
		{"1A 0F", "P1A0F"}, {"40 35", "C0035"}, {"93 42", "B1342"}, {"C1 00", "U0100"},
		{"C4 15", "U0415"}, {"00 00", ""},
	} {
		b := obdtest.MustHex(tc.hex)
		if got := obd.DecodeDTC(b[0], b[1]); got != tc.want {
			t.Errorf("DecodeDTC(%s) = %q, want %q", tc.hex, got, tc.want)
		}
		if tc.want == "" {
			continue
		}
		b0, b1, err := obd.EncodeDTC(tc.want)
		if err != nil || b0 != b[0] || b1 != b[1] {
			t.Errorf("EncodeDTC(%s) = %02X %02X, %v; want %s", tc.want, b0, b1, err, tc.hex)
		}
	}
	for _, bad := range []string{"P042", "X0420", "P4420", "P042G", "p0420"} {
		if _, _, err := obd.EncodeDTC(bad); err == nil {
			t.Errorf("EncodeDTC(%q) accepted a non-code", bad)
		}
	}
}

func codes(d []obd.DTC) []string {
	out := []string{}
	for _, x := range d {
		out = append(out, x.ECU+":"+x.Code+":"+x.Service.String())
	}
	return out
}

// elm327-obd.md §13 Mode 03 examples, CAN single, multi-frame with two ECUs, none, and legacy.
func TestParseDTCs(t *testing.T) {
	multi := obdtest.CAN(
		"7E8 10 0A 43 04 04 20 01 71",
		"7E8 21 03 00 24 63 00 00 00",
		"7E9 04 43 01 C1 00 00 00 00",
	)
	for _, tc := range []struct {
		name    string
		service byte
		resps   []obd.Response
		form    obd.DTCForm
		want    []string
	}{
		{"can single frame", 0x03, obdtest.CAN("7E8 06 43 02 04 20 01 71"), obd.FormAuto, []string{"7E8:P0420:03", "7E8:P0171:03"}},
		{"can multi-frame two ECUs", 0x03, multi, obd.FormCAN, []string{"7E8:P0420:03", "7E8:P0171:03", "7E8:P0300:03", "7E8:P2463:03", "7E9:U0100:03"}},
		{"can none", 0x03, obdtest.CAN("7E8 02 43 00"), obd.FormAuto, []string{}},
		{"pending keeps service", 0x07, obdtest.CAN("7E8 04 47 01 01 71"), obd.FormAuto, []string{"7E8:P0171:07"}},
		{"permanent", 0x0A, obdtest.CAN("7E8 04 4A 01 04 20"), obd.FormAuto, []string{"7E8:P0420:0A"}},
		// python-OBD #284: a legacy car with several codes must not show only one.
		{"legacy two lines concatenated", 0x03, []obd.Response{{ECU: "10", Data: obdtest.MustHex("43 04 20 01 71 03 00 43 24 63 00 00 00 00")}}, obd.FormLegacy,
			[]string{"10:P0420:03", "10:P0171:03", "10:P0300:03", "10:P2463:03"}},
		{"legacy single line auto", 0x03, obdtest.Legacy("10", "43 01 71 00 00 00 00"), obd.FormAuto, []string{"10:P0171:03"}},
		{"legacy headers off auto", 0x03, obdtest.Legacy("", "43 04 20 01 71 03 00"), obd.FormAuto, []string{":P0420:03", ":P0171:03", ":P0300:03"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := []string{}
			for _, r := range tc.resps {
				d, err := obd.ParseDTCs(tc.service, r, tc.form)
				if err != nil {
					t.Fatalf("ParseDTCs: %v", err)
				}
				got = append(got, codes(d)...)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseDTCsErrors(t *testing.T) {
	// Count says 3 codes, only 2 present: keep what is there and say what was wrong.
	d, err := obd.ParseDTCs(0x03, obdtest.Resp("7E8", "43 03 04 20 01 71"), obd.FormCAN)
	var de *obd.DecodeError
	if !errors.As(err, &de) || de.ECU != "7E8" || len(de.Raw) != 6 {
		t.Fatalf("err = %v, want a DecodeError from 7E8 keeping 6 raw bytes", err)
	}
	if len(d) != 2 || d[0].Code != "P0420" {
		t.Errorf("partial codes = %v", codes(d))
	}
	if _, err := obd.ParseDTCs(0x03, obdtest.Resp("7E8", "47 00"), obd.FormCAN); err == nil {
		t.Error("a 47 reply to service 03 was accepted")
	}
	_, err = obd.ParseDTCs(0x0A, obdtest.Resp("7E8", "7F 0A 11"), obd.FormCAN)
	var ne *obd.NegativeResponseError
	if !errors.As(err, &ne) || ne.NRC != 0x11 || !strings.Contains(err.Error(), "service not supported") {
		t.Errorf("7F 0A 11: err = %v", err)
	}
}

// elm327-obd.md §12 examples.
func TestDecodeMonitorStatus(t *testing.T) {
	for _, tc := range []struct {
		resp        string
		mil         bool
		n           int
		compression bool
		supported   []string
		incomplete  []string
	}{
		{"41 01 82 07 65 05", true, 2, false,
			[]string{"misfire", "fuel_system", "components", "catalyst", "evap", "oxygen_sensor", "oxygen_sensor_heater"},
			[]string{"catalyst", "evap"}},
		{"41 01 00 07 E5 00", false, 0, false,
			[]string{"misfire", "fuel_system", "components", "catalyst", "evap", "oxygen_sensor", "oxygen_sensor_heater", "egr_vvt"},
			[]string{}},
		{"41 01 00 0F EB 40", false, 0, true,
			[]string{"misfire", "fuel_system", "components", "nmhc_catalyst", "nox_scr", "boost_pressure", "exhaust_gas_sensor", "pm_filter", "egr_vvt"},
			[]string{"pm_filter"}},
	} {
		b := obdtest.MustHex(tc.resp)
		m, err := obd.DecodeMonitorStatus(b[2:])
		if err != nil {
			t.Fatalf("%s: %v", tc.resp, err)
		}
		if m.MIL != tc.mil || m.DTCCount != tc.n || m.Compression != tc.compression {
			t.Errorf("%s: MIL %v count %d compression %v", tc.resp, m.MIL, m.DTCCount, m.Compression)
		}
		if !reflect.DeepEqual(m.Supported(), tc.supported) {
			t.Errorf("%s: supported %v, want %v", tc.resp, m.Supported(), tc.supported)
		}
		if !reflect.DeepEqual(m.Incomplete(), tc.incomplete) {
			t.Errorf("%s: incomplete %v, want %v", tc.resp, m.Incomplete(), tc.incomplete)
		}
	}
	if _, err := obd.DecodeMonitorStatus([]byte{0x82, 0x07}); err == nil {
		t.Error("2 bytes accepted as a monitor status")
	}
	// PID 41 (this drive cycle) has the layout of B, C and D and goes through the PID table
	// too; its byte A is reserved, so whatever it holds shows no MIL and no DTC count.
	for _, data := range []string{"00 0F EB 40", "FF 0F EB 40", "83 0F EB 40"} {
		v, err := obd.DecodePID(0x41, obdtest.MustHex(data))
		if err != nil || v.Value != 1 || v.Text != "this drive cycle: 1 of 9 enabled monitors not complete" {
			t.Errorf("41 41 %s = %+v, %v", data, v, err)
		}
	}
	// B4..B6 mark the continuous monitors incomplete.
	m, _ := obd.DecodeMonitorStatus([]byte{0, 0x71, 0, 0})
	if !reflect.DeepEqual(m.Incomplete(), []string{"misfire"}) {
		t.Errorf("B=71: incomplete %v, want [misfire]", m.Incomplete())
	}
}

func TestAggregateReadiness(t *testing.T) {
	a, _ := obd.DecodeMonitorStatus(obdtest.MustHex("82 07 65 05"))
	b, _ := obd.DecodeMonitorStatus(obdtest.MustHex("00 07 E5 00"))
	r := obd.AggregateReadiness([]obd.MonitorStatus{a, b})
	want := []string{"misfire", "fuel_system", "components", "catalyst", "evap", "oxygen_sensor", "oxygen_sensor_heater", "egr_vvt"}
	if !reflect.DeepEqual(r.Supported, want) || !reflect.DeepEqual(r.Incomplete, []string{"catalyst", "evap"}) || r.Ready {
		t.Errorf("aggregate = %+v", r)
	}
	if r := obd.AggregateReadiness([]obd.MonitorStatus{b}); !r.Ready {
		t.Errorf("all complete but not ready: %+v", r)
	}
	if r := obd.AggregateReadiness(nil); r.Ready {
		t.Error("no ECU reported, yet ready")
	}
}

// elm327-obd.md §15 examples and formulas.
func TestDecodePID(t *testing.T) {
	for _, tc := range []struct {
		resp string
		want float64
		unit string
		text string
	}{
		{"41 0C 0C E4", 825, "r/min", ""},
		{"41 21 01 2C", 300, "km", ""},
		{"41 31 0B B8", 3000, "km", ""},
		{"41 A6 00 12 D6 87", 123456.7, "km", ""},
		{"41 05 7B", 83, "°C", ""},
		{"41 0D 00", 0, "km/h", ""},
		{"41 04 FF", 100, "%", ""},
		{"41 0F 28", 0, "°C", ""},
		{"41 10 01 F4", 5, "g/s", ""},
		{"41 1C 06", 6, "", "EOBD (Europe)"},
		{"41 1F 01 00", 256, "s", ""},
		{"41 2F 80", 128 * 100.0 / 255, "%", ""},
		{"41 42 30 D4", 12.5, "V", ""},
		{"41 44 80 00", 1, "", ""},
		{"41 46 3C", 20, "°C", ""},
		{"41 4D 00 3C", 60, "min", ""},
		{"41 4E 01 00", 256, "min", ""},
		{"41 5C 82", 90, "°C", ""},
		{"41 06 80", 0, "%", ""},
		{"41 0E 80", 0, "°", ""},
		{"41 62 7D", 0, "%", ""},
		{"41 23 00 64", 1000, "kPa", ""},
		{"41 01 82 07 65 05", 2, "", "MIL on, 2 DTC(s), 2 of 7 monitors incomplete"},
		{"41 41 00 07 65 05", 2, "", "this drive cycle: 2 of 7 enabled monitors not complete"},
		// PID 03: byte B is fuel system 2, 00 is "not present".
		{"41 03 02 00", 2, "", "closed loop"},
		{"41 03 02 04", 2, "", "system 1: closed loop; system 2: open loop (engine load or deceleration)"},
		{"41 03 01 10", 1, "", "system 1: open loop (insufficient temperature); system 2: closed loop (feedback fault)"},
		{"41 03 00 02", 0, "", "system 2: closed loop"},
		{"41 03 00 00", 0, "", "no fuel system reported"},
		{"41 03 03 00", 3, "", "fuel system status 03"},
		// PID 1C: the J1979 2017 list, and 29 read both ways.
		{"41 1C 01", 1, "", "OBD-II (CARB)"},
		{"41 1C 17", 23, "", "HD EOBD-I (heavy duty Euro OBD stage I without NOx control)"},
		{"41 1C 18", 24, "", "HD EOBD-I N (heavy duty Euro OBD stage I with NOx control)"},
		{"41 1C 19", 25, "", "HD EOBD-II (heavy duty Euro OBD stage II without NOx control)"},
		{"41 1C 1A", 26, "", "HD EOBD-II N (heavy duty Euro OBD stage II with NOx control)"},
		{"41 1C 1D", 29, "", "CN-OBD-6 (HJ 1238) / J1979: OBDBr-2 (Brazil OBD phase 2)"},
		{"41 1C 21", 33, "", "HD EOBD-IV (heavy duty Euro OBD stage VI)"},
		{"41 1C 16", 22, "", "OBD standard code 22 (reserved)"},
		{"41 1C 22", 34, "", "OBD standard code 34 (reserved)"},
		{"41 1C FB", 251, "", "OBD standard code 251 (not available)"},
		// Oxygen sensors present: PID 13 is 2 banks × 4 sensors, PID 1D 4 banks × 2.
		{"41 13 33", 4, "", "B1S1 B1S2 B2S1 B2S2"},
		{"41 13 80", 1, "", "B2S4"},
		{"41 1D 33", 4, "", "B1S1 B1S2 B3S1 B3S2"},
		{"41 1D 80", 1, "", "B4S2"},
		{"41 13 00", 0, "", "none"},
		// PIDs 14-1B: A/200 V, short term fuel trim (B-128)·100/128 %, B = FF not used.
		{"41 14 5A 80", 0.45, "V", "0.45 V, short term fuel trim 0 %"},
		{"41 15 5A 8A", 0.45, "V", "0.45 V, short term fuel trim 7.8 %"},
		{"41 16 14 76", 0.1, "V", "0.1 V, short term fuel trim -7.8 %"},
		{"41 1B FF FF", 1.275, "V", "1.275 V, not used for fuel trim"},
		{"41 18 00 00", 0, "V", "0 V, short term fuel trim -100 %"},
		// PIDs 24-2B: λ (256A+B)·2/65536, voltage (256C+D)·8/65536 V.
		{"41 24 80 00 80 00", 1, "", "λ 1, 4 V"},
		{"41 2B 7F 3B 1C 28", 32571 * 2.0 / 65536, "", "λ 0.994, 0.88 V"},
		// PIDs 34-3B: λ, current (256C+D)/256 - 128 mA.
		{"41 34 80 00 80 00", 1, "", "λ 1, 0 mA"},
		{"41 3B 83 12 7F 00", 0x8312 * 2.0 / 65536, "", "λ 1.024, -1 mA"},
		{"41 38 80 00 80 80", 1, "", "λ 1, 0.5 mA"},
		// PIDs 3C-3F: (256A+B)/10 - 40 °C.
		{"41 3C 11 94", 410, "°C", ""},
		{"41 3D 00 00", -40, "°C", ""},
		{"41 3E 02 58", 20, "°C", ""},
		{"41 3F FF FF", 6513.5, "°C", ""},
	} {
		b := obdtest.MustHex(tc.resp)
		v, err := obd.DecodePID(b[1], b[2:])
		if err != nil {
			t.Errorf("%s: %v", tc.resp, err)
			continue
		}
		if diff := v.Value - tc.want; diff > 1e-9 || diff < -1e-9 || v.Unit != tc.unit || v.Text != tc.text {
			t.Errorf("%s: got %v %q %q, want %v %q %q", tc.resp, v.Value, v.Unit, v.Text, tc.want, tc.unit, tc.text)
		}
	}
	if _, err := obd.DecodePID(0x0C, []byte{0x0C}); err == nil {
		t.Error("one byte accepted for engine speed")
	}
	if _, err := obd.DecodePID(0x83, []byte{1, 2, 3}); err == nil {
		t.Error("a PID without a formula decoded")
	}
}

// The elm327-obd.md §15 list must be in the table, with widths.
func TestPIDTable(t *testing.T) {
	for _, pid := range []byte{0x01, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x1C, 0x1F, 0x21, 0x23, 0x2F, 0x31, 0x33, 0x41, 0x42, 0x44, 0x46, 0x4D, 0x4E, 0x5C, 0x62, 0xA6} {
		p, ok := obd.LookupPID(pid)
		if !ok || p.Bytes == 0 || p.Name == "" || p.NameZH == "" {
			t.Errorf("PID %02X missing or incomplete: %+v", pid, p)
		}
	}
	prev := -1
	for _, p := range obd.PIDs() {
		if int(p.PID) <= prev {
			t.Errorf("PID table not in ascending order at %02X", p.PID)
		}
		prev = int(p.PID)
	}
	if obd.PIDWidth(0x20) != 4 || obd.PIDWidth(0x0C) != 2 || obd.PIDWidth(0x83) != 0 {
		t.Error("PIDWidth wrong")
	}
	// The oxygen-sensor and catalyst PIDs, with their widths and the sensor they name.
	for pid, want := range map[byte]struct {
		width int
		name  string
	}{
		0x13: {1, "oxygen sensors present (2 banks × 4)"}, 0x1D: {1, "oxygen sensors present (4 banks × 2)"},
		0x14: {2, "oxygen sensor 1 voltage, short term fuel trim"}, 0x1B: {2, "oxygen sensor 8 voltage, short term fuel trim"},
		0x24: {4, "oxygen sensor 1 equivalence ratio (λ), voltage"}, 0x2B: {4, "oxygen sensor 8 equivalence ratio (λ), voltage"},
		0x34: {4, "oxygen sensor 1 equivalence ratio (λ), current"}, 0x3B: {4, "oxygen sensor 8 equivalence ratio (λ), current"},
		0x3C: {2, "catalyst temperature bank 1 sensor 1"}, 0x3D: {2, "catalyst temperature bank 2 sensor 1"},
		0x3E: {2, "catalyst temperature bank 1 sensor 2"}, 0x3F: {2, "catalyst temperature bank 2 sensor 2"},
	} {
		p, ok := obd.LookupPID(pid)
		if !ok || p.Bytes != want.width || p.Name != want.name || p.NameZH == "" || obd.PIDWidth(pid) != want.width {
			t.Errorf("PID %02X: %+v, want %d bytes named %q", pid, p, want.width, want.name)
		}
	}
}

// elm327-obd.md §16 example.
func TestParseMultiPID(t *testing.T) {
	r := obdtest.CAN("7E8 10 0A 41 0C 0C E4 0D 00", "7E8 21 05 7B 11 26 00 00 00")[0]
	vals, err := obd.ParseMultiPID([]byte{0x0C, 0x0D, 0x05, 0x11}, r.Data)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, v := range vals {
		got = append(got, v.PID.String()+"="+v.String())
	}
	want := []string{"0C=825 r/min", "0D=0 km/h", "05=83 °C", "11=14.9 %"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// An ECU leaving out a PID it does not support.
	vals, err = obd.ParseMultiPID([]byte{0x0C, 0x0D, 0x05}, obdtest.MustHex("41 0C 0C E4 05 7B"))
	if err != nil || len(vals) != 2 || vals[1].Value != 83 {
		t.Errorf("subset: %v, %v", vals, err)
	}
	for _, bad := range []struct {
		pids []byte
		data string
	}{
		{[]byte{0x0C, 0x0D}, "41 0C 0C"},          // truncated
		{[]byte{0x0C, 0x83}, "41 0C 0C E4"},       // unknown width
		{[]byte{0x0C}, "41 0D 00"},                // not requested
		{[]byte{0x0C, 0x0D}, "41 0D 00 0C 0C E4"}, // out of order
		{[]byte{0x0C}, "42 0C 0C E4"},
	} {
		if _, err := obd.ParseMultiPID(bad.pids, obdtest.MustHex(bad.data)); err == nil {
			t.Errorf("ParseMultiPID(%X, %s) accepted", bad.pids, bad.data)
		}
	}
}

// Oxygen-sensor and catalyst PIDs split out of one multi-PID answer by their widths.
func TestO2SensorPosition(t *testing.T) {
	for _, tc := range []struct {
		pid          byte
		fourBanks    bool
		bank, sensor int
	}{
		{0x14, false, 1, 1}, {0x17, false, 1, 4}, {0x18, false, 2, 1}, {0x1B, false, 2, 4},
		{0x14, true, 1, 1}, {0x16, true, 2, 1}, {0x18, true, 3, 1}, {0x1B, true, 4, 2},
		{0x26, false, 1, 3}, {0x26, true, 2, 1}, {0x3B, false, 2, 4}, {0x3B, true, 4, 2},
	} {
		bank, sensor, ok := obd.O2SensorPosition(tc.pid, tc.fourBanks)
		if !ok || bank != tc.bank || sensor != tc.sensor {
			t.Errorf("PID %02X four banks %v: B%dS%d %v, want B%dS%d", tc.pid, tc.fourBanks, bank, sensor, ok, tc.bank, tc.sensor)
		}
	}
	for _, pid := range []byte{0x13, 0x1C, 0x1D, 0x23, 0x2C, 0x33, 0x3C} {
		if _, _, ok := obd.O2SensorPosition(pid, false); ok {
			t.Errorf("PID %02X is not an oxygen sensor reading", pid)
		}
	}
}

func TestParseMultiPIDOxygenSensors(t *testing.T) {
	vals, err := obd.ParseMultiPID([]byte{0x13, 0x14, 0x24, 0x34, 0x3C},
		obdtest.MustHex("41 13 33 14 5A 80 24 80 00 80 00 34 80 00 7F 00 3C 11 94"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vals {
		got = append(got, v.String())
	}
	want := []string{"B1S1 B1S2 B2S1 B2S2", "0.45 V, short term fuel trim 0 %", "λ 1, 4 V", "λ 1, -1 mA", "410 °C"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseSupported(t *testing.T) {
	// BE 1F A8 13: PIDs 01 03 04 05 06 07 0C 0D 0E 0F 10 11 13 15 1C 1F 20.
	pids, next, err := obd.ParseSupported(0x00, obdtest.MustHex("BE 1F A8 13"))
	if err != nil {
		t.Fatal(err)
	}
	want := obdtest.MustHex("01 03 04 05 06 07 0C 0D 0E 0F 10 11 13 15 1C 1F 20")
	if !reflect.DeepEqual(pids, want) || !next {
		t.Errorf("got %X next %v, want %X next true", pids, next, want)
	}
	pids, next, _ = obd.ParseSupported(0xA0, obdtest.MustHex("04 00 00 00"))
	if !reflect.DeepEqual(pids, []byte{0xA6}) || next {
		t.Errorf("A0: got %X next %v", pids, next)
	}
	// The last bitmap cannot announce a PID above FF.
	if _, next, _ := obd.ParseSupported(0xE0, obdtest.MustHex("00 00 00 01")); next {
		t.Error("E0 announced a next part")
	}
	if _, _, err := obd.ParseSupported(0, []byte{1, 2}); err == nil {
		t.Error("short bitmap accepted")
	}
}

// elm327-obd.md §6 and §14 examples.
func TestMode09(t *testing.T) {
	vin := obdtest.CAN("7E8 10 14 49 02 01 4C 4B 36", "7E8 21 41 44 43 45 31 35 50", "7E8 22 42 34 30 35 31 32 37")
	if got, err := obd.DecodeVIN(vin[0].Data); err != nil || got != "LK6ADCE15PB405127" {
		t.Errorf("CAN VIN = %q, %v", got, err)
	}
	if got, err := obd.DecodeVIN(append([]byte{0x49, 0x02}, "LK6ADCE15PB405127"...)); err != nil || got != "LK6ADCE15PB405127" {
		t.Errorf("VIN without item count = %q, %v", got, err)
	}
	legacy := obdtest.MustHex("49 02 01 00 00 00 4C 49 02 02 4B 36 41 44 49 02 03 43 45 31 35 49 02 04 50 42 34 30 49 02 05 35 31 32 37")
	if got, err := obd.DecodeVIN(legacy); err != nil || got != "LK6ADCE15PB405127" {
		t.Errorf("legacy VIN = %q, %v", got, err)
	}

	cal := obdtest.CAN(
		"7E8 10 13 49 04 01 43 4E 47", "7E8 21 36 45 43 4D 2D 32 32", "7E8 22 30 35 41 33 31 31 00",
		"7E9 10 13 49 04 01 54 43 55", "7E9 21 38 41 54 30 33 30 31", "7E9 22 2D 30 30 30 30 00 00",
	)
	wantCal := map[string]string{"7E8": "CNG6ECM-2205A311", "7E9": "TCU8AT0301-0000"}
	for _, r := range cal {
		ids, err := obd.DecodeCALIDs(r.Data)
		if err != nil || len(ids) != 1 || ids[0] != wantCal[r.ECU] {
			t.Errorf("CALID %s = %q, %v; want %q", r.ECU, ids, err, wantCal[r.ECU])
		}
	}

	cvn1 := obdtest.CAN("7E8 07 49 06 01 3A 9C 0F 5D")[0]
	if got, err := obd.DecodeCVNs(cvn1.Data); err != nil || !reflect.DeepEqual(got, []string{"3A9C0F5D"}) {
		t.Errorf("one CVN = %v, %v", got, err)
	}
	cvn2 := obdtest.CAN("7E8 10 0B 49 06 02 3A 9C 0F", "7E8 21 5D 00 0B 7E 21 AA AA")[0]
	if got, err := obd.DecodeCVNs(cvn2.Data); err != nil || !reflect.DeepEqual(got, []string{"3A9C0F5D", "000B7E21"}) {
		t.Errorf("two CVNs = %v, %v", got, err)
	}
	// A CVN ending in bytes a string strip would eat.
	if got, _ := obd.DecodeCVNs(obdtest.MustHex("49 06 01 20 0B 00 0B")); !reflect.DeepEqual(got, []string{"200B000B"}) {
		t.Errorf("CVN with whitespace bytes = %v", got)
	}

	name := obdtest.CAN("7E9 10 17 49 0A 01 54 43 4D", "7E9 21 00 2D 54 72 61 6E 73", "7E9 22 6D 69 73 73 69 6F 6E", "7E9 23 43 74 6C 55 55 55 55")[0]
	n, err := obd.DecodeECUName(name.Data)
	if err != nil || n.Acronym != "TCM" || n.Name != "TransmissionCtl" || n.String() != "TCM-TransmissionCtl" {
		t.Errorf("ECU name = %+v, %v", n, err)
	}

	u, err := obd.DecodeIUPR(0x08, obdtest.MustHex("49 08 04 00 64 01 2C 00 0A 00 14"))
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Items) != 4 || u.Items[0] != (obd.IUPRItem{Name: "OBDCOND", Count: 100}) || u.Items[1] != (obd.IUPRItem{Name: "IGNCNTR", Count: 300}) {
		t.Errorf("IUPR items %+v", u.Items)
	}
	if r := u.Ratios(); len(r) != 1 || r[0].Monitor != "CAT1" || r[0].Ratio != 0.5 {
		t.Errorf("IUPR ratios %+v", r)
	}
	u, _ = obd.DecodeIUPR(0x0B, obdtest.MustHex("49 0B 0A 00 01 00 02 00 03 00 04 00 05 00 06 00 07 00 08 00 09 00 0A"))
	if u.Items[8].Name != "PMCOMP" || u.Items[9].Name != "PMCOND" {
		t.Errorf("090B names %+v", u.Items)
	}

	for _, bad := range []struct {
		name string
		fn   func([]byte) error
		data string
	}{
		{"vin wrong pid", func(b []byte) error { _, err := obd.DecodeVIN(b); return err }, "49 04 01 4C 4B"},
		{"vin empty", func(b []byte) error { _, err := obd.DecodeVIN(b); return err }, "49 02 01 00 00"},
		{"calid short", func(b []byte) error { _, err := obd.DecodeCALIDs(b); return err }, "49 04 02 43 4E 47 36 45 43 4D 2D 32 32 30 35 41 33 31 31 41"},
		{"cvn short", func(b []byte) error { _, err := obd.DecodeCVNs(b); return err }, "49 06 02 3A 9C 0F 5D 00"},
		{"name short", func(b []byte) error { _, err := obd.DecodeECUName(b); return err }, "49 0A 01 54 43 4D"},
		{"iupr short", func(b []byte) error { _, err := obd.DecodeIUPR(0x08, b); return err }, "49 08 03 00 01 00 02"},
	} {
		if err := bad.fn(obdtest.MustHex(bad.data)); err == nil {
			t.Errorf("%s: accepted %s", bad.name, bad.data)
		}
	}
}

func TestCheckVIN(t *testing.T) {
	for _, v := range []string{"LK6ADCE15PB405127", "LJ8ECM2B2R1063348", "1M8GDM9AXKP042788"} {
		if warn, err := obd.CheckVIN(v); err != nil || warn != "" {
			t.Errorf("CheckVIN(%s) = %q, %v", v, warn, err)
		}
	}
	// A European-style VIN without a check digit: valid, with a warning.
	if warn, err := obd.CheckVIN("WVWZZZ1KZ8W123456"); err != nil || !strings.Contains(warn, "check digit") {
		t.Errorf("European VIN: warn %q, err %v", warn, err)
	}
	for _, bad := range []string{"LK6ADCE15PB40512", "LK6ADCE15PB4051277", "LK6ADCE15PB4O5127", "LK6ADCEI5PB405127", "LQ6ADCE15PB405127", "lk6adce15pb405127", "LK6ADCE15PB40512-"} {
		_, err := obd.CheckVIN(bad)
		var ve *obd.VINError
		if !errors.As(err, &ve) || ve.VIN != bad {
			t.Errorf("CheckVIN(%q) err = %v, want a VINError keeping the VIN", bad, err)
		}
	}
}

func TestVINCheckDigit(t *testing.T) {
	for vin, want := range map[string]byte{
		"LJ8ECM2B2R1063348": '2', // the reference example
		"1M8GDM9AXKP042788": 'X', // the textbook example of a check digit of 10
		"11111111111111111": '1',
	} {
		if got, err := obd.VINCheckDigit(vin); err != nil || got != want {
			t.Errorf("VINCheckDigit(%s) = %q, %v; want %q", vin, got, err, want)
		}
		if !obd.VINWellFormed(vin) || !obd.VINCheckDigitOK(vin) {
			t.Errorf("%s: not well formed or check digit not ok", vin)
		}
	}
	// Well formed, wrong check digit: a European VIN without one, and a Chinese VIN mistyped.
	for _, vin := range []string{"WVWZZZ1KZ8W123456", "LJ8ECM2B3R1063348"} {
		if !obd.VINWellFormed(vin) || obd.VINCheckDigitOK(vin) {
			t.Errorf("%s: well formed %v, check digit ok %v; want true, false", vin, obd.VINWellFormed(vin), obd.VINCheckDigitOK(vin))
		}
	}
	for _, vin := range []string{"LJ8ECM2B2R106334", "LJ8ECM2B2R1O63348", "lj8ecm2b2r1063348", ""} {
		if _, err := obd.VINCheckDigit(vin); err == nil || obd.VINWellFormed(vin) || obd.VINCheckDigitOK(vin) {
			t.Errorf("%q accepted as a VIN", vin)
		}
	}
}

func TestNRC(t *testing.T) {
	if obd.NRCName(0x11) != "service not supported" || obd.NRCName(0x22) != "conditions not correct" || obd.NRCName(0x21) != "busy, repeat request" {
		t.Error("NRC names wrong")
	}
	if !strings.Contains(obd.NRCName(0x99), "99") {
		t.Error("unknown NRC does not show its value")
	}
	r := obd.Response{ECU: "7E8", Data: obdtest.MustHex("7F 01 12")}
	if nrc, ok := r.Negative(); !ok || nrc != 0x12 {
		t.Error("Negative() missed 7F 01 12")
	}
}

func TestSupportedPIDs(t *testing.T) {
	pb := obdtest.New(t,
		obdtest.Ex("0100", obdtest.CAN("7E8 06 41 00 80 00 00 01", "7E9 06 41 00 08 00 00 00")...),
		obdtest.Ex("0120", obdtest.Resp("7E8", "41 20 00 00 00 01"), obdtest.Resp("7E9", "41 20 00")),
		obdtest.ExErr("0140", errors.New("elm327: BUS ERROR")),
	)
	sets, err := obd.SupportedPIDs(context.Background(), pb, 0x01)
	if err == nil || !strings.Contains(err.Error(), "BUS ERROR") || !strings.Contains(err.Error(), "bitmap 20 from ECU 7E9") {
		t.Errorf("err = %v, want the bus error and the malformed 7E9 part", err)
	}
	if got := sets["7E8"].HexList(); strings.Join(got, " ") != "01 20 40" {
		t.Errorf("7E8 = %v", got)
	}
	if got := sets["7E9"].HexList(); strings.Join(got, " ") != "05" {
		t.Errorf("7E9 = %v", got)
	}
	if err := pb.Close(); err != nil {
		t.Error(err)
	}
	// Every part announcing a next one: the walk ends at C0, it does not loop.
	script := []obdtest.Exchange{}
	for base := 0; base <= 0xC0; base += 0x20 {
		script = append(script, obdtest.Ex(fmt.Sprintf("09%02X", base), obdtest.Resp("7E8", fmt.Sprintf("49 %02X FF FF FF FF", base))))
	}
	pb = obdtest.New(t, script...)
	sets, err = obd.SupportedPIDs(context.Background(), pb, 0x09)
	if err != nil || len(sets["7E8"].List()) != 7*32 {
		t.Errorf("full chain: %v, %d PIDs", err, len(sets["7E8"].List()))
	}
	if err := pb.Close(); err != nil {
		t.Error(err)
	}
	if _, err := obd.SupportedPIDs(context.Background(), obdtest.New(t), 0x03); err == nil {
		t.Error("service 03 has no bitmaps")
	}
}
