package obd

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteText writes the report for people, in "zh" (default) or "en": VIN and its validity,
// protocol, MIL, DTCs per ECU with descriptions, the readiness table, odometer and elapsed time.
// DTC descriptions are looked up again in lang, so one stored report can be printed in both.
func (r *Report) WriteText(w io.Writer, lang string) error {
	en := normLang(lang) == "en"
	t := func(enText, zhText string) string {
		if en {
			return enText
		}
		return zhText
	}
	var b strings.Builder
	line := func(label, value string) { b.WriteString(padRight(label, labelWidth(en)) + " " + value + "\n") }

	vin := r.VIN
	switch {
	case vin == "":
		vin = t("(not reported)", "（未读取到）")
	case r.VINValid:
		vin += t("  valid", "  有效")
	case VINWellFormed(r.VIN):
		// Not "valid": the check digit does not compute. Normal for some European makers.
		want, _ := VINCheckDigit(r.VIN)
		vin += t("  check digit wrong (position 9 should be ", "  校验位错误（第9位应为 ") + string(want) + t(")", "）")
	default:
		vin += t("  INVALID", "  无效")
	}
	if r.VINMismatch {
		vin += t("  DOES NOT MATCH work order ", "  与工单不一致 ") + r.ExpectedVIN
	}
	line("VIN", vin)
	proto := r.Protocol
	if proto == "" {
		proto = t("(unknown)", "（未知）")
	}
	line(t("Protocol", "协议"), proto)
	if r.Adapter.Version != "" {
		line(t("Adapter", "适配器"), r.Adapter.Version)
	}
	// unknown says why an item was not read, so nobody takes it for "off" or "none".
	unknown := func(item string) string {
		for _, u := range r.Unread {
			if u.Item != item {
				continue
			}
			if u.Status == StepFailed {
				return t("unknown (step failed: ", "未知（步骤失败：") + u.Step + ": " + oneLine(u.Reason) + t(")", "）")
			}
			return t("unknown (not read: step ", "未知（未读取：步骤 ") + u.Step + " " + u.Status + ": " + oneLine(u.Reason) + t(")", "）")
		}
		return ""
	}
	var mil string
	switch {
	case r.MIL == nil:
		mil = unknown(ItemMIL)
		if mil == "" {
			mil = t("unknown", "未知")
		}
	case *r.MIL:
		mil = t("ON", "点亮")
	default:
		mil = t("off", "熄灭")
	}
	line(t("MIL", "故障灯"), mil)
	if r.OdometerKM != nil {
		line(t("Odometer", "里程"), strconv.FormatFloat(*r.OdometerKM, 'f', 1, 64)+" km")
	}
	line(t("Elapsed", "用时"), fmt.Sprintf("%.1f s", float64(r.ElapsedMS)/1000))

	b.WriteString("\n" + t("Trouble codes", "故障码") + "\n")
	type kind struct {
		list []DTC
		name string
	}
	kinds := []kind{
		{r.DTCs.Stored, t("stored", "已确认")},
		{r.DTCs.Pending, t("pending", "待定")},
		{r.DTCs.Permanent, t("permanent", "永久")},
	}
	any := false
	for _, e := range r.ECUs {
		var rows []string
		for _, k := range kinds {
			for _, d := range k.list {
				if d.ECU == e.ID {
					rows = append(rows, "    "+d.Code+"  "+padRight(k.name, 9)+" "+DescribeDTC(d.Code, lang))
				}
			}
		}
		if len(rows) == 0 {
			continue
		}
		any = true
		head := "  ECU " + e.ID
		if e.Name != "" {
			head += " (" + e.Name + ")"
		}
		b.WriteString(head + "\n")
		for _, row := range rows {
			b.WriteString(row + "\n")
		}
	}
	var unread []string
	for _, k := range []struct{ item, name string }{
		{ItemDTCsStored, t("stored", "已确认")}, {ItemDTCsPending, t("pending", "待定")}, {ItemDTCsPermanent, t("permanent", "永久")},
	} {
		if u := unknown(k.item); u != "" {
			unread = append(unread, "  "+padRight(k.name, 9)+" "+u+"\n")
		}
	}
	switch {
	case len(unread) > 0:
		for _, u := range unread {
			b.WriteString(u)
		}
	case !any:
		b.WriteString("  " + t("none", "无") + "\n")
	}

	b.WriteString("\n" + t("Readiness", "就绪状态") + "\n")
	wrote := false
	for _, e := range r.ECUs {
		if e.Readiness == nil {
			continue
		}
		wrote = true
		fmt.Fprintf(&b, "  ECU %s\n", e.ID)
		for _, m := range e.Readiness.Monitors {
			if !m.Supported {
				continue
			}
			st := t("complete", "完成")
			if !m.Complete {
				st = t("NOT complete", "未完成")
			}
			b.WriteString("    " + padRight(MonitorLabel(m.Name, lang), 28) + " " + st + "\n")
		}
	}
	switch {
	case r.Readiness == nil:
		u := unknown(ItemReadiness)
		if u == "" {
			u = t("unknown", "未知")
		}
		b.WriteString("  " + u + "\n")
	case !wrote:
		b.WriteString("  " + t("not reported", "未读取到") + "\n")
	default:
		fmt.Fprintf(&b, "  %s %d / %d\n", t("Incomplete monitors:", "未完成监测项："), len(r.Readiness.Incomplete), len(r.Readiness.Supported))
	}

	if len(r.FreezeFrames) > 0 {
		b.WriteString("\n" + t("Freeze frame", "冻结帧") + "\n")
		for _, ff := range r.FreezeFrames {
			fmt.Fprintf(&b, "  ECU %s  %s %s\n", ff.ECU, t("stored by", "触发故障码"), ff.DTC)
			for _, v := range ff.Values {
				b.WriteString("    " + padRight(pidLabel(v, lang), 28) + " " + v.String() + "\n")
			}
		}
	}

	if len(r.Live) > 0 {
		b.WriteString("\n" + t("Data", "数据流") + "\n")
		for _, v := range r.Live {
			b.WriteString("  " + padRight(v.ECU, 4) + " " + padRight(pidLabel(v, lang), 28) + " " + v.String() + "\n")
		}
	}

	if len(r.Warnings) > 0 {
		b.WriteString("\n" + t("Warnings", "警告") + "\n")
		for _, w := range r.Warnings {
			b.WriteString("  " + w + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// oneLine keeps an adapter's error (which may quote its raw reply) on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func pidLabel(v Value, lang string) string {
	if p, ok := LookupPID(byte(v.PID)); ok {
		return p.Label(lang)
	}
	return v.Name
}

func labelWidth(en bool) int {
	if en {
		return 9
	}
	return 8
}

// padRight pads s to width terminal columns. Chinese characters take two columns, so fmt's
// rune-counting %-*s would misalign the tables.
func padRight(s string, width int) string {
	w := 0
	for _, r := range s {
		w++
		if isWide(r) {
			w++
		}
	}
	if w >= width {
		return s
	}
	return s + strings.Repeat(" ", width-w)
}

func isWide(r rune) bool {
	return r >= 0x1100 && (r <= 0x115F || r >= 0x2E80 && r <= 0xA4CF || r >= 0xAC00 && r <= 0xD7A3 ||
		r >= 0xF900 && r <= 0xFAFF || r >= 0xFE30 && r <= 0xFE4F || r >= 0xFF00 && r <= 0xFF60 || r >= 0xFFE0 && r <= 0xFFE6)
}
