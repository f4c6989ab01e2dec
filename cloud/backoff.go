package cloud

import (
	"math/rand/v2"
	"time"
)

// backoff is exponential backoff with full jitter: the n-th wait is uniform in
// [0, min(max, base·2ⁿ)]. Full jitter spreads thousands of gateways that lost the broker at the
// same moment over the whole window instead of bringing them back in waves.
type backoff struct {
	base, max time.Duration
	n         int
	rand      func() float64 // [0,1)
}

func (b *backoff) next() time.Duration {
	ceil := b.base
	for i := 0; i < b.n && ceil < b.max; i++ {
		ceil *= 2
	}
	if ceil > b.max {
		ceil = b.max
	}
	b.n++
	r := b.rand
	if r == nil {
		r = rand.Float64
	}
	return time.Duration(r() * float64(ceil))
}

func (b *backoff) reset() { b.n = 0 }

// limiter is a token bucket: rate tokens per second, at most burst saved up. It paces the
// drain after a reconnect so a province's gateways coming back together do not flood the broker.
type limiter struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int, now time.Time) *limiter {
	if rate <= 0 {
		return nil
	}
	if burst < 1 {
		burst = 1
	}
	return &limiter{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// reserve takes one token and says how long to wait before using it.
func (l *limiter) reserve(now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	if el := now.Sub(l.last).Seconds(); el > 0 {
		l.tokens += el * l.rate
		if l.tokens > l.burst {
			l.tokens = l.burst
		}
		l.last = now
	}
	l.tokens--
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}
