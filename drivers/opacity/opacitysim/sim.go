package opacitysim

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/obdgw/obdgw/drivers/opacity"
	"github.com/obdgw/obdgw/drivers/rig/frame"
	"github.com/obdgw/obdgw/drivers/rig/rigsim"
)

func init() {
	for _, s := range opacity.Specs() {
		model := s.Model
		rigsim.Register(rigsim.Model{Name: model, Title: s.Title, New: func(cfg rigsim.Config) (rigsim.Server, error) {
			return New(model, cfg)
		}})
	}
}

// Sim is one simulated opacimeter.
type Sim struct {
	spec opacity.Spec
	core *rigsim.Core

	mu       sync.Mutex
	calEnd   time.Time
	clearedT time.Duration
}

// New simulates a model.
func New(model string, cfg rigsim.Config) (*Sim, error) {
	s, err := opacity.Lookup(model)
	if err != nil {
		return nil, fmt.Errorf("opacitysim: %w", err)
	}
	return &Sim{spec: s, core: rigsim.NewCore(cfg)}, nil
}

// Serve answers requests on rw until ctx ends or the link fails.
func (s *Sim) Serve(ctx context.Context, rw io.ReadWriter) error {
	return s.core.Serve(ctx, rw, s.handle)
}

// nak is the refusal with an error code.
func nak(code byte) []byte { return []byte{opacity.NAK, code} }

func (s *Sim) readRequest(r *bufio.Reader) ([]byte, error) {
	if s.spec.Model == "fty100" {
		// "fty" 01 02 cmd cs; resynchronise on the 'f'.
		for {
			c, err := r.ReadByte()
			if err != nil {
				return nil, err
			}
			if c == 'f' {
				rest, err := rigsim.ReadN(r, 6)
				return append([]byte{c}, rest...), err
			}
		}
	}
	c, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	n := 1
	if c == 0xA0 || c == 0xB2 {
		n = 2 // set status / control-unit parameter carry one or two parameter bytes
		if c == 0xB2 {
			n = 3
		}
	}
	rest, err := rigsim.ReadN(r, n)
	return append([]byte{c}, rest...), err
}

func (s *Sim) calibrating() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.core.Now().Before(s.calEnd)
}

func (s *Sim) handle(r *bufio.Reader) (rigsim.Reply, error) {
	req, err := s.readRequest(r)
	if err != nil {
		return rigsim.Reply{}, err
	}
	if frame.TwoC(req[:len(req)-1]) != req[len(req)-1] && s.spec.Model != "fty100" {
		return rigsim.Reply{Bytes: nak(0x01)}, nil
	}
	sp := s.spec
	switch {
	case bytes.Equal(req, sp.RealTime):
		if s.core.DataRequest() {
			return rigsim.Reply{Bytes: nak(0x02), Data: true}, nil
		}
		sm := s.core.Smoke()
		return rigsim.Reply{Bytes: opacity.Encode(sp, sm.NPct, sm.KM1, sm.RPM, sm.OilC), Data: true}, nil
	case sp.Status != nil && bytes.Equal(req, sp.Status):
		return rigsim.Reply{Bytes: s.status()}, nil
	case sp.Zero != nil && bytes.Equal(req, sp.Zero):
		s.mu.Lock()
		s.calEnd = s.core.Now().Add(s.core.Op())
		s.mu.Unlock()
		return rigsim.Reply{Bytes: opacity.Request(req[0])}, nil
	case sp.Max != nil && bytes.Equal(req, sp.Max):
		return rigsim.Reply{Bytes: s.maxima()}, nil
	case sp.ClearMax != nil && bytes.Equal(req, sp.ClearMax):
		s.mu.Lock()
		s.clearedT = s.core.Elapsed()
		s.mu.Unlock()
		return rigsim.Reply{Bytes: opacity.Request(req[0])}, nil
	}
	return rigsim.Reply{Bytes: nak(0x03)}, nil
}

func (s *Sim) status() []byte {
	if s.spec.Model == "fty100" {
		var st byte = 0x04 // real-time measuring
		if s.core.WarmingUp() {
			st = 0x02
		}
		b := []byte{'f', 't', 'y', st, 0, 0}
		return append(b, frame.TwoC(b))
	}
	st := byte(1)
	switch {
	case s.core.WarmingUp():
		st = 0
	case s.calibrating():
		st = opacity.NHTStateCalibrating
	}
	return opacity.Request(0xA1, st)
}

// maxima scans the script since the last clear (at most the last minute) in 100 ms steps.
func (s *Sim) maxima() []byte {
	s.mu.Lock()
	from := s.clearedT
	s.mu.Unlock()
	now := s.core.Elapsed()
	if now-from > time.Minute {
		from = now - time.Minute
	}
	var mx rigsim.Smoke
	for t := from; t <= now; t += 100 * time.Millisecond {
		sm := rigsim.DieselSmoke(t)
		if sm.NPct > mx.NPct {
			mx.NPct, mx.KM1 = sm.NPct, sm.KM1
		}
		mx.RPM = max(mx.RPM, sm.RPM)
	}
	b := make([]byte, 7)
	b[0] = s.spec.Max[0]
	frame.PutI16(b, 1, frame.Round16(mx.NPct*10))
	frame.PutI16(b, 3, frame.Round16(mx.KM1*100))
	frame.PutU16(b, 5, frame.RoundU16(mx.RPM))
	return append(b, frame.TwoC(b))
}
