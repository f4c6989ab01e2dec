package obd

import (
	"errors"
	"strings"
	"testing"
)

func TestCatalogueFile(t *testing.T) {
	m, err := parseCatalogue(dtcTSV)
	if err != nil {
		t.Fatalf("embedded catalogue: %v", err)
	}
	if len(m) < 500 {
		t.Errorf("catalogue has %d codes, want several hundred", len(m))
	}
	for code, txt := range m {
		// Only generic codes belong here: manufacturer texts would be wrong for most cars.
		if dtcCategory(code, true) == "" || strings.HasPrefix(dtcCategory(code, true), "manufacturer") {
			t.Errorf("%s is manufacturer-controlled, not a J2012 generic code", code)
		}
		if strings.ContainsAny(txt.EN, "\t\r") || strings.ContainsAny(txt.ZH, "\t\r") {
			t.Errorf("%s: control characters in text", code)
		}
		if !hasHan(txt.ZH) {
			t.Errorf("%s: Chinese text %q has no Chinese characters", code, txt.ZH)
		}
	}
	// Lines must be sorted and unique so a reviewer can diff the file.
	var prev string
	for _, line := range strings.Split(string(dtcTSV), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		code := strings.SplitN(line, "\t", 2)[0]
		if prevSys, sys := systemRank(prev), systemRank(code); prev != "" && (sys < prevSys || sys == prevSys && code <= prev) {
			t.Errorf("%s follows %s: keep the file sorted (P, C, B, U, then code)", code, prev)
		}
		prev = code
	}
}

func systemRank(code string) int {
	if code == "" {
		return -1
	}
	return strings.IndexByte("PCBU", code[0])
}

func hasHan(s string) bool {
	for _, r := range s {
		if r >= 0x4E00 && r <= 0x9FFF {
			return true
		}
	}
	return false
}

func TestParseCatalogueRejects(t *testing.T) {
	bad := "P0420\tCatalyst\t催化器\n" +
		"P0420\tagain\t再次\n" + // duplicate
		"P042\tshort\t短\n" + // malformed code
		"P0171\tonly two fields\n" +
		"P0172\t \t空\n" + // empty English
		"# comment\n\n" +
		"P0300\tMisfire\t失火\n"
	m, err := parseCatalogue([]byte(bad))
	var ce *CatalogueError
	if !errors.As(err, &ce) || len(ce.Problems) != 4 {
		t.Fatalf("err = %v, want 4 problems", err)
	}
	for _, want := range []string{"line 2: P0420 listed twice", `line 3: "P042" is not a DTC`, "line 4: want 3", "line 5: P0172"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if len(m) != 2 || m["P0420"].EN != "Catalyst" || m["P0300"].ZH != "失火" {
		t.Errorf("good rows not kept: %v", m)
	}
}

func TestDescribeDTC(t *testing.T) {
	for _, tc := range []struct{ code, lang, want string }{
		{"P0420", "en", "Catalyst System Efficiency Below Threshold (Bank 1)"},
		{"P0420", "zh", "催化器系统效率低于阈值（第1排）"},
		{"P0171", "en", "System Too Lean (Bank 1)"},
		{"P0171", "", "系统过稀（第1排）"},
		{"p0171", "zh-CN", "系统过稀（第1排）"},
		{"P0300", "en-US", "Random/Multiple Cylinder Misfire Detected"},
		{"U0100", "en", `Lost Communication With ECM/PCM "A"`},
		{"P1A0F", "en", "manufacturer-specific powertrain fault (see the manufacturer's service information)"},
		{"P1A0F", "zh", "制造商自定义动力系统故障（请查阅厂家维修资料）"},
		{"B1342", "en", "manufacturer-specific body fault (see the manufacturer's service information)"},
		{"C0035", "zh", "左前轮速传感器电路"},
		{"C0100", "zh", "通用底盘故障"},
		{"P3400", "en", "generic powertrain fault"},
		{"P3012", "en", "manufacturer-specific powertrain fault (see the manufacturer's service information)"},
		{"P0A80", "en", "generic powertrain fault: hybrid propulsion"},
		{"P03FF", "zh", "通用动力系统故障：点火系统或失火"},
		{"U0199", "en", "generic network fault: lost communication with a module"},
		{"U0499", "zh", "通用网络故障：从模块接收到无效数据"},
		{"X1234", "en", "not a valid trouble code"},
	} {
		if got := DescribeDTC(tc.code, tc.lang); got != tc.want {
			t.Errorf("DescribeDTC(%s, %q) = %q, want %q", tc.code, tc.lang, got, tc.want)
		}
	}
}
