package elm327

import (
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/obd"
)

func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func resp(ecu, data string) obd.Response { return obd.Response{ECU: ecu, Data: h(data)} }

var (
	can11   = format{protocol: '6', headers: true}
	can29   = format{protocol: '7', headers: true}
	kline   = format{protocol: '3', headers: true}
	guess   = format{headers: true}
	canOff  = format{protocol: '6'}
	legOff  = format{protocol: '3'}
	vinData = "49 02 01 4C 4B 36 41 44 43 45 31 35 50 42 34 30 35 31 32 37"
)

func TestParseReply(t *testing.T) {
	tests := []struct {
		name   string
		f      format
		raw    string
		want   []obd.Response
		frames int
	}{
		{"rpm, spaces", can11, "7E8 04 41 0C 0C E4 \r\r", []obd.Response{resp("7E8", "41 0C 0C E4")}, 1},
		{"rpm, ATS0", can11, "7E804410C0CE4\r", []obd.Response{resp("7E8", "41 0C 0C E4")}, 1},
		{"rpm, padded single frame", can11, "7E8 04 41 0C 0C E4 AA AA AA\r", []obd.Response{resp("7E8", "41 0C 0C E4")}, 1},
		{"rpm, 29-bit (§6)", can29, "18 DA F1 10 04 41 0C 0C E4 AA AA AA\r", []obd.Response{resp("18DAF110", "41 0C 0C E4")}, 1},
		{"29-bit, ATS0, guessed", guess, "18DAF11004410C0CE4AAAAAA\r", []obd.Response{resp("18DAF110", "41 0C 0C E4")}, 1},
		{"11-bit guessed", guess, "7E804410C0CE4\r", []obd.Response{resp("7E8", "41 0C 0C E4")}, 1},
		{"VIN headers on (§6)", can11,
			"7E8 10 14 49 02 01 4C 4B 36\r7E8 21 41 44 43 45 31 35 50\r7E8 22 42 34 30 35 31 32 37\r",
			[]obd.Response{resp("7E8", vinData)}, 3},
		{"VIN with echo, SEARCHING and NULs", can11,
			"\x000902\rSEARCHING...\r7E8 10 14 49 02 01 4C 4B 36\r\x007E8 21 41 44 43 45 31 35 50\r\n7E8 22 42 34 30 35 31 32 37\r\r",
			[]obd.Response{resp("7E8", vinData)}, 3},
		{"VIN headers off (§6)", canOff,
			"014\r0: 49 02 01 4C 4B 36\r1: 41 44 43 45 31 35 50\r2: 42 34 30 35 31 32 37\r",
			[]obd.Response{resp("", vinData)}, 3},
		{"VIN headers off, ATS0 (§6)", canOff,
			"014\r0:4902014C4B36\r1:41444345313550\r2:42343035313237\r",
			[]obd.Response{resp("", vinData)}, 3},
		{"VIN headers off, run together", canOff,
			"0140:4902014C4B361:414443453135502:42343035313237\r",
			[]obd.Response{resp("", vinData)}, 3},
		{"two ECUs CALID (§6)", can11,
			"7E8 10 13 49 04 01 43 4E 47\r7E8 21 36 45 43 4D 2D 32 32\r7E8 22 30 35 41 33 31 31 00\r" +
				"7E9 10 13 49 04 01 54 43 55\r7E9 21 38 41 54 30 33 30 31\r7E9 22 2D 30 30 30 30 00 00\r",
			[]obd.Response{
				resp("7E8", "49 04 01 43 4E 47 36 45 43 4D 2D 32 32 30 35 41 33 31 31"),
				resp("7E9", "49 04 01 54 43 55 38 41 54 30 33 30 31 2D 30 30 30 30 00"),
			}, 6},
		{"two ECUs interleaved", can11,
			"7E8 10 13 49 04 01 43 4E 47\r7E9 10 13 49 04 01 54 43 55\r7E8 21 36 45 43 4D 2D 32 32\r" +
				"7E9 21 38 41 54 30 33 30 31\r7E9 22 2D 30 30 30 30 00 00\r7E8 22 30 35 41 33 31 31 00\r",
			[]obd.Response{
				resp("7E8", "49 04 01 43 4E 47 36 45 43 4D 2D 32 32 30 35 41 33 31 31"),
				resp("7E9", "49 04 01 54 43 55 38 41 54 30 33 30 31 2D 30 30 30 30 00"),
			}, 6},
		{"second ECU answers first", can11, "7E9 06 41 00 98 18 80 01\r7E8 06 41 00 BE 3F A8 13\r",
			[]obd.Response{resp("7E9", "41 00 98 18 80 01"), resp("7E8", "41 00 BE 3F A8 13")}, 2},
		{"duplicate single frame (python-OBD #100)", can11, "7E8 04 41 15 00 FF\r7E8 04 41 15 00 FF\r",
			[]obd.Response{resp("7E8", "41 15 00 FF")}, 2},
		{"duplicate consecutive frame", can11,
			"7E8 10 14 49 02 01 4C 4B 36\r7E8 21 41 44 43 45 31 35 50\r7E8 21 41 44 43 45 31 35 50\r7E8 22 42 34 30 35 31 32 37\r",
			[]obd.Response{resp("7E8", vinData)}, 4},
		{"Mode 03 one frame (§13)", can11, "7E8 06 43 02 04 20 01 71\r", []obd.Response{resp("7E8", "43 02 04 20 01 71")}, 1},
		{"Mode 03 multi-frame and second ECU (§13)", can11,
			"7E8 10 0A 43 04 04 20 01 71\r7E8 21 03 00 24 63 00 00 00\r7E9 04 43 01 C1 00 00 00 00\r",
			[]obd.Response{resp("7E8", "43 04 04 20 01 71 03 00 24 63"), resp("7E9", "43 01 C1 00")}, 3},
		{"Mode 03 none (§13)", can11, "7E8 02 43 00\r", []obd.Response{resp("7E8", "43 00")}, 1},
		{"legacy Mode 03 headers off (§13)", legOff, "43 04 20 01 71 03 00\r43 24 63 00 00 00 00\r",
			[]obd.Response{resp("", "43 04 20 01 71 03 00 43 24 63 00 00 00 00")}, 2},
		{"legacy Mode 03 headers on", kline, "48 6B 10 43 04 20 01 71 03 00 5C\r48 6B 10 43 24 63 00 00 00 00 11\r",
			[]obd.Response{resp("10", "43 04 20 01 71 03 00 43 24 63 00 00 00 00")}, 2},
		{"legacy VIN headers on (§6)", kline,
			"48 6B 10 49 02 01 00 00 00 4C 01\r48 6B 10 49 02 02 4B 36 41 44 02\r48 6B 10 49 02 03 43 45 31 35 03\r" +
				"48 6B 10 49 02 04 50 42 34 30 04\r48 6B 10 49 02 05 35 31 32 37 05\r",
			[]obd.Response{resp("10", "49 02 01 00 00 00 4C 49 02 02 4B 36 41 44 49 02 03 43 45 31 35 49 02 04 50 42 34 30 49 02 05 35 31 32 37")}, 5},
		{"legacy VIN out of order, guessed", guess,
			"486B104902024B36414402\r486B104902010000004C01\r486B1049020343453135 03\r486B104902045042343004\r486B104902053531323705\r",
			[]obd.Response{resp("10", "49 02 01 00 00 00 4C 49 02 02 4B 36 41 44 49 02 03 43 45 31 35 49 02 04 50 42 34 30 49 02 05 35 31 32 37")}, 5},
		{"legacy VIN headers off (§6)", legOff,
			"49 02 01 00 00 00 4C\r49 02 02 4B 36 41 44\r49 02 03 43 45 31 35\r49 02 04 50 42 34 30\r49 02 05 35 31 32 37\r",
			[]obd.Response{resp("", "49 02 01 00 00 00 4C 49 02 02 4B 36 41 44 49 02 03 43 45 31 35 49 02 04 50 42 34 30 49 02 05 35 31 32 37")}, 5},
		{"legacy two ECUs", kline, "48 6B 10 41 0C 0C E4 00\r48 6B 18 41 0C 0C E0 00\r",
			[]obd.Response{resp("10", "41 0C 0C E4"), resp("18", "41 0C 0C E0")}, 2},
		{"KWP negative response (§11)", kline, "83 F1 10 7F 01 11 15\r", []obd.Response{resp("10", "7F 01 11")}, 1},
		{"CVN one (§14)", can11, "7E8 07 49 06 01 3A 9C 0F 5D\r", []obd.Response{resp("7E8", "49 06 01 3A 9C 0F 5D")}, 1},
		{"CVN two with padding (§14)", can11, "7E8 10 0B 49 06 02 3A 9C 0F\r7E8 21 5D 00 0B 7E 21 AA AA\r",
			[]obd.Response{resp("7E8", "49 06 02 3A 9C 0F 5D 00 0B 7E 21")}, 2},
		{"ECU name (§14)", can11,
			"7E9 10 17 49 0A 01 54 43 4D\r7E9 21 00 2D 54 72 61 6E 73\r7E9 22 6D 69 73 73 69 6F 6E\r7E9 23 43 74 6C 55 55 55 55\r",
			[]obd.Response{resp("7E9", "49 0A 01 54 43 4D 00 2D 54 72 61 6E 73 6D 69 73 73 69 6F 6E 43 74 6C")}, 4},
		{"multi-PID (§16)", can11, "7E8 10 0A 41 0C 0C E4 0D 00\r7E8 21 05 7B 11 26 00 00 00\r",
			[]obd.Response{resp("7E8", "41 0C 0C E4 0D 00 05 7B 11 26")}, 2},
		{"response pending, then the answer", can11, "7E8 03 7F 09 78\r7E9 03 7F 09 11\r7E8 07 49 06 01 3A 9C 0F 5D\r",
			[]obd.Response{resp("7E8", "49 06 01 3A 9C 0F 5D"), resp("7E9", "7F 09 11")}, 3},
		{"response pending only", can11, "7E8 03 7F 09 78\r", []obd.Response{resp("7E8", "7F 09 78")}, 1},
		{"KWP response pending, then the answer", kline, "83 F1 10 7F 01 78 7C\r86 F1 10 41 0C 0C E4 00\r",
			[]obd.Response{resp("10", "41 0C 0C E4")}, 2},
		{"negative response CAN", can11, "7E8 03 7F 01 11\r", []obd.Response{resp("7E8", "7F 01 11")}, 1},
		{"Bluetooth chatter", can11, "+DISC:SUCCESS\r+CONNECTING<<00:1D:A5:68:98:8B\r7E8 03 41 0D 00\r",
			[]obd.Response{resp("7E8", "41 0D 00")}, 1},
		{"BUS INIT progress", kline, "BUS INIT: ...OK\r48 6B 10 41 0D 00 D1\r", []obd.Response{resp("10", "41 0D 00")}, 1},
		{"CRLF line ends (ATL1)", can11, "7E8 03 41 0D 00\r\n\r\n", []obd.Response{resp("7E8", "41 0D 00")}, 1},
		{"sequence wraps F to 0", can11, wrapLines(), []obd.Response{resp("7E8", wrapData()), resp("7E8", "41 0D 00")}, 18},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The command is the service the expected answers answer: frames of another
			// service are set aside as strays.
			d := tc.want[0].Data
			svc := d[0] &^ 0x40
			if d[0] == 0x7F {
				svc = d[1]
			}
			cmd := fmt.Sprintf("%02X", svc)
			if svc == 0x09 {
				cmd = "0902" // the VIN cases carry its echo
			}
			lines := cleanLines([]byte(tc.raw), cmd)
			r, err := parseReply(lines, tc.f, cmd)
			if err != nil {
				t.Fatalf("parseReply(%q): %v", lines, err)
			}
			if !reflect.DeepEqual(r.responses, tc.want) {
				t.Errorf("got  %s\nwant %s", dump(r.responses), dump(tc.want))
			}
			if r.frames != tc.frames {
				t.Errorf("frames = %d, want %d", r.frames, tc.frames)
			}
		})
	}
}

// wrapLines is a 17-frame message so the consecutive-frame sequence runs 1…F, 0, 1.
func wrapLines() string {
	var b strings.Builder
	b.WriteString("7E8 10 76 49 08 10 00 01 02\r") // 0x76 = 118 bytes = 6 + 16*7
	for i := 1; i <= 16; i++ {
		b.WriteString("7E8 2")
		b.WriteString(strings.ToUpper(hex.EncodeToString([]byte{byte(i & 0x0F)}))[1:])
		for j := 0; j < 7; j++ {
			b.WriteString(" " + strings.ToUpper(hex.EncodeToString([]byte{byte(i*7 + j)})))
		}
		b.WriteString("\r")
	}
	b.WriteString("7E8 03 41 0D 00\r") // an unrelated single frame from the same ECU afterwards
	return b.String()
}

func wrapData() string {
	var b []byte
	b = append(b, 0x49, 0x08, 0x10, 0x00, 0x01, 0x02)
	for i := 1; i <= 16; i++ {
		for j := 0; j < 7; j++ {
			b = append(b, byte(i*7+j))
		}
	}
	return hex.EncodeToString(b)
}

func dump(rs []obd.Response) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.ECU+":"+strings.ToUpper(hex.EncodeToString(r.Data)))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func TestParseReplyWrapAndTrailing(t *testing.T) {
	r, err := parseReply(cleanLines([]byte(wrapLines()), ""), can11, "0908")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.responses) != 2 || r.responses[1].ECU != "7E8" || hex.EncodeToString(r.responses[1].Data) != "410d00" {
		t.Errorf("got %s", dump(r.responses))
	}
}

func TestParseReplyErrors(t *testing.T) {
	tests := []struct {
		name string
		f    format
		raw  string
		code Code
		is   error
	}{
		{"no data", can11, "NO DATA\r", CodeNoData, obd.ErrNoData},
		{"no data after search", can11, "SEARCHING...\rNO DATA\r", CodeNoData, obd.ErrNoData},
		{"no data ATS0", can11, "NODATA\r", CodeNoData, obd.ErrNoData},
		{"unable to connect", can11, "SEARCHING...\rUNABLE TO CONNECT\r", CodeUnableToConnect, obd.ErrNoVehicle},
		{"clone not connected", can11, "NOT CONNECTED\r", CodeUnableToConnect, obd.ErrNoVehicle},
		{"can error", can11, "CAN ERROR\r", CodeCANError, nil},
		{"bus init error", kline, "BUS INIT: ...ERROR\r", CodeBusInitError, nil},
		{"bus init error short", kline, "BUS INIT:ERROR\r", CodeBusInitError, nil},
		{"bus busy", kline, "BUS BUSY\r", CodeBusBusy, nil},
		{"bus error", kline, "BUS ERROR\r", CodeBusError, nil},
		{"fb error", kline, "FB ERROR\r", CodeFBError, nil},
		{"data error", kline, "DATA ERROR\r", CodeDataError, nil},
		{"checksum line", kline, "48 6B 10 41 0D 00 D1\r<DATA ERROR\r", CodeDataError, nil},
		{"rx error", can11, "<RX ERROR\r", CodeRxError, nil},
		{"buffer full", can11, "7E8 10 14 49 02 01 4C 4B 36\rBUFFER FULL\r", CodeBufferFull, nil},
		{"stopped", can11, "STOPPED\r", CodeStopped, nil},
		{"question mark", can11, "?\r", CodeUnknownCommand, nil},
		{"wrong hexchar count", can11, "?WRONG HEXCHAR COUNT\r", CodeUnknownCommand, nil},
		{"err94", can11, "ERR94\r", CodeInternal, nil},
		{"lv reset", can11, "LV RESET\r", CodeLowVoltageReset, nil},
		{"act alert", can11, "ACT ALERT\r", CodeLowPowerAlert, nil},
		{"lp alert", can11, "LP ALERT\r", CodeLowPowerAlert, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseReply(cleanLines([]byte(tc.raw), "0100"), tc.f, "0100")
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Code != tc.code {
				t.Errorf("code = %v, want %v", e.Code, tc.code)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%v does not wrap %v", err, tc.is)
			}
			if tc.is == nil && (errors.Is(err, obd.ErrNoData) || errors.Is(err, obd.ErrNoVehicle)) {
				t.Errorf("%v wraps a sentinel it should not", err)
			}
			if e.Raw == "" || !strings.Contains(e.Raw, strings.TrimSuffix(strings.Split(tc.raw, "\r")[0], "\r")) && tc.name != "no data after search" {
				t.Errorf("raw %q not kept", e.Raw)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "elm327: 0100: ") || e.Advice == "" || !strings.Contains(msg, e.Advice) {
				t.Errorf("message %q lacks the command or the advice", msg)
			}
		})
	}
}

func TestParseReplyMalformed(t *testing.T) {
	tests := []struct {
		name, raw string
		f         format
		reason    string
	}{
		{"garbage", "HELLO WORLD\r", can11, "not a hex line"},
		{"missing consecutive frame", "7E8 10 14 49 02 01 4C 4B 36\r7E8 22 42 34 30 35 31 32 37\r", can11, "was expected"},
		{"incomplete", "7E8 10 14 49 02 01 4C 4B 36\r7E8 21 41 44 43 45 31 35 50\r", can11, "incomplete message from 7E8"},
		{"orphan consecutive frame", "7E8 21 41 44 43 45 31 35 50\r", can11, "without a first frame"},
		{"single frame too long", "7E8 07 41 0C 0C\r", can11, "carries"},
		{"single frame longer than its line", "7E806410C0CE4\r", can11, "carries"},
		{"single frame zero", "7E8 00 41 0C 0C\r", can11, "out of range"},
		{"even digits on 11-bit", "7E80641 0C0CE4 0\r", can11, "even digit count"},
		{"legacy short", "48 6B 10 41\r", kline, "too short"},
		{"headers off gap", "014\r0: 49 02 01 4C 4B 36\r2: 42 34 30 35 31 32 37\r", canOff, "was expected"},
		{"headers off short", "014\r0: 49 02 01 4C 4B 36\r", canOff, "incomplete"},
		{"empty", "\r\r", can11, "empty answer"},
	}
	for _, tc := range tests {
		_, err := parseReply(cleanLines([]byte(tc.raw), ""), tc.f, "0902")
		var fe *FrameError
		if !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want *FrameError", tc.name, err)
			continue
		}
		if !strings.Contains(fe.Reason, tc.reason) || fe.Line == "" && tc.name != "empty" || fe.Command != "0902" {
			t.Errorf("%s: %+v, want reason containing %q and the line", tc.name, fe, tc.reason)
		}
	}
}

func TestCleanLines(t *testing.T) {
	got := cleanLines([]byte("\x00\x00ATE0\r\x00OK\r\r>"), "ATE0")
	if !reflect.DeepEqual(got, []string{"OK"}) {
		t.Errorf("got %q", got)
	}
	got = cleanLines([]byte("41 0C 0C E4 \r\r>7E8"), "010C")
	if !reflect.DeepEqual(got, []string{"41 0C 0C E4", "7E8"}) {
		t.Errorf("got %q", got)
	}
}

// FuzzParseReply feeds arbitrary adapter output to the parser: it must never panic, and what
// it returns must be either responses or an error, never both empty.
func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		"7E8 10 14 49 02 01 4C 4B 36\r7E8 21 41 44 43 45 31 35 50\r7E8 22 42 34 30 35 31 32 37\r",
		"014\r0:4902014C4B36\r1:41444345313550\r2:42343035313237\r",
		"0140:4902014C4B361:414443453135502:42343035313237",
		"48 6B 10 49 02 01 00 00 00 4C 01\r48 6B 10 49 02 02 4B 36 41 44 02\r",
		"18DAF11004410C0CE4AAAAAA\r", "SEARCHING...\rUNABLE TO CONNECT\r", "NO DATA\r",
		"7E8 10 0A 43 04 04 20 01 71\r7E8 21 03 00 24 63 00 00 00\r7E9 04 43 01 C1 00 00 00 00\r",
		"+DISC:SUCCESS\r\x00?\r", "1:00", ":", "0:", "0140:",
	} {
		for p := byte(0); p < 4; p++ {
			f.Add(s, p)
		}
	}
	formats := []format{can11, can29, kline, guess, canOff, legOff}
	f.Fuzz(func(t *testing.T, raw string, sel byte) {
		fm := formats[int(sel)%len(formats)]
		r, err := parseReply(cleanLines([]byte(raw), "0100"), fm, "0100")
		if err == nil && len(r.responses) == 0 && fm.headers {
			t.Fatalf("no responses and no error for %q", raw)
		}
		for _, x := range r.responses {
			if len(x.Data) == 0 {
				t.Fatalf("empty response for %q", raw)
			}
		}
	})
}

// FuzzISOTP feeds arbitrary frames to the reassembler: it must never panic, and a completed
// message is never longer than its first frame announced.
func FuzzISOTP(f *testing.F) {
	f.Add([]byte{0x10, 0x14, 0x49, 0x02, 0x01, 0x4C, 0x4B, 0x36, 0x21, 0x41, 0x44, 0x43, 0x45, 0x31, 0x35, 0x50, 0x22, 0x42, 0x34, 0x30, 0x35, 0x31, 0x32, 0x37})
	f.Add([]byte{0x04, 0x41, 0x0C, 0x0C, 0xE4, 0xAA, 0xAA, 0xAA})
	f.Add([]byte{0x10, 0x08, 1, 2, 3, 4, 5, 6, 0x21, 7, 8, 0, 0, 0, 0, 0, 0x21, 7, 8, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, stream []byte) {
		var tp isotp
		want := -1
		for len(stream) > 0 {
			n := min(8, len(stream))
			fr := stream[:n]
			stream = stream[n:]
			if fr[0]>>4 == 1 && len(fr) >= 2 {
				// Several messages may follow each other: none is longer than the longest
				// announced.
				want = max(want, int(fr[0]&0x0F)<<8|int(fr[1]))
			}
			if tp.add(fr, "") != nil {
				return
			}
		}
		for _, m := range tp.msgs {
			if len(m) == 0 || len(m) > 4095 || len(m) > 7 && want >= 0 && len(m) > want {
				t.Fatalf("message of %d bytes (announced %d)", len(m), want)
			}
		}
	})
}

// TestCutShortNeed: an answer a count digit cut short says how many frames the whole answer
// takes: the transmission's single frame as it came, and the engine's two CVNs by the 11
// bytes its first frame announced (a first frame and one consecutive frame).
func TestCutShortNeed(t *testing.T) {
	r, err := parseReply([]string{"7E8100B4906023A9C0F", "7E9074906011F2E3D4C"}, can11, "09062")
	var fe *FrameError
	if !errors.As(err, &fe) || !strings.Contains(fe.Reason, "incomplete message from 7E8") {
		t.Fatalf("err %v, want an incomplete message from 7E8", err)
	}
	if r.need != 3 || !reflect.DeepEqual(r.from, []string{"7E8", "7E9"}) || len(r.responses) != 0 {
		t.Errorf("need %d from %v (responses %v), want 3 from [7E8 7E9] and no responses", r.need, r.from, r.responses)
	}
}
