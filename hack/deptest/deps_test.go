// Package deptest keeps the package map (docs/architecture.md) honest: every package of the tree
// has a row, and may import only what its row allows, so that data moves one way (hardware →
// meaning → work order → record → uplink) and only the wiring points (the daemon, the command,
// the demo) import everything.
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
	// The one raw pseudo-terminal of the simulators and tests; serialport itself stays free of it.
	{"./drivers/serialport/ptypair", []string{"github.com/creack/pty", "golang.org/x/sys"}},
	{"./drivers/elm327", []string{mod + "/obd", mod + "/drivers/serialport", mod + "/drivers/lograte", "go.bug.st/serial", "golang.org/x/sys", "github.com/creack/goselect"}},
	// Scenario files are YAML, the one format shop staff and testers already edit.
	{"./drivers/elm327/elm327sim", []string{mod + "/obd", "go.yaml.in/yaml/v3"}},
	// The one log rate limiter, for the drivers and the cloud side alike: standard library only.
	{"./drivers/lograte", nil},
	// The one rule for which hosts may be reached without encryption: this box.
	{"./drivers/loopback", nil},
	{"./drivers/rig", nil},
	{"./drivers/rig/frame", []string{mod + "/drivers/rig"}},
	{"./drivers/indicator", []string{"periph.io/x/conn/v3"}},
	// Rig drivers speak bytes through the rig seam; their simulators serve any io.ReadWriter
	// (the pty comes from drivers/serialport/ptypair, in the caller).
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
	{"./cloud", cloudDeps},
	// The receiver's database store: pgx and the cloud side, never the wire schema (the receiver
	// hands it the id's parts).
	{"./cloud/pgstore", append([]string{mod + "/cloud", "github.com/jackc/"}, cloudDeps...)},
	{"./buffer", []string{"go.etcd.io/bbolt", "golang.org/x/sys"}},
	// The wire schema is the contract with the province's receiver: the standard library only,
	// so the receiver's validator and hack/chaos link no driver, serial library or YAML parser.
	{"./gateway/wire", nil},
	// Record builders and the work-order store know the schema and the scan's meaning, never an
	// instrument: no emission procedures, rig or serial drivers, YAML. The VIN rules are obd's.
	{"./gateway/ehr", []string{mod + "/gateway/wire", mod + "/obd"}},
	{"./gateway/workorder", []string{mod + "/gateway/wire", mod + "/gateway/ehr", mod + "/obd", mod + "/buffer", "go.etcd.io/bbolt", "golang.org/x/sys"}},
	// The procedures judge readings through the rig seam; the serial link stays in the drivers.
	{"./gateway/emission", emission},
	// The M-station record joins a judged self-test to the work order at settlement.
	{"./gateway/imrecord", append([]string{mod + "/gateway/wire", mod + "/gateway/ehr", mod + "/gateway/workorder", mod + "/gateway/emission",
		mod + "/gateway/events", mod + "/buffer", "go.etcd.io/bbolt", "golang.org/x/sys"}, emission...)},
	{"./firmware/...", []string{mod + "/firmware"}},
	// The configuration is read before anything runs: YAML, the emission limits it carries and
	// the address parser serialport.Open uses, never the daemon, the store or the uplink.
	{"./gateway/config", []string{mod + "/gateway/emission", mod + "/drivers/rig", mod + "/obd", mod + "/drivers/serialport", mod + "/drivers/loopback", "go.yaml.in/yaml/v3", "go.bug.st/serial", "golang.org/x/sys", "github.com/creack/goselect"}},
	// Rig simulators serve any io.ReadWriter; rigtest puts them on a real pty for driver tests.
	{"./drivers/rig/rigsim", nil},
	{"./drivers/rig/rigtest", []string{mod + "/drivers/rig", mod + "/drivers/rig/rigsim", mod + "/drivers/serialport", mod + "/hack/testenv",
		"github.com/creack/pty", "go.bug.st/serial", "golang.org/x/sys", "github.com/creack/goselect"}},
	{"./gateway/emission/emissiontest", append([]string{mod + "/gateway/emission"}, emission...)},
	// The trial PKI is the standard library's crypto, nothing of the gateway.
	{"./gateway/pki", nil},
	// Events fan out to the console; the console page knows only the scan's meaning.
	{"./gateway/events", nil},
	{"./gateway/console", []string{mod + "/obd"}},
	// A bay owns one adapter and its light; it learns the adapter through obd.Adapter and opens
	// ports through serialport, never a rig, the store's records or the uplink.
	{"./gateway/bay", []string{mod + "/obd", mod + "/buffer", mod + "/drivers/indicator", mod + "/drivers/serialport", mod + "/gateway/events",
		"go.bug.st/serial", "go.etcd.io/bbolt", "golang.org/x/sys", "periph.io/x/conn/v3", "github.com/creack/goselect"}},
	// The REST API talks to the store and to bays and rigs through its own interfaces: no driver.
	// Request bodies go through encoding/json/v2 (exact names, no duplicates, UTF-8 only).
	// The audit log: a few document buckets of the buffer file.
	{"./gateway/audit", []string{mod + "/buffer", "go.etcd.io/bbolt", "golang.org/x/sys"}},
	// The waste ledger and the waste record: the settlement hook of gateway/workorder.
	{"./gateway/waste", []string{mod + "/gateway/workorder", mod + "/gateway/ehr", mod + "/gateway/wire", mod + "/obd", mod + "/buffer", "go.etcd.io/bbolt", "golang.org/x/sys"}},
	{"./gateway/api", []string{mod + "/gateway/workorder", mod + "/gateway/ehr", mod + "/gateway/wire", mod + "/gateway/audit", mod + "/gateway/waste", mod + "/obd", mod + "/buffer", "go.etcd.io/bbolt", "golang.org/x/sys", "github.com/go-json-experiment/json"}},
	// The uplink wiring joins the opaque cloud side to the wire schema, and nothing else.
	// The eHR HTTPS bridge: the wire schemas and the outbox, no driver, no MQTT.
	{"./gateway/ehrhttp", []string{mod + "/gateway/wire", mod + "/buffer", mod + "/drivers/loopback", "go.etcd.io/bbolt", "golang.org/x/sys", "github.com/prometheus", "github.com/beorn7",
		"github.com/cespare", "github.com/munnerz", "google.golang.org/protobuf", "go.yaml.in"}},
	{"./gateway/ehrhttp/ehrhttptest", nil},
	{"./gateway/uplink", append([]string{mod + "/gateway/wire", mod + "/cloud"}, cloudDeps...)},
	// Updates: the TUF client and publisher (go-tuf v2 and what its metadata package needs for
	// signatures), the state file and the health gate; never the daemon, store or uplink.
	{"./gateway/update", []string{"github.com/theupdateframework/go-tuf/v2", "github.com/sigstore", "github.com/secure-systems-lab/go-securesystemslib",
		"github.com/cenkalti/backoff", "github.com/google/go-containerregistry", "github.com/opencontainers/go-digest",
		"golang.org/x/crypto", "golang.org/x/sys", "golang.org/x/term", "google.golang.org/genproto", "google.golang.org/protobuf"}},
	// The wiring points: the daemon, the command and the demo may import everything, as may
	// the test and chaos tooling under hack/.
	{"./gateway/daemon", anything},
	{"./gateway/cmd/obdgw", anything},
	{"./gateway/demo", anything},
	{"./hack/...", anything},
}

var (
	// anything marks a wiring point: every import is allowed.
	anything  = []string{""}
	cloudDeps = []string{mod + "/buffer", mod + "/drivers/lograte", mod + "/drivers/loopback", "go.etcd.io/bbolt", "github.com/eclipse/paho.mqtt.golang", "github.com/prometheus", "github.com/beorn7",
		"github.com/cespare", "github.com/munnerz", "google.golang.org/protobuf", "go.yaml.in", "golang.org/x/", "github.com/gorilla/websocket"}
	emission  = []string{mod + "/drivers/rig", mod + "/obd"}
	rigDriver = []string{mod + "/drivers/rig", mod + "/drivers/rig/frame", mod + "/drivers/lograte"}
	rigSim    = append([]string{mod + "/drivers/rig/rigsim"}, rigDriver...)
)

func TestImportRules(t *testing.T) {
	for _, r := range rules {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", r.pkg)
		cmd.Dir = "../.." // the module root
		out, err := cmd.CombinedOutput()
		if err != nil {
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

// TestEveryPackageHasARow: a package added to the tree gets its row in the map above, and a
// row names a package that exists, so the map can neither miss nor outlive the code.
func TestEveryPackageHasARow(t *testing.T) {
	cmd := exec.Command("go", "list", "./...")
	cmd.Dir = "../.."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list ./...: %v\n%s", err, out)
	}
	used := make([]bool, len(rules))
	for _, pkg := range strings.Fields(string(out)) {
		rel := "." + strings.TrimPrefix(pkg, mod)
		found := false
		for i, r := range rules {
			if rel == r.pkg || strings.HasSuffix(r.pkg, "/...") && strings.HasPrefix(rel+"/", strings.TrimSuffix(r.pkg, "...")) {
				found, used[i] = true, true
			}
		}
		if !found {
			t.Errorf("%s has no row in the package map (hack/deptest rules, docs/architecture.md)", rel)
		}
	}
	for i, r := range rules {
		if !used[i] {
			t.Errorf("row %s names no package of the tree", r.pkg)
		}
	}
}
