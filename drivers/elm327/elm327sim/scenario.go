package elm327sim

import (
	"bytes"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Scenario is the YAML description of an adapter and the vehicle behind it. Byte values are
// written as hex strings ("0C E4"); fault codes as text ("P0420"). Parse checks everything and
// names the offending key in its error.
type Scenario struct {
	Name        string        `yaml:"name"`
	Description string        `yaml:"description"`
	Adapter     AdapterSpec   `yaml:"adapter"`
	Protocol    string        `yaml:"protocol"` // ELM protocol number of the vehicle: 3, 4, 5, 6, 7, 8 or 9
	Baud        int           `yaml:"baud"`     // adapter UART rate used for pacing; 0 → 38400
	Latency     time.Duration `yaml:"latency"`  // ECU response time per request
	VIN         string        `yaml:"vin"`      // answered (0902) by the first ECU
	OdometerKm  float64       `yaml:"odometer_km"`
	ECUs        []ECUSpec     `yaml:"ecus"`
	Faults      Faults        `yaml:"faults"`
}

// AdapterSpec describes the adapter chip.
type AdapterSpec struct {
	Version     string  `yaml:"version"`     // ATI / ATZ banner; "ELM327 v1.5" when empty
	Description string  `yaml:"description"` // AT@1; "OBDII to RS232 Interpreter" when empty
	STN         string  `yaml:"stn"`         // STI answer ("STN1110 v4.2.0"); empty → "?"
	Voltage     float64 `yaml:"voltage"`     // ATRV; 12.4 when zero
	// ResetDelay is how long ATZ/ATWS take before the banner (a genuine chip ≈ 1 s).
	ResetDelay time.Duration `yaml:"reset_delay"`
	// Unsupported lists commands (normalised: upper case, no spaces) answered with "?", e.g.
	// ATAT2 or STI. A prefix matches: "ATAT2" covers "AT AT 2".
	Unsupported []string `yaml:"unsupported"`
	// TrailingSpace leaves a space after the last byte of data lines, as many adapters do.
	TrailingSpace bool `yaml:"trailing_space"`
	// Interleave mixes the CAN frames of several ECUs (round robin) instead of printing one
	// ECU's message after the other.
	Interleave bool `yaml:"interleave"`
}

// ECUSpec is one control unit.
type ECUSpec struct {
	// ID is the response address: an 11-bit CAN ID ("7E8"), a 29-bit CAN ID ("18DAF110") or a
	// legacy source address ("10"), as the adapter prints it with headers on.
	ID        string   `yaml:"id"`
	Name      string   `yaml:"name"`     // for logs and tests ("engine")
	ECUName   string   `yaml:"ecu_name"` // 090A text, "ECM-EngineControl" (acronym-name)
	CALIDs    []string `yaml:"calids"`
	CVNs      []string `yaml:"cvns"`      // 8 hex digits each
	Readiness string   `yaml:"readiness"` // PID 01 bytes A B C D
	DTCs      DTCSpec  `yaml:"dtcs"`
	// PIDs maps a Mode 01 PID (2 hex digits) to its raw data bytes. 00/20/40… bitmaps are
	// computed from the PIDs present, PID 01 from Readiness, A6 from odometer_km.
	PIDs        map[string]string `yaml:"pids"`
	FreezeFrame *FreezeSpec       `yaml:"freeze_frame"`
	// Negative maps a request ("0A", "0908") or a service ("06") to the NRC this ECU answers
	// with (7F service NRC) instead of a positive answer.
	Negative map[string]string `yaml:"negative"`
	// Padding is the CAN frame padding byte ("00", "55", "AA", "CC"), or "none" for an ECU whose
	// frames stop at the PCI length. "00" when empty.
	Padding string `yaml:"padding"`
	// IUPR is the raw 0908 (spark) or 090B (compression) payload after the item count.
	IUPR string `yaml:"iupr"`
	// Delay is how much later than the scenario's latency this ECU answers (a slow or busy
	// controller). An answer that comes longer after the previous ECU's than the adapter's
	// wait for more frames (ATST, shortened by adaptive timing) is missed: the adapter has
	// already returned to its prompt.
	Delay time.Duration `yaml:"delay"`
}

// DTCSpec lists an ECU's fault codes by the service that reports them.
type DTCSpec struct {
	Stored    []string `yaml:"stored"`    // 03
	Pending   []string `yaml:"pending"`   // 07
	Permanent []string `yaml:"permanent"` // 0A
}

// FreezeSpec is freeze frame 0 (Mode 02).
type FreezeSpec struct {
	DTC  string            `yaml:"dtc"`
	PIDs map[string]string `yaml:"pids"`
}

// Faults switch on misbehaviour of clones and links.
type Faults struct {
	// EchoAfterReset: the adapter acknowledges ATE0 with OK but keeps echoing commands.
	EchoAfterReset bool `yaml:"echo_after_reset"`
	// CRLF: every line ends in CR LF whatever ATL says.
	CRLF bool `yaml:"crlf"`
	// SearchingDelay is how long the protocol search after ATSP0 takes (SEARCHING... is printed
	// first), or the K-line bus init when the protocol is set (a failed one as well).
	// Options.SearchDelay replaces it for the search alone: a protocol selected directly
	// (ATSP6 on a CAN 11/500 car) answers at once however long the search takes.
	SearchingDelay time.Duration `yaml:"searching_delay"`
	// IgnitionOff: no ECU answers; the first request ends in UNABLE TO CONNECT.
	IgnitionOff bool `yaml:"ignition_off"`
	// NoCountHint: the adapter does not understand the response-count digit. What it does with
	// one is NoCountHintReply: "?" (default, ELM v1.0-style firmware), "NO DATA" (reported of an
	// OBDLink LX) or "ignore" (drops the digit and waits out its timeout).
	NoCountHint      bool   `yaml:"no_count_hint"`
	NoCountHintReply string `yaml:"no_count_hint_reply"`
	// NoMultiPID: Mode 01 requests with several PIDs draw NO DATA.
	NoMultiPID bool `yaml:"no_multi_pid"`
	// LateSecondECU: frames of the ECUs after the first arrive after the prompt, before the
	// next command (the adapter gave up waiting too early).
	LateSecondECU bool `yaml:"late_second_ecu"`
	// BTChatter: a Bluetooth module's "+DISC:SUCCESS" line appears in every fourth reply.
	BTChatter bool `yaml:"bt_chatter"`
	// SplitWrites: replies go out in small pieces with pauses, so reads see them split.
	SplitWrites bool `yaml:"split_writes"`
	// NULBytes: NUL bytes appear before the banner and at the start of replies.
	NULBytes bool `yaml:"nul_bytes"`
	// LVResetAfter: after this many replies the adapter browns out once (a weak socket supply):
	// it answers the next command with "LV RESET" and is back at power-on defaults — echo on,
	// headers off, automatic protocol not yet found. 0 = never.
	LVResetAfter int `yaml:"lv_reset_after"`
	// DisconnectAfter: after this many replies the link drops in the middle of the next one
	// (Serve returns ErrDisconnected). 0 = never.
	DisconnectAfter int `yaml:"disconnect_after"`
	// FailAfterConnect: once the bus is up, every OBD request but 0100 (what an adapter
	// connects with) is answered with this line instead of data — "CAN ERROR", "?" or garbage —
	// like an adapter that loses the bus after a good connect. "" = never.
	FailAfterConnect string `yaml:"fail_after_connect"`
	// SearchingForever: the protocol search never ends — "SEARCHING..." again and again,
	// never a prompt (a stuck clone seen in the field).
	SearchingForever bool `yaml:"searching_forever"`
	// StallAfter: after this many OBD requests (the connect's 0100 included) the adapter
	// goes silent for good: it takes commands and answers none, not even ATZ. 0 = never.
	StallAfter int `yaml:"stall_after"`
	// Flood: once the bus is up, every OBD request but 0100 draws frame after frame with no
	// prompt, until the host sends a byte (an ELM stops on one) or a mebibyte went out.
	Flood bool `yaml:"flood"`
	// Garbage: once the bus is up, every OBD request but 0100 is answered with terminal
	// escape sequences, bare CRs, NULs and DEL before the prompt.
	Garbage bool `yaml:"garbage"`
}

//go:embed scenarios/*.yaml
var builtin embed.FS

// Builtins returns the names of the scenarios shipped with the simulator.
func Builtins() []string {
	ents, _ := builtin.ReadDir("scenarios")
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Builtin returns a shipped scenario by name ("petrol", "diesel", "kline", "ignition-off",
// "clone-v15").
func Builtin(name string) (Scenario, error) {
	data, err := builtin.ReadFile("scenarios/" + name + ".yaml")
	if err != nil {
		return Scenario{}, fmt.Errorf("elm327sim: no built-in scenario %q (have %s)", name, strings.Join(Builtins(), ", "))
	}
	return Parse(data)
}

// Load returns a built-in scenario when nameOrFile names one, otherwise it reads the file.
func Load(nameOrFile string) (Scenario, error) {
	if !strings.ContainsAny(nameOrFile, `/\.`) {
		return Builtin(nameOrFile)
	}
	data, err := os.ReadFile(nameOrFile)
	if err != nil {
		return Scenario{}, fmt.Errorf("elm327sim: read scenario: %w", err)
	}
	sc, err := Parse(data)
	if err != nil {
		return Scenario{}, fmt.Errorf("%w (in %s)", err, filepath.Base(nameOrFile))
	}
	return sc, nil
}

// ErrScenario is wrapped by every validation error of Parse.
var ErrScenario = errors.New("elm327sim: bad scenario")

// Parse decodes and checks a YAML scenario. Unknown keys are errors (a typo must not silently
// drop a fault). Errors name the key: `ecus[1].dtcs.stored[0]: "X0420" is not a fault code`.
func Parse(data []byte) (Scenario, error) {
	var sc Scenario
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&sc); err != nil {
		if errors.Is(err, io.EOF) {
			return Scenario{}, fmt.Errorf("%w: empty document", ErrScenario)
		}
		return Scenario{}, fmt.Errorf("%w: %s", ErrScenario, yamlMessage(err))
	}
	if _, err := compile(sc); err != nil {
		return Scenario{}, err
	}
	return sc, nil
}

// yamlMessage puts a decoder error on one line and names sections instead of Go types:
// "line 5: field colour not found under ecus[]".
func yamlMessage(err error) string {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msg = strings.Join(te.Errors, "; ")
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	for goType, section := range map[string]string{
		"in type elm327sim.Scenario": "at the top level", "in type elm327sim.AdapterSpec": "under adapter",
		"in type elm327sim.ECUSpec": "under ecus[]", "in type elm327sim.DTCSpec": "under dtcs",
		"in type elm327sim.FreezeSpec": "under freeze_frame", "in type elm327sim.Faults": "under faults",
	} {
		msg = strings.ReplaceAll(msg, goType, section)
	}
	return strings.Join(strings.Fields(msg), " ")
}

// Validate checks a scenario built in code the way Parse checks a file.
func (sc Scenario) Validate() error {
	_, err := compile(sc)
	return err
}

// vehicle is a compiled scenario: everything parsed into bytes, ready to answer requests.
type vehicle struct {
	name       string
	version    string
	desc       string
	stn        string
	voltage    float64
	resetDelay time.Duration
	unsupp     []string
	trailSpace bool
	interleave bool
	proto      int
	baud       int
	latency    time.Duration
	ecus       []*ecu
	faults     Faults
}

type ecu struct {
	id        string // as printed with spaces off ("7E8", "18DAF110", "10")
	idBytes   []byte // 29-bit: 4 bytes; legacy: 1 byte; 11-bit: nil
	name      string
	ecuName   []byte // 20 bytes
	calids    [][]byte
	cvns      [][]byte
	readiness []byte
	stored    [][2]byte
	pending   [][2]byte
	permanent [][2]byte
	pids      map[byte][]byte
	ffDTC     *[2]byte
	ffPIDs    map[byte][]byte
	negative  map[string]byte
	pad       int // -1 = none
	iupr      []byte
	vin       []byte // first ECU only
	delay     time.Duration
}

func scenarioErr(key, format string, a ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrScenario, key, fmt.Sprintf(format, a...))
}

func parseHex(key, s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == ':' {
			return -1
		}
		return r
	}, s)
	b, err := hex.DecodeString(clean)
	if err != nil {
		return nil, scenarioErr(key, "%q is not hex bytes", s)
	}
	return b, nil
}

func parseByteKey(key, s string) (byte, error) {
	b, err := parseHex(key, s)
	if err != nil || len(b) != 1 {
		return 0, scenarioErr(key, "%q is not one hex byte", s)
	}
	return b[0], nil
}

// encodeDTC turns "P0420" into 04 20 (elm327-obd.md §13).
func encodeDTC(key, s string) ([2]byte, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) != 5 {
		return [2]byte{}, scenarioErr(key, "%q is not a fault code (like P0420)", s)
	}
	sys := strings.IndexByte("PCBU", s[0])
	d1 := strings.IndexByte("0123", s[1])
	rest, err := hex.DecodeString("0" + s[2:])
	if sys < 0 || d1 < 0 || err != nil {
		return [2]byte{}, scenarioErr(key, "%q is not a fault code (like P0420)", s)
	}
	return [2]byte{byte(sys<<6|d1<<4) | rest[0], rest[1]}, nil
}

func compile(sc Scenario) (*vehicle, error) {
	v := &vehicle{
		name: sc.Name, version: sc.Adapter.Version, desc: sc.Adapter.Description, stn: sc.Adapter.STN,
		voltage: sc.Adapter.Voltage, resetDelay: sc.Adapter.ResetDelay,
		trailSpace: sc.Adapter.TrailingSpace, interleave: sc.Adapter.Interleave,
		baud: sc.Baud, latency: sc.Latency, faults: sc.Faults,
	}
	if v.version == "" {
		v.version = "ELM327 v1.5"
	}
	if v.desc == "" {
		v.desc = "OBDII to RS232 Interpreter"
	}
	if v.voltage == 0 {
		v.voltage = 12.4
	}
	if v.voltage < 0 || v.voltage > 40 {
		return nil, scenarioErr("adapter.voltage", "%v V is not a supply voltage", sc.Adapter.Voltage)
	}
	if v.resetDelay < 0 || sc.Latency < 0 || sc.Faults.SearchingDelay < 0 {
		return nil, scenarioErr("adapter.reset_delay/latency/faults.searching_delay", "durations must not be negative")
	}
	for i, u := range sc.Adapter.Unsupported {
		n := normalize([]byte(u))
		if n == "" {
			return nil, scenarioErr(fmt.Sprintf("adapter.unsupported[%d]", i), "empty command")
		}
		v.unsupp = append(v.unsupp, n)
	}
	if v.baud == 0 {
		v.baud = 38400
	}
	if v.baud < 300 || v.baud > 4_000_000 {
		return nil, scenarioErr("baud", "%d is not a serial rate (300…4000000)", sc.Baud)
	}
	p, err := strconv.ParseInt(sc.Protocol, 16, 8)
	if err != nil || !(p >= 3 && p <= 9) {
		return nil, scenarioErr("protocol", "%q is not a simulated ELM protocol number (3, 4, 5 K-line; 6, 8 CAN 11-bit; 7, 9 CAN 29-bit)", sc.Protocol)
	}
	v.proto = int(p)
	switch r := sc.Faults.NoCountHintReply; r {
	case "", "?", "NO DATA", "ignore":
	default:
		return nil, scenarioErr("faults.no_count_hint_reply", "%q is not one of \"?\", \"NO DATA\", \"ignore\"", r)
	}
	if sc.Faults.LVResetAfter < 0 {
		return nil, scenarioErr("faults.lv_reset_after", "must not be negative")
	}
	if strings.ContainsAny(sc.Faults.FailAfterConnect, "\r\n>") {
		return nil, scenarioErr("faults.fail_after_connect", "%q: one line, without '>'", sc.Faults.FailAfterConnect)
	}
	if sc.Faults.DisconnectAfter < 0 {
		return nil, scenarioErr("faults.disconnect_after", "must not be negative")
	}
	if sc.Faults.StallAfter < 0 {
		return nil, scenarioErr("faults.stall_after", "must not be negative")
	}
	if len(sc.ECUs) == 0 && !sc.Faults.IgnitionOff {
		return nil, scenarioErr("ecus", "a running vehicle needs at least one ECU")
	}
	if len(sc.ECUs) > 8 {
		return nil, scenarioErr("ecus", "at most 8 ECUs")
	}
	if sc.VIN != "" && len(sc.VIN) != 17 {
		return nil, scenarioErr("vin", "%q has %d characters, a VIN has 17", sc.VIN, len(sc.VIN))
	}
	if sc.OdometerKm < 0 || sc.OdometerKm > 429496729 {
		return nil, scenarioErr("odometer_km", "%v is out of range", sc.OdometerKm)
	}
	seen := map[string]bool{}
	for i, es := range sc.ECUs {
		k := fmt.Sprintf("ecus[%d]", i)
		e, err := compileECU(k, v.proto, es)
		if err != nil {
			return nil, err
		}
		if seen[e.id] {
			return nil, scenarioErr(k+".id", "%q appears twice", es.ID)
		}
		seen[e.id] = true
		if i == 0 {
			if sc.VIN != "" {
				e.vin = []byte(sc.VIN)
			}
			if sc.OdometerKm > 0 {
				raw := uint32(sc.OdometerKm*10 + 0.5)
				e.pids[0xA6] = []byte{byte(raw >> 24), byte(raw >> 16), byte(raw >> 8), byte(raw)}
			}
		}
		v.ecus = append(v.ecus, e)
	}
	return v, nil
}

func compileECU(k string, proto int, es ECUSpec) (*ecu, error) {
	e := &ecu{name: es.Name, pids: map[byte][]byte{}, negative: map[string]byte{}}
	id := strings.ToUpper(strings.ReplaceAll(es.ID, " ", ""))
	switch {
	case proto == 6 || proto == 8:
		n, err := strconv.ParseUint(id, 16, 16)
		if err != nil || len(id) != 3 || n < 0x7E8 || n > 0x7EF {
			return nil, scenarioErr(k+".id", "%q is not an 11-bit OBD response ID (7E8…7EF)", es.ID)
		}
	case proto == 7 || proto == 9:
		b, err := hex.DecodeString(id)
		if err != nil || len(b) != 4 || b[0] != 0x18 || b[1] != 0xDA || b[2] != 0xF1 {
			return nil, scenarioErr(k+".id", "%q is not a 29-bit OBD response ID (18DAF1xx)", es.ID)
		}
		e.idBytes = b
	default:
		b, err := hex.DecodeString(id)
		if err != nil || len(b) != 1 {
			return nil, scenarioErr(k+".id", "%q is not a K-line source address (one hex byte, like 10)", es.ID)
		}
		e.idBytes = b
	}
	e.id = id
	if es.ECUName != "" {
		// 090A layout: acronym (4, NUL-padded), '-', name (15, NUL-padded) (elm327-obd.md §14).
		acr, name, ok := strings.Cut(es.ECUName, "-")
		if !ok || len(acr) > 4 || len(name) > 15 || acr == "" {
			return nil, scenarioErr(k+".ecu_name", "%q is not ACRONYM-Name (at most 4 and 15 characters)", es.ECUName)
		}
		e.ecuName = append(append(padTo([]byte(acr), 4), '-'), padTo([]byte(name), 15)...)
	}
	for i, c := range es.CALIDs {
		if len(c) == 0 || len(c) > 16 {
			return nil, scenarioErr(fmt.Sprintf("%s.calids[%d]", k, i), "%q must have 1 to 16 characters", c)
		}
		e.calids = append(e.calids, padTo([]byte(c), 16))
	}
	for i, c := range es.CVNs {
		key := fmt.Sprintf("%s.cvns[%d]", k, i)
		b, err := parseHex(key, c)
		if err != nil {
			return nil, err
		}
		if len(b) != 4 {
			return nil, scenarioErr(key, "%q is not 4 bytes (8 hex digits)", c)
		}
		e.cvns = append(e.cvns, b)
	}
	if len(e.calids) > 15 || len(e.cvns) > 15 {
		return nil, scenarioErr(k, "at most 15 CALIDs and 15 CVNs")
	}
	if es.Readiness != "" {
		b, err := parseHex(k+".readiness", es.Readiness)
		if err != nil {
			return nil, err
		}
		if len(b) != 4 {
			return nil, scenarioErr(k+".readiness", "%q is not 4 bytes (A B C D of PID 01)", es.Readiness)
		}
		e.readiness = b
		e.pids[0x01] = b
	}
	var err error
	if e.stored, err = dtcList(k+".dtcs.stored", es.DTCs.Stored); err != nil {
		return nil, err
	}
	if e.pending, err = dtcList(k+".dtcs.pending", es.DTCs.Pending); err != nil {
		return nil, err
	}
	if e.permanent, err = dtcList(k+".dtcs.permanent", es.DTCs.Permanent); err != nil {
		return nil, err
	}
	if err := pidMap(k+".pids", es.PIDs, e.pids); err != nil {
		return nil, err
	}
	for pid := range e.pids {
		if pid%0x20 == 0 {
			return nil, scenarioErr(fmt.Sprintf("%s.pids.%02X", k, pid), "supported-PID bitmaps are computed; do not list them")
		}
	}
	if es.FreezeFrame != nil {
		d, err := encodeDTC(k+".freeze_frame.dtc", es.FreezeFrame.DTC)
		if err != nil {
			return nil, err
		}
		e.ffDTC = &d
		e.ffPIDs = map[byte][]byte{}
		if err := pidMap(k+".freeze_frame.pids", es.FreezeFrame.PIDs, e.ffPIDs); err != nil {
			return nil, err
		}
	}
	for req, nrc := range es.Negative {
		key := k + ".negative." + req
		r, err := parseHex(key, req)
		if err != nil || len(r) == 0 {
			return nil, scenarioErr(key, "%q is not a request in hex", req)
		}
		n, err := parseByteKey(key, nrc)
		if err != nil {
			return nil, err
		}
		e.negative[strings.ToUpper(hex.EncodeToString(r))] = n
	}
	if es.Delay < 0 {
		return nil, scenarioErr(k+".delay", "must not be negative")
	}
	e.delay = es.Delay
	switch p := strings.ToUpper(es.Padding); p {
	case "":
		e.pad = 0
	case "NONE":
		e.pad = -1
	default:
		b, err := parseByteKey(k+".padding", p)
		if err != nil {
			return nil, err
		}
		e.pad = int(b)
	}
	if es.IUPR != "" {
		if e.iupr, err = parseHex(k+".iupr", es.IUPR); err != nil {
			return nil, err
		}
		if len(e.iupr)%2 != 0 || len(e.iupr) > 64 {
			return nil, scenarioErr(k+".iupr", "must be 2-byte counters, at most 32")
		}
	}
	return e, nil
}

func dtcList(key string, in []string) ([][2]byte, error) {
	var out [][2]byte
	for i, s := range in {
		d, err := encodeDTC(fmt.Sprintf("%s[%d]", key, i), s)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if len(out) > 50 {
		return nil, scenarioErr(key, "at most 50 codes")
	}
	return out, nil
}

func pidMap(key string, in map[string]string, out map[byte][]byte) error {
	for ks, vs := range in {
		k := key + "." + ks
		pid, err := parseByteKey(k, ks)
		if err != nil {
			return err
		}
		b, err := parseHex(k, vs)
		if err != nil {
			return err
		}
		if len(b) == 0 || len(b) > 5 {
			return scenarioErr(k, "%q must be 1 to 5 data bytes", vs)
		}
		out[pid] = b
	}
	return nil
}

func padTo(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}
