package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/obdgw/obdgw/gateway/ehrhttp/ehrhttptest"
	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/hack/brokertest"
)

func TestReceiveForwardFlags(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "secret")
	os.WriteFile(loose, []byte("pw"), 0o644)
	base := []string{"receive", "--broker", "tls://127.0.0.1:1", "--state", t.TempDir(), "--out", filepath.Join(dir, "o.jsonl")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--forward-ehr", "https://127.0.0.1:1/x/"}, "--ehr-app-key-file and --ehr-app-secret-file"},
		{[]string{"--ehr-app-secret-file", loose}, "without --forward-ehr"},
		{[]string{"--forward-ehr", "https://127.0.0.1:1/x/", "--ehr-app-key-file", loose, "--ehr-app-secret-file", loose}, "chmod 600"},
		{[]string{"--forward-ehr", "http://192.0.2.7/x/", "--ehr-app-key-file", loose, "--ehr-app-secret-file", loose}, ""},
	} {
		if tc.want == "" {
			os.Chmod(loose, 0o600)
			tc.want = "http:// is allowed only to this box"
		}
		var out, errb bytes.Buffer
		code := runMain(append(append([]string{}, base...), tc.args...), &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, errb.String(), tc.want)
		}
		if strings.Contains(errb.String(), "pw") && !strings.Contains(tc.want, "pw") {
			t.Errorf("%v: the secret is in the message: %q", tc.args, errb.String())
		}
	}
}

// ehrEnvelope is the demo's record (gateway/demo/testdata) as a published envelope with id.
func ehrEnvelope(t *testing.T, id, costlist string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../demo/testdata/e2e-ehr.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(b), `"YYYYMMDD"`, `"20260301"`)
	s = strings.ReplaceAll(s, `"TIME"`, `"2026-03-01T07:30:00Z"`)
	s = strings.ReplaceAll(s, `"HS-DEMO-0001"`, `"`+costlist+`"`)
	var e wire.Envelope
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		t.Fatal(err)
	}
	e.ID = id
	out, err := wire.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// obdgw receive --forward-ehr end to end: records arrive over a real Mosquitto, are stored,
// then forwarded to the eHR API double; after a restart nothing is forwarded twice, and a
// record the platform refused is not tried again.
func TestReceiveForwardsToTheEHRPlatform(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config{})
	p := ehrhttptest.New(t)
	dir := t.TempDir()
	keyFile, secretFile := filepath.Join(dir, "ehr.key"), filepath.Join(dir, "ehr.secret")
	os.WriteFile(keyFile, []byte(ehrhttptest.Company+"\n"), 0o600)
	os.WriteFile(secretFile, []byte(ehrhttptest.Password+"\n"), 0o600)
	outFile := filepath.Join(dir, "records.jsonl")
	var logs syncBuffer
	receive := func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		e := &env{stdout: &logs, stderr: &logs, log: slog.New(slog.NewTextHandler(&logs, nil))}
		go func() {
			done <- runReceive(ctx, e, []string{"--broker", b.TLSURL(), "--ca", b.CA.CertFile, "--state", filepath.Join(dir, "state"), "--out", outFile,
				"--forward-ehr", p.URL(), "--ehr-app-key-file", keyFile, "--ehr-app-secret-file", secretFile, "--ehr-ca", p.CAFile(dir),
				"--ehr-expired-codes", ehrhttptest.ExpiredCode})
		}()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("receive returned %v\n%s", err, logs.String())
			}
		}
	}
	stop := receive()
	top := wire.Topic{Province: "33", CompanyCode: ehrhttptest.Company, Gateway: "demo-gw-01"}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("demo-gw-01"))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(0)
	receipts := make(chan wire.Receipt, 100)
	c.Subscribe(top.Receipt(), 1, func(_ mqtt.Client, m mqtt.Message) {
		if r, err := wire.ParseReceipt(m.Payload()); err == nil {
			receipts <- r
		}
	}).Wait()
	publishUntilAnswered := func(id string, env []byte) {
		t.Helper()
		for {
			c.Publish(top.Record(wire.KindEHR), 1, false, env).Wait()
			select {
			case r := <-receipts:
				if r.ID == id {
					return
				}
			case <-time.After(300 * time.Millisecond):
			}
		}
	}
	publishUntilAnswered("demo-gw-01-1", ehrEnvelope(t, "demo-gw-01-1", "HS-RX-1"))
	waitUntil(t, "HS-RX-1 forwarded", func() bool { return p.Record("HS-RX-1") != nil })
	p.Script(ehrhttptest.Refuse)
	publishUntilAnswered("demo-gw-01-2", ehrEnvelope(t, "demo-gw-01-2", "HS-RX-2"))
	waitUntil(t, "HS-RX-2 refused", func() bool { return strings.Contains(logs.String(), "refused a forwarded record") })
	stop()
	_, adds, _ := p.Counts()

	stop = receive()                                                                // restart: the same state
	publishUntilAnswered("demo-gw-01-1", ehrEnvelope(t, "demo-gw-01-1", "HS-RX-1")) // a resend: duplicate
	publishUntilAnswered("demo-gw-01-3", ehrEnvelope(t, "demo-gw-01-3", "HS-RX-3"))
	waitUntil(t, "HS-RX-3 forwarded", func() bool { return p.Record("HS-RX-3") != nil })
	stop()
	if _, adds2, stored := p.Counts(); adds2 != adds+1 || stored != 2 {
		t.Errorf("adds %d → %d, stored %d: after the restart only HS-RX-3 may be sent", adds, adds2, stored)
	}
	for _, secret := range append([]string{ehrhttptest.Password}, p.Tokens()...) {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log carries %q", secret)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 6000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}
