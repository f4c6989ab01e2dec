package ehrhttp

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obdgw/obdgw/drivers/loopback"
	"github.com/obdgw/obdgw/gateway/wire"
)

// The call names of the national interface (docs/ehr-record.md §4.1, verified for the
// lcipprodatarest platforms). Provinces that host it under another path set Options.TokenPath
// and Options.AddPath.
const (
	DefaultTokenPath = "lcipprogetaccesstoken/query"
	DefaultAddPath   = "lcipprocarfixrecordadd/query"
)

// CodeOK is the success code of both calls (verified).
const CodeOK = "1"

// Options configure New. Values marked unconfirmed are not in any public source
// (docs/ehr-record.md §10) and are configuration for that reason.
type Options struct {
	// URL is the service root the call names are appended to, e.g.
	// https://qcda.96520.com/restservices/lcipprodatarest/ (url). https:// only; http:// only to
	// a loopback address, the rule of the MQTT broker's URL.
	URL string
	// TokenPath and AddPath are the login and add calls under URL (token_path, add_path);
	// defaults DefaultTokenPath and DefaultAddPath. Unconfirmed outside the national platforms.
	TokenPath, AddPath string

	// AppKey is the shop's companycode, AppSecret its companypassword (app_key_file,
	// app_secret_file: read by the caller from files of mode 0600). Never logged.
	AppKey, AppSecret string

	// TLS is the client's TLS configuration (a private CA for a test platform); nil uses the
	// system roots. TLS 1.2 is the minimum either way.
	TLS *tls.Config

	// Timeout bounds each request, answer included (timeout); default 15 s.
	Timeout time.Duration
	// TokenLifetime is how long a token is used before logging in again (token_lifetime);
	// default 1 h. Unconfirmed: nobody documents the lifetime, so it is renewed early and
	// again whenever the platform says it expired.
	TokenLifetime time.Duration
	// ExpiredCodes are the add call's codes saying the token is no longer valid
	// (expired_codes). Unconfirmed. Empty: any refusal is tried once more with a fresh token
	// before it counts as the record's (public clients drop the token on any error), and an
	// HTTP 401 always means a new login.
	ExpiredCodes []string
	// RateLimitCodes are business codes meaning "slow down", handled like HTTP 429
	// (rate_limit_codes). Unconfirmed; none by default.
	RateLimitCodes []string
	// DuplicateCodes are codes meaning the platform has this costlistcode already: the record
	// counts as delivered (duplicate_codes, docs/ehr-record.md §8). Unconfirmed; none by default.
	DuplicateCodes []string

	// Attempts bounds the tries of one Add (attempts); default 4. The callers keep a record
	// that still failed and try again later.
	Attempts int
	// BackoffMin and BackoffMax bound the wait between tries: exponential with full jitter;
	// defaults 1 s and 1 min. A Retry-After from the platform is honoured up to MaxRetryAfter
	// (default 10 min).
	BackoffMin, BackoffMax, MaxRetryAfter time.Duration

	// Registry receives the client's metrics; nil keeps them unregistered.
	Registry prometheus.Registerer
	Logger   *slog.Logger     // nil = discard
	Now      func() time.Time // nil = time.Now
	Rand     func() float64   // jitter in [0,1); nil = math/rand/v2
}

// Client talks to one platform as one shop. It is safe for concurrent use; calls share the token.
type Client struct {
	o        Options
	base     *url.URL
	hc       *http.Client
	m        metrics
	mu       sync.Mutex
	token    string
	tokenAt  time.Time
	renewals int
	// sleep waits between tries; tests replace it to see the waits without spending them.
	sleep func(ctx context.Context, d time.Duration) error
}

type metrics struct {
	requests *prometheus.CounterVec // call, result
	renewals prometheus.Counter
}

// New checks the options (errors name the key) and builds the client.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.URL)
	switch {
	case o.URL == "":
		return nil, optErr("url", "empty; want the platform's https:// service root")
	case err != nil || u.Host == "":
		return nil, optErr("url", "%q: want https://host/path/", clip(o.URL))
	case u.Scheme == "https":
	case u.Scheme == "http":
		if !loopback.Host(u.Hostname()) {
			return nil, optErr("url", "%s is not encrypted: http:// is allowed only to this box (a loopback address); use https://", clip(o.URL))
		}
	default:
		return nil, optErr("url", "scheme %q: want https://", clip(u.Scheme))
	}
	if u.User != nil {
		return nil, optErr("url", "must not carry credentials; the app key and secret come from their files")
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if o.AppKey == "" {
		return nil, optErr("app_key_file", "no app key (the companycode the platform issued)")
	}
	if o.AppSecret == "" {
		return nil, optErr("app_secret_file", "no app secret (the companypassword)")
	}
	if o.TokenPath == "" {
		o.TokenPath = DefaultTokenPath
	}
	if o.AddPath == "" {
		o.AddPath = DefaultAddPath
	}
	for key, p := range map[string]string{"token_path": o.TokenPath, "add_path": o.AddPath} {
		if r, err := url.Parse(p); err != nil || r.IsAbs() || r.Host != "" || strings.HasPrefix(p, "/") {
			return nil, optErr(key, "%q: want a path under url, e.g. %s", clip(p), DefaultAddPath)
		}
	}
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Second
	}
	if o.TokenLifetime == 0 {
		o.TokenLifetime = time.Hour
	}
	if o.Attempts == 0 {
		o.Attempts = 4
	}
	if o.BackoffMin == 0 {
		o.BackoffMin = time.Second
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = time.Minute
	}
	if o.MaxRetryAfter == 0 {
		o.MaxRetryAfter = 10 * time.Minute
	}
	switch {
	case o.Timeout < 0:
		return nil, optErr("timeout", "%v: must be positive", o.Timeout)
	case o.TokenLifetime < time.Second:
		return nil, optErr("token_lifetime", "%v: at least 1s", o.TokenLifetime)
	case o.Attempts < 1 || o.Attempts > 20:
		return nil, optErr("attempts", "%d: want 1..20", o.Attempts)
	case o.BackoffMin < 0 || o.BackoffMax < o.BackoffMin:
		return nil, optErr("backoff_max", "%v is less than backoff_min %v", o.BackoffMax, o.BackoffMin)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLS != nil {
		tc = o.TLS.Clone()
		tc.MinVersion = max(tc.MinVersion, tls.VersionTLS12)
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: o.Timeout}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       time.Minute,
		ForceAttemptHTTP2:     true,
	}
	c := &Client{o: o, base: u, sleep: sleepCtx, hc: &http.Client{Transport: tr, Timeout: o.Timeout,
		// A redirect would resend the body (token, password) to wherever it points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	c.m = metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "obdgw_ehr_requests_total",
			Help: "Requests to the eHR platform, by call (token, add) and result (ok, refused, duplicate, rate_limited, expired, error)."}, []string{"call", "result"}),
		renewals: prometheus.NewCounter(prometheus.CounterOpts{Name: "obdgw_ehr_token_renewals_total",
			Help: "Logins to the eHR platform (first token, renewal before expiry, or after an expired-token answer)."}),
	}
	if o.Registry != nil {
		if err := o.Registry.Register(c.m.requests); err != nil {
			return nil, fmt.Errorf("ehrhttp: metrics: %w", err)
		}
		if err := o.Registry.Register(c.m.renewals); err != nil {
			return nil, fmt.Errorf("ehrhttp: metrics: %w", err)
		}
	}
	return c, nil
}

// String names the platform for logs and status (no credentials).
func (c *Client) String() string { return c.base.Redacted() }

// OptionError names the configuration key that is wrong.
type OptionError struct {
	Key string
	Err error
}

func (e *OptionError) Error() string { return "ehrhttp: " + e.Key + ": " + e.Err.Error() }
func (e *OptionError) Unwrap() error { return e.Err }

func optErr(key, format string, a ...any) error {
	return &OptionError{Key: key, Err: fmt.Errorf(format, a...)}
}

// RefusedError is the platform's refusal of a record: a business code other than success on
// the add call, with a valid token. It is permanent — the same record is refused again — so
// it is never retried; a person corrects the work order and settles a revision.
type RefusedError struct {
	Code   string // the platform's code, e.g. "-1"
	Status string // its status text, e.g. 参数无效
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("ehrhttp: the platform refused the record: code %s: %s", e.Code, e.Status)
}

// Permanent marks the error as one no retry can fix (the receiver's forward queue asks).
func (e *RefusedError) Permanent() bool { return true }

// CallError is a call that did not get an answer about the record: no connection, a timeout,
// a 5xx, a rate limit, an answer that is not the platform's JSON, or a login the platform
// refused. The record is not at fault; the caller tries again later.
type CallError struct {
	Call       string        // token or add
	HTTPStatus int           // 0 when no answer came
	Code       string        // the platform's code, when it gave one
	Status     string        // its status text
	RetryAfter time.Duration // asked for by the platform (Retry-After), 0 if not
	Err        error         // transport error, when there was one
}

func (e *CallError) Error() string {
	var b strings.Builder
	b.WriteString("ehrhttp: " + e.Call + ": ")
	switch {
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	case e.Code != "":
		fmt.Fprintf(&b, "code %s: %s", e.Code, e.Status)
	default:
		fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
		if e.Status != "" {
			b.WriteString(": " + e.Status)
		}
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %v)", e.RetryAfter)
	}
	if e.Call == "token" && e.Code != "" {
		b.WriteString(" (check the app key and secret files: the companycode and companypassword the platform issued)")
	}
	if e.HTTPStatus == http.StatusNotFound || e.HTTPStatus == http.StatusMethodNotAllowed {
		b.WriteString(" (check url, token_path and add_path against the province's interface document)")
	}
	return b.String()
}

func (e *CallError) Unwrap() error { return e.Err }

// Outcome says how an added record was taken.
type Outcome int

const (
	Added     Outcome = iota + 1 // the platform answered success
	Duplicate                    // it answered one of DuplicateCodes: it has the record already
)

// Add sends one record (its access_token is the client's) and returns once the platform has
// answered success, with a *RefusedError when it refused the record, or with the last
// *CallError after Options.Attempts tries. The token is renewed before its lifetime ends and,
// once per Add, after an answer that says it expired. ctx bounds the whole call, waits included.
func (c *Client) Add(ctx context.Context, rec wire.EHRRecord) (Outcome, error) {
	relogged := false
	var last error
	for try := 1; ; try++ {
		err := c.addOnce(ctx, rec, &relogged)
		var ce *CallError
		switch {
		case err == nil:
			return Added, nil
		case errors.Is(err, errDuplicate):
			return Duplicate, nil
		case errors.Is(err, errRelogin):
			try-- // a fresh token is not a new try
			continue
		case errors.As(err, &ce):
			last = err
		default:
			return 0, err
		}
		if try >= c.o.Attempts || ctx.Err() != nil {
			return 0, last
		}
		wait := c.backoff(try)
		if ce.RetryAfter > 0 {
			wait = min(ce.RetryAfter, c.o.MaxRetryAfter)
		}
		c.o.Logger.Warn("ehr platform: try again", "err", err, "try", try, "retry_in", wait.Round(time.Millisecond))
		if c.sleep(ctx, wait) != nil {
			return 0, last
		}
	}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

var (
	errDuplicate = errors.New("ehrhttp: duplicate")
	errRelogin   = errors.New("ehrhttp: log in again")
)

func (c *Client) addOnce(ctx context.Context, rec wire.EHRRecord, relogged *bool) error {
	tok, err := c.currentToken(ctx)
	if err != nil {
		return err
	}
	body, err := Body(rec, tok)
	if err != nil {
		return fmt.Errorf("ehrhttp: encode record: %w", err)
	}
	ans, err := c.post(ctx, "add", c.o.AddPath, body)
	if err != nil {
		var ce *CallError
		if errors.As(err, &ce) && ce.HTTPStatus == http.StatusUnauthorized && !*relogged {
			*relogged = true
			c.dropToken(tok)
			c.m.requests.WithLabelValues("add", "expired").Inc()
			return errRelogin
		}
		return err
	}
	switch {
	case ans.Code == CodeOK:
		c.m.requests.WithLabelValues("add", "ok").Inc()
		return nil
	case slices.Contains(c.o.DuplicateCodes, ans.Code):
		c.m.requests.WithLabelValues("add", "duplicate").Inc()
		return errDuplicate
	case slices.Contains(c.o.RateLimitCodes, ans.Code):
		c.m.requests.WithLabelValues("add", "rate_limited").Inc()
		return &CallError{Call: "add", HTTPStatus: ans.httpStatus, Code: ans.Code, Status: ans.Status, RetryAfter: ans.retryAfter}
	case slices.Contains(c.o.ExpiredCodes, ans.Code) || (len(c.o.ExpiredCodes) == 0 && !*relogged):
		if *relogged {
			// A fresh token said to be expired: the platform's trouble, not the record's.
			c.m.requests.WithLabelValues("add", "error").Inc()
			return &CallError{Call: "add", HTTPStatus: ans.httpStatus, Code: ans.Code, Status: ans.Status + " (with a fresh token)"}
		}
		*relogged = true
		c.dropToken(tok)
		c.m.requests.WithLabelValues("add", "expired").Inc()
		c.o.Logger.Info("ehr platform: logging in again after an answer", "code", ans.Code, "status", ans.Status)
		return errRelogin
	}
	c.m.requests.WithLabelValues("add", "refused").Inc()
	return &RefusedError{Code: ans.Code, Status: ans.Status}
}

// currentToken returns the cached token, or logs in when there is none or it is older than
// the configured lifetime (less a tenth, so it is not used up in flight).
func (c *Client) currentToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.o.Now().Sub(c.tokenAt) < c.o.TokenLifetime-c.o.TokenLifetime/10 {
		return c.token, nil
	}
	body, err := json.Marshal(struct {
		Code     string `json:"companycode"`
		Password string `json:"companypassword"`
	}{c.o.AppKey, c.o.AppSecret})
	if err != nil {
		return "", err
	}
	ans, err := c.post(ctx, "token", c.o.TokenPath, body)
	if err != nil {
		return "", err
	}
	if ans.Code != CodeOK || ans.Token == "" {
		result := "refused"
		if slices.Contains(c.o.RateLimitCodes, ans.Code) {
			result = "rate_limited"
		}
		c.m.requests.WithLabelValues("token", result).Inc()
		st := ans.Status
		if ans.Code == CodeOK {
			st = "success without an access_token"
		}
		return "", &CallError{Call: "token", HTTPStatus: ans.httpStatus, Code: ans.Code, Status: st, RetryAfter: ans.retryAfter}
	}
	c.m.requests.WithLabelValues("token", "ok").Inc()
	c.m.renewals.Inc()
	c.token, c.tokenAt = ans.Token, c.o.Now()
	c.renewals++
	return c.token, nil
}

// dropToken forgets tok unless another call already replaced it.
func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	if c.token == tok {
		c.token = ""
	}
	c.mu.Unlock()
}

// Logins says how many tokens the client has obtained.
func (c *Client) Logins() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.renewals
}

// maxAnswerBytes bounds what is read of an answer.
const maxAnswerBytes = 64 << 10

type answer struct {
	Answer
	httpStatus int
	retryAfter time.Duration
}

// post sends one request and decodes the platform's answer. Transport errors, 5xx, 429 and
// answers that are not the platform's JSON are *CallError; a decoded answer is returned
// whatever its code (the caller decides).
func (c *Client) post(ctx context.Context, call, path string, body []byte) (answer, error) {
	u := c.base.JoinPath(path)
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return answer{}, &CallError{Call: call, Err: err}
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		c.m.requests.WithLabelValues(call, "error").Inc()
		// url.Error repeats the URL; the URL holds no secret, the body (token) is not in it.
		return answer{}, &CallError{Call: call, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	a := answer{httpStatus: resp.StatusCode, retryAfter: retryAfter(resp.Header.Get("Retry-After"), c.o.Now())}
	if err != nil {
		c.m.requests.WithLabelValues(call, "error").Inc()
		return a, &CallError{Call: call, HTTPStatus: resp.StatusCode, Err: fmt.Errorf("read answer: %w", err)}
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		c.m.requests.WithLabelValues(call, "rate_limited").Inc()
		return a, &CallError{Call: call, HTTPStatus: resp.StatusCode, Status: "rate limited", RetryAfter: a.retryAfter}
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusUnauthorized:
		c.m.requests.WithLabelValues(call, "error").Inc()
		return a, &CallError{Call: call, HTTPStatus: resp.StatusCode, RetryAfter: a.retryAfter}
	}
	ans, err := ParseAnswer(raw)
	if err != nil {
		c.m.requests.WithLabelValues(call, "error").Inc()
		return a, &CallError{Call: call, HTTPStatus: resp.StatusCode, Status: err.Error()}
	}
	a.Answer = ans
	return a, nil
}

// backoff is the wait after the n-th failed try: uniform in [0, min(max, min·2ⁿ⁻¹)] (full
// jitter, so shops that lost the platform together do not come back together).
func (c *Client) backoff(n int) time.Duration {
	return jitter(c.o.BackoffMin, c.o.BackoffMax, n, c.o.Rand)
}

func jitter(base, ceil time.Duration, n int, r func() float64) time.Duration {
	d := base
	for i := 1; i < n && d < ceil; i++ {
		d *= 2
	}
	return time.Duration(r() * float64(min(d, ceil)))
}

// retryAfter decodes a Retry-After header: seconds or an HTTP date. 0 when absent or unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(min(s, 86400)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func clip(s string) string {
	if r := []rune(s); len(r) > 80 {
		return string(r[:80]) + "…"
	}
	return s
}
