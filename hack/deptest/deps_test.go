// Package deptest keeps the package map (docs/architecture.md) honest: leaf packages may import only
// what their row allows, so that data moves one way (hardware → meaning → work order → record →
// uplink) and only the gateway wires everything together.
package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/obdgw/obdgw"

// rules: package pattern → allowed non-stdlib import prefixes (besides itself).
var rules = []struct {
	pkg     string
	allowed []string
}{
	{"./obd", nil},
	{"./obd/obdtest", []string{mod + "/obd"}},
	{"./drivers/serialport", []string{"go.bug.st/serial", "golang.org/x/sys", "github.com/creack/goselect"}},
	{"./drivers/elm327", []string{mod + "/obd", mod + "/drivers/serialport", "go.bug.st/serial", "golang.org/x/sys", "github.com/creack/goselect"}},
	// Scenario files are YAML, the one format shop staff and testers already edit.
	{"./drivers/elm327/elm327sim", []string{mod + "/obd", "gopkg.in/yaml.v3"}},
	{"./drivers/rig", nil},
	{"./drivers/rig/frame", []string{mod + "/drivers/rig"}},
	{"./drivers/indicator", []string{"periph.io/x/conn/v3"}},
	// Rig drivers speak bytes through the rig seam; their simulators add a pty.
	{"./drivers/nanhua", rigDriver},
	{"./drivers/opacity", rigDriver},
	{"./drivers/mqw50a", rigDriver},
	{"./drivers/mexa", rigDriver},
	{"./drivers/fga4100", rigDriver},
	{"./drivers/nanhua/nanhuasim", append([]string{mod + "/drivers/nanhua"}, rigSim...)},
	{"./drivers/opacity/opacitysim", append([]string{mod + "/drivers/opacity"}, rigSim...)},
	{"./drivers/mqw50a/mqw50asim", append([]string{mod + "/drivers/mqw50a"}, rigSim...)},
	{"./drivers/mexa/mexasim", append([]string{mod + "/drivers/mexa"}, rigSim...)},
	{"./drivers/fga4100/fga4100sim", append([]string{mod + "/drivers/fga4100"}, rigSim...)},
	// cloud moves opaque bytes: it never imports the wire schema or anything of the gateway.
	{"./cloud", []string{mod + "/buffer", "go.etcd.io/bbolt", "github.com/eclipse/paho.mqtt.golang", "github.com/prometheus", "github.com/beorn7", "github.com/cespare", "github.com/munnerz", "google.golang.org/protobuf", "go.yaml.in", "golang.org/x/", "github.com/gorilla/websocket"}},
	{"./buffer", []string{"go.etcd.io/bbolt", "golang.org/x/sys"}},
	{"./firmware/...", []string{mod + "/firmware"}},
}

var (
	rigDriver = []string{mod + "/drivers/rig", mod + "/drivers/rig/frame"}
	rigSim    = append([]string{mod + "/drivers/rig/rigsim", "github.com/creack/pty", "golang.org/x/sys"}, rigDriver...)
)

func TestImportRules(t *testing.T) {
	for _, r := range rules {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", r.pkg)
		cmd.Dir = "../.." // the module root
		out, err := cmd.CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "matched no packages") || strings.Contains(string(out), "no Go files") {
				continue
			}
			t.Fatalf("go list %s: %v\n%s", r.pkg, err, out)
		}
		self := mod + strings.TrimPrefix(strings.TrimSuffix(r.pkg, "/..."), ".")
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, self) {
				continue
			}
			ok := false
			for _, a := range r.allowed {
				if strings.HasPrefix(dep, a) {
					ok = true
					break
				}
			}
			if !ok {
				t.Errorf("%s imports %s, which its row of the package map does not allow", r.pkg, dep)
			}
		}
	}
}
