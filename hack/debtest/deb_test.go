// Package debtest installs the Debian package `make deb` builds into a throwaway root and
// checks what a dealer's box gets: files and modes, the system user, the conffile, the
// secrets postinst makes (never replaced on upgrade), and a configuration that passes
// `obdgw run --check-config`.
package debtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/obdgw/obdgw/hack/testenv"
)

func TestDebInstallsIntoAThrowawayRoot(t *testing.T) {
	testenv.SkipShort(t, testenv.TierBinary)
	testenv.Program(t, "dpkg", "dpkg")
	testenv.Program(t, "dpkg", "dpkg-deb")
	testenv.Program(t, "passwd", "useradd")
	if os.Geteuid() != 0 {
		msg := "installs a package into a throwaway root: postinst sets owners, which needs root"
		if testenv.InCI() {
			t.Fatal(msg + "; CI runs as root")
		}
		t.Skip(msg)
	}
	out := t.TempDir()
	build := exec.Command("bash", "hack/deb.sh", "amd64")
	build.Dir = filepath.Join("..", "..")
	build.Env = append(os.Environ(), "OUT="+out, "VERSION=v1.2.3")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("hack/deb.sh: %v\n%s", err, b)
	}
	deb := filepath.Join(out, "obdgw_1.2.3_amd64.deb")
	if _, err := os.Stat(deb); err != nil {
		t.Fatal(err)
	}

	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	for name, body := range map[string]string{
		"var/lib/dpkg/status": "", "etc/passwd": "root:x:0:0:root:/root:/bin/bash\n",
		"etc/group": "root:x:0:\ndialout:x:20:\n", "etc/shadow": "root:*:19000:0:99999:7:::\n", "etc/gshadow": "root:*::\ndialout:*::\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dpkg := func(args ...string) {
		t.Helper()
		cmd := exec.Command("dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--force-depends",
			"--force-confold", "--log=/dev/null"}, args...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dpkg %v: %v\n%s", args, err, b)
		}
	}
	dpkg("--install", deb)

	passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	group, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	var uid, gid int
	for _, l := range strings.Split(string(passwd), "\n") {
		if f := strings.Split(l, ":"); len(f) == 7 && f[0] == "obdgw" {
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			if f[6] != "/usr/sbin/nologin" || f[5] != "/var/lib/obdgw" {
				t.Errorf("obdgw user: %q", l)
			}
		}
	}
	if uid == 0 || !strings.Contains(string(group), "dialout:x:20:obdgw") {
		t.Fatalf("no obdgw system user in the dialout group:\n%s\n%s", passwd, group)
	}
	for _, c := range []struct {
		path     string
		mode     os.FileMode
		uid, gid int
	}{
		{"usr/bin/obdgw", 0o755, 0, 0},
		{"lib/systemd/system/obdgw.service", 0o644, 0, 0},
		{"etc/obdgw", 0o750 | os.ModeDir, 0, gid},
		{"etc/obdgw/obdgw.yaml", 0o640, 0, gid},
		{"etc/obdgw/secrets", 0o700 | os.ModeDir, uid, gid},
		{"etc/obdgw/secrets/dms.token", 0o600, uid, gid},
		{"etc/obdgw/secrets/tablet.token", 0o600, uid, gid},
		{"var/lib/obdgw", 0o700 | os.ModeDir, uid, gid},
		{"usr/share/doc/obdgw/copyright", 0o644, 0, 0},
	} {
		st, err := os.Stat(filepath.Join(root, c.path))
		if err != nil {
			t.Errorf("%s: %v", c.path, err)
			continue
		}
		if st.Mode() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, st.Mode(), c.mode)
		}
		if u, g := owner(st); u != c.uid || g != c.gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", c.path, u, g, c.uid, c.gid)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(root, "var/lib/dpkg/info/obdgw.conffiles")); strings.TrimSpace(string(b)) != "/etc/obdgw/obdgw.yaml" {
		t.Errorf("conffiles: %q", b)
	}
	unit, _ := os.ReadFile(filepath.Join(root, "lib/systemd/system/obdgw.service"))
	if !bytes.Contains(unit, []byte("ExecStart=/usr/bin/obdgw ")) {
		t.Error("the unit does not start the packaged binary /usr/bin/obdgw")
	}

	// The dealer's steps: certificates (a trial PKI here), the broker password from the
	// province, the shop's own edits of the config; then the check passes.
	bin := filepath.Join(root, "usr/bin/obdgw")
	etc := filepath.Join(root, "etc/obdgw")
	run := func(args ...string) string {
		t.Helper()
		b, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("obdgw %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	run("setup", "--dir", etc, "--trial-pki", "--gateway-id", "hz-demo-gw1", "--broker-host", "broker.example.cn")
	os.WriteFile(filepath.Join(etc, "secrets/broker.password"), []byte("from-the-province\n"), 0o600)
	cfgPath := filepath.Join(etc, "obdgw.yaml")
	cfg, _ := os.ReadFile(cfgPath)
	edited := strings.Replace(string(cfg), "state_dir: /var/lib/obdgw", "state_dir: "+filepath.Join(root, "var/lib/obdgw"), 1)
	if edited == string(cfg) {
		t.Fatal("the packaged config has no state_dir line")
	}
	if err := os.WriteFile(cfgPath, []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	if o := run("run", "--check-config", "--config", cfgPath); !strings.Contains(o, "configuration OK") {
		t.Errorf("check-config: %s", o)
	}
	if o := run("version"); !strings.Contains(o, "obdgw v1.2.3") {
		t.Errorf("version: %s", o)
	}

	// An upgrade (the same package again) keeps the edited config and every secret.
	secrets := map[string][]byte{}
	for _, f := range []string{"secrets/dms.token", "secrets/tablet.token", "secrets/gw.key", "secrets/broker.password"} {
		secrets[f], _ = os.ReadFile(filepath.Join(etc, f))
	}
	dpkg("--install", deb)
	if b, _ := os.ReadFile(cfgPath); string(b) != edited {
		t.Error("the upgrade replaced the edited config")
	}
	for f, b := range secrets {
		if now, _ := os.ReadFile(filepath.Join(etc, f)); !bytes.Equal(now, b) {
			t.Errorf("the upgrade replaced %s", f)
		}
	}

	// Purge removes the secrets but never the state with undelivered records.
	state := filepath.Join(root, "var/lib/obdgw/obdgw.db")
	os.WriteFile(state, []byte("state"), 0o600)
	dpkg("--purge", "obdgw")
	if _, err := os.Stat(state); err != nil {
		t.Errorf("purge removed the state file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(etc, "secrets")); !os.IsNotExist(err) {
		t.Errorf("purge left the secrets: %v", err)
	}
	if _, err := os.Stat(bin); !os.IsNotExist(err) {
		t.Errorf("purge left the binary: %v", err)
	}
}
