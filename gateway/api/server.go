package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/audit"
	"github.com/obdgw/obdgw/gateway/waste"
	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/gateway/workorder"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// Outbox is what the API shows of the buffer (*buffer.DB implements it).
type Outbox interface {
	Stats() buffer.Stats
	Peek(max int) ([]buffer.Record, error)
	DeadLetters() ([]buffer.DeadRecord, error)
	Requeue(seq uint64) (buffer.Record, error)
}

// Token is one accepted bearer token.
type Token struct {
	Name   string // logged as the caller
	Secret string
	Role   Role // "": DefaultRole
}

// Options configure the API.
type Options struct {
	Store          *workorder.Store // required
	Bays           Bays             // nil: no bays (the bay routes answer 404)
	SelfTests      SelfTests        // nil: no emission rigs (the self-test routes answer 404/409)
	Outbox         Outbox           // required
	Tokens         []Token
	AnonymousReads bool
	MaxBodyBytes   int64 // 0: 1 MiB
	// AnswerTimeout is how long a client has to take an answer once it begins (the event
	// streams excepted); 0: 1 minute.
	AnswerTimeout time.Duration
	Events        http.Handler // GET /events (events.Bus); nil: 404
	// Uplink returns the uplink status (JSON-encodable, e.g. {"connected": true}); nil reports
	// that no uplink runs.
	Uplink func() any
	// Audit is the audit log (owner-data reads, settlements, corrections, clears, requeues,
	// backups, waste hand-overs); nil: a log in the buffer file when Outbox is a *buffer.DB.
	Audit *audit.Log
	// Waste is the shop's waste ledger (GET /waste/ledger, POST /waste/handovers); nil: those
	// routes answer 404.
	Waste  *waste.Ledger
	Logger *slog.Logger // nil: discard
}

// Server is the API. Create it with New.
type Server struct {
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	routes   []Route
	dir      string                 // where the buffer file is, for the full-disk answer
	degraded atomic.Pointer[string] // why writes fail (a full disk), for /health; nil: they work
}

// Route is one registered route.
type Route struct {
	Method  string
	Path    string // under Prefix, in ServeMux pattern syntax ("/workorders/{id}")
	Summary string
	// Roles may call the route; nil: everyone, without a token (the public routes).
	Roles   []Role
	handler func(w http.ResponseWriter, r *http.Request, c *caller)
}

// caller is who made the request.
type caller struct {
	name string // token name; "" when anonymous
	role Role   // the token's role; RoleMonitor when anonymous
}

func (c *caller) authenticated() bool { return c.name != "" }

// New builds the API.
func New(opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.AnswerTimeout <= 0 {
		opts.AnswerTimeout = time.Minute
	}
	s := &Server{opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.opts.SelfTests == nil {
		s.opts.SelfTests = noSelfTests{}
	}
	if s.opts.Bays == nil {
		s.opts.Bays = noBays{}
	}
	if p, ok := opts.Outbox.(interface{ Path() string }); ok && p.Path() != "" {
		s.dir = filepath.Dir(p.Path())
	}
	if s.opts.Audit == nil {
		if db, ok := opts.Outbox.(*buffer.DB); ok {
			s.opts.Audit = audit.New(db, audit.Options{})
		}
	}
	s.routes = append(append(s.table(), s.selfTestRoutes()...), s.backupRoutes()...)
	s.routes = append(append(s.routes, s.auditRoutes()...), s.wasteRoutes()...)
	for _, rt := range s.routes {
		rt := rt
		s.mux.HandleFunc(rt.Method+" "+Prefix+rt.Path, func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, rt) })
	}
	s.mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		refuse(w, r, &apiError{status: http.StatusNotFound, msg: "no such API route: " + r.Method + " " + r.URL.Path + " (see " + Prefix + "/openapi.yaml)"})
	})
	return s
}

// Routes lists the registered routes (for the OpenAPI test and the docs).
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// Handler returns the API handler; mount it at "/" or under Prefix.
func (s *Server) Handler() http.Handler { return s.mux }

func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// requestLevel is the log level of a request's line: a tablet polls every few seconds, so
// answered requests are debug; a failure of the gateway's own (5xx) is a warning.
func requestLevel(status int) slog.Level {
	if status >= 500 {
		return slog.LevelWarn
	}
	return slog.LevelDebug
}

// public routes answer without a token: they reveal nothing about the shop.
func isPublic(rt Route) bool { return rt.Roles == nil }

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt Route) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK, window: s.opts.AnswerTimeout, dir: s.dir}
	c := &caller{}
	defer func() {
		s.log.Log(r.Context(), requestLevel(sw.status), "api: request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "caller", c.name, "role", c.role, "ms", time.Since(start).Milliseconds())
	}()
	// Who is calling is settled from the headers alone, before a byte of the body is read: a
	// refused request's body is never read (refuse closes the connection instead of letting
	// net/http drain up to 256 kB of it), so a flood of slow bodies without a token costs
	// nothing but the connection, which the daemon's listener caps.
	var ok bool
	if c.name, c.role, ok = s.admit(sw, r, isPublic(rt)); !ok {
		return
	}
	// The role is checked before the body is read, like the token.
	if !rt.allows(c.role) {
		refuse(sw, r, forbidden(c, rt.Method+" "+Prefix+rt.Path, rt.Roles))
		return
	}
	if r.URL.Query().Get("include") == "owner" && !isPublic(rt) && !c.mayReadOwner() {
		if !c.authenticated() {
			sw.Header().Set("WWW-Authenticate", `Bearer realm="obdgw"`)
			refuse(sw, r, &apiError{status: http.StatusUnauthorized, field: "include", msg: "owner data is shown only to a caller with a token of the role front_desk or manager"})
			return
		}
		e := forbidden(c, "owner data (include=owner)", ownerRead)
		e.field = "include"
		refuse(sw, r, e)
		return
	}
	if isWrite(r.Method) {
		if e := s.readBody(sw, r); e != nil {
			refuse(sw, r, e)
			return
		}
	} else if r.ContentLength != 0 {
		// A read with a body: nothing reads it, so nothing should drain it either.
		sw.Header().Set("Connection", "close")
	}
	sw.Header().Set("Cache-Control", "no-store")
	rt.handler(sw, r, c)
	if isWrite(r.Method) {
		// /health says "degraded" from a write refused for a full disk until a write goes through.
		switch {
		case sw.diskFull != "":
			s.degraded.Store(&sw.diskFull)
		case sw.status < 300:
			s.degraded.Store(nil)
		}
	}
}

// admit applies the API's rule to a request from its headers alone: a valid bearer token
// passes (its name is returned), a public route passes, a read passes without a token when
// anonymous reads are on; anything else is answered 401 here and admit returns false.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, public bool) (string, Role, bool) {
	name, role, ok := s.authenticate(r)
	switch {
	case ok:
	case public:
	case !isWrite(r.Method) && s.opts.AnonymousReads && r.Header.Get("Authorization") == "":
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="obdgw"`)
		msg := "a bearer token is required (Authorization: Bearer <token>)"
		if r.Header.Get("Authorization") != "" {
			msg = "the bearer token is not valid"
		}
		refuse(w, r, &apiError{status: http.StatusUnauthorized, msg: msg})
		return "", "", false
	}
	if !ok {
		role = RoleMonitor
	}
	return name, role, true
}

// Guard puts h (the daemon's /metrics) behind the API's read rule: a bearer token, unless
// anonymous reads are on; a wrong token is refused either way.
func (s *Server) Guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := s.admit(w, r, false); ok {
			h.ServeHTTP(w, r)
		}
	})
}

// refuse answers e and closes the connection: the rest of the request's body is not read.
func refuse(w http.ResponseWriter, r *http.Request, e *apiError) {
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
	writeError(w, e)
}

// readBody reads a write's body into memory, bounded by MaxBodyBytes and by the server's read
// deadline, after checking its media type; handlers decode it from there.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) *apiError {
	if r.ContentLength != 0 {
		ct := r.Header.Get("Content-Type")
		mt, params, err := mime.ParseMediaType(ct)
		switch {
		case ct == "":
			return &apiError{status: http.StatusUnsupportedMediaType, msg: "no Content-Type: send the body as application/json (curl --json)"}
		case err != nil || mt != "application/json":
			return &apiError{status: http.StatusUnsupportedMediaType, msg: "send the body as application/json, not " + clip(ct)}
		case params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8"):
			return &apiError{status: http.StatusUnsupportedMediaType, msg: "send the body as UTF-8, not " + clip(params["charset"])}
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return bodyError(err, false)
		}
		return &apiError{status: http.StatusBadRequest, msg: "the body could not be read: " + err.Error()}
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return nil
}

// stream readies w for a server-sent-event stream: the write deadline (meant for ordinary
// answers) is lifted for this response, so the stream lasts until the client leaves or the
// daemon stops. (The read deadline needs nothing: net/http clears it once the request is read.)
func stream(w http.ResponseWriter) {
	if sw, ok := w.(*statusWriter); ok {
		sw.streaming = true
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
}

// authenticate checks the bearer token against every configured token in constant time (all
// of them are compared, so timing does not tell which one nearly matched).
func (s *Server) authenticate(r *http.Request) (string, Role, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", "", false
	}
	tok = strings.TrimSpace(tok)
	name, role := "", Role("")
	for _, t := range s.opts.Tokens {
		if t.Secret == "" {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(tok), []byte(t.Secret)) == 1 && name == "" {
			name, role = t.Name, t.Role
		}
	}
	if role == "" {
		role = DefaultRole
	}
	return name, role, name != ""
}

type statusWriter struct {
	http.ResponseWriter
	status    int
	wrote     bool
	window    time.Duration // Options.AnswerTimeout
	streaming bool          // an event stream: no write deadline
	dir       string        // the directory of the buffer file, for the full-disk answer
	diskFull  string        // the full-disk answer given, if any
}

// WriteHeader starts the answer, and the client's time to take it: the server's own write
// deadline runs from the end of the request, which a long clear may use up before it answers.
func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if !w.streaming {
			_ = http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(w.window))
		}
	}
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// apiError is an error answer: {"error": msg, "field": field, ...extra}.
type apiError struct {
	status   int
	msg      string
	field    string
	extra    map[string]any
	diskFull bool // writeError words the message, naming the directory
}

func (e *apiError) Error() string { return fmt.Sprintf("api: %d %s", e.status, e.msg) }

func writeError(w http.ResponseWriter, e *apiError) {
	if e.diskFull {
		where := "the disk holding the gateway's state directory"
		sw, _ := w.(*statusWriter)
		if sw != nil && sw.dir != "" {
			where = sw.dir
		}
		e.msg = "the gateway's disk is full: free space on " + where + " (old logs, downloaded updates) and send the request again; nothing was stored"
		if sw != nil {
			sw.diskFull = e.msg
		}
	}
	body := map[string]any{"error": e.msg}
	if e.field != "" {
		body["field"] = e.field
	}
	for k, v := range e.extra {
		body[k] = v
	}
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// decodeBody decodes one JSON object strictly into v and names the field of every refusal:
// anything but one object, a syntax error, an unknown member — names match exactly, so "PLATE"
// is not "plate" — a member given twice, text that is not UTF-8 (raw bytes or a lone
// surrogate escape), a character no record field may hold (refusedRune), and a value of the
// wrong type. encoding/json would have taken each of these silently (matching names
// regardless of case, keeping the last of two, replacing bad bytes with U+FFFD), so bodies go
// through github.com/go-json-experiment/json (encoding/json/v2). An empty body is allowed
// only when emptyOK (routes whose body has no required field).
func decodeBody(r io.Reader, v any, emptyOK bool) *apiError {
	data, err := io.ReadAll(r)
	if err != nil {
		return bodyError(err, false)
	}
	t := bytes.TrimSpace(data)
	if len(t) == 0 {
		return bodyError(io.EOF, emptyOK)
	}
	// One value, then nothing: read the first one on its own to tell trailing data apart.
	dec := jsontext.NewDecoder(bytes.NewReader(data))
	if _, err := dec.ReadValue(); err != nil {
		return bodyError(err, false)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return &apiError{status: http.StatusBadRequest, msg: "trailing data after the JSON object: send exactly one object"}
	}
	if t[0] != '{' {
		return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("want a JSON object, got %s", jsonKind(t))}
	}
	if err := jsonv2.Unmarshal(data, v, decodeOptions); err != nil {
		return bodyError(err, false)
	}
	return nil
}

// decodeOptions: unknown members are refused; every string is checked for refused
// characters; json.Number (hours, quantities) keeps encoding/json's meaning — a number, or a
// string holding one — since v2 knows only its own types.
var decodeOptions = jsonv2.JoinOptions(
	jsonv2.RejectUnknownMembers(true),
	jsonv2.WithUnmarshalers(jsonv2.JoinUnmarshalers(
		jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, s *string) error {
			if dec.PeekKind() != '"' {
				return jsonv2.SkipFunc // the default answers the type error
			}
			tok, err := dec.ReadToken()
			if err != nil {
				return err
			}
			str := tok.String()
			if err := checkRunes(str); err != nil {
				return err
			}
			*s = str
			return nil
		}),
		jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, n *json.Number) error {
			k := dec.PeekKind()
			if k != '0' && k != '"' {
				return jsonv2.SkipFunc
			}
			tok, err := dec.ReadToken()
			if err != nil {
				return err
			}
			str := tok.String()
			if k == '"' {
				if _, err := strconv.ParseFloat(str, 64); err != nil || !json.Valid([]byte(str)) {
					return errNotNumber
				}
			}
			*n = json.Number(str)
			return nil
		}),
	)),
)

// errNotNumber: a json.Number field holds a string that is not a number.
var errNotNumber = errors.New("want a number")

// errRefusedRune is a character no field of a work order or record may hold.
type errRefusedRune struct {
	r   rune
	why string
}

func (e *errRefusedRune) Error() string { return fmt.Sprintf("U+%04X %s", e.r, e.why) }

// checkRunes refuses the characters that have no place in a record field and would reach the
// provincial platform as they are: U+FFFD (the text was already damaged by a wrong encoding
// before it was sent), the bidirectional controls (they make a plate or a VIN read
// differently from what is stored: U+202E shows "浙A‮1234" reversed) and control characters
// other than tab and line breaks.
func checkRunes(s string) error {
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			return &errRefusedRune{r, "(replacement character): the text was damaged by a wrong character encoding before it was sent; send it as UTF-8"}
		case r == 0x061C, r == 0x200E, r == 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
			return &errRefusedRune{r, "(a bidirectional text control) is not allowed: it changes how the text reads without changing what is stored"}
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r >= 0x7F && r <= 0x9F:
			return &errRefusedRune{r, "(a control character) is not allowed"}
		}
	}
	return nil
}

func jsonKind(t []byte) string {
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

// fieldOf turns a JSON Pointer into the field notation of the API's errors:
// "/items/0/name" → "items[0].name".
func fieldOf(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.ParseUint(tok, 10, 64); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func bodyError(err error, emptyOK bool) *apiError {
	var (
		mbe *http.MaxBytesError
		se  *jsontext.SyntacticError
		sem *jsonv2.SemanticError
		rr  *errRefusedRune
	)
	switch {
	case errors.Is(err, io.EOF):
		if emptyOK {
			return nil
		}
		return &apiError{status: http.StatusBadRequest, msg: "empty body: send a JSON object"}
	case errors.As(err, &mbe):
		return &apiError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("the body is larger than %d bytes", mbe.Limit)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &apiError{status: http.StatusBadRequest, msg: "malformed JSON: the body ends in the middle of a value"}
	case errors.As(err, &se):
		field := fieldOf(se.JSONPointer)
		switch {
		case errors.Is(se.Err, jsontext.ErrDuplicateName):
			return &apiError{status: http.StatusBadRequest, field: field, msg: fmt.Sprintf("%s: given twice; send each field once", field)}
		case se.Err != nil && (strings.Contains(se.Err.Error(), "UTF-8") || strings.Contains(se.Err.Error(), "surrogate")): // the sentinels are internal
			return &apiError{status: http.StatusBadRequest, field: field, msg: fmt.Sprintf("%s: not valid UTF-8 (at byte %d): send the text as UTF-8", field, se.ByteOffset)}
		}
		return &apiError{status: http.StatusBadRequest, field: field, msg: fmt.Sprintf("malformed JSON at byte %d: %v", se.ByteOffset, se.Err)}
	case errors.As(err, &rr):
		field := ""
		if errors.As(err, &sem) {
			field = fieldOf(sem.JSONPointer)
		}
		return &apiError{status: http.StatusBadRequest, field: field, msg: fmt.Sprintf("%s: %v", field, rr)}
	case errors.As(err, &sem):
		field := fieldOf(sem.JSONPointer)
		switch {
		case errors.Is(sem.Err, jsonv2.ErrUnknownName):
			return &apiError{status: http.StatusBadRequest, field: field, msg: fmt.Sprintf("unknown field %q (names are matched exactly)", field)}
		case field == "":
			return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("want a JSON object, got %s", sem.JSONKind)}
		case errors.Is(sem.Err, errNotNumber):
			return &apiError{status: http.StatusBadRequest, field: field, msg: fmt.Sprintf("%s: want a number", field)}
		case sem.GoType != nil && sem.JSONKind == '0' && strings.Contains(sem.GoType.String(), "int"):
			return &apiError{status: http.StatusBadRequest, field: field, msg: fmt.Sprintf("%s: want a whole number", field)}
		case sem.GoType != nil:
			msg := fmt.Sprintf("%s: want a JSON %s, got %s", field, jsonType(sem.GoType.String()), kindName(sem.JSONKind))
			if sem.Err != nil {
				msg += " (" + sem.Err.Error() + ")"
			}
			return &apiError{status: http.StatusBadRequest, field: field, msg: msg}
		}
		return &apiError{status: http.StatusBadRequest, field: field, msg: fmt.Sprintf("%s: %v", field, err)}
	}
	return &apiError{status: http.StatusBadRequest, msg: "malformed JSON: " + err.Error()}
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "nothing"
}

func jsonType(goType string) string {
	switch {
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"), goType == "json.Number":
		return "number"
	case goType == "string", strings.HasSuffix(goType, "*string"):
		return "string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "[]"):
		return "array"
	}
	return "object"
}

// storeError maps work-order errors to answers.
func storeError(err error) *apiError {
	var (
		ie  *workorder.InputError
		ve  *workorder.ValidationError
		amb *workorder.AmbiguousError
		mm  *workorder.VINMismatchError
		re  *workorder.RuleError
		fe  *wire.FieldError
	)
	switch {
	case errors.As(err, &ie):
		return &apiError{status: http.StatusBadRequest, field: ie.Field, msg: ie.Msg}
	case errors.As(err, &re):
		extra := map[string]any{"code": re.Code}
		if re.Expected != "" {
			extra["expected_check_digit"] = re.Expected
		}
		return &apiError{status: http.StatusUnprocessableEntity, field: re.Field, msg: re.Msg, extra: extra}
	case errors.As(err, &mm):
		extra := map[string]any{"code": "vin_mismatch", "order_vin": mm.OrderVIN, "car_vin": mm.CarVIN}
		if mm.ScanID != "" {
			extra["scan_id"] = mm.ScanID
		}
		return &apiError{status: http.StatusConflict, field: "vin", msg: strings.TrimPrefix(mm.Error(), "workorder: "), extra: extra}
	case errors.As(err, &ve):
		p := ve.Problems[0]
		return &apiError{status: http.StatusUnprocessableEntity, field: p.Field, msg: p.Message,
			extra: map[string]any{"problems": ve.Problems, "warnings": ve.Warnings}}
	case errors.As(err, &amb):
		return &apiError{status: http.StatusConflict, field: "order", msg: amb.Error(),
			extra: map[string]any{"scan_id": amb.ScanID, "candidates": amb.Candidates}}
	case errors.Is(err, workorder.ErrNotFound), errors.Is(err, workorder.ErrScanMissing):
		return &apiError{status: http.StatusNotFound, msg: err.Error()}
	case errors.Is(err, workorder.ErrSettled), errors.Is(err, workorder.ErrNotSettled), errors.Is(err, workorder.ErrDuplicate):
		return &apiError{status: http.StatusConflict, msg: err.Error()}
	case errors.Is(err, workorder.ErrNoSelfTest):
		return &apiError{status: http.StatusConflict, field: "no_selftest_reason", msg: err.Error()}
	case errors.As(err, &fe) && fe.Field == "created_at":
		// Nothing is timestamped before the clock is synced: a record dated 1970 would be wrong
		// for good, so settlement waits for the clock.
		return &apiError{status: http.StatusServiceUnavailable, msg: "the gateway's clock is not set, so the record cannot be dated: check time synchronisation (NTP) and settle again"}
	case errors.As(err, &fe):
		// The M-station record refused the order's data (a last scan that cannot judge the
		// car, …): the field says what to redo.
		return &apiError{status: http.StatusUnprocessableEntity, field: fe.Field, msg: err.Error()}
	case buffer.IsDiskFull(err):
		return &apiError{status: http.StatusServiceUnavailable, diskFull: true}
	case errors.Is(err, buffer.ErrFull):
		return &apiError{status: http.StatusServiceUnavailable, msg: "the outbox is full: nothing can be settled until the broker takes the backlog (check the uplink)"}
	}
	return &apiError{status: http.StatusInternalServerError, msg: "internal error: " + err.Error()}
}

func bayError(err error) *apiError {
	switch {
	case errors.Is(err, ErrNoBay):
		return &apiError{status: http.StatusNotFound, msg: err.Error()}
	case errors.Is(err, ErrBayBusy), errors.Is(err, ErrNoVehicle), errors.Is(err, ErrNoAdapter):
		return &apiError{status: http.StatusConflict, msg: err.Error()}
	case errors.Is(err, ErrVINMismatch):
		return &apiError{status: http.StatusConflict, field: "vin", msg: err.Error()}
	}
	return &apiError{status: http.StatusServiceUnavailable, msg: "the bay failed: " + err.Error()}
}

// noBays is the Bays of a daemon without bay supervisors.
type noBays struct{}

func (noBays) List() []BayStatus { return []BayStatus{} }
func (noBays) Status(name string) (BayStatus, error) {
	return BayStatus{}, fmt.Errorf("%w: %q", ErrNoBay, name)
}
func (noBays) Scan(_ context.Context, name string) error {
	return fmt.Errorf("%w: %q", ErrNoBay, name)
}
func (noBays) ClearDTCs(_ context.Context, name string, _ ClearRequest) (ClearResult, error) {
	return ClearResult{}, fmt.Errorf("%w: %q", ErrNoBay, name)
}
func (noBays) Live(_ context.Context, name string) (<-chan LiveValues, error) {
	return nil, fmt.Errorf("%w: %q", ErrNoBay, name)
}
