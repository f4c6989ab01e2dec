package cloud_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/obdgw/obdgw/buffer"
	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/hack/brokertest"
	"github.com/obdgw/obdgw/hack/chaos"
)

// fill appends n records in transactions of 1,000 (fast set-up; the append path has its own
// benchmarks in buffer).
func fill(tb testing.TB, box *buffer.DB, gw string, n int) {
	tb.Helper()
	top := chaos.Topic(gw)
	for i := 0; i < n; {
		err := box.Update(func(tx *buffer.Tx) error {
			for j := 0; j < 1000 && i < n; j++ {
				i++
				p, err := chaos.Envelope(gw, "alpha", i, time.Now())
				if err != nil {
					return err
				}
				if _, err := tx.Append("alpha", top.Record("alpha"), p); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// settle collects the set-up's garbage (fill allocates a few MB) and returns it to the OS
// before a timed phase, so that the collector and the scavenger working through it do not
// land on whichever of the two compared phases happens to follow the set-up.
func settle() {
	debug.FreeOSMemory()
}

// plainPublish is the baseline: a bare paho client publishing n QoS 1 messages of the same
// size with the same window, nothing durable around it.
func plainPublish(b *testing.B, url string, payload []byte, n, window int) time.Duration {
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("plain-" + strconv.Itoa(n)).SetAutoReconnect(false))
	if tok := c.Connect(); tok.Wait() && tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer c.Disconnect(0)
	sem := make(chan struct{}, window)
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		sem <- struct{}{}
		tok := c.Publish("obdgw/v1/33/330106000099901/plain/ehr", 1, false, payload)
		wg.Go(func() {
			tok.Wait()
			if tok.Error() != nil {
				b.Error(tok.Error())
			}
			<-sem
		})
	}
	wg.Wait()
	return time.Since(start)
}

// BenchmarkDrainVsPlainPaho drains 5,000 outbox records at QoS 1 (puback delivery, window 16)
// to a local Mosquitto, and publishes the same number of same-sized messages with a plain paho
// client in the same run. ratio = uplink rate / plain rate (target ≥ 0.8). The two phases
// take turns going first, so that a machine whose load drifts during the run (other work on
// shared cores) does not favour whichever always runs second; run an even number of
// iterations (make bench: 4x).
func BenchmarkDrainVsPlainPaho(b *testing.B) {
	const n = 5000
	br := brokertest.Start(b, brokertest.Config{})
	var upTotal, plainTotal, connTotal time.Duration
	for i := range b.N {
		b.StopTimer()
		gw := fmt.Sprintf("gw-bench-%d", i)
		box := openBox(b, b.TempDir(), gw)
		fill(b, box, gw, n)
		payload, _ := chaos.Envelope(gw, "alpha", 1, time.Now())
		o := gwOptions(b, br, gw)
		o.Broker, o.AllowPlain, o.Delivery = br.URL(), true, cloud.DeliveryPUBACK
		uplink := func() {
			settle()
			b.StartTimer()
			start := time.Now()
			u := startUplink(b, box, o)
			// Status, not box.Stats: the outbox's Stats walks the kind buckets (O(n)).
			for u.Status().Delivered < n {
				time.Sleep(time.Millisecond)
			}
			upTotal += time.Since(start)
			connTotal += u.Status().LastConnect.Sub(start)
			b.StopTimer()
			u.stop()
		}
		plain := func() {
			settle()
			plainTotal += plainPublish(b, br.URL(), payload, n, 16)
		}
		if i%2 == 0 {
			uplink()
			plain()
		} else {
			plain()
			uplink()
		}
		b.StartTimer()
	}
	upRate := float64(n*b.N) / upTotal.Seconds()
	plainRate := float64(n*b.N) / plainTotal.Seconds()
	b.ReportMetric(upRate, "uplink-rec/s")
	b.ReportMetric(plainRate, "paho-rec/s")
	b.ReportMetric(upRate/plainRate, "ratio")
	b.ReportMetric(float64(connTotal.Milliseconds())/float64(b.N), "connect-ms")
}

// BenchmarkDrainReceipt drains 2,000 records in receipt mode through the reference receiver
// (its two fsyncs per batch included), beside the puback drain of the same records count.
func BenchmarkDrainReceipt(b *testing.B) {
	const n = 2000
	br := brokertest.Start(b, brokertest.Config{})
	startReceiver(b, br, br.URL(), nil)
	var total time.Duration
	for i := range b.N {
		b.StopTimer()
		gw := fmt.Sprintf("gw-rcpt-%d", i)
		box := openBox(b, b.TempDir(), gw)
		fill(b, box, gw, n)
		o := gwOptions(b, br, gw)
		o.Broker, o.AllowPlain = br.URL(), true
		b.StartTimer()
		start := time.Now()
		u := startUplink(b, box, o)
		for u.Status().Delivered < n {
			time.Sleep(time.Millisecond)
		}
		total += time.Since(start)
		b.StopTimer()
		u.stop()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "receipt-rec/s")
}

// timedBox records when each record left the outbox.
type timedBox struct {
	*buffer.DB
	mu    sync.Mutex
	acked map[uint64]time.Time
}

func (t *timedBox) AckMany(seqs []uint64) error {
	err := t.DB.AckMany(seqs)
	now := time.Now()
	t.mu.Lock()
	for _, seq := range seqs {
		t.acked[seq] = now
	}
	t.mu.Unlock()
	return err
}

// BenchmarkPublishLatency: an online uplink, one record appended at a time; latency from
// Append returning to the record leaving the outbox (puback: PUBACK; receipt: the receiver's
// receipt after its fsyncs). Reports p50 and p99 in milliseconds.
func BenchmarkPublishLatency(b *testing.B) {
	br := brokertest.Start(b, brokertest.Config{})
	for _, mode := range []cloud.Delivery{cloud.DeliveryPUBACK, cloud.DeliveryReceipt} {
		b.Run(string(mode), func(b *testing.B) {
			if mode == cloud.DeliveryReceipt {
				startReceiver(b, br, br.URL(), nil)
			}
			gw := "gw-lat-" + string(mode)
			box := &timedBox{DB: openBox(b, b.TempDir(), gw), acked: map[uint64]time.Time{}}
			o := gwOptions(b, br, gw)
			o.Broker, o.AllowPlain, o.Delivery = br.URL(), true, mode
			u := startUplink(b, box, o)
			waitFor(b, 20*time.Second, "connected", func() bool { return u.Status().Connected })
			top := chaos.Topic(gw)
			var lat []time.Duration
			b.ResetTimer()
			for i := range max(b.N, 200) {
				p, _ := chaos.Envelope(gw, "alpha", i+1, time.Now())
				r, err := box.Append(context.Background(), "alpha", top.Record("alpha"), p)
				if err != nil {
					b.Fatal(err)
				}
				appended := time.Now()
				for {
					box.mu.Lock()
					at, ok := box.acked[r.Seq]
					box.mu.Unlock()
					if ok {
						lat = append(lat, at.Sub(appended))
						break
					}
					time.Sleep(50 * time.Microsecond)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
		})
	}
}

// BenchmarkDrainRSS opens an outbox of 100,000 records in a child process (Open checks the
// whole file) and drains it to Mosquitto; it reports the child's peak resident set (VmHWM,
// the larger of the peak during Open and the peak during the drain, each reported too) and,
// at the end, VmRSS with its anonymous and file-backed parts (the binary's text and whatever
// of the mmapped bbolt file is still mapped; buffer drops pages it has read). Target: VmHWM
// < 40 MB. ReportMetric keeps the last iteration's figures.
func BenchmarkDrainRSS(b *testing.B) {
	const n = 100_000
	br := brokertest.Start(b, brokertest.Config{})
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		box, err := buffer.Open(filepath.Join(dir, "outbox.db"), buffer.Options{GatewayID: "gw-rss"})
		if err != nil {
			b.Fatal(err)
		}
		fill(b, box, "gw-rss", n)
		box.Close()
		st, _ := os.Stat(filepath.Join(dir, "outbox.db"))
		b.StartTimer()
		cfg, _ := json.Marshal(chaos.GatewayConfig{Dir: dir, GatewayID: "gw-rss", Broker: br.URL(), Delivery: cloud.DeliveryPUBACK})
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
		cmd.Env = append(os.Environ(), "OBDGW_RSS_CHILD="+string(cfg))
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("child: %v\n%s", err, out)
		}
		vals := map[string]float64{}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "rss" {
				v, _ := strconv.ParseFloat(f[2], 64)
				vals[f[1]] = v
			}
		}
		if vals["delivered"] != n {
			b.Fatalf("child delivered %v of %d\n%s", vals["delivered"], n, out)
		}
		if vals["noreset"] != 0 {
			b.Fatal("child could not reset its peak RSS (/proc/self/clear_refs)")
		}
		b.ReportMetric(max(vals["OpenHWM"], vals["VmHWM"])/1024, "VmHWM-MB")
		b.ReportMetric(vals["OpenHWM"]/1024, "VmHWM-open-MB")
		b.ReportMetric(vals["VmHWM"]/1024, "VmHWM-drain-MB")
		b.ReportMetric(vals["VmRSS"]/1024, "VmRSS-end-MB")
		b.ReportMetric(vals["RssAnon"]/1024, "RssAnon-end-MB")
		b.ReportMetric(vals["RssFile"]/1024, "RssFile-end-MB")
		b.ReportMetric(float64(st.Size())/1e6, "outbox-file-MB")
		b.ReportMetric(vals["seconds"], "drain-s")
	}
}

// rssChild is the BenchmarkDrainRSS child: drain the outbox, print peak memory.
func rssChild(cfg string) {
	var c chaos.GatewayConfig
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		panic(err)
	}
	box, err := buffer.Open(filepath.Join(c.Dir, "outbox.db"), buffer.Options{GatewayID: c.GatewayID})
	if err != nil {
		panic(err)
	}
	n := box.Stats().Depth
	// The peak so far is Open's (it reads the whole file); reset it (Linux ≥ 4.0) so that the
	// final VmHWM is the drain's own, and report both.
	fmt.Printf("rss OpenHWM %d\n", statusKB("VmHWM"))
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		fmt.Printf("rss noreset 1\n")
	}
	u, err := cloud.NewUplink(box, chaos.UplinkOptions(c, nil))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { u.Run(ctx); close(done) }()
	for u.Status().Delivered < uint64(n) {
		time.Sleep(5 * time.Millisecond)
	}
	secs := time.Since(start).Seconds()
	cancel()
	<-done
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "VmHWM:" || f[0] == "RssAnon:" || f[0] == "RssFile:" || f[0] == "VmRSS:") {
			fmt.Printf("rss %s %s\n", strings.TrimSuffix(f[0], ":"), f[1])
		}
	}
	fmt.Printf("rss delivered %d\nrss seconds %.2f\n", n-box.Stats().Depth, secs)
	box.Close()
}

func statusKB(key string) int {
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key+":" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}
