package obd_test

import (
	"context"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/obd"
	"github.com/obdgw/obdgw/obd/obdtest"
)

// Every decoder of bytes from a car must survive anything without panicking: a clone adapter or
// a broken ECU can deliver any byte sequence.

func FuzzParseDTCs(f *testing.F) {
	for _, s := range []string{"43 02 04 20 01 71", "43 04 04 20 01 71 03 00 24 63", "43 00", "43 04 20 01 71 03 00",
		"43 04 20 01 71 03 00 43 24 63 00 00 00 00", "7F 03 11", "43", "43 FF 01", "47 01 07 00"} {
		f.Add(byte(0x03), "7E8", obdtest.MustHex(s))
		f.Add(byte(0x03), "10", obdtest.MustHex(s))
		f.Add(byte(0x03), "", obdtest.MustHex(s))
	}
	f.Fuzz(func(t *testing.T, service byte, ecu string, data []byte) {
		for _, form := range []obd.DTCForm{obd.FormAuto, obd.FormCAN, obd.FormLegacy} {
			dtcs, _ := obd.ParseDTCs(service, obd.Response{ECU: ecu, Data: data}, form)
			for _, d := range dtcs {
				if len(d.Code) != 5 || !strings.ContainsRune("PCBU", rune(d.Code[0])) || d.ECU != ecu {
					t.Fatalf("bad DTC %+v from % X", d, data)
				}
				_ = obd.DescribeDTC(d.Code, "zh")
			}
		}
	})
}

func FuzzMonitorStatus(f *testing.F) {
	for _, s := range []string{"82 07 65 05", "00 07 E5 00", "00 0F EB 40", "FF FF FF FF", "00", ""} {
		f.Add(obdtest.MustHex(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := obd.DecodeMonitorStatus(data)
		if err != nil {
			return
		}
		if m.DTCCount > 127 || len(m.Incomplete()) > len(m.Supported()) {
			t.Fatalf("impossible status %+v from % X", m, data)
		}
		_ = obd.AggregateReadiness([]obd.MonitorStatus{m, m})
	})
}

func FuzzMode09(f *testing.F) {
	for _, s := range []string{
		"49 02 01 4C 4B 36 41 44 43 45 31 35 50 42 34 30 35 31 32 37",
		"49 02 01 00 00 00 4C 49 02 02 4B 36 41 44 49 02 03 43 45 31 35 49 02 04 50 42 34 30 49 02 05 35 31 32 37",
		"49 04 01 43 4E 47 36 45 43 4D 2D 32 32 30 35 41 33 31 31",
		"49 06 02 3A 9C 0F 5D 00 0B 7E 21",
		"49 0A 01 54 43 4D 00 2D 54 72 61 6E 73 6D 69 73 73 69 6F 6E 43 74 6C",
		"49 08 02 00 01 00 02", "49 0B FF 00", "49", "",
	} {
		f.Add(obdtest.MustHex(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if vin, err := obd.DecodeVIN(data); err == nil {
			_, _ = obd.CheckVIN(vin)
		}
		_, _ = obd.DecodeCALIDs(data)
		if cvns, _ := obd.DecodeCVNs(data); len(cvns) > 0 {
			for _, c := range cvns {
				if len(c) != 8 {
					t.Fatalf("CVN %q is not 8 hex digits", c)
				}
			}
		}
		_, _ = obd.DecodeECUName(data)
		for _, pid := range []byte{0x08, 0x0B} {
			if u, err := obd.DecodeIUPR(pid, data); err == nil {
				_ = u.Ratios()
			}
		}
	})
}

func FuzzParseMultiPID(f *testing.F) {
	f.Add([]byte{0x0C, 0x0D, 0x05, 0x11}, obdtest.MustHex("41 0C 0C E4 0D 00 05 7B 11 26 00 00 00"))
	f.Add([]byte{0x1C, 0x21, 0x31, 0x4D, 0x4E, 0xA6}, obdtest.MustHex("41 1C 06 21 00 0A 31 0B B8 4D 00 1E 4E 01 2C A6 00 12 D6 87"))
	f.Add([]byte{0x00, 0x20}, obdtest.MustHex("41 00 BE 1F A8 13 20 80 00 00 01"))
	f.Add([]byte{0x0C}, obdtest.MustHex("41"))
	f.Add([]byte{0x13, 0x14, 0x15, 0x24, 0x34, 0x3C}, obdtest.MustHex("41 13 33 14 5A 80 15 B4 FF 24 80 00 80 00 34 80 00 7F 00 3C 11 94"))
	f.Fuzz(func(t *testing.T, pids, data []byte) {
		vals, err := obd.ParseMultiPID(pids, data)
		if err == nil && len(vals) > len(pids) {
			t.Fatalf("%d values for %d PIDs", len(vals), len(pids))
		}
		if len(data) > 1 {
			_, _ = obd.DecodePID(data[0], data[1:])
		}
	})
}

// FuzzDecodePID runs every formula of the Mode 01 table on the same bytes: enough bytes always
// decode, too few are an error, and what decodes can be printed.
func FuzzDecodePID(f *testing.F) {
	for _, s := range []string{"02 04", "00 07 65 05", "33", "5A 8A", "FF FF", "80 00 80 00", "7F 3B 1C 28", "11 94", "1D", "", "00"} {
		f.Add(obdtest.MustHex(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range obd.PIDs() {
			v, err := obd.DecodePID(p.PID, data)
			if (err != nil) != (len(data) < p.Bytes) {
				t.Fatalf("PID %02X on % X: err %v with %d of %d bytes", p.PID, data, err, len(data), p.Bytes)
			}
			if err != nil {
				continue
			}
			if v.Value != v.Value || v.String() == "" || strings.Contains(v.String(), "NaN") {
				t.Fatalf("PID %02X on % X: value %v, text %q", p.PID, data, v.Value, v.String())
			}
		}
	})
}

func FuzzParseSupported(f *testing.F) {
	f.Add(byte(0x00), obdtest.MustHex("BE 1F A8 13"))
	f.Add(byte(0xE0), obdtest.MustHex("FF FF FF FF"))
	f.Add(byte(0x20), []byte{1})
	f.Fuzz(func(t *testing.T, base byte, bitmap []byte) {
		pids, _, err := obd.ParseSupported(base, bitmap)
		if err != nil {
			return
		}
		prev := int(base)
		for _, p := range pids {
			if int(p) <= prev {
				t.Fatalf("PID %02X not above %02X (base %02X)", p, prev, base)
			}
			prev = int(p)
		}
	})
}

// FuzzScan answers every request of a full scan with fuzzed bytes: the plan must finish, never
// loop and never panic, whatever the car says.
func FuzzScan(f *testing.F) {
	f.Add(obdtest.MustHex("41 00 FF FF FF FF"), obdtest.MustHex("43 02 04 20 01 71"), true)
	f.Add(obdtest.MustHex("49 00 FF FF FF FF"), obdtest.MustHex("41 01 82 07 65 05"), false)
	f.Add([]byte{}, []byte{0x7F}, true)
	f.Fuzz(func(t *testing.T, a, b []byte, multi bool) {
		ad := &fuzzAdapter{a: a, b: b, prof: obd.Profile{ProtocolNum: "6", MultiPID: multi}}
		rep, err := obd.Scan(context.Background(), ad, obd.ScanOptions{})
		if err != nil || rep == nil {
			t.Fatalf("scan failed on fuzzed answers: %v", err)
		}
		if ad.n > 400 {
			t.Fatalf("%d requests: the plan must stay bounded", ad.n)
		}
		var sb strings.Builder
		if err := rep.WriteText(&sb, "zh"); err != nil {
			t.Fatal(err)
		}
	})
}

type fuzzAdapter struct {
	a, b []byte
	prof obd.Profile
	n    int
}

func (f *fuzzAdapter) Profile() obd.Profile { return f.prof }

// Query answers with the reply header the request expects followed by fuzzed bytes, from two
// ECUs, so the decoders behind each step see plausible-looking garbage.
func (f *fuzzAdapter) Query(_ context.Context, req obd.Request) ([]obd.Response, error) {
	f.n++
	head := append([]byte{req.Service | 0x40}, req.Data...)
	if req.Service == 0x03 || req.Service == 0x07 || req.Service == 0x0A {
		head = head[:1]
	}
	return []obd.Response{
		{ECU: "7E8", Data: append(append([]byte(nil), head...), f.a...)},
		{ECU: "7E9", Data: append([]byte(nil), f.b...)},
	}, nil
}
