package buffer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A typical record: a JT/T 1132 maintenance envelope is around 1 KiB of JSON.
var benchPayload = func() []byte {
	p := make([]byte, 1024)
	for i := range p {
		p[i] = "{\"vin\":\"LSVAA4182E2184847\",\"mileage\":123456}"[i%44]
	}
	return p
}()

// appendRate appends n records from the given number of writers, each Append fsynced, and
// returns records per second. viaBoltBatch sends each append through bbolt's DB.Batch instead
// of this package's group commit, as the baseline the latter replaces.
func appendRate(b *testing.B, writers, n int, viaBoltBatch bool) float64 {
	b.Helper()
	db, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{GatewayID: "gw"})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				var err error
				if viaBoltBatch {
					err = db.bolt.Batch(func(btx *bolt.Tx) error {
						_, err := (&Tx{db: db, tx: btx}).Append("ehr", "t", benchPayload)
						return err
					})
				} else {
					_, err = db.Append(context.Background(), "ehr", "t", benchPayload)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkAppendGroupCommit measures fsynced appends of 1 KiB records: one writer, then 16
// concurrent writers sharing commits, in the same run, and reports the ratio group/single
// (the gain of group commit on this disk). b.N is the number of records per phase.
func BenchmarkAppendGroupCommit(b *testing.B) {
	single := appendRate(b, 1, b.N, false)
	group := appendRate(b, 16, b.N, false)
	b.ReportMetric(single, "single_rec/s")
	b.ReportMetric(group, "group16_rec/s")
	b.ReportMetric(group/single, "group/single")
	b.ReportMetric(0, "ns/op") // the phases' rates above are the result
}

// BenchmarkAppendBoltBatch is the baseline for the group commit design: bbolt's own DB.Batch,
// which waits MaxBatchDelay (10 ms) to gather company, for one writer and for 16, reported
// against this package's Append measured in the same run.
func BenchmarkAppendBoltBatch(b *testing.B) {
	ours1 := appendRate(b, 1, b.N, false)
	batch1 := appendRate(b, 1, b.N, true)
	ours16 := appendRate(b, 16, b.N, false)
	batch16 := appendRate(b, 16, b.N, true)
	b.ReportMetric(batch1, "boltbatch1_rec/s")
	b.ReportMetric(ours1/batch1, "ours/boltbatch_1writer")
	b.ReportMetric(batch16, "boltbatch16_rec/s")
	b.ReportMetric(ours16/batch16, "ours/boltbatch_16writers")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkOutboxFileSize fills an outbox with 100,000 records of 1 KiB and reports the file
// size per record, and the overhead against the payload alone (the physical bound). Records are
// committed 500 per transaction to keep the run short; the layout of the pages (and so the
// size) is that of records appended one by one, since keys are appended in order either way.
func BenchmarkOutboxFileSize(b *testing.B) {
	const n, perTx = 100_000, 500
	// One fill whatever b.N is: the result is a size, not a time, and each fill writes
	// ~140 MB (-benchtime 2000x must not write 2000 of them).
	{
		path := filepath.Join(b.TempDir(), "size.db")
		db, err := Open(path, Options{GatewayID: "gw"})
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < n; i += perTx {
			err := db.Update(func(tx *Tx) error {
				for range perTx {
					if _, err := tx.Append("ehr", "jt1132/440300/gw/ehr", benchPayload); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		db.Close()
		fi, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(fi.Size())/n, "bytes/record")
		b.ReportMetric(float64(fi.Size())/n/float64(len(benchPayload)), "file/payload")
		b.ReportMetric(float64(fi.Size())/(1<<20), "MiB/100k")
		b.ReportMetric(0, "ns/op")
	}
}

// BenchmarkStats measures Stats on outboxes of 1,000 and 100,000 records of three kinds, with
// a few dead letters. The daemon calls Stats every 2 s however large the backlog, so ns/op must
// not grow with it: compare the two sizes. As a baseline from the same run, walk_ns is one
// full read of the outbox (what counting the records would cost) and stats/walk the ratio.
func BenchmarkStats(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "stats.db"), Options{GatewayID: "gw"})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			kinds := []string{"ehr", "im", "status"}
			const perTx = 1000
			for i := 0; i < n; i += perTx {
				err := db.Update(func(tx *Tx) error {
					for j := range min(perTx, n-i) {
						if _, err := tx.Append(kinds[(i+j)%len(kinds)], "t", benchPayload[:256]); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			for seq := uint64(1); seq <= 10; seq++ {
				if err := db.DeadLetter(seq, "bench"); err != nil {
					b.Fatal(err)
				}
			}
			start := time.Now()
			want := walkDB(b, db)
			walk := time.Since(start)

			b.ReportAllocs()
			for b.Loop() {
				if s := db.Stats(); s.Depth != want.Depth || s.DepthByKind["ehr"] != want.DepthByKind["ehr"] {
					b.Fatalf("Stats says %d records (%d ehr), the outbox holds %v", s.Depth, s.DepthByKind["ehr"], want)
				}
			}
			perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(float64(walk.Nanoseconds()), "walk_ns")
			b.ReportMetric(perOp/float64(walk.Nanoseconds()), "stats/walk")
		})
	}
}
