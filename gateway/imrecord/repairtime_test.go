package imrecord

import (
	"testing"
	"time"

	"github.com/obdgw/obdgw/gateway/wire"
	"github.com/obdgw/obdgw/gateway/workorder"
)

// The repair time keeps its time of day: a repair begun the day the inspection failed must
// not read as that day's midnight, which is before the failed test's end.
func TestRepairTimeKeepsTheTime(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.ParseInLocation(wire.IMTimeLayout, s, wire.IMZone)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		name, repairDate, created, failedEnd string
		timed                                bool
		want                                 string
	}{
		{"opened after the failure, same day", "20261120", "2026-11-20 16:05:31", "2026-11-20 15:42:10", true, "2026-11-20 16:05:31"},
		{"opened before the failure ended", "20261120", "2026-11-20 09:00:00", "2026-11-20 15:42:10", true, "2026-11-20 15:42:10"},
		{"failure known by day only", "20261120", "2026-11-20 09:00:00", "2026-11-20 00:00:00", false, "2026-11-20 09:00:00"},
		{"repair date typed for another day", "20261121", "2026-11-20 16:05:31", "2026-11-20 15:42:10", true, "2026-11-21 00:00:00"},
		{"repair date typed for the failure day", "20261120", "2026-11-22 08:00:00", "2026-11-20 15:42:10", true, "2026-11-20 15:42:10"},
	} {
		o := &workorder.Order{RepairDate: c.repairDate, Created: at(c.created).UTC()}
		got := repairTime(o, at(c.failedEnd), c.timed).In(wire.IMZone).Format(wire.IMTimeLayout)
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
