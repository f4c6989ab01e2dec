package mqw50asim

import (
	"bufio"
	"context"
	"io"
	"sync"
	"time"

	"github.com/obdgw/obdgw/drivers/mqw50a"
	"github.com/obdgw/obdgw/drivers/rig/frame"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
)

func init() {
	rigsim.Register(rigsim.Model{Name: "mqw50a", Title: mqw50a.Title, New: func(cfg rigsim.Config) (rigsim.Server, error) {
		return New(cfg), nil
	}})
}

// Sim is a simulated MQW-50A.
type Sim struct {
	core   *rigsim.Core
	mu     sync.Mutex
	opEnd  time.Time
	opBits byte
}

// New starts a simulator.
func New(cfg rigsim.Config) *Sim { return &Sim{core: rigsim.NewCore(cfg)} }

// Serve answers requests on rw until ctx ends or the link fails.
func (s *Sim) Serve(ctx context.Context, rw io.ReadWriter) error {
	return s.core.Serve(ctx, rw, s.handle)
}

func (s *Sim) handle(r *bufio.Reader) (rigsim.Reply, error) {
	// 02 cmd len [param…] cs; skip anything before the start byte.
	for {
		c, err := r.ReadByte()
		if err != nil {
			return rigsim.Reply{}, err
		}
		if c == mqw50a.Start {
			break
		}
	}
	hdr, err := rigsim.ReadN(r, 2)
	if err != nil {
		return rigsim.Reply{}, err
	}
	n := int(hdr[1]) - 3 + 1 // parameters and checksum still to come
	if n < 1 || n > 8 {
		return rigsim.Reply{Bytes: []byte{mqw50a.NAK}}, nil
	}
	rest, err := rigsim.ReadN(r, n)
	if err != nil {
		return rigsim.Reply{}, err
	}
	req := append(append([]byte{mqw50a.Start}, hdr...), rest...)
	if frame.Sum(req) != 0 {
		return rigsim.Reply{Bytes: []byte{mqw50a.NAK}}, nil
	}
	cmd := hdr[0]
	switch cmd {
	case mqw50a.CmdData:
		if s.core.DataRequest() {
			return rigsim.Reply{Bytes: []byte{mqw50a.NAK}, Data: true}, nil
		}
		g := s.core.Gas()
		return rigsim.Reply{Bytes: mqw50a.Encode(map[string]float64{
			"co2": g.CO2Pct, "co": g.COPct, "hc": g.HCppm, "no": g.NOppm, "o2": g.O2Pct,
			"rh": 55, "oil": g.OilC, "ambient": 23.1, "rpm": g.RPM, "lambda": g.Lambda, "pressure": 100.1,
		}), Data: true}, nil
	case mqw50a.CmdStatus:
		s.mu.Lock()
		busy, bits := false, byte(0)
		if s.core.Now().Before(s.opEnd) {
			busy, bits = true, s.opBits
		}
		s.mu.Unlock()
		if s.core.WarmingUp() {
			busy, bits = true, mqw50a.StWarmingUp
		}
		return rigsim.Reply{Bytes: mqw50a.EncodeStatus(busy, bits)}, nil
	case mqw50a.CmdZero, mqw50a.CmdLeakCheck:
		s.mu.Lock()
		s.opEnd = s.core.Now().Add(s.core.Op())
		s.opBits = mqw50a.StZeroing
		if cmd == mqw50a.CmdLeakCheck {
			s.opBits = mqw50a.StLeakCheck
		}
		s.mu.Unlock()
	}
	return rigsim.Reply{Bytes: mqw50a.EncodeControl(cmd)}, nil
}
