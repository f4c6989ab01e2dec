package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/gateway/uplink"
	"github.com/obdgw/obdgw/gateway/wire"
)

// GatewayConfig is what a gateway child process gets (as JSON in an environment variable).
type GatewayConfig struct {
	Dir            string         // outbox.db and committed.log live here
	GatewayID      string         // also the MQTT client id
	Broker         string         // tls://… or tcp://…
	CAFile         string         `json:",omitempty"`
	CertFile       string         `json:",omitempty"`
	KeyFile        string         `json:",omitempty"`
	Delivery       cloud.Delivery // puback or receipt
	Records        int            // total to append over all runs
	Kinds          []string       // record kinds, used in turn
	Interval       time.Duration  // pause between appends
	ReceiptTimeout time.Duration  `json:",omitempty"`
	InFlight       int            `json:",omitempty"`
}

// Topic is the chaos gateways' place in the topic tree.
func Topic(gateway string) wire.Topic {
	return wire.Topic{Province: "33", CompanyCode: "330106000099901", Gateway: gateway}
}

// UplinkOptions is the uplink of a chaos gateway, wired to the wire format by gateway/uplink
// exactly as the daemon's is; only the transport settings and the short backoff are the
// harness's own.
func UplinkOptions(c GatewayConfig, log *slog.Logger) cloud.UplinkOptions {
	return uplink.Options(Topic(c.GatewayID), "chaos", cloud.UplinkOptions{
		Broker: c.Broker, AllowPlain: strings.HasPrefix(c.Broker, "tcp://"),
		CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile,
		Delivery: c.Delivery, InFlight: c.InFlight, ReceiptTimeout: c.ReceiptTimeout,
		BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second,
		Logger: log,
	})
}

// Envelope is record number n of a kind, as the gateway would store it (id stamped at send).
func Envelope(gateway, kind string, n int, at time.Time) ([]byte, error) {
	p, _ := json.Marshal(map[string]any{"n": n, "kind": kind})
	return wire.Marshal(wire.Envelope{Kind: kind, Schema: kind + "/1", Gateway: gateway,
		CompanyCode: Topic(gateway).CompanyCode, CreatedAt: at, Payload: p})
}

// RunGateway appends records numbered after the last one in committed.log, each logged there
// once Append returned, while an uplink drains the outbox; it returns when all Records are
// appended and the outbox is empty, or when ctx ends.
func RunGateway(ctx context.Context, c GatewayConfig, log *slog.Logger) error {
	box, err := buffer.Open(filepath.Join(c.Dir, "outbox.db"), buffer.Options{GatewayID: c.GatewayID, Logger: log})
	if err != nil {
		return err
	}
	defer box.Close()
	entries, err := ReadLog(filepath.Join(c.Dir, "committed.log"))
	if err != nil {
		return err
	}
	lf, err := os.OpenFile(filepath.Join(c.Dir, "committed.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer lf.Close()
	up, err := cloud.NewUplink(box, UplinkOptions(c, log))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- up.Run(ctx) }()
	top := Topic(c.GatewayID)
	for n := len(entries) + 1; n <= c.Records && ctx.Err() == nil; n++ {
		kind := c.Kinds[n%len(c.Kinds)]
		b, err := Envelope(c.GatewayID, kind, n, time.Now())
		if err != nil {
			return err
		}
		rec, err := box.Append(ctx, kind, top.Record(kind), b)
		if err != nil {
			return fmt.Errorf("append %d: %w", n, err)
		}
		// One write(2) per line: a SIGKILL cannot leave half a line in the page cache.
		if _, err := fmt.Fprintf(lf, "%s %s %d\n", rec.ID, kind, n); err != nil {
			return err
		}
		if c.Interval > 0 {
			time.Sleep(c.Interval)
		}
	}
	for ctx.Err() == nil && box.Stats().Depth > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	return <-done
}

// Entry is one appended record.
type Entry struct {
	ID   string
	Kind string
}

// ReadLog reads committed.log (a missing file is empty; a torn last line is ignored).
func ReadLog(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 3 {
			out = append(out, Entry{ID: fs[0], Kind: fs[1]})
		}
	}
	return out, sc.Err()
}
