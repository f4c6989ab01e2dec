package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/gateway/workorder"
)

// TestBackupCommand: `obdgw backup FILE` while the gateway runs takes the copy through its API
// (the gateway holds the file); with the gateway stopped it copies the file itself. Both
// copies are stores holding the work order opened through the API, mode 0600.
func TestBackupCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	path := writeConfig(t, addr)
	e := &env{stdout: io.Discard, stderr: io.Discard, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	up := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- runDaemon(ctx, e, path, runFlags{}, runHooks{listening: func(string) { close(up) }}) }()
	select {
	case <-up:
	case err := <-done:
		t.Fatalf("daemon ended: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not listen")
	}
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/workorders", strings.NewReader(`{"plate":"浙A12345","plate_color":"blue","bay":"bay1"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create: %v %v", resp, err)
	}
	resp.Body.Close()

	dir := t.TempDir()
	running := filepath.Join(dir, "running.db")
	var out, errb bytes.Buffer
	if code := runMain([]string{"backup", "--config", path, running}, &out, &errb); code != 0 {
		t.Fatalf("backup while running: exit %d\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "from the running gateway") {
		t.Errorf("stdout %q", out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stopped := filepath.Join(dir, "stopped.db")
	out.Reset()
	if code := runMain([]string{"backup", "--config", path, stopped}, &out, &errb); code != 0 {
		t.Fatalf("backup while stopped: exit %d\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "no gateway running") {
		t.Errorf("stdout %q", out.String())
	}
	for _, f := range []string{running, stopped} {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v", f, err, st.Mode().Perm())
		}
		db, err := buffer.Open(f, buffer.Options{})
		if err != nil {
			t.Fatalf("%s is not a store: %v", f, err)
		}
		orders, _, err := workorder.New(db, workorder.Options{}).List(workorder.Filter{})
		db.Close()
		if err != nil || len(orders) != 1 || orders[0].Plate != "浙A12345" {
			t.Errorf("%s holds %d orders (%v), want the one opened", f, len(orders), err)
		}
	}
	if code := runMain([]string{"backup", "--config", path}, &out, &errb); code != exitUsage {
		t.Errorf("backup without a file: exit %d, want %d", code, exitUsage)
	}
}
