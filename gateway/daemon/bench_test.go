package daemon

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/drivers/serialport"
	"github.com/obdgw/obdgw/gateway/bay"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/workorder"
	"github.com/obdgw/obdgw/hack/brokertest"
)

func benchConfig(dir string, bays int) config.Config {
	cfg := config.Default()
	cfg.StateDir = dir
	cfg.GatewayID = "gw-bench-01"
	cfg.Company = config.Company{Code: "330106000099901", Name: "杭州示例汽车维修有限公司", Province: "33"}
	for i := 1; i <= bays; i++ {
		cfg.Bays = append(cfg.Bays, config.Bay{Name: fmt.Sprintf("bay%d", i), OBD: fmt.Sprintf("serial:///dev/ttyUSB%d", i)})
	}
	return cfg
}

// absent is the Dial of a bay with nothing plugged in.
func absent(ctx context.Context, b config.Bay) (bay.Conn, error) {
	return nil, fmt.Errorf("open %s: %w", b.OBD, serialport.ErrNotFound)
}

// BenchmarkColdStart measures start to ready (store open, 8 bay supervisors, API listening)
// without adapters, beside opening the bbolt file alone in the same run.
func BenchmarkColdStart(b *testing.B) {
	var ready, open time.Duration
	for i := 0; i < b.N; i++ {
		dir := b.TempDir()
		t0 := time.Now()
		db, err := buffer.Open(filepath.Join(dir, "alone.db"), buffer.Options{})
		if err != nil {
			b.Fatal(err)
		}
		open += time.Since(t0)
		db.Close()

		cfg := benchConfig(filepath.Join(dir, "state"), 8)
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		t0 = time.Now()
		d, err := New(&cfg, Options{Listener: ln, Dial: absent})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		readyc, done := make(chan struct{}), make(chan error, 1)
		go func() { done <- d.Run(ctx, func() { close(readyc) }) }()
		<-readyc
		ready += time.Since(t0)
		cancel()
		<-done
	}
	n := float64(b.N)
	b.ReportMetric(float64(ready.Microseconds())/1000/n, "ms-to-ready")
	b.ReportMetric(float64(open.Microseconds())/1000/n, "ms-bbolt-open")
	b.ReportMetric(float64(ready)/float64(open), "x-bbolt-open")
}

// TestRSSChild is the measured process of BenchmarkRSS; it does nothing in a normal run.
func TestRSSChild(t *testing.T) {
	mode := os.Getenv("OBDGW_RSS_CHILD")
	if mode == "" {
		t.Skip("only run as the child of BenchmarkRSS")
	}
	if mode != "baseline" {
		cfg := benchConfig(t.TempDir(), 8)
		dial := absent
		if mode == "scanning" {
			dial = simDial(t, "petrol")
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		d, err := New(&cfg, Options{Listener: ln, Dial: dial, Poll: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go d.Run(ctx, nil)
		end := time.Now().Add(3 * time.Second)
		for time.Now().Before(end) {
			if mode == "scanning" {
				for _, s := range d.bays {
					go s.ScanNow(ctx)
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
	} else {
		time.Sleep(time.Second)
	}
	f, _ := os.Open("/proc/self/status")
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmRSS:") || strings.HasPrefix(sc.Text(), "VmHWM:") {
			fmt.Println("RSS", sc.Text())
		}
	}
}

// BenchmarkRSS reports the daemon's resident memory with 8 configured bays, idle (no adapters)
// and while all 8 scan simulated cars, beside the test binary doing nothing.
func BenchmarkRSS(b *testing.B) {
	measure := func(mode string) (rss, hwm float64) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRSSChild$", "-test.v")
		cmd.Env = append(os.Environ(), "OBDGW_RSS_CHILD="+mode)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("child %s: %v\n%s", mode, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == "RSS" {
				kb, _ := strconv.ParseFloat(f[2], 64)
				if f[1] == "VmRSS:" {
					rss = kb / 1024
				} else {
					hwm = kb / 1024
				}
			}
		}
		return
	}
	for i := 0; i < b.N; i++ {
		base, _ := measure("baseline")
		idle, _ := measure("idle")
		_, scanHWM := measure("scanning")
		b.ReportMetric(idle, "MB-idle-8-bays")
		b.ReportMetric(scanHWM, "MB-peak-scanning-8-bays")
		b.ReportMetric(base, "MB-test-binary")
	}
}

// BenchmarkSettleToPuback measures settlement → PUBACK through a real Mosquitto over TLS on
// loopback, beside a plain paho QoS 1 publish of the same size in the same run.
func BenchmarkSettleToPuback(b *testing.B) {
	br := brokertest.Start(b, brokertest.Config{})
	cfg := benchConfig(b.TempDir(), 0)
	cfg.Broker.URL, cfg.Broker.CAFile, cfg.Broker.Delivery, cfg.Broker.DrainRate = br.TLSURL(), br.CA.CertFile, "puback", 0
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	d, err := New(&cfg, Options{Listener: ln})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	readyc := make(chan struct{})
	go func() { done <- d.Run(ctx, func() { close(readyc) }) }()
	defer func() { cancel(); <-done }()
	<-readyc
	for !d.up.Status().Connected {
		time.Sleep(10 * time.Millisecond)
	}
	km := int64(1000)
	var lat []time.Duration
	var size int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o, err := d.wo.Create(workorder.NewOrder{Plate: "浙A7K2M9", PlateColor: "blue", VIN: "LK6ADCE15PB405127", MileageKm: &km, Fault: "保养"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.wo.AddItems(o.ID, workorder.Item{Name: "更换机油", Hours: "0.5"}); err != nil {
			b.Fatal(err)
		}
		km++
		before := d.up.Status().Delivered
		t0 := time.Now()
		st, err := d.wo.Settle(o.ID, workorder.SettleRequest{CostListCode: fmt.Sprintf("BENCH-%06d", i)})
		if err != nil {
			b.Fatal(err)
		}
		for d.up.Status().Delivered == before {
			time.Sleep(100 * time.Microsecond)
		}
		lat = append(lat, time.Since(t0))
		if size == 0 {
			recs, _ := d.db.PeekAfter(st.Seq-1, 1)
			if len(recs) > 0 {
				size = len(recs[0].Payload)
			}
		}
	}
	b.StopTimer()
	plain := plainPublish(b, br, b.N, max(size, 512))
	p50, p99 := pct(lat, 50), pct(lat, 99)
	b.ReportMetric(ms(p50), "ms-p50")
	b.ReportMetric(ms(p99), "ms-p99")
	b.ReportMetric(ms(pct(plain, 50)), "ms-p50-plain-publish")
	b.ReportMetric(float64(p50)/float64(pct(plain, 50)), "x-plain-p50")
}

func plainPublish(b *testing.B, br *brokertest.Broker, n, size int) []time.Duration {
	o := mqtt.NewClientOptions().AddBroker(br.URL()).SetClientID("bench-plain").SetAutoReconnect(false)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer c.Disconnect(100)
	payload := make([]byte, size)
	var out []time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		tok := c.Publish("bench/plain", 1, false, payload)
		if tok.Wait(); tok.Error() != nil {
			b.Fatal(tok.Error())
		}
		out = append(out, time.Since(t0))
	}
	return out
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
