package obd

import (
	"context"
	"errors"
	"fmt"
)

// maxBitmapBase is the last supported-PID bitmap walked (00, 20, … C0).
const maxBitmapBase = 0xC0

// walkSupported walks the supported-PID bitmaps of service 01, 02 (frame 0) or 09: 00, 20, …
// up to C0, asking for the next part only while some ECU announces it (bit D0). The base only
// grows, so a broken ECU can never make it loop (elmobd's CheckSupportedCommands did), and it
// stops at the first part that fails or that nobody answers, keeping what it has. Malformed
// answers of one ECU go to bad and do not stop the others.
//
// first, when not nil, is the hint for the first part (Request.Expect): the caller's guess of
// who answers it. Later parts are hinted with the ECUs that announced them, each answering
// with one bitmap.
func walkSupported(service byte, first []Expect, query func(Request) ([]Response, error), add func(r Response, pids []byte), bad func(Response, error)) {
	expect := first
	for base := 0; base <= maxBitmapBase; base += 0x20 {
		req := Req(service, byte(base))
		head := 2 // 41 00 / 49 00
		if service == 0x02 {
			req = Req(service, byte(base), 0x00) // freeze frame 0: the frame byte is required
			head = 3
		}
		resps, err := query(req.Expecting(expect...))
		if err != nil || len(resps) == 0 {
			return
		}
		more := false
		expect = nil
		for _, r := range resps {
			d := r.Data
			if len(d) < head || d[0] != service|0x40 || d[1] != byte(base) {
				bad(r, decodeErr(fmt.Sprintf("%s supported PIDs", req), d, "want %02X %02X at the start", service|0x40, base))
				continue
			}
			pids, next, err := ParseSupported(byte(base), d[head:])
			if err != nil {
				bad(r, err)
				continue
			}
			add(r, pids)
			more = more || next
			if next {
				// J1979: an ECU answers a bitmap PID only when the previous part names it.
				expect = append(expect, Expect{Len: head + 4, Messages: 1})
			}
		}
		if !more {
			return
		}
	}
}

// SupportedPIDs reads the supported-PID bitmaps of service 01, 02 (freeze frame 0) or 09 and
// returns each answering ECU's set. NO DATA for the first part yields an empty map and no error;
// a failure of a later part keeps the parts read so far and returns the error with them.
func SupportedPIDs(ctx context.Context, a Adapter, service byte) (map[string]*PIDSet, error) {
	if service != 0x01 && service != 0x02 && service != 0x09 {
		return nil, fmt.Errorf("obd: supported-PID bitmaps exist for services 01, 02 and 09, not %02X", service)
	}
	out := map[string]*PIDSet{}
	var errs []error
	query := func(req Request) ([]Response, error) {
		resps, err := a.Query(ctx, req)
		if errors.Is(err, ErrNoData) {
			return nil, nil
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("obd: %s: %w", req, err))
			return nil, err
		}
		var pos []Response
		for _, r := range mergeByECU(resps) {
			if negative(r) == nil {
				pos = append(pos, r)
			}
		}
		return pos, nil
	}
	walkSupported(service, nil, query, func(r Response, pids []byte) {
		set, ok := out[r.ECU]
		if !ok {
			set = &PIDSet{}
			out[r.ECU] = set
		}
		for _, p := range pids {
			set.Add(p)
		}
	}, func(r Response, err error) {
		var de *DecodeError
		if errors.As(err, &de) && de.ECU == "" {
			de.ECU = r.ECU
		}
		errs = append(errs, err)
	})
	return out, errors.Join(errs...)
}
