package elm327sim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// host is the test's side of a net.Pipe with a Sim serving the other end.
type host struct {
	t    *testing.T
	conn net.Conn
	sim  *Sim
	done chan error
	buf  []byte
}

func fast(t *testing.T, name string) Scenario {
	t.Helper()
	sc, err := Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	sc.Faults.SearchingDelay = 0
	sc.Adapter.ResetDelay = 0
	return sc
}

func start(t *testing.T, sc Scenario) *host {
	t.Helper()
	a, b := net.Pipe()
	sim := New(sc, Options{Baud: -1, NoLatency: true})
	h := &host{t: t, conn: a, sim: sim, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.done <- sim.Serve(ctx, b) }()
	t.Cleanup(func() {
		cancel()
		a.Close()
		b.Close()
	})
	return h
}

// readPrompt reads until '>' and returns everything before it.
func (h *host) readPrompt() string {
	h.t.Helper()
	h.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	tmp := make([]byte, 256)
	for {
		if i := bytes.IndexByte(h.buf, '>'); i >= 0 {
			out := string(h.buf[:i])
			h.buf = h.buf[i+1:]
			return out
		}
		n, err := h.conn.Read(tmp)
		h.buf = append(h.buf, tmp[:n]...)
		if err != nil {
			h.t.Fatalf("read: %v (have %q)", err, h.buf)
		}
	}
}

// cmd sends one command and returns the reply before the prompt.
func (h *host) cmd(c string) string {
	h.t.Helper()
	h.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := h.conn.Write([]byte(c + "\r")); err != nil {
		h.t.Fatalf("write %q: %v", c, err)
	}
	return h.readPrompt()
}

func (h *host) setup(cmds ...string) {
	h.t.Helper()
	for _, c := range cmds {
		h.cmd(c)
	}
}

func TestEchoOnAfterResetUntilATE0(t *testing.T) {
	h := start(t, fast(t, "petrol"))
	if got := h.cmd("ATZ"); got != "ATZ\r\r\rELM327 v1.5\r\r" {
		t.Fatalf("ATZ: %q", got)
	}
	if got := h.cmd("ATE0"); got != "ATE0\rOK\r\r" {
		t.Fatalf("ATE0 with echo still on: %q", got)
	}
	if got := h.cmd("ATI"); got != "ELM327 v1.5\r\r" {
		t.Fatalf("ATI after ATE0: %q", got)
	}
	if got := h.cmd("at   e1"); got != "OK\r\r" {
		t.Fatalf("lower case with spaces: %q", got)
	}
	if got := h.cmd("ATRV"); got != "ATRV\r12.6V\r\r" {
		t.Fatalf("ATRV with echo: %q", got)
	}
}

func TestATCommands(t *testing.T) {
	h := start(t, fast(t, "petrol"))
	h.setup("ATZ", "ATE0")
	for _, c := range []struct{ cmd, want string }{
		{"AT@1", "OBDII to RS232 Interpreter"},
		{"ATL0", "OK"}, {"ATS0", "OK"}, {"ATH1", "OK"}, {"ATAT1", "OK"}, {"ATAT2", "OK"},
		{"ATST 19", "OK"}, {"ATPC", "OK"}, {"ATD", "OK"}, {"ATE0", "ATE0\rOK"}, // ATD turns echo back on
		{"ATSP0", "OK"}, {"ATDP", "AUTO"}, {"ATDPN", "A0"},
		{"STI", "?"}, {"ATXYZ", "?"}, {"HELLO", "?"}, {"ATSPZ", "?"},
		{"7F 7F", "?"}, // the resync probe
		{"0100", ""},   // checked below
		{"ATDPN", "A6"}, {"ATDP", "AUTO, ISO 15765-4 (CAN 11/500)"},
		{"ATWS", "\r\rELM327 v1.5"},
	} {
		got := strings.TrimRight(h.cmd(c.cmd), "\r")
		if c.cmd == "0100" {
			// two ECUs, headers off: two single frames, no PCI, no padding
			if got != "SEARCHING...\r41 00 9E 3F 80 13\r41 00 80 08 00 01" {
				t.Errorf("0100: %q", got)
			}
			continue
		}
		if c.cmd == "ATWS" {
			got = strings.TrimPrefix(got, "ATWS\r")
		}
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.cmd, got, c.want)
		}
	}
}

func TestBitmapsFromPIDs(t *testing.T) {
	set := map[byte]bool{0x01: true, 0x0C: true, 0x20 + 0x01: true}
	if got := bitmap(set, 0); !bytes.Equal(got, []byte{0x80, 0x10, 0x00, 0x01}) {
		t.Errorf("base 00: % X", got)
	}
	if got := bitmap(set, 0x20); !bytes.Equal(got, []byte{0x80, 0, 0, 0}) {
		t.Errorf("base 20: % X", got)
	}
	sc := fast(t, "petrol")
	h := start(t, sc)
	h.setup("ATZ", "ATE0", "ATH1", "ATSP6")
	// engine: 01 04 05 06 07 0B 0C 0D 0E 0F 10 11 1C 1F | 21 2F 31 33 | 41 42 44 46 4D 4E 5C | A6
	got := h.cmd("0100")
	want := "7E8 06 41 00 9E 3F 80 13 00\r7E9 06 41 00 80 08 00 01 55\r\r"
	if got != want {
		t.Errorf("0100:\n got %q\nwant %q", got, want)
	}
	if got := h.cmd("0120"); got != "7E8 06 41 20 80 02 A0 01 00\r7E9 06 41 20 00 00 00 01 55\r\r" {
		t.Errorf("0120: %q", got)
	}
	if got := h.cmd("01A0"); got != "7E8 06 41 A0 04 00 00 00 00\r\r" {
		t.Errorf("01A0: %q", got)
	}
	if got := h.cmd("01C0"); got != "NO DATA\r\r" {
		t.Errorf("01C0 past the last bitmap: %q", got)
	}
}

func TestCAN11MultiFrameHeadersOnAndOff(t *testing.T) {
	h := start(t, fast(t, "petrol"))
	h.setup("ATZ", "ATE0", "ATH1", "ATSP6")
	got := h.cmd("0902")
	want := "7E8 10 14 49 02 01 4C 4B 36\r7E8 21 41 44 43 45 31 35 50\r7E8 22 42 34 30 35 31 32 37\r\r"
	if got != want {
		t.Errorf("0902 headers on:\n got %q\nwant %q", got, want)
	}
	h.cmd("ATH0")
	got = h.cmd("0902")
	want = "014\r0: 49 02 01 4C 4B 36\r1: 41 44 43 45 31 35 50\r2: 42 34 30 35 31 32 37\r\r"
	if got != want {
		t.Errorf("0902 headers off:\n got %q\nwant %q", got, want)
	}
	h.cmd("ATS0")
	got = h.cmd("0902")
	want = "014\r0:4902014C4B36\r1:41444345313550\r2:42343035313237\r\r"
	if got != want {
		t.Errorf("0902 headers off spaces off:\n got %q\nwant %q", got, want)
	}
	h.setup("ATH1")
	got = h.cmd("0904")
	want = "7E810134904014E43\r7E8213647434D2D32\r7E822323035413331\r7E82331000000000000\r" +
		"7E910134904015443\r7E921553841543033\r7E922303130303030\r7E9230055555555555555\r\r"
	_ = want
	// The CALIDs: "CNG6ECM-2205A311" and "TCU8AT0301-0000" (elm327-obd.md §6) — check them by decoding.
	if !strings.Contains(got, "7E81013490401") || !strings.Contains(got, "7E91013490401") {
		t.Errorf("0904 spaces off: %q", got)
	}
	if cal := reassemble(t, got, "7E8"); string(cal[3:19]) != "CNG6ECM-2205A311" {
		t.Errorf("7E8 CALID %q", cal[3:])
	}
	if cal := reassemble(t, got, "7E9"); string(bytes.TrimRight(cal[3:19], "\x00")) != "TCU8AT0301-0000" {
		t.Errorf("7E9 CALID %q", cal[3:])
	}
}

// reassemble joins the ISO-TP frames of one 11-bit ECU from spaces-off headers-on output.
func reassemble(t *testing.T, out, id string) []byte {
	t.Helper()
	var msg []byte
	var total, seq int
	for _, l := range strings.Split(out, "\r") {
		if !strings.HasPrefix(l, id) {
			continue
		}
		b := unhex(t, l[3:])
		switch b[0] >> 4 {
		case 0:
			return b[1 : 1+b[0]]
		case 1:
			total = int(b[0]&0x0F)<<8 | int(b[1])
			msg = append(msg, b[2:]...)
			seq = 1
		case 2:
			if int(b[0]&0x0F) != seq&0x0F {
				t.Fatalf("%s: sequence %X, want %X", id, b[0]&0x0F, seq&0x0F)
			}
			seq++
			msg = append(msg, b[1:]...)
		}
	}
	if len(msg) < total {
		t.Fatalf("%s: %d of %d bytes", id, len(msg), total)
	}
	return msg[:total]
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	s = strings.ReplaceAll(s, " ", "")
	b := make([]byte, len(s)/2)
	for i := range b {
		b[i] = hexVal(s[2*i])<<4 | hexVal(s[2*i+1])
	}
	return b
}

func TestSequenceNumberWraps(t *testing.T) {
	sc := fast(t, "petrol")
	// 15 CALIDs: 3 + 240 bytes = 35 frames, sequence runs 1…F, 0…F, 0…2.
	sc.ECUs[0].CALIDs = nil
	for i := 0; i < 15; i++ {
		sc.ECUs[0].CALIDs = append(sc.ECUs[0].CALIDs, "CAL"+string(rune('A'+i))+"-0123456789A")
	}
	h := start(t, sc)
	h.setup("ATZ", "ATE0", "ATH1", "ATS0", "ATSP6")
	out := h.cmd("0904")
	msg := reassemble(t, out, "7E8")
	if len(msg) != 243 || msg[2] != 15 || string(msg[3+16*14:3+16*14+4]) != "CALO" {
		t.Fatalf("reassembled %d bytes: % X", len(msg), msg)
	}
	h.cmd("ATH0")
	out = h.cmd("0904")
	if !strings.Contains(out, "\rF:") || !strings.Contains(out, "\r0:") || !strings.HasPrefix(out, "0F3\r") {
		t.Errorf("headers off wrap: %q", out)
	}
}

func TestCAN29Diesel(t *testing.T) {
	h := start(t, fast(t, "diesel"))
	h.setup("ATZ", "ATE0", "ATH1", "ATSP0")
	if got := h.cmd("0101"); got != "SEARCHING...\r18 DA F1 10 06 41 01 81 0F EB 40 AA\r\r" {
		t.Errorf("0101: %q", got)
	}
	if got := h.cmd("03"); got != "18 DA F1 10 04 43 01 24 63 AA AA AA\r\r" {
		t.Errorf("03: %q", got)
	}
	if got := h.cmd("ATDPN"); got != "A7\r\r" {
		t.Errorf("ATDPN: %q", got)
	}
	h.cmd("ATS0")
	if got := h.cmd("010C"); got != "18DAF11004410C0BB8AAAAAA\r\r" {
		t.Errorf("010C spaces off: %q", got)
	}
	// Physical addressing to the engine only.
	h.cmd("ATSH18DA10F1")
	if got := h.cmd("010D"); got != "18DAF11003410D00AAAAAAAA\r\r" {
		t.Errorf("physical 010D: %q", got)
	}
}

func TestKLineFormats(t *testing.T) {
	h := start(t, fast(t, "kline"))
	h.setup("ATZ", "ATE0", "ATH1", "ATSP5")
	got := h.cmd("03")
	// KWP header: format byte 80|length, F1, source 10; checksum = sum of the bytes.
	want := "BUS INIT: ...OK\r87 F1 10 43 04 20 01 71 03 00 64\r87 F1 10 43 24 63 01 33 00 00 86\r\r"
	if got != want {
		t.Errorf("03:\n got %q\nwant %q", got, want)
	}
	got = h.cmd("0902")
	lines := strings.Split(strings.TrimRight(got, "\r"), "\r")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "87 F1 10 49 02 01 00 00 00 4C") {
		t.Fatalf("0902: %q", got)
	}
	var vin []byte
	for i, l := range lines {
		b := unhex(t, l)
		var sum byte
		for _, c := range b[:len(b)-1] {
			sum += c
		}
		if sum != b[len(b)-1] || b[5] != byte(i+1) {
			t.Fatalf("line %d %q: checksum or sequence wrong", i, l)
		}
		vin = append(vin, b[6:10]...)
	}
	if string(vin[3:]) != "LFV2A21K7N3056789" {
		t.Errorf("VIN %q", vin)
	}
	if got := h.cmd("0A"); got != "83 F1 10 7F 0A 11 1E\r\r" {
		t.Errorf("0A negative: %q", got)
	}
	if got := h.cmd("010C0D"); got != "NO DATA\r\r" {
		t.Errorf("multi-PID on K-line: %q", got)
	}
	h.cmd("ATH0")
	if got := h.cmd("0901"); got != "49 01 05\r\r" {
		t.Errorf("0901: %q", got)
	}
	h.cmd("ATSP3")
	if got := h.cmd("0100"); got != "BUS INIT: ...ERROR\r\r" {
		t.Errorf("wrong K-line protocol: %q", got)
	}
}

func TestISO9141Header(t *testing.T) {
	sc := fast(t, "kline")
	sc.Protocol = "3"
	h := start(t, sc)
	h.setup("ATZ", "ATE0", "ATH1", "ATSP0")
	if got := h.cmd("010D"); got != "SEARCHING...\r48 6B 10 41 0D 00 11\r\r" {
		t.Errorf("010D: %q", got)
	}
}

func TestNoDataNegativeAndFreezeFrame(t *testing.T) {
	h := start(t, fast(t, "petrol"))
	h.setup("ATZ", "ATE0", "ATH1", "ATSP6")
	if got := h.cmd("0A"); got != "7E8 04 4A 01 04 20 00 00 00\r7E9 03 7F 0A 11 55 55 55 55\r\r" {
		t.Errorf("0A: %q", got)
	}
	if got := h.cmd("0150"); got != "NO DATA\r\r" {
		t.Errorf("unsupported PID: %q", got)
	}
	if got := h.cmd("0202"); got != "NO DATA\r\r" {
		t.Errorf("freeze frame without the frame byte must not answer: %q", got)
	}
	if got := h.cmd("020200"); got != "7E8 05 42 02 00 04 20 00 00\r\r" {
		t.Errorf("020200: %q", got)
	}
	if got := h.cmd("020C00"); got != "7E8 05 42 0C 00 0F A0 00 00\r\r" {
		t.Errorf("020C00: %q", got)
	}
	if got := h.cmd("01A6"); got != "7E8 06 41 A6 00 12 D6 87 00\r\r" {
		t.Errorf("odometer: %q", got)
	}
	if got := h.cmd("010C0D05"); got != "7E8 10 08 41 0C 0C E4 0D 00\r7E8 21 05 7B 00 00 00 00 00\r7E9 03 41 0D 00 55 55 55 55\r\r" {
		t.Errorf("multi-PID: %q", got)
	}
}

func TestClearCountsAndResetsReadiness(t *testing.T) {
	h := start(t, fast(t, "petrol"))
	h.setup("ATZ", "ATE0", "ATH1", "ATSP6")
	if got := h.cmd("04"); got != "7E8 01 44 00 00 00 00 00 00\r7E9 01 44 55 55 55 55 55 55\r\r" {
		t.Errorf("04: %q", got)
	}
	if got := h.cmd("03"); got != "7E8 02 43 00 00 00 00 00 00\r7E9 02 43 00 55 55 55 55 55\r\r" {
		t.Errorf("03 after clear: %q", got)
	}
	// readiness: every supported monitor incomplete, MIL off (C=65 → D=65)
	if got := h.cmd("0101"); !strings.HasPrefix(got, "7E8 06 41 01 00 77 65 65") {
		t.Errorf("0101 after clear: %q", got)
	}
	if got := h.cmd("0A"); !strings.HasPrefix(got, "7E8 04 4A 01 04 20") {
		t.Errorf("permanent codes survive a clear: %q", got)
	}
	if st := h.sim.Stats(); st.Clears != 1 {
		t.Errorf("clears %d", st.Clears)
	}
	// A bare CR repeats the last command: after 04 it would clear again, and the count shows it.
	h.cmd("04")
	h.cmd("")
	if st := h.sim.Stats(); st.Clears != 3 || st.BareCRs != 1 {
		t.Errorf("clears after a bare CR: %d, want 3", st.Clears)
	}
}

func TestBareCRRepeatsAT(t *testing.T) {
	h := start(t, fast(t, "petrol"))
	h.setup("ATZ", "ATE0")
	h.cmd("ATRV")
	if got := h.cmd(""); got != "12.6V\r\r" {
		t.Errorf("bare CR: %q", got)
	}
	st := h.sim.Stats()
	if n := len(st.Commands); st.Commands[n-1] != "ATRV" || st.Commands[n-2] != "ATRV" {
		t.Errorf("commands %q", st.Commands)
	}
}

func TestCountDigit(t *testing.T) {
	sc := fast(t, "petrol")
	h := start(t, sc)
	h.setup("ATZ", "ATE0", "ATH1", "ATSP6")
	h.cmd("0100")
	before := h.sim.Stats()
	if got := h.cmd("01002"); !strings.Contains(got, "7E9") {
		t.Errorf("01002: %q", got)
	}
	mid := h.sim.Stats()
	if mid.TimeoutWaits != before.TimeoutWaits {
		t.Errorf("a satisfied count digit still waited out the timeout")
	}
	// Too small a count: the second ECU's frame turns up in front of the next answer.
	if got := h.cmd("01001"); strings.Contains(got, "7E9") {
		t.Errorf("01001: %q", got)
	}
	if got := h.cmd("ATI"); got != "7E9 06 41 00 80 08 00 01 55\rELM327 v1.5\r\r" {
		t.Errorf("stale frame: %q", got)
	}
	if got := h.cmd("01000"); got != "?\r\r" {
		t.Errorf("count 0: %q", got)
	}
	if got := h.cmd("0100F"); !strings.Contains(got, "7E9") {
		t.Errorf("0100F: %q", got)
	}
	if st := h.sim.Stats(); st.TimeoutWaits != mid.TimeoutWaits+1 {
		t.Errorf("an unsatisfied count digit must wait: %d → %d", mid.TimeoutWaits, st.TimeoutWaits)
	}
}

func TestCloneQuirks(t *testing.T) {
	sc := fast(t, "clone-v15")
	sc.Faults.SplitWrites = false // tested on its own below
	h := start(t, sc)
	got := h.cmd("ATZ")
	if !strings.HasPrefix(got, "ATZ\r\x00\x00\x00\x00") {
		t.Errorf("ATZ: %q", got)
	}
	if got := h.cmd("ATE0"); got != "ATE0\r\x00OK\r\r" {
		t.Errorf("ATE0: %q", got)
	}
	if got := h.cmd("ATAT2"); !strings.HasSuffix(got, "?\r\r") || !strings.HasPrefix(got, "ATAT2\r") {
		t.Errorf("ATAT2 keeps echo and is unsupported: %q", got)
	}
	got = h.cmd("STI")
	if !strings.Contains(got, "+DISC:SUCCESS\r") || !strings.HasSuffix(got, "?\r\r") {
		t.Errorf("STI with BT chatter: %q", got)
	}
	if got := h.cmd("01001"); !strings.HasSuffix(got, "?\r\r") {
		t.Errorf("count digit on the clone: %q", got)
	}
	h.cmd("ATSP6")
	if got := h.cmd("010D"); got != "010D\r\x0041 0D 00 \r41 0D 00 \r\r" {
		t.Errorf("010D: %q", got)
	}
}

func TestFaultsOnTheWire(t *testing.T) {
	t.Run("crlf", func(t *testing.T) {
		sc := fast(t, "petrol")
		sc.Faults.CRLF = true
		h := start(t, sc)
		h.setup("ATZ")
		if got := h.cmd("ATE0"); got != "ATE0\r\nOK\r\n\r\n" {
			t.Errorf("%q", got)
		}
	})
	t.Run("ignition_off", func(t *testing.T) {
		h := start(t, fast(t, "ignition-off"))
		h.setup("ATZ", "ATE0")
		if got := h.cmd("0100"); got != "SEARCHING...\rUNABLE TO CONNECT\r\r" {
			t.Errorf("%q", got)
		}
		if got := h.cmd("ATRV"); got != "12.2V\r\r" {
			t.Errorf("%q", got)
		}
		h.cmd("ATSP6")
		if got := h.cmd("0100"); got != "CAN ERROR\r\r" {
			t.Errorf("%q", got)
		}
	})
	t.Run("no_multi_pid", func(t *testing.T) {
		sc := fast(t, "petrol")
		sc.Faults.NoMultiPID = true
		h := start(t, sc)
		h.setup("ATZ", "ATE0", "ATSP6")
		if got := h.cmd("010C0D"); got != "NO DATA\r\r" {
			t.Errorf("%q", got)
		}
	})
	t.Run("late_second_ecu", func(t *testing.T) {
		sc := fast(t, "petrol")
		sc.Faults.LateSecondECU = true
		h := start(t, sc)
		h.setup("ATZ", "ATE0", "ATH1", "ATSP6")
		if got := h.cmd("0100"); strings.Contains(got, "7E9") {
			t.Errorf("0100: %q", got)
		}
		if got := h.cmd("ATI"); got != "7E9 06 41 00 80 08 00 01 55\rATI\rELM327 v1.5\r\r" && got != "7E9 06 41 00 80 08 00 01 55\rELM327 v1.5\r\r" {
			t.Errorf("ATI after a late frame: %q", got)
		}
	})
	t.Run("split_writes", func(t *testing.T) {
		sc := fast(t, "petrol")
		sc.Faults.SplitWrites = true
		h := start(t, sc)
		h.conn.Write([]byte("ATI\r"))
		h.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		tmp := make([]byte, 64)
		n, _ := h.conn.Read(tmp)
		if n > 3 {
			t.Errorf("first read %q: not split", tmp[:n])
		}
		if got := h.readPrompt(); !strings.HasSuffix(string(tmp[:n])+got, "ELM327 v1.5\r\r") {
			t.Errorf("%q", got)
		}
	})
	t.Run("disconnect_after", func(t *testing.T) {
		sc := fast(t, "petrol")
		sc.Faults.DisconnectAfter = 2
		h := start(t, sc)
		h.setup("ATZ", "ATE0")
		got := make(chan []byte, 1)
		go func() {
			h.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, _ := io.ReadAll(h.conn)
			got <- b
		}()
		h.conn.Write([]byte("0902\r"))
		select {
		case err := <-h.done:
			if !errors.Is(err, ErrDisconnected) {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return")
		}
		h.conn.Close()
		rest := <-got
		if len(rest) == 0 || bytes.IndexByte(rest, '>') >= 0 {
			t.Errorf("a dropped reply must not end in a prompt: %q", rest)
		}
	})
	t.Run("lv_reset_after", func(t *testing.T) {
		sc := fast(t, "petrol")
		sc.Faults.LVResetAfter = 3
		h := start(t, sc)
		h.setup("ATZ", "ATE0", "ATH1")
		if got := h.cmd("0100"); got != "LV RESET\r\r" {
			t.Errorf("%q", got)
		}
		if got := h.cmd("0100"); !strings.HasPrefix(got, "0100\rSEARCHING...\r41 00") {
			t.Errorf("after the reset echo is on, headers off, protocol searched again: %q", got)
		}
	})
	t.Run("stopped_by_early_byte", func(t *testing.T) {
		sc := fast(t, "petrol")
		h := start(t, sc)
		h.setup("ATZ", "ATE0", "ATSP6")
		// CR LF: the LF arrives while the request runs and stops it (elm327-obd.md §1).
		h.conn.Write([]byte("0100\r\n"))
		if got := h.readPrompt(); got != "STOPPED\r\r" {
			t.Errorf("%q", got)
		}
		if st := h.sim.Stats(); st.Stopped != 1 {
			t.Errorf("stopped %d", st.Stopped)
		}
	})
}

func TestPacingAccountsTheWire(t *testing.T) {
	sc := fast(t, "petrol")
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	sim := New(sc, Options{Baud: 9600, Latency: 20 * time.Millisecond})
	go sim.Serve(context.Background(), b)
	h := &host{t: t, conn: a, sim: sim}
	h.setup("ATZ", "ATE0", "ATH1", "ATSP6")
	st0 := sim.Stats()
	t0 := time.Now()
	got := h.cmd("09023")
	el := time.Since(t0)
	st := sim.Stats().Bound() - st0.Bound()
	// 6 bytes in, 3 lines of 27 bytes + CR, CR and '>' out = 92 bytes ≈ 95.8 ms, + 20 ms latency.
	want := time.Duration(6+3*28+2)*10*time.Second/9600 + 20*time.Millisecond
	if d := st - want; d < -time.Microsecond || d > time.Microsecond { // per-write rounding
		t.Errorf("bound %v, want %v (reply %q)", st, want, got)
	}
	// One-sided and deterministic: the simulator sleeps until each byte's time on the wire, so
	// a loaded machine can only make the exchange slower, never faster than its bound.
	if el < want {
		t.Errorf("the exchange took %v, less than its bound %v: output is not paced", el, want)
	}
	if sim.Stats().TimeoutWaits != st0.TimeoutWaits {
		t.Errorf("a satisfied count waited")
	}
}

func TestPhysicalHeaderAndInterleave(t *testing.T) {
	sc := fast(t, "petrol")
	sc.Adapter.Interleave = true
	h := start(t, sc)
	h.setup("ATZ", "ATE0", "ATH1", "ATSP6")
	// Both ECUs answer 0904 with three frames each; interleaved they alternate.
	got := strings.Split(strings.TrimRight(h.cmd("0904"), "\r"), "\r")
	if len(got) != 6 || !strings.HasPrefix(got[0], "7E8 10") || !strings.HasPrefix(got[1], "7E9 10") || !strings.HasPrefix(got[2], "7E8 21") {
		t.Errorf("interleaved 0904: %q", got)
	}
	h.cmd("ATSH7E1")
	if got := h.cmd("03"); got != "7E9 04 43 01 C1 00 55 55 55\r\r" {
		t.Errorf("physical 03 to 7E1: %q", got)
	}
	h.cmd("ATSH7E5")
	if got := h.cmd("03"); got != "NO DATA\r\r" {
		t.Errorf("physical 03 to nobody: %q", got)
	}
	h.cmd("ATSH7DF")
	if got := h.cmd("03"); !strings.Contains(got, "7E8") || !strings.Contains(got, "7E9") {
		t.Errorf("functional 03: %q", got)
	}
}

func TestString(t *testing.T) {
	if got := New(fast(t, "diesel"), Options{}).String(); got != "elm327sim diesel (ELM327 v2.1, protocol 7, 38400 baud)" {
		t.Errorf("%q", got)
	}
	if got := New(Scenario{}, Options{}).String(); !strings.Contains(got, "invalid") {
		t.Errorf("%q", got)
	}
}

func TestServeTwiceAtOnce(t *testing.T) {
	h := start(t, fast(t, "petrol"))
	h.cmd("ATI") // the first Serve is running
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if err := h.sim.Serve(context.Background(), b); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Serve: %v", err)
	}
}

// fail_after_connect: the connect (0100, with or without a count digit) goes through; every
// other OBD request draws the configured line instead of data, AT commands still work.
func TestFailAfterConnect(t *testing.T) {
	for _, word := range []string{"CAN ERROR", "?", "#%&!x"} {
		sc := fast(t, "petrol")
		sc.Faults.FailAfterConnect = word
		h := start(t, sc)
		h.setup("ATZ", "ATE0", "ATH1", "ATSP6")
		if got := h.cmd("0100"); !strings.HasPrefix(got, "7E8 06 41 00") {
			t.Errorf("%s: 0100 = %q, want the bitmap", word, got)
		}
		if got := h.cmd("01002"); !strings.HasPrefix(got, "7E8 06 41 00") {
			t.Errorf("%s: 01002 = %q, want the bitmap", word, got)
		}
		for _, c := range []string{"0101", "03", "07", "0A", "0902", "0120"} {
			if got := h.cmd(c); got != word+"\r\r" {
				t.Errorf("%s: %s = %q", word, c, got)
			}
		}
		if got := h.cmd("ATRV"); got != "12.6V\r\r" {
			t.Errorf("%s: ATRV = %q", word, got)
		}
	}
}

// startWith is start with options of the test's own (the pacing stays off).
func startWith(t *testing.T, sc Scenario, opts Options) *host {
	t.Helper()
	a, b := net.Pipe()
	opts.Baud, opts.NoLatency = -1, true
	sim := New(sc, opts)
	h := &host{t: t, conn: a, sim: sim, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.done <- sim.Serve(ctx, b) }()
	t.Cleanup(func() {
		cancel()
		a.Close()
		b.Close()
	})
	return h
}

// TestSlowSearchDirectProtocol: with a slow automatic search (Options.SearchDelay), ATSP0
// spends it searching, while ATSP6 on the CAN 11/500 car answers without a search; the search
// time shows in Stats.Search, not measured by the clock.
func TestSlowSearchDirectProtocol(t *testing.T) {
	h := startWith(t, fast(t, "petrol"), Options{SearchDelay: 50 * time.Millisecond})
	h.setup("ATZ", "ATE0", "ATH1", "ATSP6")
	if got := h.cmd("0100"); strings.Contains(got, "SEARCHING") || !strings.Contains(got, "7E8 06 41 00") {
		t.Errorf("0100 under ATSP6: %q", got)
	}
	if st := h.sim.Stats(); st.Search != 0 {
		t.Errorf("ATSP6: a search of %v was counted", st.Search)
	}
	if got := h.cmd("ATDPN"); got != "6\r\r" {
		t.Errorf("ATDPN under ATSP6: %q", got)
	}
	h.setup("ATPC", "ATSP0")
	if got := h.cmd("0100"); !strings.HasPrefix(got, "SEARCHING...\r") || !strings.Contains(got, "7E8 06 41 00") {
		t.Errorf("0100 under ATSP0: %q", got)
	}
	if st := h.sim.Stats(); st.Search != 50*time.Millisecond {
		t.Errorf("ATSP0: search counted %v, want the 50ms of Options.SearchDelay", st.Search)
	}
	if got := h.cmd("ATDPN"); got != "A6\r\r" {
		t.Errorf("ATDPN after the search: %q", got)
	}
}

// TestWrongProtocolAnswers: a protocol the car does not speak never draws data: CAN at the
// right rate with the other ID length hears nobody (NO DATA), CAN on a K-line car finds no
// bus (CAN ERROR), a K-line init on a CAN car fails (BUS INIT: ...ERROR).
func TestWrongProtocolAnswers(t *testing.T) {
	for _, c := range []struct{ car, sp, want string }{
		{"petrol", "ATSP7", "NO DATA"},
		{"diesel", "ATSP6", "NO DATA"},
		{"kline", "ATSP6", "CAN ERROR"},
		{"kline", "ATSP7", "CAN ERROR"},
		{"petrol", "ATSP3", "BUS INIT: ...ERROR"},
	} {
		t.Run(c.car+"/"+c.sp, func(t *testing.T) {
			h := start(t, fast(t, c.car))
			h.setup("ATZ", "ATE0", "ATH1", c.sp)
			if got := strings.TrimSpace(h.cmd("0100")); got != c.want {
				t.Errorf("0100: %q, want %q", got, c.want)
			}
		})
	}
}
