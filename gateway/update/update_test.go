package update

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// repo is a repository made by Publisher, served over TLS on loopback.
type repo struct {
	pub    *Publisher
	url    string
	caFile string
}

func newRepo(t *testing.T) *repo {
	t.Helper()
	dir := t.TempDir()
	p := &Publisher{Repo: filepath.Join(dir, "repo"), Keys: filepath.Join(dir, "keys")}
	if err := p.Init(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.FileServer(http.Dir(p.Repo)))
	t.Cleanup(srv.Close)
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &repo{pub: p, url: srv.URL, caFile: ca}
}

// publish writes a stand-in binary for target under version and publishes it.
func (r *repo) publish(t *testing.T, version string, rollout int) []byte {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "obdgw-linux-arm64")
	data := []byte("#!/bin/sh\necho obdgw " + version + "\n")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.pub.Publish(Release{Version: version, Rollout: rollout, Binaries: []string{bin}}); err != nil {
		t.Fatal(err)
	}
	return data
}

func (r *repo) client(t *testing.T, gateway, running string) *Client {
	t.Helper()
	return &Client{
		Dir:        filepath.Join(t.TempDir(), DirName),
		Repository: r.url,
		RootFile:   filepath.Join(r.pub.Repo, "root.json"),
		CAFile:     r.caFile,
		Gateway:    gateway,
		Running:    running,
		Target:     "obdgw-linux-arm64",
	}
}

func TestInstallVerifiedTarget(t *testing.T) {
	r := newRepo(t)
	want := r.publish(t, "v1.1.0", 100)
	c := r.client(t, "gw1", "v1.0.0")
	a, installed, err := c.Install(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !installed || a.Version != "v1.1.0" || !a.InRollout || !a.Newer {
		t.Fatalf("install = %+v, installed %v; want v1.1.0 installed", a, installed)
	}
	got, err := os.ReadFile(BinaryPath(c.Dir, "v1.1.0"))
	if err != nil || string(got) != string(want) {
		t.Fatalf("installed binary %q (%v), want %q", got, err, want)
	}
	if st, _ := os.Stat(BinaryPath(c.Dir, "v1.1.0")); st.Mode().Perm() != 0o755 {
		t.Errorf("binary mode %04o, want 0755", st.Mode().Perm())
	}
	st, err := ReadState(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Trial == nil || st.Trial.Version != "v1.1.0" || st.Trial.Starts != 0 {
		t.Errorf("trial = %+v, want v1.1.0 not yet started", st.Trial)
	}
	if err := checkBinary(c.Dir, &st, "v1.1.0"); err != nil {
		t.Error(err)
	}
	// The same version again: nothing to do.
	if _, again, err := c.Install(context.Background(), ""); err != nil || again {
		t.Errorf("second install: installed %v, err %v; want nothing", again, err)
	}
}

func TestTamperedTargetRefused(t *testing.T) {
	r := newRepo(t)
	r.publish(t, "v1.1.0", 100)
	files, _ := filepath.Glob(filepath.Join(r.pub.Repo, "targets", "*.obdgw-linux-arm64"))
	if len(files) != 1 {
		t.Fatalf("targets: %v", files)
	}
	if err := os.WriteFile(files[0], []byte("#!/bin/sh\necho evil\n\n\n\n\n\n\n\n\n\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := r.client(t, "gw1", "v1.0.0")
	_, installed, err := c.Install(context.Background(), "")
	if err == nil || installed {
		t.Fatalf("tampered target: installed %v, err %v; want refused", installed, err)
	}
	if !strings.Contains(err.Error(), "download of obdgw-linux-arm64 v1.1.0 refused") {
		t.Errorf("error %q does not say the download was refused", err)
	}
	if _, err := os.Stat(BinaryPath(c.Dir, "v1.1.0")); err == nil {
		t.Error("a tampered binary was installed")
	}
	if st, _ := ReadState(c.Dir); st.Trial != nil || st.LastError == "" {
		t.Errorf("state after refusal: trial %+v, last error %q", st.Trial, st.LastError)
	}
}

func TestSameLengthTamperRefused(t *testing.T) {
	r := newRepo(t)
	data := r.publish(t, "v1.1.0", 100)
	files, _ := filepath.Glob(filepath.Join(r.pub.Repo, "targets", "*.obdgw-linux-arm64"))
	bad := append([]byte(nil), data...)
	bad[len(bad)-2] ^= 1
	if err := os.WriteFile(files[0], bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.client(t, "gw1", "v1.0.0").Install(context.Background(), "")
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "hash") {
		t.Fatalf("same-length tamper: err %v, want a hash mismatch", err)
	}
}

func TestExpiredMetadataRefused(t *testing.T) {
	for _, role := range []string{"timestamp", "snapshot"} {
		t.Run(role, func(t *testing.T) {
			r := newRepo(t)
			r.pub.Now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
			if role == "timestamp" {
				r.pub.Expiry.Timestamp = time.Hour
			} else {
				r.pub.Expiry.Snapshot = time.Hour
			}
			r.publish(t, "v1.1.0", 100)
			_, err := r.client(t, "gw1", "v1.0.0").Check(context.Background())
			if err == nil || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), role) {
				t.Fatalf("expired %s: err %v, want refused as expired", role, err)
			}
		})
	}
}

func TestRolledBackMetadataRefused(t *testing.T) {
	r := newRepo(t)
	r.publish(t, "v1.1.0", 100)
	old, err := os.ReadFile(filepath.Join(r.pub.Repo, "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	r.publish(t, "v1.2.0", 100)
	c := r.client(t, "gw1", "v1.0.0")
	if a, err := c.Check(context.Background()); err != nil || a.Version != "v1.2.0" {
		t.Fatalf("check = %+v, %v; want v1.2.0", a, err)
	}
	// The server (or someone in between) serves the older timestamp again.
	if err := os.WriteFile(filepath.Join(r.pub.Repo, "timestamp.json"), old, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = c.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "timestamp") || !strings.Contains(err.Error(), "version") {
		t.Fatalf("rolled-back timestamp: err %v, want refused naming the version", err)
	}
	if testing.Verbose() {
		t.Log(err)
	}
	if st, _ := ReadState(c.Dir); !strings.Contains(st.LastError, "timestamp") {
		t.Errorf("last error %q not recorded", st.LastError)
	}
}

func TestWrongRootRefused(t *testing.T) {
	r := newRepo(t)
	r.publish(t, "v1.1.0", 100)
	other := newRepo(t)
	c := r.client(t, "gw1", "v1.0.0")
	c.RootFile = filepath.Join(other.pub.Repo, "root.json")
	if _, err := c.Check(context.Background()); err == nil {
		t.Fatal("metadata signed by other keys was accepted")
	}
}

// gatewayIn finds a gateway id inside (or outside) the rollout of version at percent.
func gatewayIn(t *testing.T, version string, percent int, in bool) string {
	for i := range 1000 {
		g := fmt.Sprintf("gw-%d", i)
		if InRollout(g, version, percent) == in {
			return g
		}
	}
	t.Fatal("no gateway id found")
	return ""
}

func TestRolloutExcludesGatewayOutside(t *testing.T) {
	r := newRepo(t)
	r.publish(t, "v1.1.0", 20)
	out := gatewayIn(t, "v1.1.0", 20, false)
	c := r.client(t, out, "v1.0.0")
	a, installed, err := c.Install(context.Background(), "")
	if err != nil || installed || a.InRollout || a.Wanted() {
		t.Fatalf("gateway outside the rollout: %+v installed %v err %v", a, installed, err)
	}
	in := gatewayIn(t, "v1.1.0", 20, true)
	if _, installed, err := r.client(t, in, "v1.0.0").Install(context.Background(), ""); err != nil || !installed {
		t.Fatalf("gateway inside the rollout: installed %v err %v", installed, err)
	}
}

func TestInRollout(t *testing.T) {
	n := 0
	for i := range 10000 {
		g := fmt.Sprintf("gw-%d", i)
		a := InRollout(g, "v1.2.3", 20)
		if a != InRollout(g, "v1.2.3", 20) {
			t.Fatal("not stable")
		}
		if a && !InRollout(g, "v1.2.3", 50) {
			t.Fatalf("%s in at 20 %% but out at 50 %%", g)
		}
		if a {
			n++
		}
	}
	if n < 1700 || n > 2300 {
		t.Errorf("%d of 10000 gateways in a 20 %% rollout", n)
	}
	if InRollout("gw", "v1", 0) || !InRollout("gw", "v1", 100) {
		t.Error("0 % and 100 % are not none and all")
	}
}

func TestNewer(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"v1.2.3", "v1.2.2", true}, {"v1.2.3", "v1.2.3", false}, {"v1.10.0", "v1.9.9", true},
		{"v2.0.0", "v10.0.0", false}, {"v1.0.0", "dev", true}, {"dev", "v1.0.0", false},
		{"v1.0.0", "v1.0.0-rc.1", true}, {"v1.0.0-rc.1", "v1.0.0", false},
	} {
		if got := Newer(c.a, c.b); got != c.want {
			t.Errorf("Newer(%s, %s) = %v", c.a, c.b, got)
		}
	}
	for _, v := range []string{"", "1.2.3", "v1.2", "v1.2.3/../x", "v01.2.3"} {
		if ValidVersion(v) {
			t.Errorf("%q accepted as a version", v)
		}
	}
}

func TestPublishRefusesBadInput(t *testing.T) {
	r := newRepo(t)
	bin := filepath.Join(t.TempDir(), "obdgw")
	os.WriteFile(bin, []byte("x"), 0o755)
	for _, c := range []struct {
		rel  Release
		want string
	}{
		{Release{Version: "1.2", Rollout: 10, Binaries: []string{bin}}, "version"},
		{Release{Version: "v1.2.0", Rollout: 0, Binaries: []string{bin}}, "rollout"},
		{Release{Version: "v1.2.0", Rollout: 10, Binaries: []string{bin}}, "name the binary after its target"},
		{Release{Version: "v1.2.0", Rollout: 10}, "no binaries"},
	} {
		if err := r.pub.Publish(c.rel); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", c.rel, err, c.want)
		}
	}
	if err := r.pub.Init(); err == nil {
		t.Error("Init over an existing repository succeeded")
	}
	os.Chmod(filepath.Join(r.pub.Keys, "targets.key"), 0o644)
	if err := r.pub.Publish(Release{Version: "v1.2.0", Rollout: 10, Binaries: []string{r.binary(t)}}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("key readable by others: err %v", err)
	}
}

func (r *repo) binary(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "obdgw-linux-amd64")
	os.WriteFile(p, []byte("x"), 0o755)
	return p
}

// install puts a stand-in binary of v into dir as Install would.
func install(t *testing.T, dir, v string, corrupt bool) {
	t.Helper()
	os.MkdirAll(filepath.Join(dir, "bin"), 0o700)
	if err := os.WriteFile(BinaryPath(dir, v), []byte("binary "+v), 0o755); err != nil {
		t.Fatal(err)
	}
	sum, _ := fileSHA256(BinaryPath(dir, v))
	if corrupt {
		os.WriteFile(BinaryPath(dir, v), []byte("binary "+v+" cut"), 0o755)
	}
	if err := Modify(dir, func(s *State) error {
		if s.SHA256 == nil {
			s.SHA256 = map[string]string{}
		}
		s.SHA256[v] = sum
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestPrepare(t *testing.T) {
	now := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	t.Run("no state runs the packaged binary", func(t *testing.T) {
		l, err := Prepare(t.TempDir(), "v1.0.0", now)
		if err != nil || l.Exec != "" || l.Version != "v1.0.0" {
			t.Fatalf("%+v %v", l, err)
		}
	})
	t.Run("corrupt state runs the packaged binary", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "state.json"), []byte("{\"current\": "), 0o600)
		l, err := Prepare(dir, "v1.0.0", now)
		if err == nil || !strings.Contains(err.Error(), "corrupt") || l.Exec != "" || l.Version != "v1.0.0" {
			t.Fatalf("%+v %v", l, err)
		}
	})
	t.Run("newer current is executed", func(t *testing.T) {
		dir := t.TempDir()
		install(t, dir, "v1.1.0", false)
		Modify(dir, func(s *State) error { s.Current = "v1.1.0"; return nil })
		l, err := Prepare(dir, "v1.0.0", now)
		if err != nil || l.Exec != BinaryPath(dir, "v1.1.0") || l.Trial {
			t.Fatalf("%+v %v", l, err)
		}
		// A package newer than the installed current wins.
		if l, err := Prepare(dir, "v1.2.0", now); err != nil || l.Exec != "" {
			t.Fatalf("newer package: %+v %v", l, err)
		}
	})
	t.Run("corrupt binary runs the packaged binary", func(t *testing.T) {
		dir := t.TempDir()
		install(t, dir, "v1.1.0", true)
		Modify(dir, func(s *State) error { s.Current = "v1.1.0"; return nil })
		l, err := Prepare(dir, "v1.0.0", now)
		if err == nil || !strings.Contains(err.Error(), "corrupt") || l.Exec != "" {
			t.Fatalf("%+v %v", l, err)
		}
	})
	t.Run("crash loop rolls back", func(t *testing.T) {
		dir := t.TempDir()
		install(t, dir, "v1.1.0", false)
		install(t, dir, "v1.2.0", false)
		Modify(dir, func(s *State) error {
			s.Current, s.Trial = "v1.1.0", &Trial{Version: "v1.2.0"}
			return nil
		})
		for i := 1; i <= MaxStarts; i++ {
			l, err := Prepare(dir, "v1.0.0", now)
			if err != nil || !l.Trial || l.Exec != BinaryPath(dir, "v1.2.0") {
				t.Fatalf("start %d: %+v %v", i, l, err)
			}
		}
		l, err := Prepare(dir, "v1.0.0", now)
		if err != nil || l.Trial || l.RolledBack != "v1.2.0" || l.Exec != BinaryPath(dir, "v1.1.0") {
			t.Fatalf("after %d starts: %+v %v", MaxStarts, l, err)
		}
		st, _ := ReadState(dir)
		if !st.IsBad("v1.2.0") || st.Trial != nil || st.Current != "v1.1.0" || !strings.Contains(st.Failures["v1.2.0"], "3 starts") {
			t.Fatalf("state %+v", st)
		}
		if _, err := os.Stat(BinaryPath(dir, "v1.2.0")); err == nil {
			t.Error("the binary of the bad version was kept")
		}
	})
	t.Run("corrupt trial binary is rolled back", func(t *testing.T) {
		dir := t.TempDir()
		install(t, dir, "v1.2.0", true)
		Modify(dir, func(s *State) error { s.Trial = &Trial{Version: "v1.2.0"}; return nil })
		l, err := Prepare(dir, "v1.0.0", now)
		if err != nil || l.Exec != "" || l.RolledBack != "v1.2.0" {
			t.Fatalf("%+v %v", l, err)
		}
	})
}

func TestWatchTrial(t *testing.T) {
	healthy := func() Probe { return Probe{Ready: true, Connected: true} }
	refused := func() Probe {
		return Probe{Ready: true, UplinkErr: "dial tcp 127.0.0.1:1: connect: connection refused"}
	}
	setup := func(t *testing.T, before string) string {
		dir := t.TempDir()
		Modify(dir, func(s *State) error {
			s.Current, s.Trial = "v1.1.0", &Trial{Version: "v1.2.0", Starts: 1, UplinkBefore: before}
			return nil
		})
		return dir
	}
	t.Run("healthy becomes current", func(t *testing.T) {
		dir := setup(t, "")
		for _, v := range []string{"v1.0.0", "v1.1.0", "v1.2.0"} {
			install(t, dir, v, false)
		}
		if err := WatchTrial(context.Background(), dir, "v1.2.0", time.Hour, time.Millisecond, healthy); err != nil {
			t.Fatal(err)
		}
		st, _ := ReadState(dir)
		if st.Current != "v1.2.0" || st.Previous != "v1.1.0" || st.Trial != nil {
			t.Fatalf("state %+v", st)
		}
		// Only the current and previous binaries stay.
		if _, err := os.Stat(BinaryPath(dir, "v1.0.0")); err == nil || st.SHA256["v1.0.0"] != "" {
			t.Error("the binary of v1.0.0 was kept")
		}
		for _, v := range []string{"v1.1.0", "v1.2.0"} {
			if err := checkBinary(dir, &st, v); err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("same outage as before is not blamed", func(t *testing.T) {
		dir := setup(t, "connect: connection refused")
		if err := WatchTrial(context.Background(), dir, "v1.2.0", time.Hour, time.Millisecond, refused); err != nil {
			t.Fatal(err)
		}
		if st, _ := ReadState(dir); st.Current != "v1.2.0" {
			t.Fatalf("state %+v", st)
		}
	})
	t.Run("never healthy is rolled back", func(t *testing.T) {
		dir := setup(t, "")
		err := WatchTrial(context.Background(), dir, "v1.2.0", 20*time.Millisecond, time.Millisecond, refused)
		if !errors.Is(err, ErrTrialFailed) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err %v", err)
		}
		st, _ := ReadState(dir)
		if !st.IsBad("v1.2.0") || st.Current != "v1.1.0" || st.Trial != nil {
			t.Fatalf("state %+v", st)
		}
		r, _ := Status(dir, "v1.1.0")
		if len(r.Bad) != 1 || !strings.Contains(r.Failure, "v1.2.0: not healthy") {
			t.Errorf("report %+v", r)
		}
	})
	t.Run("not on trial", func(t *testing.T) {
		dir := setup(t, "")
		if err := WatchTrial(context.Background(), dir, "v1.1.0", time.Millisecond, time.Millisecond, refused); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBadVersionNeverInstalledAgain(t *testing.T) {
	r := newRepo(t)
	r.publish(t, "v1.1.0", 100)
	c := r.client(t, "gw1", "v1.0.0")
	Modify(c.Dir, func(s *State) error { s.markBad("v1.1.0", "test"); return nil })
	a, installed, err := c.Install(context.Background(), "")
	if err != nil || installed || !a.Bad {
		t.Fatalf("%+v installed %v err %v", a, installed, err)
	}
}

// The custom metadata of a target comes from the repository: checked strictly.
func FuzzParseCustom(f *testing.F) {
	f.Add([]byte(`{"version": "v1.2.3", "rollout_percent": 20}`))
	f.Add([]byte(`{"version": "v1.2.3-rc.1", "rollout_percent": 100, "x": 1}`))
	f.Add([]byte(`{"version": "../../bin/sh", "rollout_percent": 20}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		raw := json.RawMessage(b)
		c, err := parseCustom("obdgw-linux-arm64", &raw)
		if err != nil {
			return
		}
		if !ValidVersion(c.Version) || strings.ContainsAny(c.Version, "/\\x00") || c.RolloutPercent < 0 || c.RolloutPercent > 100 {
			t.Fatalf("accepted %+v", c)
		}
	})
}

// The state file may be cut by a power failure or edited by hand: read or refused, never a
// version that is not one (it becomes part of a path that is executed).
func FuzzReadState(f *testing.F) {
	f.Add([]byte(`{"current":"v1.1.0","previous":"v1.0.0","trial":{"version":"v1.2.0","starts":1},"bad":["v1.3.0"]}`))
	f.Add([]byte(`{"current":"../x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "state.json"), b, 0o600)
		s, err := ReadState(dir)
		if err != nil {
			if !errors.Is(err, ErrCorruptState) {
				t.Fatalf("error without ErrCorruptState: %v", err)
			}
			return
		}
		for _, v := range []string{s.Current, s.Previous} {
			if v != "" && !ValidVersion(v) {
				t.Fatalf("accepted version %q", v)
			}
		}
		if s.Trial != nil && !ValidVersion(s.Trial.Version) {
			t.Fatalf("accepted trial %q", s.Trial.Version)
		}
	})
}

func TestTargetNameOfThisBuild(t *testing.T) {
	if n := TargetName(); !ValidTargetName(n) {
		t.Fatalf("this build's target %q is not a name the repository takes", n)
	}
}

func TestInitKeysPrivateAndRefreshResigns(t *testing.T) {
	r := newRepo(t)
	for _, role := range roles {
		fi, err := os.Stat(filepath.Join(r.pub.Keys, role+".key"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s key: %v %v, want mode 0600", role, fi, err)
		}
	}
	// A timestamp about to expire is re-signed by Refresh and accepted again.
	r.pub.Now = func() time.Time { return time.Now().Add(-48 * time.Hour) }
	r.pub.Expiry.Timestamp = time.Hour
	r.publish(t, "v1.1.0", 100)
	c := r.client(t, "gw1", "v1.0.0")
	if _, err := c.Check(context.Background()); err == nil {
		t.Fatal("expired timestamp accepted")
	}
	r.pub.Now = nil
	if err := r.pub.Refresh(); err != nil {
		t.Fatal(err)
	}
	if a, err := c.Check(context.Background()); err != nil || a.Version != "v1.1.0" {
		t.Fatalf("after refresh: %+v %v", a, err)
	}
}

// A root close to its expiry is renewed by Refresh, and a box that trusts the old root follows.
func TestRefreshRenewsAnExpiringRoot(t *testing.T) {
	dir := t.TempDir()
	p := &Publisher{Repo: filepath.Join(dir, "repo"), Keys: filepath.Join(dir, "keys"),
		Now: func() time.Time { return time.Now().Add(-DefaultExpiry.Root + 10*24*time.Hour) }}
	if err := p.Init(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.FileServer(http.Dir(p.Repo)))
	defer srv.Close()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	anchor := filepath.Join(dir, "root-v1.json")
	b, _ := os.ReadFile(filepath.Join(p.Repo, "root.json"))
	os.WriteFile(anchor, b, 0o644)
	p.Now = nil
	r := &repo{pub: p, url: srv.URL, caFile: ca}
	r.publish(t, "v1.1.0", 100)
	if err := p.Refresh(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p.Repo, "2.root.json")); err != nil {
		t.Fatalf("no new root version: %v", err)
	}
	c := r.client(t, "gw1", "v1.0.0")
	c.RootFile = anchor
	c.Now = func() time.Time { return time.Now().Add(30 * 24 * time.Hour) } // past the old root's expiry
	r.pub.Expiry = Expiry{Timestamp: 60 * 24 * time.Hour, Snapshot: 60 * 24 * time.Hour}
	if err := p.Refresh(); err != nil {
		t.Fatal(err)
	}
	if a, err := c.Check(context.Background()); err != nil || a.Version != "v1.1.0" {
		t.Fatalf("a box with the old root: %+v %v", a, err)
	}
}
