// Package ehrhttptest is a test double of the national eHR HTTPS API (docs/ehr-record.md
// §4.1) for the tests of gateway/ehrhttp, the daemon and the receiver: the login and add
// calls on a loopback TLS listener, with faults a test scripts in order.
package ehrhttptest

import (
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// Platform is a test double of the national eHR interface (docs/ehr-record.md §4.1) on a
// loopback TLS listener: the login and add calls with the documented bodies and answers, and
// faults a test scripts in order — an expired token, a rate limit with Retry-After, a 5xx, a
// refusal, an answer slower than the client waits.
type Platform struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	tokens   map[string]bool // valid tokens
	logins   int
	adds     int                          // add calls that reached the handler
	records  map[string]json.RawMessage   // accepted bodies by costlistcode, token removed
	bodies   []map[string]json.RawMessage // every add body as received
	faults   []Fault                      // consumed one per add call, in order
	password string
	release  chan struct{} // a Slow answer waits for it (or the request's end)
	arrived  chan struct{} // signalled when a Slow call has arrived
}

// Fault is what the double does with one add call instead of accepting it.
type Fault int

const (
	OK            Fault = iota
	ExpireToken         // every token expires: the add is answered with code "-3"
	RateLimit           // HTTP 429, Retry-After: 7
	ServerError         // HTTP 503
	Refuse              // code "-1" 参数无效 for this record, whatever the token
	RefuseAlways        // the same, for every later call too
	Slow                // no answer until release is closed or the client gives up
	DuplicateCode       // code "-5", the record exists
)

const (
	Company     = "330106000099901"
	Password    = "s3cret-pass"
	ExpiredCode = "-3"
)

func New(t testing.TB) *Platform {
	p := &Platform{t: t, tokens: map[string]bool{}, records: map[string]json.RawMessage{}, password: Password, release: make(chan struct{}), arrived: make(chan struct{}, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /restservices/lcipprodatarest/lcipprogetaccesstoken/query", p.login)
	mux.HandleFunc("POST /restservices/lcipprodatarest/lcipprocarfixrecordadd/query", p.add)
	p.srv = httptest.NewTLSServer(mux) // 127.0.0.1, a random port
	t.Cleanup(func() {
		p.Release()
		p.srv.Close()
	})
	return p
}

// URL is the service root (Options.URL).
func (p *Platform) URL() string { return p.srv.URL + "/restservices/lcipprodatarest/" }

// Script queues faults, one per later add call.
func (p *Platform) Script(f ...Fault) {
	p.mu.Lock()
	p.faults = append(p.faults, f...)
	p.mu.Unlock()
}

// Counts says how many logins and add calls came, and how many records are stored.
func (p *Platform) Counts() (logins, adds, stored int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logins, p.adds, len(p.records)
}

// Record is the stored body of costlist (token removed), nil when none.
func (p *Platform) Record(costlist string) json.RawMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.records[costlist]
}

// Adds returns every add body as it arrived (token included), oldest first.
func (p *Platform) Adds() []map[string]json.RawMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.bodies)
}

// Tokens returns every token the double issued.
func (p *Platform) Tokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for i := 1; i <= p.logins; i++ {
		out = append(out, fmt.Sprintf("%032x", i))
	}
	return out
}

// Release lets every Slow answer, waiting or to come, go ahead.
func (p *Platform) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.release:
	default:
		close(p.release)
	}
}

// Arrived is signalled when a Slow add call has reached the double.
func (p *Platform) Arrived() <-chan struct{} { return p.arrived }

// TLSConfig trusts the double's certificate.
func (p *Platform) TLSConfig() *tls.Config {
	return p.srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
}

// CAFile writes the double's certificate as PEM into dir and returns its path (a ca_file).
func (p *Platform) CAFile(dir string) string {
	path := filepath.Join(dir, "ehr-platform-ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	if err := os.WriteFile(path, b, 0o644); err != nil {
		p.t.Fatal(err)
	}
	return path
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	json.NewEncoder(w).Encode(v)
}

func (p *Platform) login(w http.ResponseWriter, r *http.Request) {
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
	case req["companycode"] != Company:
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

func (p *Platform) add(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		reply(w, map[string]string{"code": "-2", "status": "参数格式不对"})
		return
	}
	p.mu.Lock()
	p.adds++
	p.bodies = append(p.bodies, m)
	f := OK
	if len(p.faults) > 0 {
		f = p.faults[0]
		if f != RefuseAlways {
			p.faults = p.faults[1:]
		}
	}
	var tok string
	json.Unmarshal(m["access_token"], &tok)
	valid := p.tokens[tok]
	if f == ExpireToken {
		clear(p.tokens)
	}
	release := p.release
	p.mu.Unlock()
	switch f {
	case ExpireToken:
		reply(w, map[string]string{"code": ExpiredCode, "status": "access_token已过期"})
		return
	case RateLimit:
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	case ServerError:
		http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
		return
	case Slow:
		p.arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	if !valid {
		reply(w, map[string]string{"code": ExpiredCode, "status": "access_token无效"})
		return
	}
	switch f {
	case Refuse, RefuseAlways:
		reply(w, map[string]string{"code": "-1", "status": "参数无效: repairdate"})
		return
	case DuplicateCode:
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
