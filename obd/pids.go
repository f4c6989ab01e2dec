package obd

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Value is one decoded PID reading.
type Value struct {
	ECU   string  `json:"ecu,omitempty"`
	PID   HexByte `json:"pid"`
	Name  string  `json:"name"`
	Unit  string  `json:"unit,omitempty"`
	Value float64 `json:"value"`
	// Text carries the meaning of enumerated PIDs ("EOBD (Europe)") and summaries of bit fields.
	Text string `json:"text,omitempty"`
}

// String renders the value for people: "825 r/min", "14.9 %", "EOBD (Europe)".
func (v Value) String() string {
	if v.Text != "" {
		return v.Text
	}
	s := strconv.FormatFloat(v.Value, 'f', -1, 64)
	if v.Value != float64(int64(v.Value)) {
		s = strconv.FormatFloat(v.Value, 'f', 2, 64)
		// Trim trailing zeros of the fixed-point form ("14.90" → "14.9").
		for len(s) > 0 && s[len(s)-1] == '0' {
			s = s[:len(s)-1]
		}
	}
	if v.Unit == "" {
		return s
	}
	return s + " " + v.Unit
}

// PIDInfo describes a Mode 01 PID: its name, unit, data width and formula.
type PIDInfo struct {
	PID    byte
	Name   string
	NameZH string
	Unit   string
	Bytes  int
	decode func(b []byte) (float64, string)
}

// Decode applies the formula to exactly Bytes data bytes (after the 41 PID prefix).
func (p PIDInfo) Decode(data []byte) (Value, error) {
	if len(data) < p.Bytes {
		return Value{}, decodeErr(fmt.Sprintf("PID %02X (%s)", p.PID, p.Name), data, "need %d data bytes, have %d", p.Bytes, len(data))
	}
	v, text := p.decode(data[:p.Bytes])
	return Value{PID: HexByte(p.PID), Name: p.Name, Unit: p.Unit, Value: v, Text: text}, nil
}

func u8(b []byte) float64  { return float64(b[0]) }
func u16(b []byte) float64 { return float64(uint16(b[0])<<8 | uint16(b[1])) }
func pct(b []byte) (float64, string) {
	return float64(b[0]) * 100 / 255, ""
}
func temp(b []byte) (float64, string) { return float64(b[0]) - 40, "" }
func trim(b []byte) (float64, string) { return (float64(b[0]) - 128) * 100 / 128, "" }
func raw8(b []byte) (float64, string) { return u8(b), "" }
func raw16(b []byte) (float64, string) {
	return u16(b), ""
}
func torque(b []byte) (float64, string) { return float64(b[0]) - 125, "" }

func monitorSummary(b []byte) (float64, string) {
	m, err := DecodeMonitorStatus(b)
	if err != nil {
		return 0, ""
	}
	mil := "MIL off"
	if m.MIL {
		mil = "MIL on"
	}
	return float64(m.DTCCount), fmt.Sprintf("%s, %d DTC(s), %d of %d monitors incomplete", mil, m.DTCCount, len(m.Incomplete()), len(m.Supported()))
}

// driveCycleSummary decodes PID 41. Byte A is reserved (J1979; Wikipedia "OBD-II PIDs",
// Service 01 PID 41: "the first byte is always zero"), so it shows no MIL or DTC count; B, C
// and D are PID 01's bits read as "enabled this drive cycle" and "not complete this drive
// cycle". The value is the number of enabled monitors not complete.
func driveCycleSummary(b []byte) (float64, string) {
	m, err := DecodeMonitorStatus([]byte{0, b[1], b[2], b[3]})
	if err != nil {
		return 0, ""
	}
	n := len(m.Incomplete())
	return float64(n), fmt.Sprintf("this drive cycle: %d of %d enabled monitors not complete", n, len(m.Supported()))
}

// fuelSystems decodes PID 03: byte A is fuel system 1, byte B fuel system 2, and 00 means the
// system is not present (J1979; Wikipedia "OBD-II PIDs", Service 01 PID 03). Most cars have one
// system, so system 2 is shown only when present. The value is byte A.
func fuelSystems(b []byte) (float64, string) {
	status := func(c byte) string {
		if s, ok := fuelSystemStatus[c]; ok {
			return s
		}
		return fmt.Sprintf("fuel system status %02X", c)
	}
	switch {
	case b[0] == 0 && b[1] == 0:
		return 0, "no fuel system reported"
	case b[1] == 0:
		return u8(b), status(b[0])
	case b[0] == 0:
		return 0, "system 2: " + status(b[1])
	}
	return u8(b), "system 1: " + status(b[0]) + "; system 2: " + status(b[1])
}

var fuelSystemStatus = map[byte]string{
	0x01: "open loop (insufficient temperature)",
	0x02: "closed loop",
	0x04: "open loop (engine load or deceleration)",
	0x08: "open loop (system failure)",
	0x10: "closed loop (feedback fault)",
}

// obdStandards are the PID 1C values of SAE J1979 (2017), as listed on Wikipedia "OBD-II PIDs"
// (Service 01 PID 1C) and in python-OBD's OBD_COMPLIANCE table: 1-13, 17-21, 23-26 and 28-33;
// 14-16, 22, 27 and 34-250 are reserved, 251-255 not available for assignment (SAE J1939
// special meanings). 29 is Brazil's OBDBr-2 in J1979 but CN-OBD-6 in HJ 1238 (China's I/M
// data specification, im-emission.md), so a Chinese car reporting 29 means China 6: both
// readings are shown. Unlisted values render by obdStandard.
var obdStandards = map[byte]string{
	1: "OBD-II (CARB)", 2: "OBD (EPA)", 3: "OBD and OBD-II", 4: "OBD-I", 5: "not OBD compliant",
	6: "EOBD (Europe)", 7: "EOBD and OBD-II", 8: "EOBD and OBD", 9: "EOBD, OBD and OBD-II",
	10: "JOBD (Japan)", 11: "JOBD and OBD-II", 12: "JOBD and EOBD", 13: "JOBD, EOBD and OBD-II",
	17: "EMD (engine manufacturer diagnostics)", 18: "EMD+ (engine manufacturer diagnostics enhanced)",
	19: "HD OBD-C (heavy duty OBD, child/partial)", 20: "HD OBD (heavy duty OBD)", 21: "WWH OBD (world wide harmonized OBD)",
	23: "HD EOBD-I (heavy duty Euro OBD stage I without NOx control)",
	24: "HD EOBD-I N (heavy duty Euro OBD stage I with NOx control)",
	25: "HD EOBD-II (heavy duty Euro OBD stage II without NOx control)",
	26: "HD EOBD-II N (heavy duty Euro OBD stage II with NOx control)",
	28: "OBDBr-1 (Brazil OBD phase 1)", 29: "CN-OBD-6 (HJ 1238) / J1979: OBDBr-2 (Brazil OBD phase 2)",
	30: "KOBD (Korea)", 31: "IOBD I (India)", 32: "IOBD II (India)",
	33: "HD EOBD-IV (heavy duty Euro OBD stage VI)",
}

func obdStandard(b []byte) (float64, string) {
	c := b[0]
	if s, ok := obdStandards[c]; ok {
		return u8(b), s
	}
	if c >= 251 {
		return u8(b), fmt.Sprintf("OBD standard code %d (not available)", c)
	}
	return u8(b), fmt.Sprintf("OBD standard code %d (reserved)", c)
}

var fuelTypes = map[byte]string{
	0: "not available", 1: "gasoline", 2: "methanol", 3: "ethanol", 4: "diesel", 5: "LPG", 6: "CNG",
	7: "propane", 8: "electric", 9: "bi-fuel gasoline", 10: "bi-fuel methanol", 11: "bi-fuel ethanol",
	12: "bi-fuel LPG", 13: "bi-fuel CNG", 14: "bi-fuel propane", 15: "bi-fuel electricity",
	16: "bi-fuel electric and combustion", 17: "hybrid gasoline", 18: "hybrid ethanol",
	19: "hybrid diesel", 20: "hybrid electric", 21: "hybrid electric and combustion",
	22: "hybrid regenerative", 23: "bi-fuel diesel",
}

// Oxygen sensors and catalyst temperatures. Formulas per SAE J1979 as given on Wikipedia
// "OBD-II PIDs" (Service 01, PIDs 13-1D, 24-2B, 34-3F) and in python-OBD's obd/decoders.py
// (sensor_voltage, sensor_voltage_big, current_centered, catalyst_temp); see elm327-obd.md §15.
//
// PIDs 14-1B, 24-2B and 34-3B each name one of eight sensors. Which bank and position a sensor
// is depends on the car's layout: PID 13 (2 banks × 4 sensors: sensor n is bank (n-1)/4+1,
// position (n-1)%4+1) or PID 1D (4 banks × 2 sensors: bank (n-1)/2+1, position (n-1)%2+1).

// o2Narrow decodes PIDs 14-1B: A/200 V, and B the short term fuel trim (B-128)·100/128 % of
// the sensor; B = FF means the sensor is not used in the trim calculation.
func o2Narrow(b []byte) (float64, string) {
	v := float64(b[0]) / 200
	if b[1] == 0xFF {
		return v, num(v, 3) + " V, not used for fuel trim"
	}
	return v, num(v, 3) + " V, short term fuel trim " + num(trimOf(b[1]), 1) + " %"
}

func trimOf(c byte) float64 { return (float64(c) - 128) * 100 / 128 }

// lambdaOf is the equivalence ratio (256A+B)·2/65536 of PIDs 24-2B, 34-3B and 44.
func lambdaOf(b []byte) float64 { return u16(b) * 2 / 65536 }

// o2WideVoltage decodes PIDs 24-2B: λ from A B, and the sensor voltage (256C+D)·8/65536 V.
func o2WideVoltage(b []byte) (float64, string) {
	l := lambdaOf(b)
	return l, "λ " + num(l, 3) + ", " + num(u16(b[2:])*8/65536, 3) + " V"
}

// o2WideCurrent decodes PIDs 34-3B: λ from A B, and the sensor current (256C+D)/256 - 128 mA.
func o2WideCurrent(b []byte) (float64, string) {
	l := lambdaOf(b)
	return l, "λ " + num(l, 3) + ", " + num(u16(b[2:])/256-128, 3) + " mA"
}

// o2Present decodes PID 13 (fourBanks false: A0-A3 bank 1 sensors 1-4, A4-A7 bank 2 sensors
// 1-4) and PID 1D (fourBanks true: A0-A7 = B1S1, B1S2, B2S1, B2S2, B3S1, B3S2, B4S1, B4S2). The
// value is the number of sensors present, the text lists them ("B1S1 B1S2 B2S1").
func o2Present(fourBanks bool) func(b []byte) (float64, string) {
	return func(b []byte) (float64, string) {
		var list []string
		for bit := 0; bit < 8; bit++ {
			if b[0]&(1<<bit) == 0 {
				continue
			}
			bank, pos := bit/4+1, bit%4+1
			if fourBanks {
				bank, pos = bit/2+1, bit%2+1
			}
			list = append(list, fmt.Sprintf("B%dS%d", bank, pos))
		}
		if len(list) == 0 {
			return 0, "none"
		}
		return float64(len(list)), strings.Join(list, " ")
	}
}

// catalystTemp decodes PIDs 3C-3F: (256A+B)/10 - 40 °C.
func catalystTemp(b []byte) (float64, string) { return u16(b)/10 - 40, "" }

// num formats v with at most prec decimals, without trailing zeros ("0.45", "-3.1", "1").
func num(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// O2SensorPosition names the bank and sensor that an oxygen-sensor PID (14-1B, 24-2B, 34-3B)
// reads, in the layout the ECU declares: fourBanks when it supports PID 1D (4 banks × 2
// sensors), else PID 13's 2 banks × 4. ok is false for any other PID.
func O2SensorPosition(pid byte, fourBanks bool) (bank, sensor int, ok bool) {
	var n int
	switch {
	case pid >= 0x14 && pid <= 0x1B:
		n = int(pid - 0x14)
	case pid >= 0x24 && pid <= 0x2B:
		n = int(pid - 0x24)
	case pid >= 0x34 && pid <= 0x3B:
		n = int(pid - 0x34)
	default:
		return 0, 0, false
	}
	if fourBanks {
		return n/2 + 1, n%2 + 1, true
	}
	return n/4 + 1, n%4 + 1, true
}

// o2PIDs builds the eight entries of one oxygen-sensor PID range.
func o2PIDs(first byte, name, nameZH, unit string, bytes int, decode func([]byte) (float64, string)) []PIDInfo {
	out := make([]PIDInfo, 0, 8)
	for n := 1; n <= 8; n++ {
		out = append(out, PIDInfo{PID: first + byte(n-1), Name: fmt.Sprintf("oxygen sensor %d %s", n, name),
			NameZH: fmt.Sprintf("氧传感器%d %s", n, nameZH), Unit: unit, Bytes: bytes, decode: decode})
	}
	return out
}

func enum(table map[byte]string, what string) func(b []byte) (float64, string) {
	return func(b []byte) (float64, string) {
		if s, ok := table[b[0]]; ok {
			return u8(b), s
		}
		return u8(b), fmt.Sprintf("%s code %d", what, b[0])
	}
}

// mode01 is the PID table, in PID order. Formulas marked verified in elm327-obd.md §15 are
// tested against its examples; the others follow J1979 (inferred).
var mode01 = slices.Concat([]PIDInfo{
	{0x01, "monitor status since DTCs cleared", "清码后监测状态", "", 4, monitorSummary},
	{0x03, "fuel system status", "燃油系统状态", "", 2, fuelSystems},
	{0x04, "calculated engine load", "计算负荷", "%", 1, pct},
	{0x05, "engine coolant temperature", "冷却液温度", "°C", 1, temp},
	{0x06, "short term fuel trim bank 1", "短期燃油修正 第1列", "%", 1, trim},
	{0x07, "long term fuel trim bank 1", "长期燃油修正 第1列", "%", 1, trim},
	{0x08, "short term fuel trim bank 2", "短期燃油修正 第2列", "%", 1, trim},
	{0x09, "long term fuel trim bank 2", "长期燃油修正 第2列", "%", 1, trim},
	{0x0A, "fuel pressure (gauge)", "燃油压力（表压）", "kPa", 1, func(b []byte) (float64, string) { return 3 * u8(b), "" }},
	{0x0B, "intake manifold absolute pressure", "进气歧管绝对压力", "kPa", 1, raw8},
	{0x0C, "engine speed", "发动机转速", "r/min", 2, func(b []byte) (float64, string) { return u16(b) / 4, "" }},
	{0x0D, "vehicle speed", "车速", "km/h", 1, raw8},
	{0x0E, "timing advance", "点火提前角", "°", 1, func(b []byte) (float64, string) { return u8(b)/2 - 64, "" }},
	{0x0F, "intake air temperature", "进气温度", "°C", 1, temp},
	{0x10, "mass air flow", "空气流量", "g/s", 2, func(b []byte) (float64, string) { return u16(b) / 100, "" }},
	{0x11, "throttle position", "节气门位置", "%", 1, pct},
	{0x13, "oxygen sensors present (2 banks × 4)", "氧传感器位置（2列×4）", "", 1, o2Present(false)},
}, o2PIDs(0x14, "voltage, short term fuel trim", "电压、短期燃油修正", "V", 2, o2Narrow), []PIDInfo{
	{0x1C, "OBD standard", "OBD 标准", "", 1, obdStandard},
	{0x1D, "oxygen sensors present (4 banks × 2)", "氧传感器位置（4列×2）", "", 1, o2Present(true)},
	{0x1F, "run time since engine start", "发动机启动后运行时间", "s", 2, raw16},
	{0x21, "distance travelled with MIL on", "MIL 点亮后行驶距离", "km", 2, raw16},
	{0x22, "fuel rail pressure (relative to manifold)", "油轨压力（相对歧管）", "kPa", 2, func(b []byte) (float64, string) { return u16(b) * 0.079, "" }},
	{0x23, "fuel rail gauge pressure", "油轨压力（表压）", "kPa", 2, func(b []byte) (float64, string) { return u16(b) * 10, "" }},
}, o2PIDs(0x24, "equivalence ratio (λ), voltage", "当量比 (λ)、电压", "", 4, o2WideVoltage), []PIDInfo{
	{0x2C, "commanded EGR", "EGR 指令开度", "%", 1, pct},
	{0x2E, "commanded evaporative purge", "蒸发清污指令", "%", 1, pct},
	{0x2F, "fuel tank level", "燃油液位", "%", 1, pct},
	{0x30, "warm-ups since DTCs cleared", "清码后暖机次数", "", 1, raw8},
	{0x31, "distance travelled since DTCs cleared", "清码后行驶距离", "km", 2, raw16},
	{0x33, "barometric pressure", "大气压力", "kPa", 1, raw8},
}, o2PIDs(0x34, "equivalence ratio (λ), current", "当量比 (λ)、电流", "", 4, o2WideCurrent), []PIDInfo{
	{0x3C, "catalyst temperature bank 1 sensor 1", "催化器温度 第1列 传感器1", "°C", 2, catalystTemp},
	{0x3D, "catalyst temperature bank 2 sensor 1", "催化器温度 第2列 传感器1", "°C", 2, catalystTemp},
	{0x3E, "catalyst temperature bank 1 sensor 2", "催化器温度 第1列 传感器2", "°C", 2, catalystTemp},
	{0x3F, "catalyst temperature bank 2 sensor 2", "催化器温度 第2列 传感器2", "°C", 2, catalystTemp},
	{0x41, "monitor status this drive cycle", "本驾驶循环监测状态", "", 4, driveCycleSummary},
	{0x42, "control module voltage", "控制模块电压", "V", 2, func(b []byte) (float64, string) { return u16(b) / 1000, "" }},
	{0x43, "absolute load value", "绝对负荷", "%", 2, func(b []byte) (float64, string) { return u16(b) * 100 / 255, "" }},
	{0x44, "commanded equivalence ratio (lambda)", "指令当量比 (λ)", "", 2, func(b []byte) (float64, string) { return lambdaOf(b), "" }},
	{0x45, "relative throttle position", "相对节气门位置", "%", 1, pct},
	{0x46, "ambient air temperature", "环境温度", "°C", 1, temp},
	{0x47, "absolute throttle position B", "节气门绝对位置 B", "%", 1, pct},
	{0x49, "accelerator pedal position D", "加速踏板位置 D", "%", 1, pct},
	{0x4C, "commanded throttle actuator", "节气门执行器指令", "%", 1, pct},
	{0x4D, "time run with MIL on", "MIL 点亮后运行时间", "min", 2, raw16},
	{0x4E, "time since DTCs cleared", "清码后时间", "min", 2, raw16},
	{0x51, "fuel type", "燃料类型", "", 1, enum(fuelTypes, "fuel type")},
	{0x5C, "engine oil temperature", "机油温度", "°C", 1, temp},
	{0x5E, "engine fuel rate", "发动机燃油消耗率", "L/h", 2, func(b []byte) (float64, string) { return u16(b) / 20, "" }},
	{0x61, "driver's demand engine torque", "驾驶员需求扭矩", "%", 1, torque},
	{0x62, "actual engine torque", "实际发动机扭矩", "%", 1, torque},
	{0x63, "engine reference torque", "发动机参考扭矩", "N·m", 2, raw16},
	{0xA6, "odometer", "总里程", "km", 4, func(b []byte) (float64, string) {
		return float64(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])) / 10, ""
	}},
})

var mode01Index = func() map[byte]int {
	m := make(map[byte]int, len(mode01))
	for i, p := range mode01 {
		m[p.PID] = i
	}
	return m
}()

// LookupPID returns the table entry of a Mode 01 PID.
func LookupPID(pid byte) (PIDInfo, bool) {
	i, ok := mode01Index[pid]
	if !ok {
		return PIDInfo{}, false
	}
	return mode01[i], true
}

// PIDs returns the Mode 01 PID table in PID order.
func PIDs() []PIDInfo { return append([]PIDInfo(nil), mode01...) }

// Label returns the name of the PID in "en" or "zh" (the default).
func (p PIDInfo) Label(lang string) string {
	if normLang(lang) == "en" {
		return p.Name
	}
	return p.NameZH
}

// DecodePID decodes the data bytes of a Mode 01 PID (after 41 PID).
func DecodePID(pid byte, data []byte) (Value, error) {
	p, ok := LookupPID(pid)
	if !ok {
		return Value{}, decodeErr(fmt.Sprintf("PID %02X", pid), data, "no formula known for this PID")
	}
	return p.Decode(data)
}

// PIDWidth is the data width of a Mode 01 PID, or 0 when unknown. Supported-PID bitmaps (00,
// 20, … E0) are 4 bytes.
func PIDWidth(pid byte) int {
	if pid%0x20 == 0 {
		return 4
	}
	if p, ok := LookupPID(pid); ok {
		return p.Bytes
	}
	return 0
}

// ParseMultiPID splits one ECU's answer to a Mode 01 request carrying several PIDs ("41 0C 0C
// E4 0D 00 …") into PID → data pairs in request order. An ECU may leave out PIDs it does not
// support, so each position is matched against the remaining requested PIDs; every requested
// PID must have a known width. Bitmaps (00, 20, …) are returned as 4 raw bytes and not
// decoded. On malformed input it returns the values decoded so far and a *DecodeError.
func ParseMultiPID(pids []byte, data []byte) ([]Value, error) {
	const what = "multi-PID response"
	if len(data) == 0 || data[0] != 0x41 {
		return nil, decodeErr(what, data, "want reply byte 41")
	}
	for _, p := range pids {
		if PIDWidth(p) == 0 {
			return nil, decodeErr(what, data, "width of PID %02X is not known, cannot split the answer", p)
		}
	}
	out := []Value{}
	rest := data[1:]
	next := 0
	for len(rest) > 0 {
		pid := rest[0]
		j := next
		for j < len(pids) && pids[j] != pid {
			j++
		}
		if j == len(pids) {
			if allPadding(rest) {
				break
			}
			return out, decodeErr(what, data, "unexpected PID %02X at offset %d", pid, len(data)-len(rest))
		}
		w := PIDWidth(pid)
		if len(rest) < 1+w {
			return out, decodeErr(what, data, "PID %02X needs %d data bytes, have %d", pid, w, len(rest)-1)
		}
		if pid%0x20 != 0 {
			v, err := DecodePID(pid, rest[1:1+w])
			if err != nil {
				return out, err
			}
			out = append(out, v)
		}
		rest = rest[1+w:]
		next = j + 1
	}
	return out, nil
}

func allPadding(b []byte) bool {
	for _, c := range b {
		if c != 0x00 && c != 0x55 && c != 0xAA && c != 0xCC {
			return false
		}
	}
	return true
}

// PIDSet is a set of PIDs (of one service), as read from the supported-PID bitmaps.
type PIDSet struct{ bits [4]uint64 }

// Add puts pid in the set.
func (s *PIDSet) Add(pid byte) { s.bits[pid/64] |= 1 << (pid % 64) }

// Has reports whether pid is in the set.
func (s *PIDSet) Has(pid byte) bool { return s != nil && s.bits[pid/64]&(1<<(pid%64)) != 0 }

// Union adds every PID of o.
func (s *PIDSet) Union(o *PIDSet) {
	if o == nil {
		return
	}
	for i := range s.bits {
		s.bits[i] |= o.bits[i]
	}
}

// List returns the PIDs in ascending order.
func (s *PIDSet) List() []byte {
	out := []byte{}
	if s == nil {
		return out
	}
	for p := 0; p < 256; p++ {
		if s.Has(byte(p)) {
			out = append(out, byte(p))
		}
	}
	return out
}

// HexList returns the PIDs as two-digit hex strings, for JSON.
func (s *PIDSet) HexList() []string {
	out := []string{}
	for _, p := range s.List() {
		out = append(out, HexByte(p).String())
	}
	return out
}

// ParseSupported decodes the 4-byte bitmap answering supported-PID request base (00, 20, …):
// bit A7 means base+1 is supported, D0 means base+0x20. It returns the PIDs and whether the
// next bitmap (base+0x20) exists.
func ParseSupported(base byte, bitmap []byte) (pids []byte, next bool, err error) {
	if len(bitmap) < 4 {
		return nil, false, decodeErr(fmt.Sprintf("supported-PID bitmap %02X", base), bitmap, "need 4 bytes, have %d", len(bitmap))
	}
	v := uint32(bitmap[0])<<24 | uint32(bitmap[1])<<16 | uint32(bitmap[2])<<8 | uint32(bitmap[3])
	for i := 0; i < 32; i++ {
		if v&(1<<(31-i)) != 0 {
			pid := int(base) + i + 1
			if pid > 0xFF {
				break
			}
			pids = append(pids, byte(pid))
		}
	}
	next = v&1 != 0 && base < 0xE0
	return pids, next, nil
}
