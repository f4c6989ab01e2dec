package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/daemon"
)

// statePath is the state file of the configuration writeConfig wrote.
func statePath(cfg string) string {
	return filepath.Join(filepath.Dir(cfg), "state", daemon.StoreFile)
}

// fillStore makes the state file of cfg with n undelivered records of the gateway.
func fillStore(t *testing.T, cfg string, n int) string {
	t.Helper()
	db, err := buffer.Open(statePath(cfg), buffer.Options{GatewayID: "gw-run-test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := db.Append(context.Background(), "ehr", "obdgw/v1/33/330106000099901/gw-run-test/ehr", []byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	inc := db.Info().Incarnation
	db.Close()
	return inc
}

// flipNewerMeta damages the newer bbolt meta page of the file: bbolt falls back to the older.
func flipNewerMeta(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	txid := func(i int) uint64 {
		var n uint64
		for j := 7; j >= 0; j-- {
			n = n<<8 | uint64(b[i*4096+64+j])
		}
		return n
	}
	page := 0
	if txid(1) > txid(0) {
		page = 1
	}
	b[page*4096+48] ^= 1
	os.WriteFile(path, b, 0o600)
}

func TestRunRefusesAnUnusableStateFileWithExitCode7(t *testing.T) {
	for name, damage := range map[string]func(t *testing.T, cfg string){
		"zero-length": func(t *testing.T, cfg string) {
			os.MkdirAll(filepath.Dir(statePath(cfg)), 0o700)
			os.WriteFile(statePath(cfg), nil, 0o600)
		},
		"rolled back": func(t *testing.T, cfg string) {
			fillStore(t, cfg, 3)
			flipNewerMeta(t, statePath(cfg))
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := writeConfig(t, "127.0.0.1:0")
			damage(t, cfg)
			before, _ := os.ReadFile(statePath(cfg))
			for range 2 { // as systemd would if it restarted: still refused, still in place
				var out, errb bytes.Buffer
				if code := runMain([]string{"run", "--config", cfg}, &out, &errb); code != exitNeedsPerson {
					t.Fatalf("exit code %d, want %d; stderr %s", code, exitNeedsPerson, errb.String())
				}
				for _, want := range []string{statePath(cfg), "exit code 7", "obdgw restore --config " + cfg + " BACKUP", "obdgw run --config " + cfg + " --new-store", "obdgw salvage --config " + cfg + " " + statePath(cfg) + ".old-"} {
					if !strings.Contains(errb.String(), want) {
						t.Errorf("stderr lacks %q:\n%s", want, errb.String())
					}
				}
			}
			if after, _ := os.ReadFile(statePath(cfg)); !bytes.Equal(before, after) {
				t.Fatal("the refused state file changed")
			}
		})
	}
}

// runUntilReady runs the daemon with flags, returns its address and a stop function.
func runUntilReady(t *testing.T, cfg string, flags runFlags, logs *runLog) (string, func() error) {
	t.Helper()
	e := &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.NewTextHandler(logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- runDaemon(ctx, e, cfg, flags, runHooks{listening: func(a string) { addrc <- a }}) }()
	select {
	case a := <-addrc:
		return a, func() error { cancel(); return <-done }
	case err := <-done:
		cancel()
		t.Fatalf("daemon ended: %v\n%s", err, logs)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("daemon did not listen")
	}
	return "", nil
}

func TestRunNewStoreKeepsTheOldFileAndSaysSo(t *testing.T) {
	cfg := writeConfig(t, "127.0.0.1:0")
	oldInc := fillStore(t, cfg, 3)
	flipNewerMeta(t, statePath(cfg))
	damaged, _ := os.ReadFile(statePath(cfg))
	logs := &runLog{}
	addr, stop := runUntilReady(t, cfg, runFlags{newStore: true}, logs)

	var health struct {
		Store buffer.StoreInfo `json:"store"`
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	inc := health.Store.Incarnation
	if !health.Store.New || inc == "" || inc == oldInc || health.Store.Created.IsZero() {
		t.Errorf("healthz store %+v (old incarnation %s)", health.Store, oldInc)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `obdgw_store_info{incarnation="` + inc + `",new="true"} 1`; !bytes.Contains(metrics, []byte(want)) {
		t.Errorf("metrics lack %s", want)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	log := logs.String()
	if !strings.Contains(log, "level=WARN msg=\"starting on a new, empty store (incarnation "+inc+")\"") || !strings.Contains(log, "moved it aside") {
		t.Errorf("log:\n%s", log)
	}
	moved, _ := filepath.Glob(statePath(cfg) + ".old-*")
	var kept []string
	for _, m := range moved {
		if !strings.HasSuffix(m, ".last") {
			kept = append(kept, m)
		}
	}
	if len(kept) != 1 {
		t.Fatalf("old files %v", moved)
	}
	if b, _ := os.ReadFile(kept[0]); !bytes.Equal(b, damaged) {
		t.Fatal("the old file was not kept as it was")
	}

	// The next start is on the same store, no longer new.
	logs = &runLog{}
	addr, stop = runUntilReady(t, cfg, runFlags{}, logs)
	resp, err = http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	stop()
	if health.Store.New || health.Store.Incarnation != inc || strings.Contains(logs.String(), "new, empty store") {
		t.Errorf("second start: %+v\n%s", health.Store, logs)
	}

	// salvage takes the old file's records into the store under new ids.
	var out, errb bytes.Buffer
	if code := runMain([]string{"salvage", "--config", cfg, kept[0]}, &out, &errb); code != 0 {
		t.Fatalf("salvage exit %d: %s", code, errb.String())
	}
	// The flip lost the newest commit: two of the three records are readable.
	if !strings.Contains(out.String(), "undelivered records queued under new ids: 2") || !strings.Contains(out.String(), "could not read: nothing") {
		t.Errorf("salvage output:\n%s", out.String())
	}
	db, err := buffer.Open(statePath(cfg), buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := db.Peek(10)
	db.Close()
	if len(recs) != 2 || recs[0].ID != "gw-run-test-"+inc+"-1" || string(recs[1].Payload) != `{"n":1}` {
		t.Errorf("salvaged records %+v", recs)
	}
}

func TestRestoreCommand(t *testing.T) {
	cfg := writeConfig(t, "127.0.0.1:0")
	fillStore(t, cfg, 2)
	backup := filepath.Join(t.TempDir(), "backup.db")
	b, _ := os.ReadFile(statePath(cfg))
	os.WriteFile(backup, b, 0o600)
	os.WriteFile(statePath(cfg), nil, 0o600) // the power cut

	var out, errb bytes.Buffer
	if code := runMain([]string{"restore", "--config", cfg, backup}, &out, &errb); code != 0 {
		t.Fatalf("restore exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "restored "+backup) || !strings.Contains(out.String(), ".old-") {
		t.Errorf("output %s", out.String())
	}
	db, err := buffer.Open(statePath(cfg), buffer.Options{})
	if err != nil {
		t.Fatalf("state after restore: %v", err)
	}
	recs, _ := db.Peek(10)
	db.Close()
	if len(recs) != 2 {
		t.Fatalf("%d records after restore", len(recs))
	}
	// Over a good state file only with --force.
	out.Reset()
	errb.Reset()
	if code := runMain([]string{"restore", "--config", cfg, backup}, &out, &errb); code != exitFailure || !strings.Contains(errb.String(), "--force") {
		t.Fatalf("restore over a good file: exit %d, %s", code, errb.String())
	}
	if code := runMain([]string{"restore", "--config", cfg, "--force", backup}, &out, &errb); code != 0 {
		t.Fatalf("forced restore: exit %d, %s", code, errb.String())
	}
	// A damaged backup is refused.
	os.WriteFile(backup, bytes.Repeat([]byte{1}, 8192), 0o600)
	if code := runMain([]string{"restore", "--config", cfg, "--force", backup}, &out, &errb); code == 0 {
		t.Fatal("a damaged backup was restored")
	}
	if code := runMain([]string{"restore", "--config", cfg}, &out, &errb); code != exitUsage {
		t.Fatalf("restore without a backup: exit %d", code)
	}
}
