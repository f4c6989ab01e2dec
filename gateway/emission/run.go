package emission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

var (
	// ErrBayBusy: a self-test is already running on the bay.
	ErrBayBusy = errors.New("emission: a self-test is already running on this bay (abort it or wait for it to end)")
	// ErrNoRun: no self-test has run on the bay since the daemon started.
	ErrNoRun = errors.New("emission: no self-test on this bay")
	// ErrRunning: the run has not ended yet.
	ErrRunning = errors.New("emission: the self-test is still running")
)

// Runs keeps the self-tests of a gateway's bays: at most one running per bay, and the last one
// of each bay (running or ended) for the console's result page.
//
// Contract: all methods are safe for concurrent use. A run's rig belongs to the run until
// Done is closed; the caller must not read it meanwhile.
type Runs struct {
	mu   sync.Mutex
	runs map[string]*Run
	log  *slog.Logger
}

// NewRuns returns an empty set of runs; log nil → discard.
func NewRuns(log *slog.Logger) *Runs {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runs{runs: map[string]*Run{}, log: log}
}

// Start starts t on bay in its own goroutine. ctx bounds the run's whole life: pass the
// daemon's context, not an HTTP request's, or the test ends with the request. It fails with
// ErrBayBusy while another test runs on the bay, and with the validation error when t cannot
// start (no rig, bad limits, rated speed unknown).
func (rs *Runs) Start(ctx context.Context, bay string, t Test) (*Run, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if old := rs.runs[bay]; old != nil && !old.ended() {
		return nil, ErrBayBusy
	}
	if t.Logger == nil {
		t.Logger = rs.log.With("bay", bay)
	}
	r := newRun(bay, t)
	// Check what RunTest would reject before the goroutine starts, so the API can answer 400.
	if err := precheckTest(t); err != nil {
		return nil, err
	}
	ctx, r.cancel = context.WithCancel(ctx)
	rs.runs[bay] = r
	go r.run(ctx)
	return r, nil
}

// Get returns the bay's current or last run.
func (rs *Runs) Get(bay string) (*Run, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.runs[bay]
	if r == nil {
		return nil, ErrNoRun
	}
	return r, nil
}

// Abort stops the bay's running test; the run ends with verdict Aborted. Aborting an ended
// run does nothing.
func (rs *Runs) Abort(bay string) error {
	r, err := rs.Get(bay)
	if err != nil {
		return err
	}
	r.Abort()
	return nil
}

func precheckTest(t Test) error {
	if t.Rig == nil {
		return errors.New("emission: no rig on this bay")
	}
	if err := t.Limits.Validate(); err != nil {
		return err
	}
	if err := checkFit(t); err != nil {
		return err
	}
	p := &proc{t: t, res: &Result{}}
	switch t.Method {
	case TwoSpeedIdle:
		return p.prepareIdle()
	case FreeAcceleration:
		return p.prepareAccel()
	}
	return fmt.Errorf("emission: method %v: not supported", t.Method)
}

// Run is one self-test running or ended on a bay.
type Run struct {
	Bay     string
	Method  Method
	Started time.Time

	cancel context.CancelFunc
	t      Test
	done   chan struct{}

	mu     sync.Mutex
	subs   map[chan Progress]struct{}
	latest *Progress
	res    *Result
	err    error
}

func newRun(bay string, t Test) *Run {
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	return &Run{Bay: bay, Method: t.Method, Started: now(), t: t, done: make(chan struct{}), subs: map[chan Progress]struct{}{}}
}

func (r *Run) run(ctx context.Context) {
	defer r.cancel()
	t := r.t
	user := t.OnProgress
	t.OnProgress = func(p Progress) {
		if user != nil {
			user(p)
		}
		r.publish(p)
	}
	res, err := RunTest(ctx, t)
	r.mu.Lock()
	r.res, r.err = res, err
	for ch := range r.subs {
		close(ch)
	}
	r.subs = nil
	r.mu.Unlock()
	close(r.done)
}

// publish hands p to every subscriber without blocking: a slow console loses the oldest
// update it has not read, never stalls the test.
func (r *Run) publish(p Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latest = &p
	for ch := range r.subs {
		select {
		case ch <- p:
			continue
		default:
		}
		select { // full: drop the oldest, then there is room (we are the only sender)
		case <-ch:
		default:
		}
		select {
		case ch <- p:
		default:
		}
	}
}

// Subscribe returns a channel of progress updates, starting with the latest one, closed when
// the run ends (at once if it has ended), and a function that unsubscribes.
func (r *Run) Subscribe() (<-chan Progress, func()) {
	ch := make(chan Progress, 16)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.subs == nil { // ended
		if r.latest != nil {
			ch <- *r.latest
		}
		close(ch)
		return ch, func() {}
	}
	if r.latest != nil {
		ch <- *r.latest
	}
	r.subs[ch] = struct{}{}
	return ch, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, ok := r.subs[ch]; ok {
			delete(r.subs, ch)
			close(ch)
		}
	}
}

// Latest returns the last progress update, if any.
func (r *Run) Latest() (Progress, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.latest == nil {
		return Progress{}, false
	}
	return *r.latest, true
}

// Abort stops the test; it returns at once (Done tells when the test has ended).
func (r *Run) Abort() { r.cancel() }

// Done is closed when the test has ended.
func (r *Run) Done() <-chan struct{} { return r.done }

func (r *Run) ended() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Result returns what RunTest returned, or ErrRunning while the test runs.
func (r *Run) Result() (*Result, error) {
	if !r.ended() {
		return nil, ErrRunning
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.res, r.err
}

// Wait blocks until the test ends or ctx ends, and returns Result.
func (r *Run) Wait(ctx context.Context) (*Result, error) {
	select {
	case <-r.done:
		return r.Result()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
