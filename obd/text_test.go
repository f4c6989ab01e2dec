package obd_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/obd"
	"github.com/obdgw/obdgw/obd/obdtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestWriteTextGolden(t *testing.T) {
	clock := &fakeClock{t: t0}
	pb := obdtest.New(t, petrolScript()...)
	prof := obd.Profile{Version: "ELM327 v1.5", Protocol: "ISO 15765-4 (CAN 11/500)", ProtocolNum: "6", MultiPID: true}
	rep, err := obd.Scan(context.Background(), timed{obdtest.Profiled{Playback: pb, P: prof}, clock},
		obd.ScanOptions{Now: clock.now, ExpectedVIN: "LK6ADCE15PB405127"})
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"zh", "en"} {
		var b strings.Builder
		if err := rep.WriteText(&b, lang); err != nil {
			t.Fatal(err)
		}
		got := b.String()
		// What a mechanic must see, checked against the report rather than the golden file.
		for _, want := range []string{rep.VIN, rep.Protocol, "123456.7 km", "0.5 s",
			"P0420", obd.DescribeDTC("P0420", lang), "P0700", obd.DescribeDTC("P0700", lang),
			"ECU 7E9 (TCM-TransmissionCtl)", obd.MonitorLabel("catalyst", lang)} {
			if !strings.Contains(got, want) {
				t.Errorf("%s text lacks %q:\n%s", lang, want, got)
			}
		}
		path := filepath.Join("testdata", "petrol."+lang+".txt")
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./obd -run TestWriteTextGolden -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("%s text differs from %s (go test ./obd -run TestWriteTextGolden -update, then review the diff):\n%s", lang, path, got)
		}
	}
}

func TestWriteTextEmptyReport(t *testing.T) {
	var script []obdtest.Exchange
	// Without any bitmap the scan still asks the VIN, 0101, the DTCs, the rest of Mode 09
	// and the odometer and distance, once each.
	for _, r := range []string{"0100", "0900", "0902", "0101", "03", "07", "0A", "0904", "0906", "090A", "0908", "090B", "0131", "01A6"} {
		script = append(script, obdtest.ExErr(r, obd.ErrNoData))
	}
	pb := obdtest.New(t, script...)
	rep, err := obd.Scan(context.Background(), pb, obd.ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := rep.WriteText(&b, "en"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"(not reported)", "(unknown)", "none", "not reported"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("empty report text lacks %q:\n%s", want, b.String())
		}
	}
	if err := pb.Close(); err != nil {
		t.Error(err)
	}
}

// A VIN whose check digit does not compute is never printed as valid; one that does is.
func TestWriteTextVINCheckDigit(t *testing.T) {
	for _, tc := range []struct {
		vin, lang, want, never string
	}{
		{"WVWZZZ1KZ8W123456", "zh", "校验位错误（第9位应为 ", "有效"},
		{"WVWZZZ1KZ8W123456", "en", "check digit wrong (position 9 should be ", "valid"},
		{"LK6ADCE15PB405128", "zh", "校验位错误（第9位应为 7）", "有效"},
		{"LK6ADCE15PB405127", "zh", "LK6ADCE15PB405127  有效", "校验位"},
		{"LK6ADCE15PB405127", "en", "LK6ADCE15PB405127  valid", "check digit"},
		{"LK6ADCE15PB4O5127", "en", "INVALID", "check digit"},
	} {
		_, err := obd.CheckVIN(tc.vin)
		r := &obd.Report{VIN: tc.vin, VINWellFormed: err == nil, VINValid: obd.VINCheckDigitOK(tc.vin)}
		var b strings.Builder
		if err := r.WriteText(&b, tc.lang); err != nil {
			t.Fatal(err)
		}
		vinLine := strings.SplitN(b.String(), "\n", 2)[0]
		if !strings.Contains(vinLine, tc.want) || strings.Contains(vinLine, tc.never) {
			t.Errorf("%s %s: VIN line %q, want %q and never %q", tc.vin, tc.lang, vinLine, tc.want, tc.never)
		}
	}
}
