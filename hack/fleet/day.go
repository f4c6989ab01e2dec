package fleet

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Event is one record a shop settles or sends during the day.
type Event struct {
	At   float64 // fraction of the working day, 0 = 08:00, 1 = 20:00
	Kind string  // KindEHR (a settled order) or KindScan (an OBD scan result)
}

// Record kinds of the simulation: settled orders go out as ehr/1 records, scan results as
// telemetry of kind scan.
const (
	KindEHR  = "ehr"
	KindScan = "scan"
)

// Working day of the simulated shops and the two busy hours around which orders settle.
const (
	dayHours   = 12.0                 // 08:00–20:00
	noon       = 4.0 / dayHours       // 12:00
	evening    = 10.0 / dayHours      // 18:00
	peakSpread = 40.0 / 60 / dayHours // 40 min standard deviation
	peakShare  = 0.45                 // of the orders, each peak
	scanHours  = dayHours
)

// Day draws one shop's day: between ordersMin and ordersMax settled orders, 45 % of them around
// noon, 45 % around 18:00 (normal, 40 min spread) and the rest spread over the day; and OBD
// scans as a Poisson process of scansPerHour. Events come back in time order.
func Day(rnd *rand.Rand, ordersMin, ordersMax int, scansPerHour float64) []Event {
	var ev []Event
	n := ordersMin
	if ordersMax > ordersMin {
		n += rnd.IntN(ordersMax - ordersMin + 1)
	}
	for range n {
		var at float64
		switch p := rnd.Float64(); {
		case p < peakShare:
			at = noon + rnd.NormFloat64()*peakSpread
		case p < 2*peakShare:
			at = evening + rnd.NormFloat64()*peakSpread
		default:
			at = rnd.Float64()
		}
		ev = append(ev, Event{At: math.Min(math.Max(at, 0), math.Nextafter(1, 0)), Kind: KindEHR})
	}
	if rate := scansPerHour * scanHours; rate > 0 {
		for at := rnd.ExpFloat64() / rate; at < 1; at += rnd.ExpFloat64() / rate {
			ev = append(ev, Event{At: at, Kind: KindScan})
		}
	}
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].At < ev[j].At })
	return ev
}
