package events

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestPublishReachesSubscribersAndSlowOnesLose(t *testing.T) {
	b := New(func() time.Time { return time.Unix(1700000000, 0) })
	fast, cancelFast := b.Subscribe(8)
	_, cancelSlow := b.Subscribe(1)
	for i := 0; i < 3; i++ {
		b.Publish("bay.state", "bay1", map[string]int{"n": i})
	}
	for i := 0; i < 3; i++ {
		e := <-fast
		if e.Type != "bay.state" || e.Bay != "bay1" || e.Data.(map[string]int)["n"] != i {
			t.Fatalf("event %d = %+v", i, e)
		}
	}
	if lost := cancelFast(); lost != 0 {
		t.Errorf("fast subscriber lost %d", lost)
	}
	if lost := cancelSlow(); lost != 2 {
		t.Errorf("slow subscriber lost %d, want 2", lost)
	}
	var nilBus *Bus
	nilBus.Publish("x", "", nil) // must not panic
}

func TestServeHTTPStreamsEvents(t *testing.T) {
	b := New(nil)
	srv := httptest.NewServer(b)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	if line, _ := rd.ReadString('\n'); !strings.HasPrefix(line, ": obdgw") {
		t.Fatalf("first line %q", line)
	}
	rd.ReadString('\n')
	// The handler subscribes before writing its first line, so this publish is seen.
	b.Publish("scan.done", "bay2", map[string]string{"vin": "LK6ADCE15PB405127"})
	ev, _ := rd.ReadString('\n')
	data, _ := rd.ReadString('\n')
	if ev != "event: scan.done\n" {
		t.Fatalf("event line %q", ev)
	}
	var e Event
	if err := json.Unmarshal([]byte(strings.TrimPrefix(data, "data: ")), &e); err != nil {
		t.Fatalf("data line %q: %v", data, err)
	}
	if e.Bay != "bay2" || e.Data.(map[string]any)["vin"] != "LK6ADCE15PB405127" {
		t.Fatalf("decoded %+v", e)
	}
}
