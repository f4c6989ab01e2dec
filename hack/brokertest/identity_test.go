package brokertest

import (
	"os"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// TestIdentityBrokerBindsTopicsToTheCertificate runs the production broker set-up of
// docs/wire-format.md against the real Mosquitto: a certificate holder can write only its own
// gateway's topics whatever client id it chooses, only a receiver writes receipts, and a
// client id copied from another gateway does not take that gateway's connection over.
func TestIdentityBrokerBindsTopicsToTheCertificate(t *testing.T) {
	const rxName = "receiver:1"
	b := Start(t, Config{Identity: true, ACL: IdentityACL([]string{rxName}, "ehr"), Extra: "log_type debug\n"})
	gw1c, gw2c, rxc := b.CA.Client(t, "gw1"), b.CA.Client(t, "gw2"), b.CA.Client(t, rxName)

	if _, err := connect(t, b.TLSURL(), "gw1", "", "", tlsConfig(t, b.CA.CertFile, nil)); err == nil {
		t.Error("TLS connect without a client certificate accepted")
	}
	if _, err := connect(t, b.URL(), "gw1", "", "", nil); err == nil {
		t.Error("anonymous connect on the plain listener accepted")
	}

	rx, err := connect(t, b.TLSURL(), "whatever", "", "", tlsConfig(t, b.CA.CertFile, &rxc))
	if err != nil {
		t.Fatalf("receiver connect: %v", err)
	}
	records := make(chan string, 10)
	tok := rx.Subscribe("$share/obdgw/obdgw/v1/#", 1, func(_ mqtt.Client, m mqtt.Message) { records <- m.Topic() + " " + string(m.Payload()) })
	if tok.Wait(); tok.Error() != nil || tok.(*mqtt.SubscribeToken).Result()["$share/obdgw/obdgw/v1/#"] == 0x80 {
		t.Fatalf("receiver subscription refused: %v %v", tok.Error(), tok.(*mqtt.SubscribeToken).Result())
	}

	gw1, err := connect(t, b.TLSURL(), "gw1", "", "", tlsConfig(t, b.CA.CertFile, &gw1c))
	if err != nil {
		t.Fatalf("gw1 connect: %v", err)
	}
	receipts := make(chan string, 10)
	tok = gw1.Subscribe("obdgw/v1/33/c1/gw1/receipt", 1, func(_ mqtt.Client, m mqtt.Message) { receipts <- string(m.Payload()) })
	if tok.Wait(); tok.Error() != nil || tok.(*mqtt.SubscribeToken).Result()["obdgw/v1/33/c1/gw1/receipt"] == 0x80 {
		t.Fatalf("gw1 receipt subscription refused: %v", tok.Error())
	}

	// gateway 2's certificate, gateway 1's client id.
	forger, err := connect(t, b.TLSURL(), "gw1", "", "", tlsConfig(t, b.CA.CertFile, &gw2c))
	if err != nil {
		t.Fatalf("gw2 connect: %v", err)
	}
	forger.Publish("obdgw/v1/33/c1/gw1/ehr", 1, false, "forged record").Wait()
	// Its own topics work, and arrive after the forged one would have.
	forger2, err := connect(t, b.TLSURL(), "gw2", "", "", tlsConfig(t, b.CA.CertFile, &gw2c))
	if err != nil {
		t.Fatalf("gw2 reconnect: %v", err)
	}
	forger2.Publish("obdgw/v1/33/c1/gw1/receipt", 1, false, "forged receipt").Wait()
	forger3, err := connect(t, b.TLSURL(), "gw2", "", "", tlsConfig(t, b.CA.CertFile, &gw2c))
	if err != nil {
		t.Fatalf("gw2 reconnect: %v", err)
	}
	if tok := forger3.Publish("obdgw/v1/33/c1/gw2/ehr", 1, false, "gw2 own"); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case m := <-records:
		if m != "obdgw/v1/33/c1/gw2/ehr gw2 own" {
			t.Errorf("receiver got %q: a record on another gateway's topic went through", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gw2's own record did not arrive")
	}

	// gw1 itself may not write receipts, not even its own.
	gw1.Publish("obdgw/v1/33/c1/gw1/receipt", 1, false, "self receipt").Wait()
	gw1b, err := connect(t, b.TLSURL(), "gw1", "", "", tlsConfig(t, b.CA.CertFile, &gw1c))
	if err != nil {
		t.Fatalf("gw1 reconnect: %v", err)
	}
	tok = gw1b.Subscribe("obdgw/v1/33/c1/gw1/receipt", 1, func(_ mqtt.Client, m mqtt.Message) { receipts <- string(m.Payload()) })
	tok.Wait()
	if tok := rx.Publish("obdgw/v1/33/c1/gw1/receipt", 1, false, "real receipt"); tok.Wait() && tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case m := <-receipts:
		if m != "real receipt" {
			t.Errorf("gw1 got receipt %q, want only the receiver's", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver's receipt did not arrive")
	}
	log := b.Log()
	for _, want := range []string{"Denied PUBLISH from gw2", "Denied PUBLISH from gw1"} {
		if !strings.Contains(log, want) {
			t.Errorf("broker log lacks %q: the test did not see the denial it claims", want)
		}
	}
	// The forged connect chose client id gw1; the broker made it gw2 and left gw1 alone.
	if strings.Contains(log, "Client gw1 already connected") || !strings.Contains(log, "as gw2 (") {
		t.Error("a connect with gw2's certificate and client id gw1 took over gw1's connection")
	}
}

// TestIdentitySetUpIsTheDocumented keeps docs/wire-format.md ("Identity and ACL") and the
// set-up the tests run the same: the example ACL is IdentityACL's, and the example
// mosquitto.conf has the lines Config.Identity writes.
func TestIdentitySetUpIsTheDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/wire-format.md")
	if err != nil {
		t.Fatal(err)
	}
	block := func(lang string) string {
		_, rest, ok := strings.Cut(string(doc), "```"+lang+"\n")
		body, _, ok2 := strings.Cut(rest, "```")
		if !ok || !ok2 {
			t.Fatalf("docs/wire-format.md has no ```%s block", lang)
		}
		return body
	}
	if got, want := block("acl"), IdentityACL([]string{"receiver:zj-1"}, "ehr", "im", "waste"); got != want {
		t.Errorf("the documented ACL differs from IdentityACL:\n--- docs\n%s--- IdentityACL\n%s", got, want)
	}
	conf := block("conf")
	for _, want := range []string{IdentityListener, "per_listener_settings false\n", "allow_anonymous false\n", "acl_file "} {
		if !strings.Contains(conf, want) {
			t.Errorf("the documented mosquitto.conf lacks %q", want)
		}
	}
}
