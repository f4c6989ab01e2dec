package fga4100sim

import (
	"bufio"
	"bytes"
	"context"
	"io"

	"github.com/obdgw/obdgw/drivers/fga4100"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
)

func init() {
	rigsim.Register(rigsim.Model{Name: "fga4100", Title: fga4100.Title, New: func(cfg rigsim.Config) (rigsim.Server, error) {
		return New(cfg), nil
	}})
}

// Sim is a simulated FGA-4100.
type Sim struct{ core *rigsim.Core }

// New starts a simulator.
func New(cfg rigsim.Config) *Sim { return &Sim{core: rigsim.NewCore(cfg)} }

// Serve answers requests on rw until ctx ends or the link fails.
func (s *Sim) Serve(ctx context.Context, rw io.ReadWriter) error {
	return s.core.Serve(ctx, rw, s.handle)
}

func (s *Sim) handle(r *bufio.Reader) (rigsim.Reply, error) {
	// Find the 4-byte prefix, then read `7E len payload… cs`.
	var win []byte
	for !bytes.Equal(win, fga4100.Prefix) {
		c, err := r.ReadByte()
		if err != nil {
			return rigsim.Reply{}, err
		}
		win = append(win, c)
		if len(win) > len(fga4100.Prefix) {
			win = win[1:]
		}
	}
	hdr, err := rigsim.ReadN(r, 2)
	if err != nil {
		return rigsim.Reply{}, err
	}
	rest, err := rigsim.ReadN(r, int(hdr[1])+1)
	if err != nil {
		return rigsim.Reply{}, err
	}
	f := append(hdr, rest...)
	payload, err := fga4100.CheckFrame(f)
	if err != nil {
		return rigsim.Reply{}, nil // a garbled request goes unanswered
	}
	if bytes.Equal(payload, fga4100.PayloadData) {
		s.core.DataRequest()
		g := s.core.Gas()
		return rigsim.Reply{Bytes: fga4100.Encode(map[string]float64{
			"hc": g.HCppm, "co": g.COPct, "co2": g.CO2Pct, "o2": g.O2Pct, "no": g.NOppm,
			"lambda": g.Lambda, "rpm": g.RPM, "oil": g.OilC,
		}), Data: true}, nil
	}
	return rigsim.Reply{Bytes: fga4100.EncodeControlReply(payload)}, nil
}
