package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/daemon"
)

const testToken = "run-test-token-0123456789"

// writeConfig writes a daemon configuration with its token file into a fresh directory.
func writeConfig(t *testing.T, listen string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dms.token"), []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`state_dir: %s
gateway_id: gw-run-test
company: {code: "330106000099901", name: 测试修理厂, province: "33"}
bays:
  - {name: bay1, obd: "serial:///dev/obdgw-test-no-such-adapter"}
broker: {url: "mqtts://127.0.0.1:1"}
api:
  listen: %q
  tokens: [{name: dms, file: dms.token, role: manager}]
`, filepath.Join(dir, "state"), listen)
	path := filepath.Join(dir, "obdgw.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o640); err != nil {
		t.Fatal(err)
	}
	return path
}

// notifySocket listens on a unixgram socket and sets NOTIFY_SOCKET to it.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

// expectNotify reads datagrams until one equals or starts with want.
func expectNotify(t *testing.T, conn *net.UnixConn, want string) {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []string
	for {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %q on the notify socket (got %q): %v", want, got, err)
		}
		msg := string(buf[:n])
		if strings.HasPrefix(msg, want) {
			return
		}
		got = append(got, msg)
	}
}

func TestSdNotifyOverARealSocket(t *testing.T) {
	conn := notifySocket(t)
	ok, err := sdNotify("READY=1\nSTATUS=testing")
	if !ok || err != nil {
		t.Fatalf("sdNotify = %v, %v", ok, err)
	}
	buf := make([]byte, 128)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1\nSTATUS=testing" {
		t.Fatalf("received %q, %v", buf[:n], err)
	}

	// Abstract namespace, as systemd often hands out.
	name := fmt.Sprintf("obdgw-test-%d", os.Getpid())
	abs, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "\x00" + name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer abs.Close()
	t.Setenv("NOTIFY_SOCKET", "@"+name)
	if ok, err := sdNotify("WATCHDOG=1"); !ok || err != nil {
		t.Fatalf("abstract: %v %v", ok, err)
	}
	abs.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := abs.Read(buf); err != nil || string(buf[:n]) != "WATCHDOG=1" {
		t.Fatalf("abstract received %q, %v", buf[:n], err)
	}

	// Not under systemd: nothing sent, no error. A socket that is gone: an error.
	t.Setenv("NOTIFY_SOCKET", "")
	if ok, err := sdNotify("READY=1"); ok || err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v %v", ok, err)
	}
	t.Setenv("NOTIFY_SOCKET", "/nonexistent/notify")
	if _, err := sdNotify("READY=1"); err == nil {
		t.Fatal("a missing socket must be an error")
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "")
	if d, ok := watchdogInterval(); !ok || d != 30*time.Second {
		t.Fatalf("= %v %v", d, ok)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if _, ok := watchdogInterval(); ok {
		t.Fatal("a watchdog meant for another pid was taken")
	}
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	if _, ok := watchdogInterval(); !ok {
		t.Fatal("our own pid refused")
	}
	t.Setenv("WATCHDOG_USEC", "x")
	if _, ok := watchdogInterval(); ok {
		t.Fatal("garbage accepted")
	}
}

type runLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *runLog) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *runLog) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestRunServesNotifiesAndStopsCleanly(t *testing.T) {
	conn := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "100000") // pings every 50 ms
	t.Setenv("WATCHDOG_PID", "")
	path := writeConfig(t, "127.0.0.1:0")
	logs := &runLog{}
	e := &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.NewTextHandler(logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runDaemon(ctx, e, path, runFlags{}, runHooks{listening: func(a string) { addrc <- a }})
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("daemon ended: %v\n%s", err, logs)
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not listen")
	}
	expectNotify(t, conn, "READY=1")
	expectNotify(t, conn, "WATCHDOG=1")

	resp, err := http.Get(base + "/api/v1/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health: %v %v", resp, err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest("POST", base+"/api/v1/workorders", strings.NewReader(`{"plate":"浙A12345","plate_color":"blue","bay":"bay1"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/")
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("console: %v %v", resp, err)
	}
	resp.Body.Close()
	// An open event stream must not hold up the shutdown.
	req, _ = http.NewRequest("GET", base+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	stream, err := http.DefaultClient.Do(req)
	if err != nil || stream.StatusCode != 200 {
		t.Fatalf("events: %v %v", stream, err)
	}
	defer stream.Body.Close()

	cancel() // what SIGTERM does through main's signal context
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("clean stop returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not stop")
	}
	expectNotify(t, conn, "STOPPING=1")
	if !strings.Contains(logs.String(), "stopped cleanly") || strings.Contains(logs.String(), testToken) {
		t.Fatalf("log:\n%s", logs)
	}
	// The order survived in the state file.
	db, err := buffer.Open(filepath.Join(filepath.Dir(path), "state", daemon.StoreFile), buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var found bool
	db.View(func(tx *buffer.Tx) error {
		found = tx.Get("workorders", "WO000001") != nil
		return nil
	})
	if !found {
		t.Fatal("the work order is not in the state file")
	}
}

func TestRunRefusesABadConfigWithExitCode2(t *testing.T) {
	path := writeConfig(t, "127.0.0.1:0")
	data, _ := os.ReadFile(path)
	bad := strings.Replace(string(data), `obd: "serial:///dev/obdgw-test-no-such-adapter"`, `obd: "com3", colour: red`, 1)
	os.WriteFile(path, []byte(bad), 0o640)
	var out, errb bytes.Buffer
	if code := runMain([]string{"run", "--config", path}, &out, &errb); code != exitUsage {
		t.Fatalf("exit code %d, want %d; stderr %s", code, exitUsage, errb.String())
	}
	for _, want := range []string{":5: bays[0].obd: ", ":5: bays[0].colour: unknown key"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
	if code := runMain([]string{"run", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, &out, &errb); code != exitUsage {
		t.Fatalf("missing config: exit %d", code)
	}
	if code := runMain([]string{"run", "--config", path, "extra"}, &out, &errb); code != exitUsage {
		t.Fatalf("extra argument: exit %d", code)
	}
}

func TestRunFailsWithExitCode1WhenThePortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	path := writeConfig(t, ln.Addr().String())
	var out, errb bytes.Buffer
	if code := runMain([]string{"run", "--config", path}, &out, &errb); code != exitFailure {
		t.Fatalf("exit code %d, want %d; stderr %s", code, exitFailure, errb.String())
	}
	if !strings.Contains(errb.String(), "api.listen") || !strings.Contains(errb.String(), "address already in use") {
		t.Fatalf("stderr %s", errb.String())
	}
}

// TestRunChild is the daemon process of TestSIGTERMStopsTheDaemonWithExitCode0.
func TestRunChild(t *testing.T) {
	path := os.Getenv("OBDGW_RUN_CHILD")
	if path == "" {
		t.Skip("helper process")
	}
	os.Exit(runMain([]string{"run", "--config", path}, os.Stdout, os.Stderr))
}

func TestSIGTERMStopsTheDaemonWithExitCode0(t *testing.T) {
	path := writeConfig(t, "127.0.0.1:0")
	conn := notifySocket(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunChild$")
	cmd.Env = append(os.Environ(), "OBDGW_RUN_CHILD="+path)
	var errb runLog
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	expectNotify(t, conn, "READY=1")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) || err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v\n%s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "stopped cleanly") {
		t.Fatalf("stderr:\n%s", errb.String())
	}
}

// TestRunCheckConfig: `obdgw run --check-config` loads the configuration as the daemon would,
// from any working directory, and exits 0 without opening the store; a rig model no linked
// driver knows, which would otherwise fail every self-test, is exit 2 with the known names.
func TestRunCheckConfig(t *testing.T) {
	path := writeConfig(t, "127.0.0.1:0")
	t.Chdir("/")
	var out, errb bytes.Buffer
	if code := runMain([]string{"run", "--check-config", "--config", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d; stderr %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "configuration OK (gateway gw-run-test, 1 bays") {
		t.Errorf("stdout %q", out.String())
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "state")); !os.IsNotExist(err) {
		t.Errorf("--check-config touched the state directory: %v", err)
	}
	data, _ := os.ReadFile(path)
	bad := strings.Replace(string(data), `obd: "serial:///dev/obdgw-test-no-such-adapter"}`,
		`obd: "serial:///dev/obdgw-test-no-such-adapter", rig: {model: nanhua-nha999, address: "serial:///dev/obdgw-test-rig"}}`, 1)
	if bad == string(data) {
		t.Fatal("the test config has no bay line to extend")
	}
	os.WriteFile(path, []byte(bad), 0o640)
	out.Reset()
	errb.Reset()
	if code := runMain([]string{"run", "--check-config", "--config", path}, &out, &errb); code != exitUsage {
		t.Fatalf("unknown rig model: exit %d, want %d; stderr %s", code, exitUsage, errb.String())
	}
	if !strings.Contains(errb.String(), `"nanhua-nha999": no driver of that name; known: `) || !strings.Contains(errb.String(), "nha506") {
		t.Errorf("stderr does not name the model and the known ones:\n%s", errb.String())
	}
}
