// Package lograte keeps a flapping device from filling the SD card with one warning per
// failed exchange: a Limiter lets one line per key through per interval and reports, with the
// next line it lets through, how many it held back.
//
// It is the one log rate limiter of the adapter and rig drivers and the cloud side, and
// imports the standard library only so that any of them may use it.
package lograte

import (
	"log/slog"
	"sync"
	"time"
)

// DefaultEvery is the interval of a Limiter whose Every is zero.
const DefaultEvery = 10 * time.Second

// Limiter lets one log line per key through per Every. The zero value is ready to use.
// It is safe for concurrent use.
type Limiter struct {
	Every time.Duration // 0 = DefaultEvery

	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

// Allow reports whether a line for key may be logged at now, and how many lines for key were
// held back since the last one let through.
func (l *Limiter) Allow(key string, now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	every := l.Every
	if every <= 0 {
		every = DefaultEvery
	}
	if l.last == nil {
		l.last, l.held = map[string]time.Time{}, map[string]int{}
	}
	if t, seen := l.last[key]; seen && now.Sub(t) < every {
		l.held[key]++
		return false, 0
	}
	l.last[key] = now
	s := l.held[key]
	delete(l.held, key)
	return true, s
}

// Warn logs msg with args at warning level unless a line with the same msg went out less than
// Every before now. A line that goes out after some were held back carries "suppressed", N.
func (l *Limiter) Warn(log *slog.Logger, now time.Time, msg string, args ...any) {
	ok, held := l.Allow(msg, now)
	if !ok {
		return
	}
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	log.Warn(msg, args...)
}
