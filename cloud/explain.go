package cloud

import (
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"syscall"
)

// explain turns a connection error into one line that says what to check. The original error
// text follows after a colon so nothing is hidden.
func explain(err error, o UplinkOptions) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	var hint string
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var oe *OptionError
	var nr *NoReceiptError
	switch {
	case errors.As(err, &oe), errors.As(err, &nr):
		return msg // already say what to do
	case errors.As(err, &ua) || strings.Contains(msg, "certificate signed by unknown authority"):
		hint = "tls: certificate signed by unknown authority — check ca_file (" + o.CAFile + ")"
	case errors.As(err, &he) || strings.Contains(msg, "certificate is valid for") || strings.Contains(msg, "certificate is not valid for"):
		hint = "tls: the broker's certificate does not name the host in broker_url — check broker_url"
	case errors.As(err, &ci) && ci.Reason == x509.Expired || strings.Contains(msg, "certificate has expired or is not yet valid"):
		hint = "tls: certificate expired or not yet valid — is the clock synced? then check the broker certificate"
	case strings.Contains(msg, "remote error: tls: expired certificate"):
		hint = "tls: the broker refused our client certificate as expired — renew cert_file (" + o.CertFile + ") with the province's CA; if it has not expired by its date, the broker's or this box's clock is wrong"
	case strings.Contains(msg, "cloud: connect ") && (strings.Contains(msg, "certificate required") || errors.Is(err, syscall.ECONNRESET) || strings.Contains(msg, "connection reset") || strings.Contains(msg, "EOF")) && o.CertFile == "" && strings.HasPrefix(o.Broker, "tls"):
		hint = "the broker closed the connection during the TLS handshake — does it require a client certificate? set cert_file/key_file"
	case strings.Contains(msg, "remote error: tls: unknown certificate authority"),
		strings.Contains(msg, "remote error: tls: bad certificate"),
		strings.Contains(msg, "remote error: tls: certificate required"),
		strings.Contains(msg, "remote error: tls: unknown certificate"),
		strings.Contains(msg, "remote error: tls: handshake failure") && o.CertFile != "":
		hint = "tls: the broker refused our client certificate — check cert_file/key_file (" + o.CertFile + ") and that the province's CA signed it"
	case strings.Contains(msg, "not Authorized"), strings.Contains(msg, "bad user name or password"):
		hint = "the broker refused our credentials — check username, password_file or the client certificate"
	case strings.Contains(msg, "identifier rejected"):
		hint = "the broker rejected the client id — check gateway_id"
	case errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(msg, "connection refused"):
		hint = "connection refused — is the broker running at broker_url?"
	case isTimeout(err):
		hint = "no answer from the broker — is the network up and broker_url right?"
	case strings.Contains(msg, "connection lost"), errors.Is(err, syscall.ECONNRESET), strings.Contains(msg, "EOF"):
		hint = "the broker closed the connection — if this repeats, check the broker's ACL for this gateway's topics"
	default:
		return msg
	}
	return hint + ": " + msg
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || strings.Contains(err.Error(), "i/o timeout") || strings.Contains(err.Error(), "no answer from the broker")
}
