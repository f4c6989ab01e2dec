package emission

import (
	"context"
	"errors"
	"testing"

	"github.com/obdgw/obdgw/obd"
	"github.com/obdgw/obdgw/obd/obdtest"
)

func TestDecodeRPM(t *testing.T) {
	for _, c := range []struct {
		hex  string
		want float64
		err  bool
	}{
		{"41 0C 1A F8", 1726, false}, // (256·26 + 248)/4
		{"41 0C 00 00", 0, false},
		{"41 0C FF FF", 16383.75, false},
		{"41 0C 0B B8 00", 750, false}, // padding kept by some adapters
		{"41 0C 1A", 0, true},
		{"41 0D 1A F8", 0, true},
		{"7F 01 12", 0, true},
		{"", 0, true},
	} {
		got, err := DecodeRPM(obdtest.MustHex(c.hex))
		if (err != nil) != c.err || got != c.want {
			t.Errorf("%q: %v, %v; want %v (error %v)", c.hex, got, err, c.want, c.err)
		}
		var re *RPMError
		if err != nil && !errors.As(err, &re) {
			t.Errorf("%q: error %v is not an *RPMError keeping the bytes", c.hex, err)
		}
	}
}

func FuzzDecodeRPM(f *testing.F) {
	for _, s := range []string{"410C1AF8", "410C", "7F0112", "410D0000", ""} {
		f.Add(obdtest.MustHex(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeRPM(b)
		if err == nil && (v < 0 || v > 16383.75) {
			t.Fatalf("% X: rpm %v out of the encodable range", b, v)
		}
		if err != nil && v != 0 {
			t.Fatalf("% X: value %v with error %v", b, v, err)
		}
	})
}

func TestOBDSpeedFirstDecodableECU(t *testing.T) {
	pb := obdtest.New(t,
		obdtest.Ex("010C", obdtest.Resp("7E9", "7F 01 12"), obdtest.Resp("7E8", "41 0C 0B B8")),
		obdtest.ExErr("010C", obd.ErrNoData),
	)
	s := OBDSpeed{Adapter: pb}
	v, err := s.EngineSpeed(context.Background())
	if err != nil || v != 750 {
		t.Fatalf("got %v, %v; want 750", v, err)
	}
	if _, err := s.EngineSpeed(context.Background()); !errors.Is(err, obd.ErrNoData) {
		t.Fatalf("NO DATA: got %v, want it wrapped", err)
	}
	if _, err := (OBDSpeed{}).EngineSpeed(context.Background()); err == nil {
		t.Fatal("no adapter: want an error")
	}
}

func TestClosedLoopNow(t *testing.T) {
	pb := obdtest.New(t,
		obdtest.Ex("0103", obdtest.Resp("7E8", "41 03 01 00")),                                  // open loop, cold
		obdtest.Ex("0103", obdtest.Resp("7E9", "7F 01 12"), obdtest.Resp("7E8", "41 03 00 02")), // bank 2 closed loop
		obdtest.ExErr("0103", obd.ErrNoData),
	)
	for i, want := range []bool{false, true, false} {
		got, err := ClosedLoopNow(context.Background(), pb, 0)
		if got != want || (i == 2) != (err != nil) {
			t.Errorf("answer %d: %v, %v; want %v", i, got, err, want)
		}
	}
	if _, err := ClosedLoopNow(context.Background(), nil, 0); err == nil {
		t.Error("no adapter: want an error")
	}
}
