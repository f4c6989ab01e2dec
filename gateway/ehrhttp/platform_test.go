package ehrhttp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// platform is a test double of the national eHR interface (docs/ehr-record.md §4.1) on a
// loopback TLS listener: the login and add calls with the documented bodies and answers, and
// faults a test scripts in order — an expired token, a rate limit with Retry-After, a 5xx, a
// refusal, an answer slower than the client waits.
type platform struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	tokens   map[string]bool // valid tokens
	logins   int
	adds     int                          // add calls that reached the handler
	records  map[string]json.RawMessage   // accepted bodies by costlistcode, token removed
	bodies   []map[string]json.RawMessage // every add body as received
	faults   []fault                      // consumed one per add call, in order
	password string
	release  chan struct{} // a slow answer waits for it (or the request's end)
	arrived  chan struct{} // signalled when a slow call has arrived
}

// fault is what the double does with one add call instead of accepting it.
type fault int

const (
	ok            fault = iota
	expireToken         // every token expires: the add is answered with code "-3"
	rateLimit           // HTTP 429, Retry-After: 7
	serverError         // HTTP 503
	refuse              // code "-1" 参数无效 for this record, whatever the token
	refuseAlways        // the same, for every later call too
	slow                // no answer until release is closed or the client gives up
	duplicateCode       // code "-5", the record exists
)

const (
	testCompany  = "330106000099901"
	testPassword = "s3cret-pass"
	expiredCode  = "-3"
)

func newPlatform(t *testing.T) *platform {
	p := &platform{t: t, tokens: map[string]bool{}, records: map[string]json.RawMessage{}, password: testPassword, release: make(chan struct{}), arrived: make(chan struct{}, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /restservices/lcipprodatarest/lcipprogetaccesstoken/query", p.login)
	mux.HandleFunc("POST /restservices/lcipprodatarest/lcipprocarfixrecordadd/query", p.add)
	p.srv = httptest.NewTLSServer(mux) // 127.0.0.1, a random port
	t.Cleanup(func() {
		p.mu.Lock()
		select {
		case <-p.release:
		default:
			close(p.release)
		}
		p.mu.Unlock()
		p.srv.Close()
	})
	return p
}

func (p *platform) url() string { return p.srv.URL + "/restservices/lcipprodatarest/" }

func (p *platform) script(f ...fault) {
	p.mu.Lock()
	p.faults = append(p.faults, f...)
	p.mu.Unlock()
}

func (p *platform) counts() (logins, adds, stored int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logins, p.adds, len(p.records)
}

func (p *platform) record(costlist string) json.RawMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.records[costlist]
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	json.NewEncoder(w).Encode(v)
}

func (p *platform) login(w http.ResponseWriter, r *http.Request) {
	var req map[string]string
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		reply(w, map[string]string{"code": "-2", "status": "参数格式不对"})
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case req["companycode"] == "" || req["companypassword"] == "":
		reply(w, map[string]string{"code": "-1", "status": "参数无效"})
	case req["companycode"] != testCompany:
		reply(w, map[string]string{"code": "-10", "status": "企业不存在"})
	case req["companypassword"] != p.password:
		reply(w, map[string]string{"code": "-11", "status": "密码错误"})
	default:
		p.logins++
		tok := fmt.Sprintf("%032x", p.logins)
		p.tokens[tok] = true
		reply(w, map[string]string{"code": "1", "status": "获取成功", "access_token": tok})
	}
}

func (p *platform) add(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		reply(w, map[string]string{"code": "-2", "status": "参数格式不对"})
		return
	}
	p.mu.Lock()
	p.adds++
	p.bodies = append(p.bodies, m)
	f := ok
	if len(p.faults) > 0 {
		f = p.faults[0]
		if f != refuseAlways {
			p.faults = p.faults[1:]
		}
	}
	var tok string
	json.Unmarshal(m["access_token"], &tok)
	valid := p.tokens[tok]
	if f == expireToken {
		clear(p.tokens)
	}
	release := p.release
	p.mu.Unlock()
	switch f {
	case expireToken:
		reply(w, map[string]string{"code": expiredCode, "status": "access_token已过期"})
		return
	case rateLimit:
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	case serverError:
		http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
		return
	case slow:
		p.arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	if !valid {
		reply(w, map[string]string{"code": expiredCode, "status": "access_token无效"})
		return
	}
	switch f {
	case refuse, refuseAlways:
		reply(w, map[string]string{"code": "-1", "status": "参数无效: repairdate"})
		return
	case duplicateCode:
		reply(w, map[string]string{"code": "-5", "status": "结算清单编号已存在"})
		return
	}
	var rec struct {
		Basic struct {
			CostList string `json:"costlistcode"`
		} `json:"basicInfo"`
	}
	if err := json.Unmarshal(body, &rec); err != nil || rec.Basic.CostList == "" {
		reply(w, map[string]string{"code": "-1", "status": "参数无效"})
		return
	}
	delete(m, "access_token")
	stored, _ := json.Marshal(m)
	p.mu.Lock()
	p.records[rec.Basic.CostList] = stored
	p.mu.Unlock()
	reply(w, map[string]string{"code": "1", "status": "新增成功"})
}

// newTestClient is a client of p with the double's certificate trusted, waits recorded
// instead of spent, and the documented expired-token code configured.
func newTestClient(t *testing.T, p *platform, edit func(*Options)) (*Client, *[]time.Duration) {
	t.Helper()
	o := Options{
		URL:          p.url(),
		AppKey:       testCompany,
		AppSecret:    testPassword,
		TLS:          p.srv.Client().Transport.(*http.Transport).TLSClientConfig,
		Timeout:      5 * time.Second,
		ExpiredCodes: []string{expiredCode},
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
