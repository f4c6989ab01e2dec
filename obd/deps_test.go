package obd

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The obd package is J1979 meaning only: the standard library and nothing else, so it builds
// for any target and can be reviewed without the rest of the tree. obdtest may add obd.
func TestImportsStayStdlib(t *testing.T) {
	for dir, allowed := range map[string][]string{
		".":       nil,
		"obdtest": {"github.com/obdgw/obdgw/obd"},
	} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				first := strings.SplitN(p, "/", 2)[0]
				if !strings.Contains(first, ".") {
					continue // standard library
				}
				ok := false
				for _, a := range allowed {
					ok = ok || p == a
				}
				if !ok {
					t.Errorf("%s imports %s: obd must stay standard-library only", f, p)
				}
			}
		}
	}
}
