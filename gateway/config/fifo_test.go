package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO named as a secret file is refused at once, naming the file, instead of blocking the
// daemon's start (an open of a FIFO waits for a writer, and SIGTERM cannot end it).
func TestSecretFileFIFORefused(t *testing.T) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gw.key", "dms.token", "broker.password"} {
		dir := t.TempDir()
		writeSecrets(t, dir)
		fifo := filepath.Join(dir, "secrets", name)
		os.Remove(fifo)
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
		path := filepath.Join(dir, "obdgw.yaml")
		if err := os.WriteFile(path, data, 0o640); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := Load(path); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), fifo+" is not a regular file") {
				t.Errorf("%s as a FIFO: Load = %v, want a refusal naming the file", name, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s as a FIFO: Load hangs", name)
		}
	}
}
