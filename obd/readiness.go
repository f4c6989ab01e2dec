package obd

// Monitor names. They are stable keys (JSON, I/M records); MonitorLabel gives display text.
const (
	MonMisfire          = "misfire"
	MonFuelSystem       = "fuel_system"
	MonComponents       = "components"
	MonCatalyst         = "catalyst"
	MonHeatedCatalyst   = "heated_catalyst"
	MonEvap             = "evap"
	MonSecondaryAir     = "secondary_air"
	MonOxygenSensor     = "oxygen_sensor"
	MonOxygenHeater     = "oxygen_sensor_heater"
	MonEGRVVT           = "egr_vvt"
	MonNMHCCatalyst     = "nmhc_catalyst"
	MonNOxSCR           = "nox_scr"
	MonBoostPressure    = "boost_pressure"
	MonExhaustGasSensor = "exhaust_gas_sensor"
	MonPMFilter         = "pm_filter"
)

// Bit positions 0..7 of bytes C and D; "" marks a reserved bit. Bit 4 of the spark set was the
// A/C refrigerant monitor in older editions (inferred) and is reserved now, so it is not shown.
var (
	sparkMonitors       = [8]string{MonCatalyst, MonHeatedCatalyst, MonEvap, MonSecondaryAir, "", MonOxygenSensor, MonOxygenHeater, MonEGRVVT}
	compressionMonitors = [8]string{MonNMHCCatalyst, MonNOxSCR, "", MonBoostPressure, "", MonExhaustGasSensor, MonPMFilter, MonEGRVVT}
)

var monitorLabels = map[string][2]string{
	MonMisfire:          {"Misfire", "失火"},
	MonFuelSystem:       {"Fuel system", "燃油系统"},
	MonComponents:       {"Comprehensive components", "综合部件"},
	MonCatalyst:         {"Catalyst", "催化器"},
	MonHeatedCatalyst:   {"Heated catalyst", "加热型催化器"},
	MonEvap:             {"Evaporative system", "蒸发系统"},
	MonSecondaryAir:     {"Secondary air system", "二次空气系统"},
	MonOxygenSensor:     {"Oxygen sensor", "氧传感器"},
	MonOxygenHeater:     {"Oxygen sensor heater", "氧传感器加热器"},
	MonEGRVVT:           {"EGR / VVT system", "EGR/VVT 系统"},
	MonNMHCCatalyst:     {"NMHC catalyst", "NMHC 催化器"},
	MonNOxSCR:           {"NOx / SCR aftertreatment", "NOx/SCR 后处理"},
	MonBoostPressure:    {"Boost pressure", "增压压力"},
	MonExhaustGasSensor: {"Exhaust gas sensor", "排气传感器"},
	MonPMFilter:         {"PM filter (DPF)", "颗粒捕集器 (DPF)"},
}

// MonitorLabel is the display name of a monitor key in "en" or "zh" (the default).
func MonitorLabel(key, lang string) string {
	l, ok := monitorLabels[key]
	if !ok {
		return key
	}
	if normLang(lang) == "en" {
		return l[0]
	}
	return l[1]
}

// MonitorState is one readiness monitor of one ECU.
type MonitorState struct {
	Name      string `json:"name"`
	Supported bool   `json:"supported"`
	// Complete is meaningful only when Supported; an unsupported monitor is never "ready".
	Complete bool `json:"complete"`
}

// MonitorStatus is the decoded PID 01 (since DTCs were cleared) or 41 (this drive cycle).
type MonitorStatus struct {
	ECU         string `json:"ecu,omitempty"`
	MIL         bool   `json:"mil"`
	DTCCount    int    `json:"dtc_count"`
	Compression bool   `json:"compression_ignition"`
	// Monitors lists the continuous monitors (misfire, fuel system, components) and then the
	// non-continuous ones of the engine type, in bit order; reserved bits are left out.
	Monitors []MonitorState `json:"monitors"`
}

// Supported lists the names of the supported monitors.
func (m MonitorStatus) Supported() []string {
	out := []string{}
	for _, s := range m.Monitors {
		if s.Supported {
			out = append(out, s.Name)
		}
	}
	return out
}

// Incomplete lists the supported monitors that have not completed.
func (m MonitorStatus) Incomplete() []string {
	out := []string{}
	for _, s := range m.Monitors {
		if s.Supported && !s.Complete {
			out = append(out, s.Name)
		}
	}
	return out
}

// DecodeMonitorStatus decodes the four data bytes A B C D of PID 01 or 41 (without the 41 PID
// prefix).
func DecodeMonitorStatus(data []byte) (MonitorStatus, error) {
	if len(data) < 4 {
		return MonitorStatus{}, decodeErr("monitor status (PID 01/41)", data, "need 4 data bytes, have %d", len(data))
	}
	a, b, c, d := data[0], data[1], data[2], data[3]
	m := MonitorStatus{
		MIL:         a&0x80 != 0,
		DTCCount:    int(a & 0x7F),
		Compression: b&0x08 != 0,
	}
	// B0..B2 supported, B4..B6 not complete: misfire, fuel system, components.
	for i, name := range []string{MonMisfire, MonFuelSystem, MonComponents} {
		sup := b&(1<<i) != 0
		m.Monitors = append(m.Monitors, MonitorState{Name: name, Supported: sup, Complete: sup && b&(1<<(i+4)) == 0})
	}
	names := sparkMonitors
	if m.Compression {
		names = compressionMonitors
	}
	for bit, name := range names {
		if name == "" {
			continue
		}
		sup := c&(1<<bit) != 0
		m.Monitors = append(m.Monitors, MonitorState{Name: name, Supported: sup, Complete: sup && d&(1<<bit) == 0})
	}
	return m, nil
}

// Readiness is the vehicle-level view over every ECU's monitor status: a monitor is supported
// when any ECU supports it, and incomplete when any ECU that supports it has not completed it.
type Readiness struct {
	Supported  []string `json:"supported"`
	Incomplete []string `json:"incomplete"`
	// Ready is true when at least one ECU reported and every supported monitor is complete.
	Ready bool `json:"ready"`
}

// AggregateReadiness combines per-ECU monitor states, keeping the first-seen monitor order.
func AggregateReadiness(per []MonitorStatus) Readiness {
	r := Readiness{Supported: []string{}, Incomplete: []string{}}
	sup := map[string]bool{}
	inc := map[string]bool{}
	var order []string
	for _, m := range per {
		for _, s := range m.Monitors {
			if !s.Supported {
				continue
			}
			if !sup[s.Name] {
				sup[s.Name] = true
				order = append(order, s.Name)
			}
			if !s.Complete {
				inc[s.Name] = true
			}
		}
	}
	for _, n := range order {
		r.Supported = append(r.Supported, n)
		if inc[n] {
			r.Incomplete = append(r.Incomplete, n)
		}
	}
	r.Ready = len(per) > 0 && len(r.Incomplete) == 0
	return r
}
