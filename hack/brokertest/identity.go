package brokertest

import (
	"fmt"
	"strings"
)

// IdentityListener is what Config.Identity adds to the TLS listener, the lines of the example
// mosquitto.conf in docs/wire-format.md ("Identity and ACL"): the certificate is required, its
// common name is the username the ACL sees, and it replaces the client id the client chose, so
// one certificate holder cannot take over another gateway's connection by choosing its id.
const IdentityListener = "require_certificate true\nuse_identity_as_username true\nuse_username_as_clientid true\n"

// IdentityACL is the ACL of docs/wire-format.md ("Identity and ACL") for the given receiver
// identities (certificate common names; they contain a character a gateway id cannot, such as
// ':', so no gateway certificate can ever name one) and record kinds. A gateway (%u, its
// certificate's common name, which is its gateway id) may write its own record topics of
// those kinds and its status, and read its own receipts; only receivers read records and
// write receipts.
func IdentityACL(receivers []string, kinds ...string) string {
	var b strings.Builder
	b.WriteString("# gateways: %u is the certificate's common name, the gateway id\n")
	for _, k := range kinds {
		fmt.Fprintf(&b, "pattern write obdgw/v1/+/+/%%u/%s\n", k)
	}
	b.WriteString("pattern write obdgw/v1/+/+/%u/status\n")
	b.WriteString("pattern read obdgw/v1/+/+/%u/receipt\n")
	for _, r := range receivers {
		fmt.Fprintf(&b, "\n# receiver\nuser %s\ntopic read obdgw/v1/#\ntopic write obdgw/v1/+/+/+/receipt\n", r)
	}
	return b.String()
}
