package workorder

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/obdgw/obdgw/buffer"
)

// BenchmarkSettle measures a settlement (read the order, build and validate the record, commit
// order + record in one fsynced transaction) against its physical bound measured in the same
// run: one fsynced transaction appending a record of the same size. Each order is another car
// (a VIN has a handful of orders in life). It reports the ratio as
// x_append; absolute times depend on the disk.
func BenchmarkSettle(b *testing.B) {
	now := func() time.Time { return time.Date(2024, 3, 13, 2, 0, 0, 0, time.UTC) }
	db, err := buffer.Open(filepath.Join(b.TempDir(), "obdgw.db"), buffer.Options{GatewayID: "gw-bench", Now: now})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := New(db, Options{Company: company, CompanyCode: companyCode, Province: "33", GatewayID: "gw-bench", Now: now})
	ids := make([]string, b.N)
	for i := range ids {
		o, err := s.Create(NewOrder{Plate: "浙A7K2M9", PlateColor: "blue", VIN: fmt.Sprintf("LJ8ECM2B2R1%06d", i), MileageKm: km(int64(80000 + i)), Fault: "双怠速检验CO超标", Bay: "bay1",
			Items: []Item{{Name: "更换三元催化转化器", Hours: "2.5"}}, Parts: []Part{{Name: "三元催化转化器总成", Code: "1205100-TW01", Quantity: "1"}}})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = o.ID
	}
	st, err := s.Settle(ids[0], SettleRequest{CostListCode: "HS-B-0"})
	if err != nil {
		b.Fatal(err)
	}
	rs, _ := db.Peek(1)
	payload := rs[0].Payload

	base := time.Now()
	for i := 0; i < b.N; i++ {
		if err := db.Update(func(tx *buffer.Tx) error { _, err := tx.Append("bench", "t", payload); return err }); err != nil {
			b.Fatal(err)
		}
	}
	baseline := time.Since(base)

	b.ResetTimer()
	start := time.Now()
	for i := 1; i < b.N; i++ {
		if _, err := s.Settle(ids[i], SettleRequest{CostListCode: fmt.Sprintf("HS-B-%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if b.N > 1 {
		settle := time.Since(start) / time.Duration(b.N-1)
		b.ReportMetric(float64(settle)/float64(baseline/time.Duration(b.N)), "x_append")
	}
	_ = st
}
