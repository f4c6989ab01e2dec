package mexasim

import (
	"bufio"
	"context"
	"io"
	"sync"

	"github.com/obdgw/obdgw/drivers/mexa"
	"github.com/obdgw/obdgw/drivers/rig/frame"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
)

func init() {
	rigsim.Register(rigsim.Model{Name: "mexa584l", Title: mexa.Title, New: func(cfg rigsim.Config) (rigsim.Server, error) {
		return New(cfg), nil
	}})
}

// Sim is a simulated MEXA-584L.
type Sim struct {
	core      *rigsim.Core
	mu        sync.Mutex
	measuring bool
}

// New starts a simulator.
func New(cfg rigsim.Config) *Sim { return &Sim{core: rigsim.NewCore(cfg), measuring: true} }

// Serve answers requests on rw until ctx ends or the link fails.
func (s *Sim) Serve(ctx context.Context, rw io.ReadWriter) error {
	return s.core.Serve(ctx, rw, s.handle)
}

func nak(cmd byte) []byte {
	b := []byte{mexa.NAK, cmd, 0, 0}
	return append(b, frame.TwoC(b))
}

func (s *Sim) handle(r *bufio.Reader) (rigsim.Reply, error) {
	for {
		c, err := r.ReadByte()
		if err != nil {
			return rigsim.Reply{}, err
		}
		if c == 0x02 {
			break
		}
	}
	n, err := r.ReadByte()
	if err != nil {
		return rigsim.Reply{}, err
	}
	if n == 0 || n > 8 {
		return rigsim.Reply{Bytes: nak(0)}, nil
	}
	rest, err := rigsim.ReadN(r, int(n)+1)
	if err != nil {
		return rigsim.Reply{}, err
	}
	req := append([]byte{0x02, n}, rest...)
	cmd := rest[0]
	if frame.Sum(req) != 0 {
		return rigsim.Reply{Bytes: nak(cmd)}, nil
	}
	switch cmd {
	case mexa.CmdChannels:
		if s.core.DataRequest() {
			return rigsim.Reply{Bytes: nak(cmd), Data: true}, nil
		}
		g := s.core.Gas()
		return rigsim.Reply{Bytes: mexa.EncodeChannels(mexa.Channels{
			CO2Pct: g.CO2Pct, COPct: g.COPct, HCppm: g.HCppm, O2Pct: g.O2Pct, AFR: g.Lambda * 14.7,
			Lambda: g.Lambda, NOppm: g.NOppm, RPM: g.RPM, OilC: g.OilC,
		}), Data: true}, nil
	case mexa.CmdStatus:
		var b3 byte
		if s.core.WarmingUp() {
			b3 = 0x08
		}
		return rigsim.Reply{Bytes: mexa.Reply(cmd, mexa.QStatus.Len, map[int]byte{3: b3})}, nil
	case mexa.CmdSubsystem:
		s.mu.Lock()
		var b4 byte
		if s.measuring {
			b4 = 0x40
		}
		s.mu.Unlock()
		return rigsim.Reply{Bytes: mexa.Reply(cmd, mexa.QSubsystem.Len, map[int]byte{4: b4, 6: 0x0F})}, nil
	case mexa.CmdPEF:
		return rigsim.Reply{Bytes: mexa.Reply(cmd, mexa.QPEF.Len, map[int]byte{3: 0x02, 4: 0x00})}, nil
	case mexa.CmdMeasure, mexa.CmdStandby:
		s.mu.Lock()
		s.measuring = cmd == mexa.CmdMeasure
		s.mu.Unlock()
		return rigsim.Reply{Bytes: mexa.Reply(cmd, 4, nil)}, nil
	}
	return rigsim.Reply{Bytes: nak(cmd)}, nil
}
