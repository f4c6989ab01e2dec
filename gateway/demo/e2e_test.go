package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/obdgw/obdgw/hack/brokertest"
)

var update = flag.Bool("update", false, "rewrite the golden file from this run")

// TestEndToEndVisitThroughMosquitto runs the whole path with real parts: ELM327 simulators on
// real ptys → the daemon (real elm327 driver, bbolt store, REST API) → a real Mosquitto over
// mutual TLS → the reference receiver. The delivered record is diffed against a golden file
// with the run's dates and times normalised.
func TestEndToEndVisitThroughMosquitto(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{RequireClientCert: true})
	gw := b.CA.Client(t, demoGateway)
	dir := t.TempDir()
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := Run(ctx, Options{
		Stderr:         &stderr,
		Listen:         "127.0.0.1:0",
		StateDir:       dir,
		ExitAfterVisit: true,
		Fast:           true,
		Broker:         &Broker{URL: b.TLSURL(), CAFile: b.CA.CertFile, CertFile: gw.CertFile, KeyFile: gw.KeyFile},
	})
	if err != nil {
		t.Fatalf("visit failed: %v\nprogress:\n%s\nbroker log:\n%s", err, stderr.String(), b.LogTail(20))
	}
	got := normalise(t, res.Delivered)
	golden := filepath.Join("testdata", "e2e-ehr.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("delivered record differs from %s (run go test ./gateway/demo -run EndToEnd -update to accept)\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
	// Owner data typed into the work order never leaves the box.
	for _, secret := range []string{"张三", "13800138000"} {
		if bytes.Contains(res.Delivered, []byte(secret)) {
			t.Errorf("owner data %q reached the delivered record", secret)
		}
		if strings.Contains(stderr.String(), secret) {
			t.Errorf("owner data %q reached the progress output", secret)
		}
	}
	// Exactly one copy stored, and the gateway's store agrees it was delivered.
	out, err := os.ReadFile(filepath.Join(dir, "received.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(out, []byte(`"id":"`+res.RecordID+`"`)); n != 1 {
		t.Errorf("receiver stored record %s %d times, want 1", res.RecordID, n)
	}
}

var (
	dateField = regexp.MustCompile(`"(repairdate|settledate)":"\d{8}"`)
	timeField = regexp.MustCompile(`"(created_at)":"[^"]+"`)
	recordID  = regexp.MustCompile(`"id":"([^"]+)-[a-z2-7]{8}-([0-9]+)"`)
)

// normalise replaces the run's dates and times and re-indents for a readable diff.
func normalise(t *testing.T, line []byte) []byte {
	t.Helper()
	s := dateField.ReplaceAll(line, []byte(`"$1":"YYYYMMDD"`))
	s = timeField.ReplaceAll(s, []byte(`"$1":"TIME"`))
	s = recordID.ReplaceAll(s, []byte(`"id":"${1}-INCARNATION-$2"`)) // drawn at random per store
	var v any
	if err := json.Unmarshal(s, &v); err != nil {
		t.Fatalf("delivered line is not JSON: %v\n%s", err, line)
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return append(out, '\n')
}
