package ehrhttp

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/obdgw/obdgw/gateway/ehrhttp/ehrhttptest"
)

// newTestClient is a client of p with the double's certificate trusted, waits recorded
// instead of spent, and the documented expired-token code configured.
func newTestClient(t *testing.T, p *ehrhttptest.Platform, edit func(*Options)) (*Client, *[]time.Duration) {
	t.Helper()
	o := Options{
		URL:          p.URL(),
		AppKey:       ehrhttptest.Company,
		AppSecret:    ehrhttptest.Password,
		TLS:          p.TLSConfig(),
		Timeout:      5 * time.Second,
		ExpiredCodes: []string{ehrhttptest.ExpiredCode},
		Rand:         func() float64 { return 0.5 },
	}
	if edit != nil {
		edit(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	waits := &[]time.Duration{}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*waits = append(*waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return c, waits
}
