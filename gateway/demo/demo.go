package demo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/drivers/elm327/elm327sim"
	"github.com/obdgw/obdgw/drivers/serialport/ptypair"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/daemon"
	"github.com/obdgw/obdgw/gateway/uplink"
	"github.com/obdgw/obdgw/gateway/wire"
)

// Broker names an outside broker for the demo to use instead of its in-process one.
type Broker struct {
	URL      string // tls://127.0.0.1:port
	CAFile   string
	CertFile string // client certificate, when the broker asks for one
	KeyFile  string
}

// Options configure Run. The zero value runs the demo as `obdgw demo` does.
type Options struct {
	Stdout io.Writer    // the console URL and, after the visit, the delivered record
	Stderr io.Writer    // progress of the visit, one line a step
	Logger *slog.Logger // component logs; nil discards
	// Listen is the console and API address; default 127.0.0.1:8080, or a free loopback
	// port when that one is taken.
	Listen string
	// StateDir holds the demo's store, receiver files and secrets; "" makes a temporary
	// directory that is removed at the end.
	StateDir string
	// ExitAfterVisit ends Run once the visit's record is delivered; otherwise Run keeps
	// serving the console until ctx ends.
	ExitAfterVisit bool
	// Broker, when set, replaces the in-process broker (the end-to-end test passes Mosquitto).
	Broker *Broker
	// Scenarios of the two bays' simulated cars; defaults "petrol" and "diesel".
	Scenarios [2]string
	// Fast turns off the simulators' serial pacing and ECU latency (tests).
	Fast bool
	// Timeout bounds the visit (default 2 min).
	Timeout time.Duration
}

// Result is what the visit produced.
type Result struct {
	ConsoleURL string          `json:"console_url"`
	OrderID    string          `json:"order_id"`
	RecordID   string          `json:"record_id"`
	Delivered  json.RawMessage `json:"delivered"` // the receiver's stored line for the record
}

// Visit values: invented, in the formats of ehr-record.md.
const (
	visitPlate    = "浙A7K2M9"
	visitMileage  = 86412
	visitCostList = "HS-DEMO-0001"
	demoGateway   = "demo-gw-01"
	demoCompany   = "330106000099901"
)

// Run starts the simulated workshop and plays the visit.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Stdout == nil {
		o.Stdout = io.Discard
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Scenarios[0] == "" {
		o.Scenarios[0] = "petrol"
	}
	if o.Scenarios[1] == "" {
		o.Scenarios[1] = "diesel"
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	say := func(format string, a ...any) { fmt.Fprintf(o.Stderr, "demo: "+format+"\n", a...) }

	dir := o.StateDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "obdgw-demo-")
		if err != nil {
			return nil, fmt.Errorf("demo: temporary state directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("demo: state directory: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The provincial side: a broker (in-process unless one is given) and the receiver.
	br := o.Broker
	if br == nil {
		t, err := newBrokerTLS(dir)
		if err != nil {
			return nil, err
		}
		url, stop, err := startBroker(t, o.Logger)
		if err != nil {
			return nil, err
		}
		defer stop()
		br = &Broker{URL: url, CAFile: t.CAFile}
		say("in-process MQTT broker with TLS on %s", url)
	}
	outPath := filepath.Join(dir, "received.jsonl")
	rx, err := cloud.NewReceiver(uplink.ReceiverOptions(cloud.ReceiverOptions{
		Broker: br.URL, CAFile: br.CAFile, CertFile: br.CertFile, KeyFile: br.KeyFile,
		ClientID: "demo-receiver", Group: "demo",
		StatePath: filepath.Join(dir, "receiver.db"), OutPath: outPath,
		Logger: o.Logger.With("component", "receiver"),
	}))
	if err != nil {
		return nil, err
	}
	defer rx.Close()
	go rx.Run(ctx)

	// The workshop side: two simulated adapters on pseudo-terminals.
	var bays []config.Bay
	for i, name := range o.Scenarios {
		sc, err := elm327sim.Load(name)
		if err != nil {
			return nil, fmt.Errorf("demo: scenario %q: %w", name, err)
		}
		p, err := ptypair.Open()
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		defer p.Close()
		so := elm327sim.Options{}
		if o.Fast {
			so.Baud, so.NoLatency = -1, true
		}
		sim := elm327sim.New(sc, so)
		go sim.Serve(ctx, p.Master)
		bay := fmt.Sprintf("bay%d", i+1)
		bays = append(bays, config.Bay{Name: bay, OBD: "serial://" + p.SlavePath})
		say("%s: simulated ELM327 adapter (%s) on %s", bay, sc.Description, p.SlavePath)
	}

	token, tokenFile, err := makeToken(dir)
	if err != nil {
		return nil, err
	}
	cfg := config.Default()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.GatewayID = demoGateway
	cfg.Company = config.Company{Code: demoCompany, Name: "杭州示例汽车维修有限公司", Province: "33"}
	cfg.Bays = bays
	cfg.Broker.URL, cfg.Broker.CAFile = br.URL, br.CAFile
	cfg.Broker.CertFile, cfg.Broker.KeyFile = br.CertFile, br.KeyFile
	cfg.Broker.DrainRate = 0
	cfg.API.Tokens = []config.Token{{Name: "demo", File: tokenFile, Secret: token, Role: "manager"}}

	listen := o.Listen
	if listen == "" {
		listen = "127.0.0.1:8080"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil && o.Listen == "" {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, fmt.Errorf("demo: console address %s: %w", listen, err)
	}
	d, err := daemon.New(&cfg, daemon.Options{Logger: o.Logger, Listener: ln, Poll: time.Second})
	if err != nil {
		ln.Close()
		return nil, err
	}
	readyc := make(chan struct{})
	runErr := make(chan error, 1)
	go func() { runErr <- d.Run(ctx, func() { close(readyc) }) }()
	select {
	case <-readyc:
	case err := <-runErr:
		return nil, fmt.Errorf("demo: gateway did not start: %w", err)
	}
	base := "http://" + ln.Addr().String()
	res := &Result{ConsoleURL: base + "/"}
	fmt.Fprintf(o.Stdout, "console: %s  (token: %s)\n", res.ConsoleURL, token)

	vctx, vcancel := context.WithTimeout(ctx, o.Timeout)
	err = visit(vctx, &client{base: base + "/api/v1", token: token}, d.StoreInfo().Incarnation, outPath, res, say)
	vcancel()
	if err != nil {
		cancel()
		<-runErr
		return res, err
	}
	fmt.Fprintf(o.Stdout, "%s\n", res.Delivered)
	if !o.ExitAfterVisit {
		say("the console keeps running at %s — press Ctrl-C to stop", res.ConsoleURL)
		<-ctx.Done()
	}
	cancel()
	if err := <-runErr; err != nil {
		return res, err
	}
	return res, nil
}

func makeToken(dir string) (secret, file string, err error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	secret = hex.EncodeToString(b)
	file = filepath.Join(dir, "api-token")
	return secret, file, os.WriteFile(file, []byte(secret+"\n"), 0o600)
}

// visit plays the scripted visit through the REST API.
func visit(ctx context.Context, c *client, incarnation, outPath string, res *Result, say func(string, ...any)) error {
	var bay struct {
		State    string          `json:"state"`
		Adapter  string          `json:"adapter"`
		LastScan json.RawMessage `json:"last_scan"`
		Vehicle  *struct {
			VIN string `json:"vin"`
		} `json:"vehicle"`
	}
	say("waiting for the car in bay1 to answer …")
	if err := poll(ctx, func() (bool, error) {
		if err := c.do(ctx, "GET", "/bays/bay1", nil, &bay); err != nil {
			return false, err
		}
		return bay.State == "ready" && bay.Vehicle != nil && bay.Vehicle.VIN != "", nil
	}); err != nil {
		return fmt.Errorf("demo: bay1 never became ready (state %q): %w", bay.State, err)
	}
	vin := bay.Vehicle.VIN
	say("bay1: %s connected; the car reports VIN %s", bay.Adapter, vin)

	var order struct {
		ID    string `json:"id"`
		Scans []struct {
			ID string `json:"id"`
		} `json:"scans"`
		VINSource string `json:"vin_source"`
	}
	mileage := int64(visitMileage)
	err := c.do(ctx, "POST", "/workorders", map[string]any{
		"plate": visitPlate, "plate_color": "blue", "vin": vin, "mileage_km": mileage,
		"bay": "bay1", "fault_description": "",
		// Owner data is kept for the shop only; it must never reach the record.
		"owner_name": "张三", "owner_phone": "13800138000",
	}, &order)
	if err != nil {
		return fmt.Errorf("demo: open the work order: %w", err)
	}
	res.OrderID = order.ID
	say("work order %s opened for %s on bay1", order.ID, visitPlate)

	if err := c.do(ctx, "POST", "/bays/bay1/scan", map[string]any{}, nil); err != nil {
		return fmt.Errorf("demo: ask bay1 to scan: %w", err)
	}
	if err := poll(ctx, func() (bool, error) {
		if err := c.do(ctx, "GET", "/workorders/"+order.ID, nil, &order); err != nil {
			return false, err
		}
		return len(order.Scans) > 0, nil
	}); err != nil {
		return fmt.Errorf("demo: the scan never reached the work order: %w", err)
	}
	var scan struct {
		Report struct {
			MIL  *bool `json:"mil"` // null when the scan could not read it
			DTCs struct {
				Stored []struct {
					Code        string `json:"code"`
					Description string `json:"description"`
				} `json:"stored"`
			} `json:"dtcs"`
		} `json:"report"`
	}
	if err := c.do(ctx, "GET", "/scans/"+order.Scans[len(order.Scans)-1].ID, nil, &scan); err == nil {
		var codes []string
		for _, d := range scan.Report.DTCs.Stored {
			codes = append(codes, d.Code+" "+d.Description)
		}
		say("bay1: scanned — MIL %s, stored codes: %s", onOff(scan.Report.MIL), strings.Join(codes, "; "))
	}
	for _, it := range []map[string]any{
		{"name": "排放故障诊断（OBD读码）", "hours": json.Number("1.0")},
		{"name": "更换三元催化转化器", "hours": json.Number("2.5")},
	} {
		if err := c.do(ctx, "POST", "/workorders/"+order.ID+"/items", it, nil); err != nil {
			return fmt.Errorf("demo: add a repair item: %w", err)
		}
	}
	if err := c.do(ctx, "POST", "/workorders/"+order.ID+"/parts", map[string]any{
		"name": "三元催化转化器总成", "code": "1205100-TW01", "quantity": json.Number("1"),
	}, nil); err != nil {
		return fmt.Errorf("demo: add a part: %w", err)
	}
	var settled struct {
		Seq      uint64 `json:"outbox_seq"`
		Warnings []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"warnings"`
	}
	if err := c.do(ctx, "POST", "/workorders/"+order.ID+"/settle", map[string]any{"costlistcode": visitCostList}, &settled); err != nil {
		return fmt.Errorf("demo: settle: %w", err)
	}
	res.RecordID = wire.MakeID(demoGateway, incarnation, settled.Seq)
	say("settled as %s; JT/T 1132 record %s queued in the outbox", visitCostList, res.RecordID)
	for _, w := range settled.Warnings {
		say("  warning: %s %s", w.Field, w.Message)
	}
	if err := poll(ctx, func() (bool, error) {
		line, err := findLine(outPath, res.RecordID)
		if err != nil || line == nil {
			return false, err
		}
		res.Delivered = line
		return true, nil
	}); err != nil {
		return fmt.Errorf("demo: record %s not delivered to the receiver: %w", res.RecordID, err)
	}
	say("the receiver stored record %s", res.RecordID)
	// Where to look in the console: the bay's live data charts, the customer's printable
	// report of the scan, the car's history.
	say("live data charts: %s#/bays/bay1", res.ConsoleURL)
	say("customer diagnostic report (print or save as PDF): %s#/report/scan/%s", res.ConsoleURL, order.Scans[len(order.Scans)-1].ID)
	say("vehicle history: %s#/vehicles/%s", res.ConsoleURL, vin)
	return nil
}

func onOff(b *bool) string {
	switch {
	case b == nil:
		return "unknown (not read)"
	case *b:
		return "on"
	}
	return "off"
}

// findLine returns the receiver's JSONL line whose envelope id is id.
func findLine(path, id string) (json.RawMessage, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		var env struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(sc.Bytes(), &env) == nil && env.ID == id {
			return json.RawMessage(bytes.Clone(sc.Bytes())), nil
		}
	}
	return nil, sc.Err()
}

func poll(ctx context.Context, f func() (bool, error)) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		ok, err := f()
		if ok {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}

// client speaks to the daemon's API as a shop's management software would.
type client struct {
	base, token string
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
			Field string `json:"field"`
		}
		json.Unmarshal(data, &e)
		if e.Field != "" {
			return fmt.Errorf("%s %s: %d %s (field %s)", method, path, resp.StatusCode, e.Error, e.Field)
		}
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
