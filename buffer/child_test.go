package buffer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests re-execute the test binary as a child process (TestMain dispatches on
// childEnv), because only a real process can be killed mid-fsync or have a file size limit.
const childEnv = "OBDGW_BUFFER_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "append-forever":
		childAppendForever(os.Getenv("OBDGW_BUFFER_PATH"))
	case "fill-disk":
		childFillDisk(os.Getenv("OBDGW_BUFFER_PATH"))
	case "mixed-forever":
		childMixedForever(os.Getenv("OBDGW_BUFFER_PATH"))
	default:
		fmt.Fprintln(os.Stderr, "unknown child mode", os.Getenv(childEnv))
		os.Exit(2)
	}
}

// out writes whole lines to stdout in one write each, so a kill never leaves half a line that
// parses as a different number.
var outMu sync.Mutex

func say(format string, args ...any) {
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
}

func fatal(format string, args ...any) {
	say("fatal "+format, args...)
	os.Exit(3)
}

// childAppendForever appends from four goroutines (so group commits are in flight when the
// kill comes) and acks every third record, reporting each seq only after the call returned.
func childAppendForever(path string) {
	db, err := Open(path, Options{GatewayID: "gw"})
	if err != nil {
		fatal("open: %v", err)
	}
	say("ready")
	for w := range 4 {
		go func() {
			for i := 0; ; i++ {
				p := []byte(fmt.Sprintf("w%d-%d-", w, i) + strings.Repeat("x", rand.IntN(3000)))
				r, err := db.Append(context.Background(), "ehr", "t", p)
				if err != nil {
					fatal("append: %v", err)
				}
				say("append %d %d", r.Seq, len(p))
				if r.Seq%3 == 0 {
					if err := db.Ack(r.Seq); err != nil {
						fatal("ack: %v", err)
					}
					say("ack %d", r.Seq)
				}
			}
		}()
	}
	select {}
}

// mixedOptions make a small outbox, so that the mixed child also drops telemetry and is refused.
var mixedOptions = Options{GatewayID: "gw", MaxRecords: 60, MaxBytes: 60 << 10, Policies: map[string]Policy{"status": Telemetry}}

// childMixedForever runs every kind of outbox write from four goroutines until it is killed:
// appends of three kinds (one of them telemetry, dropped when the outbox is full), acks one by
// one and in batches, dead letters and requeues.
func childMixedForever(path string) {
	db, err := Open(path, mixedOptions)
	if err != nil {
		fatal("open: %v", err)
	}
	say("ready")
	kinds := []string{"ehr", "im", "status"}
	for w := range 4 {
		go func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(os.Getpid())))
			for i := 0; ; i++ {
				var err error
				switch r := rng.IntN(10); {
				case r < 6:
					_, err = db.Append(context.Background(), kinds[rng.IntN(3)], "t", []byte(strings.Repeat("m", rng.IntN(2000))))
				case r < 7:
					var head []Record
					if head, err = db.Peek(1 + rng.IntN(8)); err == nil && len(head) > 0 {
						if len(head) == 1 {
							err = db.Ack(head[0].Seq)
						} else {
							err = db.AckMany(seqs(head[1:]))
						}
					}
				case r < 8:
					var head []Record
					if head, err = db.Peek(3); err == nil && len(head) > 0 {
						err = db.DeadLetter(head[rng.IntN(len(head))].Seq, "rejected")
					}
				default:
					var dead []DeadRecord
					if dead, err = db.DeadLetters(); err == nil && len(dead) > 0 {
						_, err = db.Requeue(dead[rng.IntN(len(dead))].Seq)
					}
				}
				if err != nil && !errors.Is(err, ErrFull) && !errors.Is(err, ErrNotFound) {
					fatal("op %d: %v", i, err)
				}
			}
		}()
	}
	select {}
}

// TestCrashKeepsCountersExact kills a child in the middle of mixed outbox writes, then reads
// the raw file: the counters stored in it (depth, bytes, dead letters, counts by kind) must
// equal a walk of its records, since Open would rebuild them silently otherwise. Then Open
// must find nothing to rebuild, and Stats must equal the walk.
func TestCrashKeepsCountersExact(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "obdgw.db")
	var lastNext uint64
	for round := range 6 {
		cmd, stdout := startChild(t, "mixed-forever", path)
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() || sc.Text() != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child said %q", round, sc.Text())
		}
		time.AfterFunc(time.Duration(50+rand.IntN(250))*time.Millisecond, func() { cmd.Process.Signal(syscall.SIGKILL) })
		for sc.Scan() {
			t.Errorf("round %d: child said %q", round, sc.Text())
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, not by SIGKILL", round, err)
		}

		walked := checkStoredCounts(t, path)

		var logs logBuffer
		opts := mixedOptions
		opts.Logger = logs.logger()
		now := time.Now().Add(time.Hour) // a clock that stands still for the comparison
		opts.Now = func() time.Time { return now }
		db, err := Open(path, opts)
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		checkStats(t, db, now, fmt.Sprintf("round %d", round))
		if l := logs.String(); l != "" {
			t.Fatalf("round %d: Open after the crash logged:\n%s", round, l)
		}
		var next uint64
		db.View(func(tx *Tx) error { next = getU64(tx.tx.Bucket(bucketMeta), keyNext); return nil })
		db.Close()
		if next <= lastNext+10 {
			t.Fatalf("round %d: the child got only %d writes in before the kill", round, next-lastNext)
		}
		t.Logf("round %d: seq %d after the kill; %v", round, next, walked)
		lastNext = next
	}
}

func startChild(t *testing.T, mode, path string) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "OBDGW_BUFFER_PATH="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdout
}

func TestCrashDuringAppendsLosesNothingCommitted(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "obdgw.db")
	appended := map[uint64]int{} // seq → payload length, as reported by the children
	acked := map[uint64]bool{}
	const rounds = 6
	for round := range rounds {
		cmd, stdout := startChild(t, "append-forever", path)
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		if l := <-lines; l != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child said %q", round, l)
		}
		// Kill at a random moment while appends and acks are in flight.
		time.AfterFunc(time.Duration(20+rand.IntN(200))*time.Millisecond, func() { cmd.Process.Signal(syscall.SIGKILL) })
		n := 0
		for l := range lines {
			f := strings.Fields(l)
			switch {
			case len(f) == 3 && f[0] == "append":
				seq, _ := strconv.ParseUint(f[1], 10, 64)
				size, _ := strconv.Atoi(f[2])
				appended[seq] = size
				n++
			case len(f) == 2 && f[0] == "ack":
				seq, _ := strconv.ParseUint(f[1], 10, 64)
				acked[seq] = true
			default:
				t.Errorf("round %d: child said %q", round, l)
			}
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, not by SIGKILL", round, err)
		}

		// Open runs bbolt's full consistency check; a failure is ErrCorrupt.
		db, err := Open(path, Options{GatewayID: "gw"})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		recs, err := db.Peek(1 << 30)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		present := map[uint64]Record{}
		var maxSeq uint64
		var bytes int64
		for _, r := range recs {
			present[r.Seq] = r
			maxSeq = max(maxSeq, r.Seq)
			bytes += int64(len(r.Payload))
			if r.ID != fmt.Sprintf("gw-%s-%d", db.Info().Incarnation, r.Seq) {
				t.Fatalf("round %d: record %d has id %s", round, r.Seq, r.ID)
			}
		}
		for seq, size := range appended {
			r, ok := present[seq]
			switch {
			case !ok && !acked[seq] && seq%3 != 0:
				t.Fatalf("round %d: seq %d was reported committed but is gone", round, seq)
			case ok && acked[seq]:
				t.Fatalf("round %d: seq %d was reported acked but is still there", round, seq)
			case ok && len(r.Payload) != size:
				t.Fatalf("round %d: seq %d has %d payload bytes, child appended %d", round, seq, len(r.Payload), size)
			}
			maxSeq = max(maxSeq, seq)
		}
		// Gap-free: every seq up to the highest one seen exists unless it was (maybe) acked.
		for seq := uint64(1); seq <= maxSeq; seq++ {
			if _, ok := present[seq]; !ok && seq%3 != 0 {
				t.Fatalf("round %d: gap at seq %d (highest %d)", round, seq, maxSeq)
			}
		}
		s := db.Stats()
		if s.Depth != len(recs) || s.Bytes != bytes {
			t.Fatalf("round %d: bookkeeping says %d records / %d bytes, the outbox holds %d / %d", round, s.Depth, s.Bytes, len(recs), bytes)
		}
		// The next seq continues after everything any child may have committed.
		r, err := db.Append(context.Background(), "ehr", "t", []byte("parent"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq <= maxSeq {
			t.Fatalf("round %d: next seq %d reuses one at or below %d", round, r.Seq, maxSeq)
		}
		appended[r.Seq] = len("parent")
		db.Close()
		t.Logf("round %d: child reported %d appends before the kill; %d records stored, highest seq %d", round, n, len(recs), maxSeq)
	}
}

// childFillDisk appends under a file size limit (RLIMIT_FSIZE) until writes fail, as on a
// full disk, then checks that the open store still reads and verifies.
func childFillDisk(path string) {
	// With the limit, the kernel sends SIGXFSZ on the write past it; ignored, the write fails
	// with EFBIG instead, which is what a full disk (ENOSPC) looks like to bbolt.
	signal.Ignore(syscall.SIGXFSZ)
	db, err := Open(path, Options{GatewayID: "gw"})
	if err != nil {
		fatal("open: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		fatal("stat: %v", err)
	}
	limit := uint64(fi.Size()) + 256<<10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		fatal("setrlimit: %v", err)
	}
	say("limit %d", limit)
	failures := 0
	for i := 0; i < 10000 && failures < 3; i++ {
		r, err := db.Append(context.Background(), "ehr", "t", []byte(fmt.Sprintf("%06d", i)+strings.Repeat("y", 1000)))
		if err != nil {
			say("error %s", err)
			failures++
			continue
		}
		say("append %d", r.Seq)
	}
	if failures == 0 {
		fatal("no append failed under a %d byte file size limit", limit)
	}
	recs, err := db.Peek(1 << 30)
	if err != nil {
		fatal("peek after the failures: %v", err)
	}
	say("peek %d", len(recs))
	if err := db.Check(); err != nil {
		fatal("check after the failures: %v", err)
	}
	if err := db.Close(); err != nil {
		fatal("close: %v", err)
	}
	say("done")
	os.Exit(0)
}

func TestFullDiskRefusesAppendAndKeepsEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "obdgw.db")
	db, err := Open(path, Options{GatewayID: "gw"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		mustAppend(t, db, "ehr", fmt.Sprintf("before-%d", i))
	}
	db.Close()

	cmd, stdout := startChild(t, "fill-disk", path)
	out, _ := io.ReadAll(stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var appended []uint64
	var errs []string
	done := false
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.SplitN(l, " ", 2)
		switch f[0] {
		case "append":
			seq, _ := strconv.ParseUint(f[1], 10, 64)
			appended = append(appended, seq)
		case "error":
			errs = append(errs, f[1])
		case "done":
			done = true
		case "limit", "peek":
		default:
			t.Errorf("child said %q", l)
		}
	}
	if !done || len(errs) == 0 || len(appended) == 0 {
		t.Fatalf("child did not fill the disk as planned:\n%s", out)
	}
	for _, e := range errs {
		if !strings.Contains(e, "disk") || !strings.Contains(e, "full") || !strings.Contains(e, "nothing stored was lost") {
			t.Errorf("append error does not tell the user what happened: %s", e)
		}
	}
	t.Logf("%d appends fit under the limit, then: %s", len(appended), errs[0])

	db, err = Open(path, Options{GatewayID: "gw"})
	if err != nil {
		t.Fatalf("reopen after a full disk: %v", err)
	}
	defer db.Close()
	recs, err := db.Peek(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	if want := 50 + len(appended); len(recs) != want {
		t.Fatalf("%d records stored, want the 50 from before plus %d appended = %d", len(recs), len(appended), want)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
		if i < 50 && string(r.Payload) != fmt.Sprintf("before-%d", i) {
			t.Fatalf("record %d from before the full disk now holds %q", i, r.Payload)
		}
	}
	// With space again, appends continue the sequence.
	if r := mustAppend(t, db, "ehr", "after"); r.Seq != uint64(len(recs)+1) {
		t.Fatalf("append after the full disk got seq %d, want %d", r.Seq, len(recs)+1)
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestFullTmpfsRefusesAppendAndKeepsEverything fills a real (small tmpfs) file system, where
// the failure comes from the page writes (ENOSPC) rather than from growing the file as in the
// RLIMIT_FSIZE test above: bbolt extends its file sparsely, so on a full SD card it is the
// write or the fsync that fails. Mounting needs root (CAP_SYS_ADMIN); elsewhere the test skips
// and the RLIMIT_FSIZE test still covers the full-disk contract.
func TestFullTmpfsRefusesAppendAndKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root; TestFullDiskRefusesAppendAndKeepsEverything covers this without")
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=512k,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); TestFullDiskRefusesAppendAndKeepsEverything covers this without", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	path := filepath.Join(dir, "obdgw.db")
	db, err := Open(path, Options{GatewayID: "gw"})
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	var appendErr error
	for i := range 2000 {
		p := fmt.Sprintf("%06d", i) + strings.Repeat("z", 1000)
		if _, err := db.Append(context.Background(), "ehr", "t", []byte(p)); err != nil {
			appendErr = err
			break
		}
		stored = append(stored, p)
	}
	if appendErr == nil {
		t.Fatal("2 MB of records fit into a 512 KiB file system")
	}
	if !strings.Contains(appendErr.Error(), "full") || !strings.Contains(appendErr.Error(), "nothing stored was lost") {
		t.Errorf("append error does not tell the user what happened: %v", appendErr)
	}
	t.Logf("%d appends fit, then: %v", len(stored), appendErr)
	// Another try fails the same way rather than corrupting anything.
	if _, err := db.Append(context.Background(), "ehr", "t", []byte(strings.Repeat("z", 1000))); err == nil {
		t.Log("a second append after the failure fit (freed pages were reused)")
	}
	recs, err := db.Peek(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Check(); err != nil {
		t.Fatalf("in-memory view after ENOSPC: %v", err)
	}
	db.Close()

	db, err = Open(path, Options{GatewayID: "gw"})
	if err != nil {
		t.Fatalf("reopen after ENOSPC: %v", err)
	}
	defer db.Close()
	after, err := db.Peek(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(recs) || len(after) < len(stored) {
		t.Fatalf("reopened store holds %d records; before closing %d, appended successfully %d", len(after), len(recs), len(stored))
	}
	for i, p := range stored {
		if string(after[i].Payload) != p || after[i].Seq != uint64(i+1) {
			t.Fatalf("record %d: seq %d payload %.10q, want seq %d %.10q", i, after[i].Seq, after[i].Payload, i+1, p)
		}
	}
}
