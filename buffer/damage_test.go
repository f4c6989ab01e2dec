package buffer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestOpenRandomDamageSoak flips random bytes of a store file, 200 times, and opens each
// copy: Open must report ErrCorrupt or open a file whose records read back, and never crash
// the process. Opt-in (OBDGW_BUFFER_SOAK=1) because a check that times out leaves a goroutine
// behind that may eat memory (see checkFile); run it under `ulimit -v`.
func TestOpenRandomDamageSoak(t *testing.T) {
	if os.Getenv("OBDGW_BUFFER_SOAK") == "" {
		t.Skip("soak test: OBDGW_BUFFER_SOAK=1 go test -run Soak ./buffer (under ulimit -v 3000000)")
	}
	old := checkBudget
	checkBudget = func(*bolt.DB) time.Duration { return 2 * time.Second }
	t.Cleanup(func() { checkBudget = old })
	src := filepath.Join(t.TempDir(), "src.db")
	db, err := Open(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		mustAppend(t, db, []string{"ehr", "im"}[i%2], strings.Repeat("p", rand.IntN(2000)))
		if i%4 == 0 {
			db.Ack(uint64(i/2 + 1))
		}
	}
	db.Close()
	orig, _ := os.ReadFile(src)
	counts := map[string]int{}
	for trial := range 200 {
		b := append([]byte{}, orig...)
		for range 1 + rand.IntN(8) {
			off := rand.IntN(len(b))
			if trial%2 == 0 {
				off = rand.IntN(len(b)/4096)*4096 + rand.IntN(64)
			}
			b[off] ^= byte(1 + rand.IntN(255))
		}
		p := filepath.Join(t.TempDir(), "d.db")
		os.WriteFile(p, b, 0o600)
		db, err := Open(p, Options{})
		switch {
		case errors.Is(err, ErrCorrupt):
			k := "corrupt"
			if strings.Contains(err.Error(), "did not finish") {
				k = "corrupt-timeout"
			}
			if strings.Contains(err.Error(), "faulted") {
				k = "corrupt-fault"
			}
			counts[k]++
		case err != nil:
			counts["other: "+err.Error()[:min(60, len(err.Error()))]]++
		default:
			_, perr := db.Peek(1000)
			_, derr := db.DeadLetters()
			counts[fmt.Sprintf("opened, read errors %v", perr != nil || derr != nil)]++
			if cerr := db.Check(); cerr != nil {
				t.Errorf("trial %d: opened, then failed its check: %v", trial, cerr)
			}
			db.Close()
		}
	}
	t.Log(counts)
}
