package lograte_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/drivers/lograte"
)

func TestAllow(t *testing.T) {
	var l lograte.Limiter
	t0 := time.Unix(0, 0)
	if ok, _ := l.Allow("k", t0); !ok {
		t.Fatal("first line held back")
	}
	for i := 0; i < 5; i++ {
		if ok, _ := l.Allow("k", t0.Add(time.Second)); ok {
			t.Fatal("line within the interval let through")
		}
	}
	if ok, _ := l.Allow("other", t0.Add(time.Second)); !ok {
		t.Error("a line for another key held back")
	}
	if ok, held := l.Allow("k", t0.Add(lograte.DefaultEvery)); !ok || held != 5 {
		t.Fatalf("after the interval: %v, %d held; want true, 5", ok, held)
	}
	if ok, held := l.Allow("k", t0.Add(3*lograte.DefaultEvery)); !ok || held != 0 {
		t.Fatalf("next interval: %v, %d held; want true, 0", ok, held)
	}
}

func TestEvery(t *testing.T) {
	l := lograte.Limiter{Every: time.Minute}
	t0 := time.Unix(0, 0)
	l.Allow("k", t0)
	if ok, _ := l.Allow("k", t0.Add(30*time.Second)); ok {
		t.Error("line let through half-way into a one-minute interval")
	}
	if ok, held := l.Allow("k", t0.Add(time.Minute)); !ok || held != 1 {
		t.Errorf("after a minute: %v, %d held; want true, 1", ok, held)
	}
}

// TestWarn: a babbling device produces one warning per interval, and the next one says how
// many were held back; the first carries no count.
func TestWarn(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var l lograte.Limiter
	now := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	for i := 0; i < 50; i++ {
		l.Warn(log, now, "garbled reply, retrying", "rig", "NHA-506")
		now = now.Add(100 * time.Millisecond)
	}
	if n := strings.Count(buf.String(), "garbled"); n != 1 || strings.Contains(buf.String(), "suppressed") {
		t.Errorf("%d warnings in 5 s, want 1 without a count:\n%s", n, buf.String())
	}
	now = now.Add(lograte.DefaultEvery)
	l.Warn(log, now, "garbled reply, retrying", "rig", "NHA-506")
	if !strings.Contains(buf.String(), "rig=NHA-506 suppressed=49") || !strings.Contains(buf.String(), "level=WARN") {
		t.Errorf("suppressed count not reported:\n%s", buf.String())
	}
}
