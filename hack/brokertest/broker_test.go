package brokertest

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func tlsConfig(t *testing.T, caFile string, kp *KeyPair) *tls.Config {
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	c := &tls.Config{RootCAs: pool}
	if kp != nil {
		cert, err := tls.LoadX509KeyPair(kp.CertFile, kp.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c
}

func connect(t *testing.T, url, id, user, pass string, tc *tls.Config) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetAutoReconnect(false).
		SetConnectTimeout(5 * time.Second).SetTLSConfig(tc).SetUsername(user).SetPassword(pass)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	tok.Wait()
	if tok.Error() == nil {
		t.Cleanup(func() { c.Disconnect(0) })
	}
	return c, tok.Error()
}

// TestBrokerTLSPasswordACLRestartProxy exercises everything the helper promises against the
// real mosquitto: mutual TLS with generated certificates, the generated password hash, an ACL,
// a kill -9 and restart on the same port, and a proxy that cuts the link.
func TestBrokerTLSPasswordACLRestartProxy(t *testing.T) {
	b := Start(t, Config{
		RequireClientCert: true,
		Users:             map[string]string{"gw1": "s3cret", "rx": "rxpass"},
		ACL:               "user rx\ntopic readwrite #\n\npattern write t/%c/#\n",
	})
	client := b.CA.Client(t, "gw1")
	if _, err := connect(t, b.TLSURL(), "gw1", "gw1", "wrong", tlsConfig(t, b.CA.CertFile, &client)); err == nil {
		t.Error("wrong password accepted: the generated password file is not checked")
	}
	if _, err := connect(t, b.TLSURL(), "gw1", "gw1", "s3cret", tlsConfig(t, b.CA.CertFile, nil)); err == nil {
		t.Error("TLS connect without a client certificate accepted")
	}
	rx, err := connect(t, b.URL(), "rx", "rx", "rxpass", nil)
	if err != nil {
		t.Fatalf("receiver connect: %v", err)
	}
	got := make(chan string, 10)
	if tok := rx.Subscribe("t/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() + " " + string(m.Payload()) }); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	gw, err := connect(t, b.TLSURL(), "gw1", "gw1", "s3cret", tlsConfig(t, b.CA.CertFile, &client))
	if err != nil {
		t.Fatalf("mutual TLS connect: %v", err)
	}
	recv := func(want string) {
		t.Helper()
		select {
		case m := <-got:
			if m != want {
				t.Errorf("receiver got %q, want %q", m, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q did not arrive", want)
		}
	}
	if tok := gw.Publish("t/gw1/x", 1, false, "ok"); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	recv("t/gw1/x ok")
	// Mosquitto 2.0 answers a denied QoS 1 publish from an MQTT 3.1.1 client with a PUBACK and
	// then drops the connection; the message goes nowhere.
	gw.Publish("t/other/x", 1, false, "denied").Wait()
	gw2, err := connect(t, b.TLSURL(), "gw1", "gw1", "s3cret", tlsConfig(t, b.CA.CertFile, &client))
	if err != nil {
		t.Fatalf("reconnect: %v", err)
	}
	if tok := gw2.Publish("t/gw1/x", 1, false, "ok2"); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	recv("t/gw1/x ok2") // not the denied one, which would have come first
	_ = gw

	b.Restart()
	if gw.IsConnectionOpen() {
		// paho notices the dead socket on its next read; give it a moment.
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := connect(t, b.TLSURL(), "gw1b", "gw1", "s3cret", tlsConfig(t, b.CA.CertFile, &client)); err != nil {
		t.Fatalf("after restart on the same port: %v", err)
	}

	p := NewProxy(t, b.Addr())
	lost := make(chan error, 1)
	o := mqtt.NewClientOptions().AddBroker("tcp://" + p.Addr).SetClientID("rx2").SetUsername("rx").SetPassword("rxpass").
		SetAutoReconnect(false).SetConnectionLostHandler(func(_ mqtt.Client, err error) { lost <- err })
	c := mqtt.NewClient(o)
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Fatalf("through proxy: %v", tok.Error())
	}
	p.Cut()
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("cutting the proxy did not drop the client")
	}
	if tok := c.Connect(); tok.Wait() && tok.Error() == nil {
		t.Error("connect through a cut proxy succeeded")
	}
	p.Restore()
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		t.Errorf("connect after restore: %v", tok.Error())
	}
	c.Disconnect(0)
	if !strings.Contains(b.Log(), "gw1") {
		t.Error("broker log does not mention the client: logging is not configured")
	}
}
