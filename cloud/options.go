package cloud

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/drivers/loopback"
)

// Delivery says when a record may leave the outbox.
type Delivery string

const (
	// DeliveryPUBACK: on the broker's PUBACK. Fast; cannot see a broker that loses the message
	// afterwards or an ACL denial (see the package doc).
	DeliveryPUBACK Delivery = "puback"
	// DeliveryReceipt: on the receiver's receipt for the record's id.
	DeliveryReceipt Delivery = "receipt"
)

// ReceiptStatus is the receiver's verdict, as ParseReceipt decodes it.
type ReceiptStatus string

const (
	ReceiptAccepted  ReceiptStatus = "accepted"
	ReceiptDuplicate ReceiptStatus = "duplicate"
	ReceiptRejected  ReceiptStatus = "rejected"
)

// Receipt is a decoded receipt (the bytes belong to the wire format).
type Receipt struct {
	ID     string
	Status ReceiptStatus
	Reason string
}

// UplinkOptions configure NewUplink. Field comments name the config key a gateway would use;
// errors from NewUplink name the key as well.
type UplinkOptions struct {
	Broker     string // broker_url: tls://host:port (tcp:// only to a loopback address, or with AllowPlain)
	AllowPlain bool   // allow tcp:// to any host (trials, tests and the demo; a remote broker needs TLS)
	CAFile     string // ca_file: PEM CA(s) that sign the broker's certificate; empty = system roots
	CertFile   string // cert_file: client certificate for mutual TLS (with KeyFile)
	KeyFile    string // key_file
	Username   string // username
	// PasswordFile holds the password (password_file); it must not be readable by group or
	// others. Trailing newlines are ignored.
	PasswordFile string
	ClientID     string // the gateway id; also the record id prefix

	Keepalive      time.Duration // keepalive; default 30 s
	ConnectTimeout time.Duration // connect_timeout; default 10 s (also the write timeout)
	InFlight       int           // in_flight: records published and not yet acknowledged; default 16
	Delivery       Delivery      // delivery: "puback" or "receipt"; default receipt

	// Receipt mode.
	ReceiptTopic   string        // this gateway's receipt topic
	ReceiptTimeout time.Duration // receipt_timeout; default 30 s
	// ReceiptWindow bounds records published and awaiting their receipt (receipt_window;
	// default 256, at least InFlight). It is larger than InFlight because a receipt waits for
	// the receiver's fsyncs; InFlight still bounds unacknowledged QoS 1 publishes.
	ReceiptWindow int
	ParseReceipt  func([]byte) (Receipt, error) // decodes a receipt (wire.ParseReceipt)

	// Retained status with last will. Status builds the payload: online after each connect,
	// offline as the will and at a clean shutdown. Empty StatusTopic: no status.
	StatusTopic string
	Status      func(online bool, at time.Time) ([]byte, error)

	// Frame turns a stored record into the bytes to publish (wire.Frame stamps the id into
	// the envelope). nil publishes the payload as stored. A record Frame refuses is
	// dead-lettered: it can never be sent.
	Frame func(rec buffer.Record) ([]byte, error)

	// DrainRate paces publishing (records per second, a token bucket that starts full at every
	// connection): after a provincial outage thousands of gateways reconnect together, each
	// with a backlog. 0 = unlimited.
	DrainRate  float64 // drain_rate
	DrainBurst int     // drain_burst: records sent at once after connecting; default max(1, DrainRate)

	BackoffMin time.Duration // backoff_min; default 1 s
	BackoffMax time.Duration // backoff_max; default 2 min

	// Registry is the gateway's metric registry: the uplink adds its own metrics to it, and
	// Handler serves it. nil: a registry of the uplink's own, which also gets the outbox, Go
	// and process collectors (a gateway that passes its registry registers those itself).
	Registry *prometheus.Registry

	Logger *slog.Logger     // nil = discard
	Now    func() time.Time // nil = time.Now
	Rand   func() float64   // jitter source in [0,1); nil = math/rand/v2
}

// OptionError names the option (config key) that is wrong.
type OptionError struct {
	Key string
	Err error
}

func (e *OptionError) Error() string { return "cloud: " + e.Key + ": " + e.Err.Error() }
func (e *OptionError) Unwrap() error { return e.Err }

func optErr(key, format string, a ...any) error {
	return &OptionError{Key: key, Err: fmt.Errorf(format, a...)}
}

// withDefaults validates o and fills defaults.
func (o UplinkOptions) withDefaults() (UplinkOptions, error) {
	u, err := url.Parse(o.Broker)
	switch {
	case o.Broker == "":
		return o, optErr("broker_url", "empty; want tls://host:port")
	case err != nil:
		return o, optErr("broker_url", "%v", err)
	case u.Scheme == "tcp" || u.Scheme == "mqtt":
		// Cleartext never leaves the box: the rule of the gateway's configuration
		// (broker.url) and its example. AllowPlain lifts it for trials and tests.
		if !o.AllowPlain && !loopback.Host(u.Hostname()) {
			return o, optErr("broker_url", "%s is not encrypted: cleartext tcp:// is allowed only to a broker on this box (a loopback address, e.g. tcp://127.0.0.1:1883); use tls://host:port for a remote broker", redact(o.Broker))
		}
	case u.Scheme == "tls" || u.Scheme == "ssl" || u.Scheme == "mqtts":
	default:
		return o, optErr("broker_url", "scheme %q: want tls://host:port", u.Scheme)
	}
	if u.Port() == "" {
		return o, optErr("broker_url", "%s has no port (MQTT over TLS is usually 8883)", o.Broker)
	}
	if o.ClientID == "" {
		return o, optErr("gateway_id", "empty; the gateway id is the MQTT client id")
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return o, optErr("key_file", "cert_file and key_file go together (both or neither)")
	}
	if o.Keepalive == 0 {
		o.Keepalive = 30 * time.Second
	}
	if o.Keepalive < time.Second {
		return o, optErr("keepalive", "%v: at least 1s", o.Keepalive)
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.InFlight == 0 {
		o.InFlight = 16
	}
	if o.InFlight < 1 || o.InFlight > 1000 {
		return o, optErr("in_flight", "%d: want 1..1000", o.InFlight)
	}
	switch o.Delivery {
	case "":
		o.Delivery = DeliveryReceipt
	case DeliveryPUBACK, DeliveryReceipt:
	default:
		return o, optErr("delivery", "%q: want puback or receipt", o.Delivery)
	}
	if o.Delivery == DeliveryReceipt {
		if o.ReceiptTopic == "" {
			return o, optErr("receipt_topic", "empty; receipt delivery needs the gateway's receipt topic")
		}
		if o.ParseReceipt == nil {
			return o, optErr("delivery", "receipt delivery needs a receipt decoder (ParseReceipt)")
		}
	}
	if o.ReceiptWindow == 0 {
		o.ReceiptWindow = 256
	}
	if o.ReceiptWindow < o.InFlight || o.ReceiptWindow > 100000 {
		return o, optErr("receipt_window", "%d: want in_flight (%d) .. 100000", o.ReceiptWindow, o.InFlight)
	}
	if o.ReceiptTimeout == 0 {
		o.ReceiptTimeout = 30 * time.Second
	}
	if o.StatusTopic != "" && o.Status == nil {
		return o, optErr("status_topic", "set but no Status payload function")
	}
	if o.DrainRate < 0 {
		return o, optErr("drain_rate", "%v: must not be negative", o.DrainRate)
	}
	if o.DrainBurst == 0 {
		o.DrainBurst = max(1, int(o.DrainRate))
	}
	if o.BackoffMin == 0 {
		o.BackoffMin = time.Second
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = 2 * time.Minute
	}
	if o.BackoffMax < o.BackoffMin {
		return o, optErr("backoff_max", "%v is less than backoff_min %v", o.BackoffMax, o.BackoffMin)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// pendingCap is how many records may be published and not yet acknowledged.
func (o *UplinkOptions) pendingCap() int {
	if o.Delivery == DeliveryReceipt {
		return o.ReceiptWindow
	}
	return o.InFlight
}

// tlsConfig loads the CA, the client key pair and the password. It runs before every connect
// so a certificate renewed on disk is picked up without a restart, and the secret files are
// checked again each time: a key made readable to others, or replaced by a FIFO, stops the
// connects with an error that names the file. A client certificate past its NotAfter (by
// o.Now) is a *CertExpiredError.
func (o *UplinkOptions) tlsConfig() (*tls.Config, string, error) {
	var password string
	if o.PasswordFile != "" {
		p, err := readSecret(o.PasswordFile)
		if err != nil {
			return nil, "", &OptionError{Key: "password_file", Err: err}
		}
		password = p
	}
	u, _ := url.Parse(o.Broker)
	if u.Scheme == "tcp" || u.Scheme == "mqtt" {
		return nil, password, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: u.Hostname()}
	if o.CAFile != "" {
		pem, err := readRegular(o.CAFile, false, maxPEMBytes)
		if err != nil {
			return nil, "", &OptionError{Key: "ca_file", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", optErr("ca_file", "%s holds no PEM certificate", o.CAFile)
		}
		c.RootCAs = pool
	}
	if o.CertFile != "" {
		keyPEM, err := readRegular(o.KeyFile, true, maxPEMBytes)
		if err != nil {
			return nil, "", &OptionError{Key: "key_file", Err: err}
		}
		certPEM, err := readRegular(o.CertFile, false, maxPEMBytes)
		if err != nil {
			return nil, "", &OptionError{Key: "cert_file", Err: err}
		}
		kp, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, "", optErr("cert_file", "%s / %s: %v", o.CertFile, o.KeyFile, err)
		}
		if kp.Leaf != nil && o.now().After(kp.Leaf.NotAfter) {
			return nil, "", &OptionError{Key: "cert_file", Err: &CertExpiredError{File: o.CertFile, NotAfter: kp.Leaf.NotAfter}}
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c, password, nil
}

func (o *UplinkOptions) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// CertExpiredError says the configured client certificate is past its NotAfter: the broker
// refuses the TLS handshake, whatever its ACL says.
type CertExpiredError struct {
	File     string    // cert_file
	NotAfter time.Time // the certificate's end of validity
}

func (e *CertExpiredError) Error() string {
	return fmt.Sprintf("%s: client certificate expired on %s (by this box's clock): renew it with the province's CA and replace the file; it is read again at the next connect (if the date is wrong, sync the clock)",
		e.File, e.NotAfter.UTC().Format("2006-01-02 15:04 MST"))
}

// clientOptions is the one paho set-up of the uplink and the receiver: the broker, TLS and the
// password read from disk again (tlsConfig), the client id, keepalive, the connect, write and
// ping timeouts, MQTT 3.1.1, and no reconnecting inside paho: both run their own loop with
// backoff, so they can say why a connection failed and when they try again. A lost connection
// is sent on lost without blocking (give it a buffer of one). It also returns the TLS
// configuration, nil for a plain tcp:// broker. Each caller adds only what is its own (session
// persistence, last will, message handling).
func (o *UplinkOptions) clientOptions(lost chan<- error) (*mqtt.ClientOptions, *tls.Config, error) {
	tc, password, err := o.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	po := mqtt.NewClientOptions().
		AddBroker(o.Broker).
		SetClientID(o.ClientID).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(o.Keepalive).
		SetPingTimeout(o.ConnectTimeout).
		SetConnectTimeout(o.ConnectTimeout).
		SetWriteTimeout(o.ConnectTimeout).
		SetProtocolVersion(4).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if tc != nil {
		po.SetTLSConfig(tc)
	}
	if o.Username != "" {
		po.SetUsername(o.Username)
	}
	if password != "" {
		po.SetPassword(password)
	}
	return po, tc, nil
}

// maxPEMBytes bounds a CA, certificate or key file: a wrong path (a log, a disk image) must
// not be read into memory whole.
const maxPEMBytes = 1 << 20

// readSecret reads a one-line secret file that only its owner may read.
func readSecret(path string) (string, error) {
	b, err := readRegular(path, true, 4096)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", errors.New(path + " is empty")
	}
	return s, nil
}

// readRegular reads a file that must be a regular file (never a FIFO, a device or a
// directory: opening a FIFO blocks until a writer comes, which would hang the start and any
// reconnect) of at most limit bytes. private files must not be accessible to group or others,
// the rule (and message) of the gateway's configuration check. The mode is looked at before
// the open, and the file is opened non-blocking and checked again, so a file swapped in
// between cannot block either.
func readRegular(path string, private bool, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := checkMode(path, st, private); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fst, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkMode(path, fst, private); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: is it the right file?", path, limit)
	}
	return b, nil
}

func checkMode(path string, st os.FileInfo, private bool) error {
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s): name the file itself", path, fileKind(st.Mode()))
	}
	if perm := st.Mode().Perm(); private && perm&0o077 != 0 {
		return fmt.Errorf("%s is readable by group or others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	return nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m.IsDir():
		return "a directory"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "mode " + m.String()
}
