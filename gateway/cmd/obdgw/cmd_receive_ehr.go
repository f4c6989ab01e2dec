package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"log/slog"
	"os"
	"strings"

	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/ehrhttp"
	"github.com/obdgw/obdgw/gateway/wire"
)

// ehrForward holds the receive command's flags for forwarding stored ehr records to the
// national eHR HTTPS API.
type ehrForward struct {
	url, keyFile, secretFile, ca, tokenPath, addPath *string
	expired, rateLimit, duplicate                    *string
	anyCompany                                       *bool
}

func ehrForwardFlags(fs *flag.FlagSet) *ehrForward {
	return &ehrForward{
		url:        fs.String("forward-ehr", "", "forward each stored ehr record to this eHR API service root (https://…/restservices/lcipprodatarest/)"),
		keyFile:    fs.String("ehr-app-key-file", "", "file holding the account's companycode (mode 0600)"),
		secretFile: fs.String("ehr-app-secret-file", "", "file holding the account's companypassword (mode 0600)"),
		ca:         fs.String("ehr-ca", "", "PEM file of the CA of the platform's certificate (default: the system roots)"),
		tokenPath:  fs.String("ehr-token-path", "", "login call under the service root (default "+ehrhttp.DefaultTokenPath+"; unconfirmed per province)"),
		addPath:    fs.String("ehr-add-path", "", "add call under the service root (default "+ehrhttp.DefaultAddPath+"; unconfirmed per province)"),
		expired:    fs.String("ehr-expired-codes", "", "comma-separated add codes meaning the token expired (unconfirmed; default: log in again once on any refusal)"),
		rateLimit:  fs.String("ehr-rate-limit-codes", "", "comma-separated codes meaning slow down (unconfirmed; HTTP 429 always is)"),
		duplicate:  fs.String("ehr-duplicate-codes", "", "comma-separated codes meaning the platform has the record already (unconfirmed)"),
		anyCompany: fs.Bool("ehr-any-company", false, "forward records of every company_code, not only the account's (an account that may add for every shop)"),
	}
}

// forwarder builds the receiver's forward queue; nil without --forward-ehr.
func (f *ehrForward) forwarder(log *slog.Logger) (*cloud.Forwarder, error) {
	if *f.url == "" {
		for name, v := range map[string]string{"--ehr-app-key-file": *f.keyFile, "--ehr-app-secret-file": *f.secretFile, "--ehr-ca": *f.ca} {
			if v != "" {
				return nil, usageError("%s without --forward-ehr", name)
			}
		}
		return nil, nil
	}
	if *f.keyFile == "" || *f.secretFile == "" {
		return nil, usageError("--forward-ehr needs --ehr-app-key-file and --ehr-app-secret-file")
	}
	key, err := config.ReadSecret(*f.keyFile)
	if err != nil {
		return nil, usageError("--ehr-app-key-file: %v", err)
	}
	secret, err := config.ReadSecret(*f.secretFile)
	if err != nil {
		return nil, usageError("--ehr-app-secret-file: %v", err)
	}
	var tc *tls.Config
	if *f.ca != "" {
		pem, err := os.ReadFile(*f.ca)
		if err != nil {
			return nil, usageError("--ehr-ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError("--ehr-ca: %s holds no PEM certificate", *f.ca)
		}
		tc = &tls.Config{RootCAs: pool}
	}
	c, err := ehrhttp.New(ehrhttp.Options{URL: *f.url, TokenPath: *f.tokenPath, AddPath: *f.addPath, AppKey: key, AppSecret: secret, TLS: tc,
		ExpiredCodes: codes(*f.expired), RateLimitCodes: codes(*f.rateLimit), DuplicateCodes: codes(*f.duplicate),
		Logger: log.With("component", "ehr")})
	if err != nil {
		var oe *ehrhttp.OptionError
		if errors.As(err, &oe) && oe.Key == "url" {
			return nil, usageError("--forward-ehr: %v", oe.Err)
		}
		return nil, usageError("%v", err)
	}
	return &cloud.Forwarder{Kinds: []string{wire.KindEHR}, Send: c.Forwarder(*f.anyCompany)}, nil
}

// codes splits a comma-separated list of platform codes.
func codes(s string) []string {
	var out []string
	for _, c := range strings.Split(s, ",") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}
