package cloud

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/obdgw/obdgw/hack/brokertest"
)

// TestClientOptionsShared: the uplink and the receiver build their paho client from the one
// set-up, so both get the broker, TLS (CA and client certificate), credentials, client id,
// keepalive and timeouts, and neither lets paho reconnect on its own; each adds only its own
// session kind and extras.
func TestClientOptionsShared(t *testing.T) {
	dir := t.TempDir()
	ca := brokertest.NewCA(t, dir, "test CA")
	kp := ca.Client(t, "gw-1")
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const broker = "tls://127.0.0.1:8883"
	check := func(who string, po *mqtt.ClientOptions, clientID string) {
		t.Helper()
		if len(po.Servers) != 1 || po.Servers[0].Host != "127.0.0.1:8883" || po.Servers[0].Scheme != "tls" {
			t.Errorf("%s: servers %v, want %s", who, po.Servers, broker)
		}
		if po.ClientID != clientID {
			t.Errorf("%s: client id %q, want %q", who, po.ClientID, clientID)
		}
		tc := po.TLSConfig
		if tc == nil || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "127.0.0.1" {
			t.Errorf("%s: TLS config %+v: want the CA, the client certificate and the broker's name", who, tc)
		}
		if po.Username != "gw" || po.Password != "s3cret" {
			t.Errorf("%s: credentials %q / %q", who, po.Username, po.Password)
		}
		if po.KeepAlive != 7 || po.ConnectTimeout != 3*time.Second || po.WriteTimeout != 3*time.Second || po.PingTimeout != 3*time.Second {
			t.Errorf("%s: keepalive %ds, connect %v, write %v, ping %v", who, po.KeepAlive, po.ConnectTimeout, po.WriteTimeout, po.PingTimeout)
		}
		if po.AutoReconnect || po.ConnectRetry || po.ProtocolVersion != 4 || po.OnConnectionLost == nil {
			t.Errorf("%s: auto-reconnect %v, connect retry %v, protocol %d, lost handler set %v",
				who, po.AutoReconnect, po.ConnectRetry, po.ProtocolVersion, po.OnConnectionLost != nil)
		}
	}

	u, err := NewUplink(nopOutbox{}, UplinkOptions{Broker: broker, CAFile: ca.CertFile, CertFile: kp.CertFile, KeyFile: kp.KeyFile,
		Username: "gw", PasswordFile: pw, ClientID: "gw-1", Keepalive: 7 * time.Second, ConnectTimeout: 3 * time.Second,
		Delivery: DeliveryPUBACK, StatusTopic: "s/gw-1", Status: func(bool, time.Time) ([]byte, error) { return []byte("off"), nil }})
	if err != nil {
		t.Fatal(err)
	}
	po, _, err := u.clientOptions(make(chan error, 1))
	if err != nil {
		t.Fatal(err)
	}
	check("uplink", po, "gw-1")
	if !po.CleanSession || !po.WillEnabled || po.WillTopic != "s/gw-1" || !po.WillRetained {
		t.Errorf("uplink: clean session %v, will %v on %q retained %v", po.CleanSession, po.WillEnabled, po.WillTopic, po.WillRetained)
	}

	r, err := NewReceiver(ReceiverOptions{Broker: broker, CAFile: ca.CertFile, CertFile: kp.CertFile, KeyFile: kp.KeyFile,
		Username: "gw", PasswordFile: pw, Keepalive: 7 * time.Second, ConnectTimeout: 3 * time.Second, Filter: "t/#",
		StatePath: filepath.Join(dir, "state.db"), OutPath: filepath.Join(dir, "out.jsonl"),
		Validate:      func(string, []byte) (Verdict, error) { return Verdict{}, nil },
		EncodeReceipt: func(Receipt) ([]byte, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	po, err = r.clientOptions(make(chan error, 1), func(mqtt.Client, mqtt.Message) {})
	if err != nil {
		t.Fatal(err)
	}
	check("receiver", po, "obdgw-receiver-obdgw")
	if po.CleanSession || !po.AutoAckDisabled || po.DefaultPublishHandler == nil || po.WillEnabled {
		t.Errorf("receiver: clean session %v, auto-ack off %v, handler set %v, will %v",
			po.CleanSession, po.AutoAckDisabled, po.DefaultPublishHandler != nil, po.WillEnabled)
	}
}
