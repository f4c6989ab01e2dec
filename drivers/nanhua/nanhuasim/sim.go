package nanhuasim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/obdgw/obdgw/drivers/nanhua"
	"github.com/obdgw/obdgw/drivers/rig/frame"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
)

func init() {
	seen := map[string]bool{}
	for _, s := range nanhua.Specs() {
		if seen[s.Model] || s.Firmware != "" {
			continue
		}
		seen[s.Model] = true
		model := s.Model
		rigsim.Register(rigsim.Model{Name: model, Title: s.Title, New: func(cfg rigsim.Config) (rigsim.Server, error) {
			return New(model, "", cfg)
		}})
	}
}

// Sim is one simulated analyzer.
type Sim struct {
	spec nanhua.Spec
	core *rigsim.Core

	mu     sync.Mutex
	opEnd  map[byte]time.Time // running zero / leak check: when it finishes
	pumpOn bool
}

// New simulates a model in a firmware variant ("" = default).
func New(model, firmware string, cfg rigsim.Config) (*Sim, error) {
	s, err := nanhua.Lookup(model, firmware)
	if err != nil {
		return nil, fmt.Errorf("nanhuasim: %w", err)
	}
	return &Sim{spec: s, core: rigsim.NewCore(cfg), opEnd: map[byte]time.Time{}}, nil
}

// Core exposes the shared state (clock, script).
func (s *Sim) Core() *rigsim.Core { return s.core }

// Serve answers requests on rw until ctx ends or the link fails.
func (s *Sim) Serve(ctx context.Context, rw io.ReadWriter) error {
	return s.core.Serve(ctx, rw, s.handle)
}

func (s *Sim) dataFrame() []byte {
	g := s.core.Gas()
	v := nanhua.Values(map[nanhua.Channel]float64{
		nanhua.HC: g.HCppm, nanhua.CO: g.COPct, nanhua.CO2: g.CO2Pct, nanhua.O2: g.O2Pct,
		nanhua.NO: g.NOppm, nanhua.RPM: g.RPM, nanhua.Oil: g.OilC, nanhua.Flow: g.Flow,
		nanhua.Lambda: g.Lambda,
	})
	var status byte
	if s.spec.StatusKind == nanhua.StatusState && s.core.WarmingUp() {
		status = 0x02
	}
	return nanhua.Encode(s.spec, v, status)
}

// op runs a timed operation (zero, leak check): the first request starts it, requests while
// it runs get 05, the first request after it ends gets the result.
func (s *Sim) op(cmd byte, result byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.core.Now()
	end, running := s.opEnd[cmd]
	if !running {
		s.opEnd[cmd] = now.Add(s.core.Op())
		return []byte{nanhua.Busy}
	}
	if now.Before(end) {
		return []byte{nanhua.Busy}
	}
	delete(s.opEnd, cmd)
	return []byte{result}
}

func (s *Sim) handle(r *bufio.Reader) (rigsim.Reply, error) {
	cmd, err := r.ReadByte()
	if err != nil {
		return rigsim.Reply{}, err
	}
	sp := s.spec
	switch {
	case cmd == sp.DataCmd:
		if s.core.DataRequest() {
			return rigsim.Reply{Bytes: []byte{nanhua.Busy}, Data: true}, nil
		}
		return rigsim.Reply{Bytes: s.dataFrame(), Data: true}, nil
	case sp.StatusCmd != 0 && cmd == sp.StatusCmd:
		st := byte(nanhua.StateReady)
		switch {
		case s.core.WarmingUp():
			st = nanhua.StateWarmingUp
		case s.isPumping():
			st = nanhua.StateMeasuring
		}
		return rigsim.Reply{Bytes: []byte{st}}, nil
	case sp.WarmupCmd != 0 && cmd == sp.WarmupCmd:
		b := make([]byte, 2)
		frame.PutU16(b, 0, uint16(s.core.WarmupLeft().Seconds()))
		return rigsim.Reply{Bytes: b}, nil
	case sp.EnvCmd != 0 && cmd == sp.EnvCmd:
		b := []byte{nanhua.ACK, 0, 0, 0, 0, 0, 0, 0}
		frame.PutI16(b, 1, 231)
		frame.PutI16(b, 3, 1001)
		frame.PutI16(b, 5, 500)
		b[7] = frame.Sum(b[:7])
		return rigsim.Reply{Bytes: b}, nil
	case sp.ZeroCmd != 0 && cmd == sp.ZeroCmd:
		return rigsim.Reply{Bytes: s.op(cmd, 0x00)}, nil
	case sp.LeakCmd != 0 && cmd == sp.LeakCmd:
		return rigsim.Reply{Bytes: s.op(cmd, 0x00)}, nil
	case sp.PumpCmd != 0 && cmd == sp.PumpCmd:
		s.setPump(true)
		return rigsim.Reply{Bytes: []byte{nanhua.ACK}}, nil
	case sp.StopCmd != 0 && cmd == sp.StopCmd:
		s.setPump(false)
		return rigsim.Reply{Bytes: []byte{nanhua.ACK}}, nil
	}
	return rigsim.Reply{Bytes: []byte{nanhua.NAK}}, nil
}

func (s *Sim) isPumping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pumpOn
}

func (s *Sim) setPump(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pumpOn = on
}
