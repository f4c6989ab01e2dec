package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
)

// pickingBays is fakeBays that also samples picked PIDs (LivePicker).
type pickingBays struct {
	*fakeBays
	mu     sync.Mutex
	picked [][]byte
	out    chan LiveValues
}

func (p *pickingBays) LivePIDs(ctx context.Context, name string, pids []byte) (<-chan LiveValues, error) {
	if _, err := p.Status(name); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.picked = append(p.picked, pids)
	p.mu.Unlock()
	return p.out, nil
}

func TestLiveStreamOfPickedPIDs(t *testing.T) {
	f := newFixture(t, false)
	pb := &pickingBays{fakeBays: f.bays, out: make(chan LiveValues, 4)}
	f.srv.Config.Handler = New(Options{Store: f.store, Bays: pb, Tokens: []Token{{Name: "dms", Secret: dmsToken}}}).Handler()

	get := func(q string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", f.srv.URL+Prefix+"/bays/bay1/live?pids="+q, nil)
		req.Header.Set("Authorization", "Bearer "+dmsToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, c := range []struct{ q, want string }{
		{"0C,ZZ", `PID \"ZZ\" is not two hex digits`},
		{"0C,51", "PID 51 is not a live value"},
		{"0C,0c", "PID 0C (engine speed) picked twice"},
		{"0C,05,06,07,08,09,0B,10,11,14,15,24,44", "at most 12 PIDs"},
		{"FF", "PID FF is not a live value"},
	} {
		resp := get(c.q)
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 400 || body["field"] != "pids" || !strings.Contains(body["error"].(string), strings.ReplaceAll(c.want, `\"`, `"`)) {
			t.Errorf("pids=%s: %d %v, want 400 on field pids saying %q", c.q, resp.StatusCode, body, c.want)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+Prefix+"/bays/bay1/live?pids=0C,06,44", nil)
	req.Header.Set("Authorization", "Bearer "+dmsToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("live with pids = %d", resp.StatusCode)
	}
	pb.out <- LiveValues{"0C": 825, "06": -1.56, "44": 1.002}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var v map[string]float64
			if err := json.Unmarshal([]byte(line), &v); err != nil || v["0C"] != 825 || v["44"] != 1.002 {
				t.Fatalf("live data %q: %v", line, err)
			}
			pb.mu.Lock()
			defer pb.mu.Unlock()
			if len(pb.picked) != 1 || !slices.Equal(pb.picked[0], []byte{0x0C, 0x06, 0x44}) {
				t.Fatalf("bays asked for %x, want 0C 06 44", pb.picked)
			}
			return
		}
	}
	t.Fatalf("stream ended without data: %v", sc.Err())
}

// A gateway whose bays cannot pick PIDs says so instead of streaming the defaults silently.
func TestLivePIDsRefusedWithoutPicker(t *testing.T) {
	f := newFixture(t, false)
	code, body := f.do("GET", "/bays/bay1/live?pids=0C", dmsToken, "")
	if code != 400 || body["field"] != "pids" {
		t.Fatalf("pids without a picker: %d %v", code, body)
	}
}

func FuzzParseLivePIDs(f *testing.F) {
	for _, s := range []string{"", "0C", "0C,05,44", "0c, 05", "ZZ", "0C,0C", "1,2,3", "0C,,05", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		pids, err := ParseLivePIDs(q)
		if err != nil {
			if pids != nil {
				t.Fatalf("%q: PIDs %x with error %v", q, pids, err)
			}
			return
		}
		if len(pids) > MaxLivePIDs {
			t.Fatalf("%q: %d PIDs", q, len(pids))
		}
		seen := map[byte]bool{}
		for _, p := range pids {
			if seen[p] || notQuantities[p] {
				t.Fatalf("%q: PID %02X repeated or not a quantity", q, p)
			}
			seen[p] = true
		}
	})
}
