package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/hack/brokertest"
	"github.com/obdgw/obdgw/hack/pgtest"
)

func TestReceiveRequiresItsFlags(t *testing.T) {
	var out, errb bytes.Buffer
	code := runMain([]string{"receive", "--broker", "tls://127.0.0.1:8883", "--out", "x.jsonl"}, &out, &errb)
	if code != exitUsage || !strings.Contains(errb.String(), "--state is required") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	code = runMain([]string{"receive", "--broker", "tcp://192.0.2.7:1883", "--state", t.TempDir(), "--out", filepath.Join(t.TempDir(), "o")}, &out, &errb)
	if code != exitUsage || !strings.Contains(errb.String(), "broker_url") || !strings.Contains(errb.String(), "tls://") || !strings.Contains(errb.String(), "--allow-plain") {
		t.Errorf("remote plain broker without --allow-plain: exit %d, stderr %q", code, errb.String())
	}
}

// The receiver refuses secret files as the gateway does: a key others can read, with the same
// message, and a FIFO at once instead of hanging.
func TestReceiveRefusesLooseOrSpecialKey(t *testing.T) {
	dir := t.TempDir()
	kp := brokertest.NewCA(t, dir, "ca").Client(t, "rx")
	if err := os.Chmod(kp.KeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "key.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		kp.KeyFile: kp.KeyFile + " is readable by group or others (mode 0644): run chmod 600 " + kp.KeyFile,
		fifo:       fifo + " is not a regular file",
	} {
		var out, errb bytes.Buffer
		done := make(chan int, 1)
		go func() {
			done <- runMain([]string{"receive", "--broker", "tls://127.0.0.1:1", "--cert", kp.CertFile, "--key", key,
				"--state", t.TempDir(), "--out", filepath.Join(t.TempDir(), "o.jsonl")}, &out, &errb)
		}()
		select {
		case code := <-done:
			if code == 0 || !strings.Contains(errb.String(), want) {
				t.Errorf("--key %s: exit %d, stderr %q, want %q", key, code, errb.String(), want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("--key %s: receive hangs", key)
		}
	}
}

// The receive command end to end against a real Mosquitto over TLS: a good record is stored
// and answered accepted, its resend answered duplicate, a bad one rejected naming the field.
func TestReceiveStoresAndAnswers(t *testing.T) {
	dir := t.TempDir()
	outFile := filepath.Join(dir, "records.jsonl")
	receiveRoundTrip(t, func(b *brokertest.Broker) []string {
		return []string{"--broker", b.TLSURL(), "--ca", b.CA.CertFile, "--state", filepath.Join(dir, "state"), "--out", outFile}
	}, func(string) {
		data, err := os.ReadFile(outFile)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], `"id":"gw-r-1"`) {
			t.Errorf("output:\n%s", data)
		}
	})
}

// receiveRoundTrip runs `obdgw receive` with args against a broker of its own, sends a good
// record, its resend and a bad one, checks the receipts, then calls check with the log once
// the receiver has stopped.
func receiveRoundTrip(t *testing.T, args func(*brokertest.Broker) []string, check func(log string)) {
	b := brokertest.Start(t, brokertest.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr bytes.Buffer
	e := &env{stdout: &stderr, stderr: &stderr, log: slog.New(slog.NewTextHandler(&stderr, nil))}
	go func() {
		done <- runReceive(ctx, e, args(b))
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("receive returned %v\n%s", err, stderr.String())
			}
		}
	}
	defer stop()
	top := wire.Topic{Province: "33", CompanyCode: "330106000099901", Gateway: "gw-r"}
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(b.URL()).SetClientID("gw-r"))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(0)
	receipts := make(chan wire.Receipt, 10)
	c.Subscribe(top.Receipt(), 1, func(_ mqtt.Client, m mqtt.Message) {
		r, err := wire.ParseReceipt(m.Payload())
		if err != nil {
			t.Errorf("bad receipt %s: %v", m.Payload(), err)
		}
		receipts <- r
	}).Wait()
	stored, _ := wire.Marshal(wire.Envelope{Kind: "alpha", Schema: "alpha/1", Gateway: "gw-r", CompanyCode: top.CompanyCode,
		CreatedAt: time.Now(), Payload: json.RawMessage(`{"vin":"LSVNV2182E2100001"}`)})
	good, _ := wire.Frame("gw-r-1", stored)
	bad := bytes.Replace(good, []byte(`"schema":"alpha/1"`), []byte(`"schema":"beta/1"`), 1)
	bad = bytes.Replace(bad, []byte(`gw-r-1`), []byte(`gw-r-2`), 1)
	next := func() wire.Receipt {
		select {
		case r := <-receipts:
			return r
		case <-time.After(20 * time.Second):
			t.Fatalf("no receipt\n%s", stderr.String())
			return wire.Receipt{}
		}
	}
	// The receiver may subscribe a moment after we start; resend until the first answer.
	var r wire.Receipt
	for got := false; !got; {
		c.Publish(top.Record("alpha"), 1, false, good).Wait()
		select {
		case r = <-receipts:
			got = true
		case <-time.After(200 * time.Millisecond):
		}
	}
	if r.ID != "gw-r-1" || r.Status != wire.Accepted {
		t.Errorf("first receipt %+v", r)
	}
	for len(receipts) > 0 { // answers to the extra sends above
		if r := <-receipts; r.Status != wire.Duplicate {
			t.Errorf("resend answered %+v", r)
		}
	}
	c.Publish(top.Record("alpha"), 1, false, good).Wait()
	if r := next(); r.Status != wire.Duplicate {
		t.Errorf("resend: %+v", r)
	}
	c.Publish(top.Record("alpha"), 1, false, bad).Wait()
	if r := next(); r.ID != "gw-r-2" || r.Status != wire.Rejected || !strings.Contains(r.Reason, "schema") {
		t.Errorf("bad record: %+v", r)
	}
	stop()
	check(stderr.String())
}

// TestReceivePostgres: the same round trip with --postgres: the record is in the database
// once, with the parts of its id, and the database password is in no log line.
func TestReceivePostgres(t *testing.T) {
	srv := pgtest.Start(t)
	receiveRoundTrip(t, func(b *brokertest.Broker) []string {
		return []string{"--broker", b.TLSURL(), "--ca", b.CA.CertFile, "--postgres", srv.URL(), "--postgres-password-file", srv.PasswordFile}
	}, func(log string) {
		var id, gw, inc, vin string
		var seq, n int64
		err := srv.Conn(t).QueryRow(t.Context(), `SELECT id, gateway, incarnation, seq, payload->'payload'->>'vin', (SELECT count(*) FROM records) FROM records`).Scan(&id, &gw, &inc, &seq, &vin, &n)
		if err != nil || id != "gw-r-1" || gw != "gw-r" || inc != "" || seq != 1 || vin != "LSVNV2182E2100001" || n != 1 {
			t.Errorf("database: %v %q %q %q %d %q, %d rows", err, id, gw, inc, seq, vin, n)
		}
		if strings.Contains(log, srv.Password) || !strings.Contains(log, "store=postgres://obdgw@127.0.0.1:") {
			t.Errorf("log shows the password, or not the database:\n%s", log)
		}
	})
}

func TestReceivePostgresFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--postgres", "postgres://u@127.0.0.1:1/db", "--out", "x.jsonl"}, "drop --out and --state"},
		{[]string{"--postgres-password-file", "pw", "--state", "s", "--out", "x.jsonl"}, "--postgres-password-file needs --postgres"},
		{[]string{"--postgres", "postgres://u:secret@127.0.0.1:1/db"}, "holds a password"},
	} {
		var out, errb bytes.Buffer
		code := runMain(append([]string{"receive", "--broker", "tls://127.0.0.1:8883"}, tc.args...), &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), tc.want) || strings.Contains(errb.String(), "secret") {
			t.Errorf("%q: exit %d, stderr %q, want %q", tc.args, code, errb.String(), tc.want)
		}
	}
}
