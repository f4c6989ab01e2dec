package obd

import (
	"bytes"
	_ "embed"
	"fmt"
	"strings"
	"sync"
)

// The SAE J2012 generic code texts, English and Chinese. Parsed on first use, not at start-up:
// a gateway that never looks up a code never pays for the table.
//
//go:embed dtcdata/dtc.tsv
var dtcTSV []byte

// DTCText is a catalogue entry.
type DTCText struct {
	EN string
	ZH string
}

var (
	catOnce sync.Once
	catMap  map[string]DTCText
	catErr  error
)

func catalogue() map[string]DTCText {
	catOnce.Do(func() { catMap, catErr = parseCatalogue(dtcTSV) })
	return catMap
}

// CatalogueError reports the rows of a DTC catalogue that are malformed or duplicated.
type CatalogueError struct{ Problems []string }

func (e *CatalogueError) Error() string {
	return "obd: DTC catalogue: " + strings.Join(e.Problems, "; ")
}

// parseCatalogue reads "code<TAB>en<TAB>zh" lines; blank lines and lines starting with # are
// skipped. Good rows are kept even when others are bad, so one typo does not blank the table.
func parseCatalogue(data []byte) (map[string]DTCText, error) {
	m := make(map[string]DTCText, 1024)
	var problems []string
	for i, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSuffix(string(line), "\r")
		if strings.TrimSpace(s) == "" || strings.HasPrefix(s, "#") {
			continue
		}
		f := strings.Split(s, "\t")
		switch {
		case len(f) != 3:
			problems = append(problems, fmt.Sprintf("line %d: want 3 tab-separated fields, have %d", i+1, len(f)))
			continue
		case !validDTCCode(f[0]):
			problems = append(problems, fmt.Sprintf("line %d: %q is not a DTC", i+1, f[0]))
			continue
		case strings.TrimSpace(f[1]) == "" || strings.TrimSpace(f[2]) == "" || f[1] != strings.TrimSpace(f[1]) || f[2] != strings.TrimSpace(f[2]):
			problems = append(problems, fmt.Sprintf("line %d: %s: empty text or stray spaces", i+1, f[0]))
			continue
		}
		if _, dup := m[f[0]]; dup {
			problems = append(problems, fmt.Sprintf("line %d: %s listed twice", i+1, f[0]))
			continue
		}
		m[f[0]] = DTCText{EN: f[1], ZH: f[2]}
	}
	if problems != nil {
		return m, &CatalogueError{Problems: problems}
	}
	return m, nil
}

// LookupDTC returns the catalogue entry of a code, if the catalogue has it.
func LookupDTC(code string) (DTCText, bool) {
	t, ok := catalogue()[strings.ToUpper(code)]
	return t, ok
}

// CatalogueSize is the number of codes in the catalogue.
func CatalogueSize() int { return len(catalogue()) }

// DescribeDTC describes a code in "en" or "zh" (the default, also for "zh-CN"). Codes not in
// the catalogue get a category text from the system letter and digits, so a workshop always
// sees at least "manufacturer-specific powertrain fault".
func DescribeDTC(code, lang string) string {
	code = strings.ToUpper(code)
	en := normLang(lang) == "en"
	if t, ok := LookupDTC(code); ok {
		if en {
			return t.EN
		}
		return t.ZH
	}
	return dtcCategory(code, en)
}

var systems = map[byte][2]string{
	'P': {"powertrain", "动力系统"},
	'C': {"chassis", "底盘"},
	'B': {"body", "车身"},
	'U': {"network", "网络通信"},
}

// p0Groups are the J2012 subgroups of generic powertrain codes by their third character.
var p0Groups = map[byte][2]string{
	'0': {"fuel and air metering, auxiliary emission controls", "燃油与空气计量、辅助排放控制"},
	'1': {"fuel and air metering", "燃油与空气计量"},
	'2': {"fuel and air metering (injector circuit)", "燃油与空气计量（喷油器电路）"},
	'3': {"ignition system or misfire", "点火系统或失火"},
	'4': {"auxiliary emission controls", "辅助排放控制"},
	'5': {"vehicle speed, idle control and auxiliary inputs", "车速、怠速控制及辅助输入"},
	'6': {"computer and output circuits", "控制单元及输出电路"},
	'7': {"transmission", "变速器"},
	'8': {"transmission", "变速器"},
	'9': {"transmission", "变速器"},
	'A': {"hybrid propulsion", "混合动力系统"},
}

func dtcCategory(code string, en bool) string {
	if !validDTCCode(code) {
		if en {
			return "not a valid trouble code"
		}
		return "无效故障码"
	}
	sys := systems[code[0]]
	manufacturer := false
	switch code[0] {
	case 'P':
		// J2012: P1xxx and P30xx-P33xx are manufacturer-controlled, the rest generic.
		manufacturer = code[1] == '1' || code[1] == '3' && code[2] <= '3'
	default:
		manufacturer = code[1] == '1' || code[1] == '2'
	}
	if manufacturer {
		if en {
			return "manufacturer-specific " + sys[0] + " fault (see the manufacturer's service information)"
		}
		return "制造商自定义" + sys[1] + "故障（请查阅厂家维修资料）"
	}
	if code[0] == 'P' && code[1] == '0' {
		if g, ok := p0Groups[code[2]]; ok {
			if en {
				return "generic powertrain fault: " + g[0]
			}
			return "通用动力系统故障：" + g[1]
		}
	}
	if code[0] == 'U' && code[1] == '0' {
		switch code[2] {
		case '1', '2':
			if en {
				return "generic network fault: lost communication with a module"
			}
			return "通用网络故障：与模块通信丢失"
		case '4':
			if en {
				return "generic network fault: invalid data received from a module"
			}
			return "通用网络故障：从模块接收到无效数据"
		}
	}
	if en {
		return "generic " + sys[0] + " fault"
	}
	return "通用" + sys[1] + "故障"
}

// normLang maps "en", "en-US", … to "en" and everything else (including "") to "zh": the
// workshops this runs in read Chinese first.
func normLang(lang string) string {
	if strings.HasPrefix(strings.ToLower(lang), "en") {
		return "en"
	}
	return "zh"
}
