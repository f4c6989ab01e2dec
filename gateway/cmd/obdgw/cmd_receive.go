package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/cloud/pgstore"
	"github.com/obdgw/obdgw/gateway/uplink"
)

func init() {
	register(command{
		name:    "receive",
		summary: "reference provincial receiver: store records (JSONL, or PostgreSQL shared by several receivers) and send receipts",
		run:     runReceive,
	})
}

const receiveUsage = `--broker URL [--ca FILE --cert FILE --key FILE] [--user NAME --password-file FILE] (--state DIR --out FILE.jsonl | --postgres postgres://USER@HOST/DB [--postgres-password-file FILE]) [--group NAME] [--max-message-bytes N] [--metrics 127.0.0.1:PORT] [--forward-ehr URL --ehr-app-key-file FILE --ehr-app-secret-file FILE [--ehr-ca FILE] ...]`

func runReceive(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "receive", receiveUsage)
	broker := fs.String("broker", "", "broker URL: tls://host:port (tcp:// only to a loopback broker, or with --allow-plain)")
	allowPlain := fs.Bool("allow-plain", false, "allow an unencrypted tcp:// broker on another host (trials; tcp:// to a loopback broker needs no flag)")
	ca := fs.String("ca", "", "PEM file of the CA that signs the broker's certificate")
	cert := fs.String("cert", "", "client certificate (mutual TLS)")
	key := fs.String("key", "", "client key (mutual TLS; mode 0600, checked at every connect)")
	user := fs.String("user", "", "MQTT username")
	passFile := fs.String("password-file", "", "file holding the MQTT password (mode 0600)")
	state := fs.String("state", "", "state directory (the de-duplication file lives here)")
	out := fs.String("out", "", "JSONL file accepted records are appended to")
	pgURL := fs.String("postgres", "", "store records in this PostgreSQL database instead (postgres://USER@HOST:PORT/DB?sslmode=verify-full; no password in it): receivers of one --group share it")
	pgPass := fs.String("postgres-password-file", "", "file holding the database password (mode 0600); without it PGPASSFILE or ~/.pgpass")
	group := fs.String("group", "obdgw", "shared subscription group: receivers in one group share the records")
	clientID := fs.String("client-id", "", "MQTT client id (default obdgw-receiver-<group>-<host>)")
	maxMsg := fs.Int("max-message-bytes", 256<<10, "drop a message larger than this before reading it (bound it at the broker too: max_packet_size)")
	metrics := fs.String("metrics", "", "serve /metrics and /healthz on this loopback address (e.g. 127.0.0.1:9101)")
	fwd := ehrForwardFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError("%v", err)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	required := []struct{ name, v string }{{"--broker", *broker}, {"--state", *state}, {"--out", *out}}
	if *pgURL != "" {
		// The database holds the records and what is stored: no local state, no JSONL.
		if *out != "" || *state != "" {
			return usageError("--postgres stores the records and their state: drop --out and --state")
		}
		required = required[:1]
	} else if *pgPass != "" {
		return usageError("--postgres-password-file needs --postgres")
	}
	for _, f := range required {
		if f.v == "" {
			return usageError("%s is required (usage: obdgw receive %s)", f.name, receiveUsage)
		}
	}
	if *state != "" {
		if err := os.MkdirAll(*state, 0o700); err != nil {
			return fmt.Errorf("--state: %w", err)
		}
	}
	if *clientID == "" {
		host, _ := os.Hostname()
		*clientID = "obdgw-receiver-" + *group + "-" + strings.Map(func(r rune) rune {
			if r == '/' || r == '+' || r == '#' || r == ' ' {
				return '_'
			}
			return r
		}, host)
	}
	forward, err := fwd.forwarder(e.log)
	if err != nil {
		return err
	}
	if forward != nil && *pgURL != "" {
		return usageError("--forward-ehr needs the JSONL store (--state, --out): its queue lives in the receiver's state file")
	}
	ro := cloud.ReceiverOptions{
		Broker: *broker, AllowPlain: *allowPlain, CAFile: *ca, CertFile: *cert, KeyFile: *key,
		Username: *user, PasswordFile: *passFile, ClientID: *clientID, Group: *group,
		MaxMessageBytes: *maxMsg, Logger: e.log, Forward: forward,
	}
	where := *out
	if *pgURL != "" {
		st, err := pgstore.Open(ctx, pgstore.Options{URL: *pgURL, PasswordFile: *pgPass, Receiver: *clientID, Logger: e.log})
		if err != nil {
			return err
		}
		ro.Store, where = st, st.String()
	} else {
		ro.StatePath, ro.OutPath = filepath.Join(*state, "receiver.db"), *out
	}
	rx, err := cloud.NewReceiver(uplink.ReceiverOptions(ro))
	if err != nil {
		if ro.Store != nil {
			ro.Store.Close()
		}
		var oe *cloud.OptionError
		if errors.As(err, &oe) {
			if oe.Key == "broker_url" && (strings.HasPrefix(*broker, "tcp://") || strings.HasPrefix(*broker, "mqtt://")) {
				return usageError("%v (or pass --allow-plain for a trial)", err)
			}
			return usageError("%v", err)
		}
		return err
	}
	defer rx.Close()
	if *metrics != "" {
		host, _, err := net.SplitHostPort(*metrics)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return usageError("--metrics %q: want a loopback address like 127.0.0.1:9101", *metrics)
		}
		ln, err := net.Listen("tcp", *metrics)
		if err != nil {
			return fmt.Errorf("--metrics: %w", err)
		}
		srv := &http.Server{Handler: rx.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
	}
	e.log.Info("receive: running", "broker", *broker, "group", *group, "store", where)
	return rx.Run(ctx)
}
