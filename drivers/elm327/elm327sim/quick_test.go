package elm327sim_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/elm327"
	"github.com/obdgw/obdgw/obd"
)

// TestQuickConnect: the connect tries the remembered protocol, then CAN 11/500, then CAN
// 29/500 directly, and searches (ATSP0) only when none answered 0100 positively. Whether the
// adapter searched is read from the simulator's log (the commands, and the search time it
// counted), never from a clock. Each car is then scanned on the protocol found.
func TestQuickConnect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, car, carProto, remembered string
		wantSP                          []string // the ATSP commands, in order
		want                            string   // the protocol number found
		search                          bool     // the automatic search ran
	}{
		{"CAN 11/500", "petrol", "", "", []string{"ATSP6"}, "6", false},
		{"CAN 29/500", "diesel", "", "", []string{"ATSP6", "ATSP7"}, "7", false},
		{"KWP fast init", "kline", "", "", []string{"ATSP6", "ATSP7", "ATSP0"}, "5", true},
		{"ISO 9141-2", "kline", "3", "", []string{"ATSP6", "ATSP7", "ATSP0"}, "3", true},
		{"remembered KWP", "kline", "", "5", []string{"ATSP5"}, "5", false},
		{"remembered wrongly", "petrol", "", "7", []string{"ATSP7", "ATSP6"}, "6", false},
		{"remembered K-line, car on CAN 29/500", "diesel", "", "3", []string{"ATSP3", "ATSP6", "ATSP7"}, "7", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc := quick(t, tc.car)
			if tc.carProto != "" {
				sc.Protocol = tc.carProto
			}
			opts := fastOpts
			opts.SearchDelay = 200 * time.Millisecond
			r := serve(t, sc, opts)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			ad, err := elm327.OpenContext(ctx, r.addr, elm327.Options{Protocol: tc.remembered})
			if err != nil {
				t.Fatalf("connect: %v\ncommands %q", err, r.sim.Stats().Commands)
			}
			defer ad.Close()
			st := r.sim.Stats()
			var sp []string
			for _, c := range st.Commands {
				if strings.HasPrefix(c, "ATSP") {
					sp = append(sp, c)
				}
			}
			if !reflect.DeepEqual(sp, tc.wantSP) {
				t.Errorf("protocols set %q, want %q (commands %q)", sp, tc.wantSP, st.Commands)
			}
			if p := ad.Profile().ProtocolNum; p != tc.want {
				t.Errorf("protocol %q, want %q", p, tc.want)
			}
			if searched := st.Search >= opts.SearchDelay; searched != tc.search {
				t.Errorf("automatic search ran: %v (%v counted), want %v", searched, st.Search, tc.search)
			}
			rep, err := obd.Scan(ctx, ad, obd.ScanOptions{Lang: "en"})
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			if rep.VIN != sc.VIN {
				t.Errorf("VIN %q, want %q", rep.VIN, sc.VIN)
			}
			noClear(t, r)
		})
	}
}

// TestQuickConnectAgain: an adapter that browns out mid-scan is connected again on the
// protocol it had, directly: no search, whatever the options remembered.
func TestQuickConnectAgain(t *testing.T) {
	t.Parallel()
	sc := quick(t, "diesel")
	sc.Faults.LVResetAfter = 30
	opts := fastOpts
	opts.SearchDelay = 200 * time.Millisecond
	r := serve(t, sc, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ad, err := elm327.OpenContext(ctx, r.addr, elm327.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	before := len(r.sim.Stats().Commands)
	if _, err := obd.Scan(ctx, ad, obd.ScanOptions{Lang: "en"}); err != nil {
		t.Fatalf("scan: %v", err)
	}
	st := r.sim.Stats()
	var sp []string
	for _, c := range st.Commands[before:] {
		if strings.HasPrefix(c, "ATSP") {
			sp = append(sp, c)
		}
	}
	if !reflect.DeepEqual(sp, []string{"ATSP7"}) || st.Search != 0 {
		t.Errorf("connect again: protocols set %q, search %v; want ATSP7 alone, no search", sp, st.Search)
	}
	if p := ad.Profile().ProtocolNum; p != "7" {
		t.Errorf("protocol after the brown-out %q, want 7", p)
	}
}
