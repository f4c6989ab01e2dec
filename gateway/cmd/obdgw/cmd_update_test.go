package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/obdgw/obdgw/gateway/update"
	"github.com/obdgw/obdgw/hack/testenv"
)

var (
	versionBinsMu sync.Mutex
	versionBins   = map[string]string{}
)

// obdgwVersion builds the real binary stamped with version v (once per test run).
func obdgwVersion(t *testing.T, v string) string {
	t.Helper()
	testenv.SkipShort(t, testenv.TierBinary)
	versionBinsMu.Lock()
	defer versionBinsMu.Unlock()
	if p, ok := versionBins[v]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "obdgw-"+v+"-")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "obdgw")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", p,
		"-ldflags", "-X github.com/obdgw/obdgw/firmware/version.Version="+v, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build obdgw %s: %v\n%s", v, err, out)
	}
	versionBins[v] = p
	return p
}

// updateRig is one gateway box and its update repository: the packaged binary (the
// launcher), a configuration with an update section, a repository made by `obdgw release`
// and served over TLS on loopback.
type updateRig struct {
	t        *testing.T
	packaged string // what /usr/bin/obdgw would be
	repo     string
	keys     string
	config   string
	state    string
	health   string // the daemon's /healthz
}

func newUpdateRig(t *testing.T, packaged string) *updateRig {
	return newUpdateRigTimeout(t, packaged, "1m")
}

// newUpdateRigTimeout sets update.health_timeout.
func newUpdateRigTimeout(t *testing.T, packaged, healthTimeout string) *updateRig {
	dir := t.TempDir()
	r := &updateRig{t: t, packaged: packaged, repo: filepath.Join(dir, "repo"), keys: filepath.Join(dir, "keys"), state: filepath.Join(dir, "state")}
	r.mustRun("release", "--repo", r.repo, "--keys", r.keys, "--init")
	srv := httptest.NewTLSServer(http.FileServer(http.Dir(r.repo)))
	t.Cleanup(srv.Close)
	conf := filepath.Join(dir, "etc")
	os.MkdirAll(conf, 0o755)
	write := func(name string, data []byte, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(conf, name), data, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("dms.token", []byte(testToken+"\n"), 0o600)
	write("repo-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	root, err := os.ReadFile(filepath.Join(r.repo, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	write("update-root.json", root, 0o644) // what the deployer puts on the box
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	r.health = "http://" + listen + "/healthz"
	// The broker refuses connections before and after every update: a trial is not blamed
	// for it.
	write("obdgw.yaml", fmt.Appendf(nil, `state_dir: %s
gateway_id: gw-update-test
company: {code: "330106000099901", name: 测试修理厂, province: "33"}
bays:
  - {name: bay1, obd: "serial:///dev/obdgw-test-no-such-adapter"}
broker: {url: "mqtts://127.0.0.1:1"}
api:
  listen: %q
  tokens: [{name: dms, file: dms.token}]
update:
  repository: %q
  root_file: update-root.json
  ca_file: repo-ca.pem
  check_every: 1m
  health_timeout: %s
`, r.state, listen, srv.URL, healthTimeout), 0o640)
	r.config = filepath.Join(conf, "obdgw.yaml")
	return r
}

func (r *updateRig) mustRun(args ...string) string {
	r.t.Helper()
	out, err := exec.Command(r.packaged, args...).CombinedOutput()
	if err != nil {
		r.t.Fatalf("obdgw %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// publish releases a binary as this machine's target at version v.
func (r *updateRig) publish(bin, v string) {
	r.t.Helper()
	data, err := os.ReadFile(bin)
	if err != nil {
		r.t.Fatal(err)
	}
	stage := filepath.Join(r.t.TempDir(), update.TargetName())
	if err := os.WriteFile(stage, data, 0o755); err != nil {
		r.t.Fatal(err)
	}
	r.mustRun("release", "--repo", r.repo, "--keys", r.keys, "--version", v, "--rollout", "100", stage)
}

// gateway is one start of `obdgw run` as systemd makes it: the packaged binary.
type gateway struct {
	cmd  *exec.Cmd
	log  runLog
	done chan struct{}
	code int
}

func (r *updateRig) start() *gateway {
	g := &gateway{done: make(chan struct{})}
	g.cmd = exec.Command(r.packaged, "run", "--config", r.config)
	g.cmd.Stderr = &g.log
	if err := g.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { g.cmd.Process.Kill(); <-g.done })
	go func() {
		err := g.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			g.code = ee.ExitCode()
		} else if err != nil {
			g.code = -1
		}
		close(g.done)
	}()
	return g
}

func (g *gateway) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-g.done:
		return g.code
	case <-time.After(2 * time.Minute):
		t.Fatalf("the gateway did not exit:\n%s", g.log.String())
		return 0
	}
}

// healthz is the daemon's /healthz answer, or nil while it does not answer.
func (r *updateRig) healthz() map[string]any {
	resp, err := http.Get(r.health)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	if json.NewDecoder(resp.Body).Decode(&m) != nil {
		return nil
	}
	return m
}

// serving waits until g answers /healthz as version v with the state saying cond, or ends.
func (r *updateRig) serving(g *gateway, v string, cond func(update.State) bool) (map[string]any, bool) {
	r.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-g.done:
			return nil, false
		default:
		}
		if h := r.healthz(); h != nil && h["version"] == v {
			if cond == nil {
				return h, true
			}
			if st, err := update.ReadState(update.Dir(r.state)); err == nil && cond(st) {
				return h, true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatalf("the gateway never served %s:\n%s", v, g.log.String())
	return nil, false
}

func (r *updateRig) readState() update.State {
	r.t.Helper()
	st, err := update.ReadState(update.Dir(r.state))
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

// TestUpdateEndToEnd: the real v1.0.0 binary, run as the package installs it, updates itself
// to the real v2.0.0 from a repository made by `obdgw release`, keeps it once healthy; a
// v3.0.0 that cannot start is rolled back to v2.0.0 after MaxStarts starts, marked bad,
// reported on /healthz and never installed again.
func TestUpdateEndToEnd(t *testing.T) {
	v1 := obdgwVersion(t, "v1.0.0")
	v2 := obdgwVersion(t, "v2.0.0")
	r := newUpdateRig(t, v1)
	r.publish(v2, "v2.0.0")

	// v1 finds v2, installs it and exits for systemd to restart it.
	g := r.start()
	if code := g.wait(t); code != exitRestart {
		t.Fatalf("v1 exited %d, want %d (restart into the update):\n%s", code, exitRestart, g.log.String())
	}
	st := r.readState()
	if st.Trial == nil || st.Trial.Version != "v2.0.0" || !strings.Contains(st.Trial.UplinkBefore, "refused") {
		t.Fatalf("after install: trial %+v, want v2.0.0 with the uplink's error before", st.Trial)
	}
	if fi, err := os.Stat(update.BinaryPath(update.Dir(r.state), "v2.0.0")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("installed binary: %v %v", fi, err)
	}

	// The packaged v1 starts v2 on trial; v2 is ready and its broker refuses as before: kept.
	g = r.start()
	if _, ok := r.serving(g, "v2.0.0", func(s update.State) bool { return s.Current == "v2.0.0" && s.Trial == nil }); !ok {
		t.Fatalf("v2 ended (exit %d) instead of serving:\n%s", g.code, g.log.String())
	}

	// v3 cannot even start. apply installs it; the running v2 restarts into it.
	v3 := filepath.Join(t.TempDir(), "v3")
	os.WriteFile(v3, []byte("#!/bin/sh\necho 'v3: cannot start' >&2\nexit 1\n"), 0o755)
	r.publish(v3, "v3.0.0")
	out := r.mustRun("update", "check", "--config", r.config)
	if !strings.Contains(out, "v3.0.0") || !strings.Contains(out, "this gateway runs v2.0.0") || !strings.Contains(out, "in the rollout: v3.0.0 is available") {
		t.Fatalf("update check:\n%s", out)
	}
	out = r.mustRun("update", "apply", "--config", r.config)
	if !strings.Contains(out, "installed v3.0.0; the running gateway restarts into it on trial") {
		t.Fatalf("update apply:\n%s", out)
	}
	if code := g.wait(t); code != exitRestart {
		t.Fatalf("v2 exited %d, want %d:\n%s", code, exitRestart, g.log.String())
	}

	// systemd restarts the crashing v3 until the launcher gives up on it.
	crashes := 0
	for {
		g = r.start()
		h, ok := r.serving(g, "v2.0.0", func(s update.State) bool { return s.Current == "v2.0.0" && s.Trial == nil })
		if ok {
			u, _ := h["update"].(map[string]any)
			if bad, _ := u["bad"].([]any); len(bad) != 1 || bad[0] != "v3.0.0" {
				t.Fatalf("/healthz does not report v3.0.0 as bad: %v", h)
			}
			break
		}
		if g.code != 1 || !strings.Contains(g.log.String(), "v3: cannot start") {
			t.Fatalf("start %d ended with %d:\n%s", crashes+1, g.code, g.log.String())
		}
		if crashes++; crashes > update.MaxStarts {
			t.Fatalf("v3 started %d times", crashes)
		}
	}
	if crashes != update.MaxStarts {
		t.Errorf("v3 crashed %d times before the rollback, want %d", crashes, update.MaxStarts)
	}
	st = r.readState()
	if !st.IsBad("v3.0.0") || !strings.Contains(st.Failures["v3.0.0"], "did not become healthy in 3 starts") {
		t.Fatalf("state after rollback: %+v", st)
	}

	// Never tried again: apply refuses it, and status says why.
	out = r.mustRun("update", "apply", "--config", r.config)
	if !strings.Contains(out, "v3.0.0 was rolled back on this gateway before: it is never installed again") {
		t.Fatalf("apply of a bad version:\n%s", out)
	}
	if st := r.readState(); st.Trial != nil {
		t.Fatalf("a bad version was put on trial again: %+v", st.Trial)
	}
	out = r.mustRun("update", "status", "--config", r.config)
	for _, want := range []string{"current:    v2.0.0", "bad:        v3.0.0", "v3.0.0: did not become healthy in 3 starts", "last check: 20"} {
		if !strings.Contains(out, want) {
			t.Errorf("update status lacks %q:\n%s", want, out)
		}
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	if code := g.wait(t); code != 0 {
		t.Errorf("v2 stopped with %d:\n%s", code, g.log.String())
	}
}

// A corrupt state file is no reason not to run: the packaged binary runs, with a warning.
func TestCorruptUpdateStateRunsThePackagedBinary(t *testing.T) {
	v1 := obdgwVersion(t, "v1.0.0")
	r := newUpdateRig(t, v1)
	os.MkdirAll(update.Dir(r.state), 0o700)
	os.WriteFile(filepath.Join(update.Dir(r.state), "state.json"), []byte(`{"current": "v9.0.0", `), 0o600)
	g := r.start()
	if _, ok := r.serving(g, "v1.0.0", nil); !ok {
		t.Fatalf("exit %d:\n%s", g.code, g.log.String())
	}
	if !strings.Contains(g.log.String(), "update state unusable, running the packaged binary") || !strings.Contains(g.log.String(), "corrupt update state set aside") {
		t.Errorf("no warning in the log:\n%s", g.log.String())
	}
	if st := r.readState(); st.Current != "" {
		t.Errorf("state after setting the corrupt one aside: %+v", st)
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	g.wait(t)
}

func TestReleaseAndUpdateUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"release", "--repo", "r"}, "--repo and --keys are required"},
		{[]string{"release", "--repo", "r", "--keys", "k"}, "nothing to do"},
		{[]string{"release", "--repo", "r", "--keys", "k", "x"}, "binaries given without --version"},
		{[]string{"release", "--repo", "r", "--keys", "r/keys", "--init"}, "inside the served repository"},
		{[]string{"update"}, "want a subcommand"},
		{[]string{"update", "frobnicate", "--config", "/nonexistent"}, "config"},
	} {
		var out, errb bytes.Buffer
		if code := runMain(c.args, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), exitUsage, c.want)
		}
	}
	path := writeConfig(t, "127.0.0.1:0")
	var out, errb bytes.Buffer
	if code := runMain([]string{"update", "status", "--config", path}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "has no update section") {
		t.Errorf("no update section: exit %d, %s", code, errb.String())
	}
}

// A version on trial that refuses the configuration the packaged binary accepted exits for a
// restart (counted towards its rollback), not with 2, after which systemd would give up.
func TestConfigErrorOnTrialAsksForARestart(t *testing.T) {
	path := writeConfig(t, "127.0.0.1:0")
	os.WriteFile(path, []byte("gateway_id: [\n"), 0o640)
	var out, errb bytes.Buffer
	if code := runMain([]string{"run", "--config", path}, &out, &errb); code != exitUsage {
		t.Fatalf("packaged binary: exit %d, want %d", code, exitUsage)
	}
	t.Setenv(update.EnvLaunched, "dev")
	t.Setenv(update.EnvTrial, "1")
	if code := runMain([]string{"run", "--config", path}, &out, &errb); code != exitRestart {
		t.Fatalf("version on trial: exit %d, want %d", code, exitRestart)
	}
	t.Setenv(update.EnvTrial, "")
	if code := runMain([]string{"run", "--config", path}, &out, &errb); code != exitUsage {
		t.Fatalf("current version: exit %d, want %d", code, exitUsage)
	}
}

func TestUpdateRefusesAStateDirOfAnotherUser(t *testing.T) {
	dir := t.TempDir()
	if err := sameOwner(dir); err != nil {
		t.Fatalf("own directory: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another user")
	}
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := sameOwner(dir); err == nil || !strings.Contains(err.Error(), "run this as that user") {
		t.Fatalf("directory of another user: %v", err)
	}
}

// A version that starts but never becomes healthy within health_timeout marks itself bad and
// exits for a restart; the packaged binary runs again. Installed by hand while the gateway was
// stopped, the trial must see the uplink connected, and the broker refuses.
func TestUpdateNeverHealthyIsRolledBack(t *testing.T) {
	v1 := obdgwVersion(t, "v1.0.0")
	v2 := obdgwVersion(t, "v2.0.0")
	r := newUpdateRigTimeout(t, v1, "2s")
	r.publish(v2, "v2.0.0")
	out := r.mustRun("update", "apply", "--config", r.config)
	if !strings.Contains(out, "installed v2.0.0; the gateway starts it on trial at its next start") {
		t.Fatalf("update apply:\n%s", out)
	}
	g := r.start()
	if code := g.wait(t); code != exitRestart {
		t.Fatalf("v2 on trial exited %d, want %d:\n%s", code, exitRestart, g.log.String())
	}
	if !strings.Contains(g.log.String(), "not healthy within 2s") {
		t.Errorf("the log does not say why:\n%s", g.log.String())
	}
	st := r.readState()
	if !st.IsBad("v2.0.0") || st.Trial != nil || st.Current != "" || !strings.Contains(st.Failures["v2.0.0"], "connection refused") {
		t.Fatalf("state after the timeout: %+v", st)
	}
	g = r.start()
	if _, ok := r.serving(g, "v1.0.0", nil); !ok {
		t.Fatalf("the packaged v1 did not serve (exit %d):\n%s", g.code, g.log.String())
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	g.wait(t)
}

// A gateway outside a release's rollout is told so, and apply installs nothing.
func TestUpdateOutsideTheRollout(t *testing.T) {
	r := newUpdateRig(t, obdgwVersion(t, "v1.0.0"))
	percent := 0
	for p := 1; p < 100; p++ {
		if !update.InRollout("gw-update-test", "v2.0.0", p) {
			percent = p
		}
	}
	if percent == 0 {
		t.Fatal("gw-update-test is in every rollout of v2.0.0")
	}
	bin := filepath.Join(t.TempDir(), update.TargetName())
	os.WriteFile(bin, []byte("#!/bin/sh\nexit 1\n"), 0o755)
	r.mustRun("release", "--repo", r.repo, "--keys", r.keys, "--version", "v2.0.0", "--rollout", fmt.Sprint(percent), bin)
	out := r.mustRun("update", "check", "--config", r.config)
	if !strings.Contains(out, fmt.Sprintf("(rollout %d %%)", percent)) || !strings.Contains(out, "gateway gw-update-test is not in the rollout of v2.0.0 yet") {
		t.Fatalf("update check:\n%s", out)
	}
	out = r.mustRun("update", "apply", "--json", "--config", r.config)
	var res struct {
		Installed bool             `json:"installed"`
		Available update.Available `json:"available"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Installed || res.Available.InRollout {
		t.Fatalf("apply outside the rollout: %s (%v)", out, err)
	}
	if st := r.readState(); st.Trial != nil {
		t.Fatalf("trial %+v", st.Trial)
	}
}
