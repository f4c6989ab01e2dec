package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/obdgw/obdgw/hack/testenv"
)

// syncBuffer is a writer the demo and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestDemoShowsChartsAndReport: after the demo's visit, the console it names charts the
// simulated car's live data and shows the customer's report of the visit's scan, with the VIN
// read from the car and its codes. With OBDGW_CONSOLE_SHOTS set, the pages are saved there as
// PNGs (the README's screenshots come from this run).
func TestDemoShowsChartsAndReport(t *testing.T) {
	testenv.SkipShort(t, "a browser test over the demo's simulated bays")
	exe := testenv.Program(t, "chromium", "chromium", "/usr/bin/chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, Options{Stdout: &stdout, Stderr: &stderr, Listen: "127.0.0.1:0", StateDir: t.TempDir(), Fast: true})
		done <- err
	}()
	defer func() { cancel(); <-done }()
	for !strings.Contains(stderr.String(), "vehicle history:") {
		select {
		case err := <-done:
			t.Fatalf("demo ended: %v\n%s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("no visit: %s", stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	token := regexp.MustCompile(`\(token: (\S+)\)`).FindStringSubmatch(stdout.String())
	charts := regexp.MustCompile(`live data charts: (\S+)`).FindStringSubmatch(stderr.String())
	report := regexp.MustCompile(`customer diagnostic report \(print or save as PDF\): (\S+)`).FindStringSubmatch(stderr.String())
	if token == nil || charts == nil || report == nil {
		t.Fatalf("the demo does not name its console pages:\n%s\n%s", stdout.String(), stderr.String())
	}

	actx, cancelA := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1024, 768))
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	run := func(what string, a ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, a...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return s
	}
	wait := func(js, what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for eval(fmt.Sprintf("String(!!(%s))", js)) != "true" {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; page: %s", what, eval(`location.href + " " + document.body.innerText.slice(0, 300)`))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	shot := func(name string) {
		dir := os.Getenv("OBDGW_CONSOLE_SHOTS")
		if dir == "" {
			return
		}
		png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := strings.SplitN(charts[1], "#", 2)[0]
	run("open the console", chromedp.EmulateViewport(1024, 768), chromedp.Navigate(base))
	eval(fmt.Sprintf(`localStorage.setItem("obdgw.token", %q), "ok"`, token[1]))
	run("open the bays", chromedp.Navigate(base+"index.html#/bays")) // a new load reads the token
	wait(`document.querySelector('[data-bay="bay1"] [data-role=vin]') && document.querySelector('[data-bay="bay1"] [data-role=vin]').textContent.length === 17`, "the bays")
	shot("console-bays")
	run("open the charts", chromedp.Navigate(charts[1]))
	wait(`typeof ShopCharts !== "undefined" && ShopCharts.shown("0C") >= 5`, "five samples of engine speed charted")
	if got := eval(`document.querySelector('[data-chart="0C"] [data-role=chart-value]').textContent`); got != "825" {
		t.Errorf("engine speed shown %q, want the simulated car's 825", got)
	}
	run("scroll to the charts", chromedp.Evaluate[chromedp.Void](`document.querySelector("[data-role=charts]").scrollIntoView()`))
	shot("console-live-charts")
	run("open the report", chromedp.Navigate(report[1]))
	wait(`document.querySelector("[data-role=report-dtcs] tr[data-code=P0420]")`, "the report's codes")
	run("top of the report", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	if got := eval(`document.querySelector("[data-role=report-vin]").textContent`); got != "LK6ADCE15PB405127" {
		t.Errorf("report VIN %q, want the simulated car's", got)
	}
	shot("console-report")
}
