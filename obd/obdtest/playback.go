package obdtest

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/obdgw/obdgw/obd"
)

// Exchange is one scripted request and its outcome.
type Exchange struct {
	// Req is the expected request in hex, spaces ignored ("0902", "01 0C 0D").
	Req string
	// Resps are returned when Err is nil.
	Resps []obd.Response
	// Err is returned instead of responses (obd.ErrNoData, obd.ErrNoVehicle, …).
	Err error
}

// ErrUnexpected is returned for a request the script does not expect at that point.
var ErrUnexpected = errors.New("obdtest: unexpected request")

// Playback is an obd.Adapter that plays a script. Safe for concurrent use.
type Playback struct {
	// Script is played in order.
	Script []Exchange
	// T, when set, gets an Errorf for every unexpected request, so the test fails even when the
	// code under test swallows the returned error.
	T testing.TB

	mu       sync.Mutex
	pos      int
	sent     []string
	reqs     []obd.Request
	failures []string
}

var _ obd.Adapter = (*Playback)(nil)

// New returns a Playback that reports unexpected requests to t.
func New(t testing.TB, script ...Exchange) *Playback {
	return &Playback{Script: script, T: t}
}

// Query answers the next exchange of the script when req matches it; otherwise it records a
// failure and returns an error wrapping ErrUnexpected (the script does not advance).
func (p *Playback) Query(ctx context.Context, req obd.Request) ([]obd.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	got := req.String()
	p.sent = append(p.sent, got)
	p.reqs = append(p.reqs, obd.Request{Service: req.Service, Data: append([]byte(nil), req.Data...), Expect: append([]obd.Expect(nil), req.Expect...), Likely: req.Likely})
	if p.pos >= len(p.Script) {
		return nil, p.fail("request %s after the end of the script (%d exchanges)", got, len(p.Script))
	}
	ex := p.Script[p.pos]
	want := normHex(ex.Req)
	if got != want {
		return nil, p.fail("request %s at exchange %d, script expects %s", got, p.pos+1, want)
	}
	p.pos++
	if ex.Err != nil {
		return nil, ex.Err
	}
	out := make([]obd.Response, len(ex.Resps))
	for i, r := range ex.Resps {
		out[i] = obd.Response{ECU: r.ECU, Data: append([]byte(nil), r.Data...)}
	}
	return out, nil
}

func (p *Playback) fail(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	p.failures = append(p.failures, msg)
	if p.T != nil {
		p.T.Errorf("obdtest: %s", msg)
	}
	return fmt.Errorf("%w: %s", ErrUnexpected, msg)
}

// Failures returns the unexpected requests seen so far.
func (p *Playback) Failures() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.failures...)
}

// Sent returns every request received, in hex.
func (p *Playback) Sent() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.sent...)
}

// Requests returns every request received, with its hints (Request.Expect), in order.
func (p *Playback) Requests() []obd.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]obd.Request(nil), p.reqs...)
}

// Close reports an error when requests went wrong or the script was not played to the end.
func (p *Playback) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.failures) > 0 {
		return fmt.Errorf("obdtest: %d unexpected request(s): %s", len(p.failures), strings.Join(p.failures, "; "))
	}
	if p.pos != len(p.Script) {
		return fmt.Errorf("obdtest: script played to exchange %d of %d; next expected %s", p.pos, len(p.Script), normHex(p.Script[p.pos].Req))
	}
	return nil
}

// Profiled is a Playback that also describes itself as an adapter with a capability profile.
type Profiled struct {
	*Playback
	P obd.Profile
}

var _ obd.Profiler = Profiled{}

// Profile returns P.
func (p Profiled) Profile() obd.Profile { return p.P }

// Ex builds an exchange answered by resps.
func Ex(req string, resps ...obd.Response) Exchange { return Exchange{Req: req, Resps: resps} }

// ExErr builds an exchange answered by an error.
func ExErr(req string, err error) Exchange { return Exchange{Req: req, Err: err} }

// Resp builds one ECU's reassembled answer from hex ("43 02 04 20 01 71"). It panics on bad
// hex: scripts are written by the test author.
func Resp(ecu, hexData string) obd.Response {
	return obd.Response{ECU: ecu, Data: MustHex(hexData)}
}

// MustHex decodes hex with optional spaces, panicking on a typo in a test script.
func MustHex(s string) []byte {
	b, err := hex.DecodeString(normHex(s))
	if err != nil {
		panic(fmt.Sprintf("obdtest: bad hex %q: %v", s, err))
	}
	return b
}

func normHex(s string) string {
	return strings.ToUpper(strings.Join(strings.Fields(s), ""))
}

// CAN reassembles headers-on ISO 15765-4 lines as an ELM327 prints them after ATH1
// ("7E8 10 14 49 02 01 4C 4B 36", "7E8 21 …") into one response per CAN ID, in the order the
// IDs first appear, cut to the PCI length (padding dropped). 11-bit IDs are 3 hex digits,
// 29-bit IDs 4 bytes ("18 DA F1 10"). It panics on malformed lines: they are test input.
func CAN(lines ...string) []obd.Response {
	type msg struct {
		id   string
		want int
		data []byte
		seq  byte
	}
	var order []*msg
	byID := map[string]*msg{}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) < 2 {
			panic(fmt.Sprintf("obdtest: CAN line %q: want an ID and a PCI byte", line))
		}
		id := strings.ToUpper(f[0])
		rest := f[1:]
		if len(f[0]) == 2 && len(f) >= 5 { // 29-bit: four header bytes
			id = strings.ToUpper(strings.Join(f[:4], ""))
			rest = f[4:]
		}
		b := MustHex(strings.Join(rest, ""))
		if len(b) == 0 {
			panic(fmt.Sprintf("obdtest: CAN line %q: no PCI byte", line))
		}
		m := byID[id]
		switch b[0] >> 4 {
		case 0: // single frame
			n := int(b[0] & 0x0F)
			if n > len(b)-1 {
				panic(fmt.Sprintf("obdtest: CAN line %q: single frame length %d exceeds the data", line, n))
			}
			m = &msg{id: id, want: n, data: append([]byte(nil), b[1:1+n]...)}
			byID[id] = m
			order = append(order, m)
		case 1: // first frame
			if len(b) < 2 {
				panic(fmt.Sprintf("obdtest: CAN line %q: short first frame", line))
			}
			m = &msg{id: id, want: int(b[0]&0x0F)<<8 | int(b[1]), data: append([]byte(nil), b[2:]...), seq: 1}
			byID[id] = m
			order = append(order, m)
		case 2: // consecutive frame
			if m == nil || b[0]&0x0F != m.seq&0x0F {
				panic(fmt.Sprintf("obdtest: CAN line %q: consecutive frame out of order", line))
			}
			m.seq++
			m.data = append(m.data, b[1:]...)
		default:
			panic(fmt.Sprintf("obdtest: CAN line %q: PCI %02X is not a single, first or consecutive frame", line, b[0]))
		}
	}
	out := make([]obd.Response, 0, len(order))
	for _, m := range order {
		if len(m.data) < m.want {
			panic(fmt.Sprintf("obdtest: CAN message from %s: %d of %d bytes", m.id, len(m.data), m.want))
		}
		out = append(out, obd.Response{ECU: m.id, Data: m.data[:m.want]})
	}
	return out
}

// Legacy builds responses from headers-off legacy lines ("43 04 20 01 71 03 00"), one response
// per line, all from ecu (a legacy source address such as "10", or "").
func Legacy(ecu string, lines ...string) []obd.Response {
	out := make([]obd.Response, 0, len(lines))
	for _, l := range lines {
		out = append(out, Resp(ecu, l))
	}
	return out
}
