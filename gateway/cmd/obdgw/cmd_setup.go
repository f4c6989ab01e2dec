package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/pki"
)

const setupUsage = `[--dir /etc/obdgw] [--tokens dms,tablet] [--trial-pki --gateway-id ID --broker-host HOST[,HOST] [--receiver NAME]]`

func init() {
	register(command{
		name:    "setup",
		summary: "create the secret files a gateway needs (API tokens, mode 0600) and, for trials, a private CA with broker, gateway and receiver certificates",
		run: func(ctx context.Context, e *env, args []string) error {
			fs := newFlags(e, "setup", setupUsage)
			o := setupOptions{}
			fs.StringVar(&o.dir, "dir", "/etc/obdgw", "the configuration directory; secrets go to DIR/secrets, the trial CA to DIR/pki")
			tokens := fs.String("tokens", "dms,tablet", "API token holders, comma separated: one token file each")
			fs.BoolVar(&o.trialPKI, "trial-pki", false, "also make a private CA and the broker's, this gateway's and a receiver's certificates (for trials; a province's production PKI issues its own)")
			fs.StringVar(&o.gatewayID, "gateway-id", "", "with --trial-pki: the gateway id (gateway_id in the config), the client certificate's common name")
			hosts := fs.String("broker-host", "", "with --trial-pki: the broker's host names or addresses, comma separated (what gateways connect to)")
			fs.StringVar(&o.receiver, "receiver", "receiver1", "with --trial-pki: the receiver's name (its client certificate's common name, listed in the ACL)")
			fs.DurationVar(&o.validity, "validity", 2*365*24*time.Hour, "with --trial-pki: how long the certificates are valid")
			if err := fs.Parse(args); err != nil {
				return usageError("%v", err)
			}
			if fs.NArg() > 0 {
				return usageError("unexpected arguments: %s", strings.Join(fs.Args(), " "))
			}
			o.tokens = splitList(*tokens)
			o.hosts = splitList(*hosts)
			if err := o.check(); err != nil {
				return usageError("%v", err)
			}
			return setup(e.stdout, o)
		},
	})
}

type setupOptions struct {
	dir       string
	tokens    []string
	trialPKI  bool
	gatewayID string
	hosts     []string
	receiver  string
	validity  time.Duration
	now       time.Time // zero: time.Now()
}

var setupNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

func (o setupOptions) check() error {
	for _, t := range o.tokens {
		if !setupNameRe.MatchString(t) {
			return fmt.Errorf("--tokens: %q is not a name (letters, digits, '-', '_', '.')", t)
		}
	}
	if !o.trialPKI {
		if o.gatewayID != "" || len(o.hosts) > 0 {
			return errors.New("--gateway-id and --broker-host go with --trial-pki")
		}
		return nil
	}
	switch {
	case !setupNameRe.MatchString(o.gatewayID):
		return errors.New("--trial-pki needs --gateway-id, the gateway_id of the config (e.g. hz-0571-gw1)")
	case len(o.hosts) == 0:
		return errors.New("--trial-pki needs --broker-host, the name or address gateways connect to")
	case !setupNameRe.MatchString(o.receiver):
		return fmt.Errorf("--receiver: %q is not a name", o.receiver)
	case o.validity <= 0:
		return errors.New("--validity must be positive")
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// setup creates what is missing and keeps what exists: re-running it never replaces a token or
// a key in use.
func setup(out io.Writer, o setupOptions) error {
	now := o.now
	if now.IsZero() {
		now = time.Now()
	}
	secrets := filepath.Join(o.dir, "secrets")
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := os.Chmod(secrets, 0o700); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	say := func(path, what string) { fmt.Fprintf(out, "  %-40s %s\n", path, what) }
	fmt.Fprintf(out, "in %s:\n", o.dir)
	rel := func(p string) string { r, _ := filepath.Rel(o.dir, p); return r }
	for _, name := range o.tokens {
		p := filepath.Join(secrets, name+".token")
		var b [24]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		switch err := pki.WriteNew(p, []byte(base64.RawURLEncoding.EncodeToString(b[:])+"\n"), 0o600); {
		case errors.Is(err, os.ErrExist):
			say(rel(p), "kept (exists)")
		case err != nil:
			return fmt.Errorf("setup: %w", err)
		default:
			say(rel(p), "API token for "+name+" (give it to them; mode 0600)")
		}
	}
	if o.trialPKI {
		if err := setupPKI(out, o, now, say, rel); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "\nin obdgw.yaml:\n  api:\n    # each token's role: technician, front_desk, manager, shop_software or monitor (docs/api.md)\n    tokens:\n")
	for _, name := range o.tokens {
		fmt.Fprintf(out, "      - {name: %s, file: secrets/%s.token, role: %s}\n", name, name, setupRole(name))
	}
	if o.trialPKI {
		fmt.Fprintf(out, "  gateway_id: %s\n  broker:\n    url: mqtts://%s:8883\n    ca_file: secrets/ca.pem\n    cert_file: secrets/gw.crt\n    key_file: secrets/gw.key\n", o.gatewayID, o.hosts[0])
		fmt.Fprintf(out, "\non the broker (docs/wire-format.md, \"Identity and ACL\"): pki/ca.pem as cafile, pki/broker.crt and\npki/broker.key as certfile and keyfile, require_certificate true, use_identity_as_username true;\nthe receiver runs with --ca pki/ca.pem --cert pki/%[1]s.crt --key pki/%[1]s.key.\nKeep pki/ca.key off the gateway once the certificates are made.\n", o.receiver)
	}
	fmt.Fprintf(out, "\nthe daemon runs as user obdgw: chown -R obdgw:obdgw %s; then obdgw run --check-config --config %s\n",
		secrets, filepath.Join(o.dir, "obdgw.yaml"))
	return nil
}

func setupPKI(out io.Writer, o setupOptions, now time.Time, say func(string, string), rel func(string) string) error {
	dir := filepath.Join(o.dir, "pki")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	caCert, caKey := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	var ca *pki.CA
	cp, err1 := os.ReadFile(caCert)
	kp, err2 := os.ReadFile(caKey)
	switch {
	case err1 == nil && err2 == nil:
		if ca, err1 = pki.LoadCA(cp, kp); err1 != nil {
			return fmt.Errorf("setup: %s: %w", dir, err1)
		}
		say(rel(caCert), "kept (exists): issuing with it")
	case os.IsNotExist(err1) && os.IsNotExist(err2):
		var err error
		if ca, err = pki.NewCA("obdgw trial CA", now.Add(-time.Hour), now.Add(o.validity+24*time.Hour)); err != nil {
			return err
		}
		if err := ca.Pair.Write(caCert, caKey); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		say(rel(caCert), "trial CA certificate (and ca.key, mode 0600)")
	default:
		return fmt.Errorf("setup: %s: want both ca.pem and ca.key or neither (%v, %v)", dir, err1, err2)
	}
	issue := func(cert, key string, r pki.Request, what string) error {
		if _, err := os.Stat(cert); err == nil {
			say(rel(cert), "kept (exists)")
			return nil
		}
		r.NotBefore, r.NotAfter = now.Add(-time.Hour), now.Add(o.validity)
		p, err := ca.Issue(r)
		if err != nil {
			return err
		}
		if err := p.Write(cert, key); err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		say(rel(cert), what)
		return nil
	}
	secrets := filepath.Join(o.dir, "secrets")
	if err := issue(filepath.Join(dir, "broker.crt"), filepath.Join(dir, "broker.key"),
		pki.Request{CommonName: o.hosts[0], Usage: pki.Server, Hosts: o.hosts}, "broker certificate for "+strings.Join(o.hosts, ", ")+" (and broker.key)"); err != nil {
		return err
	}
	if err := issue(filepath.Join(dir, o.receiver+".crt"), filepath.Join(dir, o.receiver+".key"),
		pki.Request{CommonName: o.receiver, Usage: pki.Client}, "receiver certificate, common name "+o.receiver); err != nil {
		return err
	}
	if err := issue(filepath.Join(secrets, "gw.crt"), filepath.Join(secrets, "gw.key"),
		pki.Request{CommonName: o.gatewayID, Usage: pki.Client}, "this gateway's certificate, common name "+o.gatewayID+" (and gw.key, mode 0600)"); err != nil {
		return err
	}
	gwCA := filepath.Join(secrets, "ca.pem")
	switch err := pki.WriteNew(gwCA, ca.Pair.CertPEM, 0o644); {
	case errors.Is(err, os.ErrExist):
		say(rel(gwCA), "kept (exists)")
	case err != nil:
		return fmt.Errorf("setup: %w", err)
	default:
		say(rel(gwCA), "the CA the gateway checks the broker against")
	}
	return nil
}

// setupRole is the role the printed configuration suggests for a token holder: the role of
// the same name, else the DMS's (shop_software); the shop changes it to who holds the token.
func setupRole(name string) string {
	if slices.Contains(config.TokenRoles, name) {
		return name
	}
	return config.DefaultTokenRole
}
