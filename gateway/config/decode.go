package config

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
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
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found, in file order. Parse and Load return it (as error) so callers
// can list them all; errors.As(err, &config.Errors{}) gets the list.
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
		b.WriteString("\n  " + x.Error())
	}
	return b.String()
}

// decoder maps a yaml.Node tree onto a struct by its yaml tags, collecting every problem with
// its path instead of stopping at the first, and remembering the line of every path so the
// validation pass can point at it too.
type decoder struct {
	errs  []Error
	lines map[string]int
}

func (d *decoder) errorf(path string, line int, format string, a ...any) {
	d.errs = append(d.errs, Error{Path: path, Line: line, Msg: fmt.Sprintf(format, a...)})
}

var (
	nodeType     = reflect.TypeFor[yaml.Node]()
	durationType = reflect.TypeFor[time.Duration]()
)

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
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.errorf(path, n.Line, "broken alias")
			return
		}
		n = n.Alias
	}
	if _, ok := d.lines[path]; !ok {
		d.lines[path] = n.Line
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value keeps the default
	}
	// Sections owned by other packages (emission.Limits) decode and validate themselves; their
	// errors (one per line, "emission: key: …") are placed under this path.
	if v.CanAddr() {
		if u, ok := v.Addr().Interface().(yaml.Unmarshaler); ok {
			if err := u.UnmarshalYAML(n); err != nil {
				for _, msg := range strings.Split(err.Error(), "\n") {
					for strings.HasPrefix(msg, path+": ") {
						msg = strings.TrimPrefix(msg, path+": ")
					}
					d.foreign(path, n.Line, msg)
				}
			}
			return
		}
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
		d.decodeScalar(n, v, path)
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
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !t.Field(i).IsExported() {
			continue
		}
		fields[name] = i
		known = append(known, name)
	}
	sort.Strings(known)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(path, k.Line, "a key must be a plain word, got %s", kindName(k))
			continue
		}
		p := join(path, k.Value)
		if prev, dup := seen[k.Value]; dup {
			d.errorf(p, k.Line, "duplicate key (first at line %d)", prev)
			continue
		}
		seen[k.Value] = k.Line
		fi, ok := fields[k.Value]
		if !ok {
			d.errorf(p, k.Line, "unknown key %q (known keys here: %s)", clip(k.Value), strings.Join(known, ", "))
			continue
		}
		d.lines[p] = k.Line
		d.decode(val, v.Field(fi), p)
	}
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(path, n.Line, "want a single value, got %s", kindName(n))
		return
	}
	s := n.Value
	switch {
	case v.Type() == durationType:
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.errorf(path, n.Line, "want a duration like 30s or 5m, got %q", clip(s))
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.String:
		if n.Tag == "!!bool" {
			// yes/no/true/false unquoted where text is expected is almost always a mistake.
			d.errorf(path, n.Line, "want text, got the boolean %s (quote it if you mean the word)", s)
			return
		}
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		var b bool
		if n.Tag != "!!bool" || n.Decode(&b) != nil {
			d.errorf(path, n.Line, "want true or false, got %q", clip(s))
			return
		}
		v.SetBool(b)
	case v.CanInt():
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n.Tag != "!!int" || v.OverflowInt(i) {
			d.errorf(path, n.Line, "want a whole number, got %q", clip(s))
			return
		}
		v.SetInt(i)
	case v.CanFloat():
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || (n.Tag != "!!int" && n.Tag != "!!float") {
			d.errorf(path, n.Line, "want a number, got %q", clip(s))
			return
		}
		v.SetFloat(f)
	default:
		d.errorf(path, n.Line, "internal: cannot decode into %s", v.Type())
	}
}

var (
	lineRe = regexp.MustCompile(`^line ([0-9]+): (.*)$`)
	keyRe  = regexp.MustCompile(`^([a-z0-9_]+(?:\.[a-z0-9_]+|\[[0-9]+\])*): (.*)$`)
)

// foreign records an error from a section's own decoder, lifting "line N:" and a leading
// "key.path:" into the error's line and path so it reads like the others.
func (d *decoder) foreign(path string, line int, msg string) {
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		if l, err := strconv.Atoi(m[1]); err == nil {
			line = l
		}
		msg = m[2]
	}
	msg = strings.TrimPrefix(msg, path+": ")
	if m := keyRe.FindStringSubmatch(msg); m != nil {
		path, msg = join(path, m[1]), m[2]
	} else if rest, ok := strings.CutPrefix(msg, "unknown key "); ok && keyRe.MatchString(rest+": x") {
		path, msg = join(path, rest), "unknown key"
	}
	d.errorf(path, line, "%s", msg)
}
