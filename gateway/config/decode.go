package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in the configuration, located by its YAML path and line.
type Error struct {
	Path string // "bays[1].obd"; empty for the document as a whole
	Line int    // 1-based; 0 when unknown
	Msg  string
}

func (e Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	e.writeTo(&b)
	return b.String()
}

func (e Error) writeTo(b *strings.Builder) {
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
}

// Errors is every problem found, in file order. Parse and Load return it (as error) so callers
// can list them all; errors.As(err, &config.Errors{}) gets the list.
//
// Each problem is printed on its own line as "file:line: path: message", the form editors and
// terminals jump to:
//
//	config: obdgw.yaml: 2 problems
//	  obdgw.yaml:14: bays[1].rig.modle: unknown key (did you mean model?)
//	  obdgw.yaml:20: api.listen: "8080": want host:port, e.g. 0.0.0.0:8080
type Errors struct {
	File string
	List []Error
}

func (e *Errors) Error() string {
	var b strings.Builder
	name := e.File
	if name == "" {
		name = "config"
	}
	fmt.Fprintf(&b, "config: %s: %d problem", name, len(e.List))
	if len(e.List) != 1 {
		b.WriteString("s")
	}
	for _, x := range e.List {
		b.WriteString("\n  " + name)
		if x.Line > 0 {
			fmt.Fprintf(&b, ":%d", x.Line)
		}
		b.WriteString(": ")
		x.writeTo(&b)
	}
	return b.String()
}

// parseYAML reads the one YAML document of data into a node tree. go.yaml.in/yaml/v3 checks the
// syntax; a syntax error stops it, so it is the only problem reported.
func parseYAML(data []byte) (*yaml.Node, *Error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Msg: "the file is empty"}
		}
		e := syntaxError(err, data)
		return nil, &e
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, &Error{Line: extra.Line, Msg: "a second YAML document; the file must hold exactly one"}
	case !errors.Is(err, io.EOF):
		e := syntaxError(err, data)
		return nil, &e
	}
	return &root, nil
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (-?[0-9]+): (.*)$`)

// parserProblems are the syntax errors that go.yaml.in/yaml/v3 v3.0.6 raises in its parser
// rather than its scanner. For these it reports the line counted from 0, one line early (it
// adds the 1 for scanner errors only: see (*parser).fail in its decode.go). The line is the
// start of the list, mapping or node it was parsing, or the problem itself when that starts
// on the file's first line. TestSyntaxErrorLines pins both kinds, so a library that fixes this
// fails the test rather than reporting one line late.
var parserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
	"found undefined tag handle",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
}

// readerProblems are what the library says, without a line, about bytes that are not text.
var readerProblems = []string{
	"invalid leading UTF-8 octet",
	"invalid trailing UTF-8 octet",
	"incomplete UTF-8 octet sequence",
	"invalid length of a UTF-8 sequence",
	"invalid Unicode character",
	"control characters are not allowed",
}

var anchorRe = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// syntaxError turns the library's syntax error into an Error on the right line.
func syntaxError(err error, data []byte) Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRe.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if slices.Contains(parserProblems, msg) {
			line++
		}
	} else if slices.Contains(parserProblems, msg) {
		line = 1 // both of the library's marks were on line 0
	} else if slices.Contains(readerProblems, msg) {
		line = badTextLine(data)
	} else if m := anchorRe.FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line = 1 + bytes.Count(data[:i], []byte("\n"))
		}
		msg = fmt.Sprintf("*%s refers to no anchor &%s above it", m[1], m[1])
	}
	if msg == "did not find expected key" || msg == "did not find expected '-' indicator" {
		line = badIndentLine(data, line, msg)
		msg += " (check the indentation of this line)"
	}
	if msg == "found character that cannot start any token" && line > 0 && startsWithTab(data, line) {
		msg += " (a tab: indent with spaces)"
	}
	if n := lineCount(data); line > n {
		line = n
		msg += " at the end of the file"
	}
	if line < 0 {
		line = 0
	}
	return Error{Line: line, Msg: "not valid YAML: " + msg}
}

// badIndentLine finds the line of a block-structure error. The library names the line where
// the list or mapping starts; the line that broke it is the first whose addition makes the
// file fail the same way. At most 200 lines are tried, then the library's line stands.
func badIndentLine(data []byte, from int, msg string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	for k := max(from, 1); k <= len(lines) && k <= from+200; k++ {
		dec := yaml.NewDecoder(bytes.NewReader(bytes.Join(lines[:k], nil)))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if err != nil && strings.HasSuffix(err.Error(), ": "+msg) {
				return k
			}
			if err != nil {
				break
			}
		}
	}
	return from
}

func startsWithTab(data []byte, line int) bool {
	lines := bytes.Split(data, []byte("\n"))
	if line > len(lines) {
		return false
	}
	l := lines[line-1]
	return bytes.Contains(l[:len(l)-len(bytes.TrimLeft(l, " \t"))], []byte("\t"))
}

func lineCount(data []byte) int {
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return n
}

// badTextLine returns the line of the first byte YAML does not accept as text (invalid UTF-8,
// a control character), or 0.
func badTextLine(data []byte) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1,
			r < 0x20 && r != '\t' && r != '\n' && r != '\r',
			r >= 0x7f && r <= 0x9f && r != 0x85,
			r == 0xfffe || r == 0xffff:
			return line
		case r == '\n':
			line++
		}
		i += size
	}
	return 0
}

// decoder lays a yaml.Node tree over a struct by its yaml tags. The library decodes every value;
// the walk over mappings and lists is ours because the library's own strict mode
// (Decoder.KnownFields) names a line but not the key path, stops at the first duplicate key,
// and cannot suggest the key that was meant. The decoder remembers the line of every path so
// the validation pass can point at it too.
type decoder struct {
	errs  []Error
	lines map[string]int
}

func (d *decoder) errorf(path string, line int, format string, a ...any) {
	d.errs = append(d.errs, Error{Path: path, Line: line, Msg: fmt.Sprintf(format, a...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing (null)"
		}
		return fmt.Sprintf("%q", clip(n.Value))
	}
	return "an unexpected node"
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	// An alias stands for its anchored node. The walk follows the Go types, none of which
	// contains itself, so an alias that refers to its own ancestor cannot loop.
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value keeps the default
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(path, n.Line, "want a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	default:
		d.decodeValue(n, v, path)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(path, n.Line, "want a mapping of keys, got %s", kindName(n))
		return
	}
	fields := map[string]int{}
	var known []string
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !t.Field(i).IsExported() {
			continue
		}
		fields[name] = i
		known = append(known, name)
	}
	slices.Sort(known)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(path, k.Line, "a key must be a plain word, got %s", kindName(k))
			continue
		}
		p := join(path, clip(k.Value))
		if k.Tag == "!!merge" {
			d.errorf(p, k.Line, "merge keys are not supported here: write the keys out")
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			d.errorf(p, k.Line, "duplicate key (first at line %d)", prev)
			continue
		}
		seen[k.Value] = k.Line
		fi, ok := fields[k.Value]
		if !ok {
			if m := closest(k.Value, known); m != "" {
				d.errorf(p, k.Line, "unknown key (did you mean %s?)", m)
			} else {
				d.errorf(p, k.Line, "unknown key (known keys here: %s)", strings.Join(known, ", "))
			}
			continue
		}
		d.lines[p] = k.Line
		d.decode(val, v.Field(fi), p)
	}
}

var durationType = reflect.TypeFor[time.Duration]()

// want names what a field of type t takes, for messages.
func want(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration with its unit, like 30s or 5m"
	case t.Kind() == reflect.String:
		return "text"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	}
	return "a value of type " + t.String()
}

// decodeValue has the library decode one value. It refuses a bare number for a duration
// ("precondition: 30" must not mean 30 ns) and a number that does not fit.
func (d *decoder) decodeValue(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(path, n.Line, "want %s, got %s", want(v.Type()), kindName(n))
		return
	}
	if v.Kind() == reflect.String && n.Tag == "!!bool" {
		// yes/no/true/false unquoted where text is expected is almost always a mistake.
		d.errorf(path, n.Line, "want text, got the boolean %s (quote it if you mean the word)", n.Value)
		return
	}
	x := reflect.New(v.Type())
	if err := n.Decode(x.Interface()); err != nil {
		d.errorf(path, n.Line, "want %s, got %s", want(v.Type()), kindName(n))
		return
	}
	v.Set(x.Elem())
}

// closest returns the known key a mistyped key most likely meant: the nearest by edit distance
// (a swap of two neighbours counts as one edit), if it is near enough; "" otherwise.
func closest(key string, known []string) string {
	lk := strings.ToLower(key)
	best, bestDist := "", min(3, 1+len(key)/4)+1
	for _, k := range known {
		if lk == k {
			return k
		}
		if d := editDistance(lk, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b (bytes; keys are ASCII).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
