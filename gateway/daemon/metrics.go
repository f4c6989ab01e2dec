package daemon

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/obdgw/obdgw/gateway/bay"
)

// bayCollector reads each bay's counters and state at scrape time.
type bayCollector struct{ bays func() []*bay.Supervisor }

var (
	descBayConnects = prometheus.NewDesc("obdgw_bay_connects_total",
		"Vehicle connections opened by the bay's adapter; more than one per car means the link was lost and opened again.", []string{"bay"}, nil)
	descBayScans    = prometheus.NewDesc("obdgw_bay_scans_total", "Scans by result (ok, failed).", []string{"bay", "result"}, nil)
	descBayScanTime = prometheus.NewDesc("obdgw_bay_scan_duration_seconds",
		"Time spent in scans (sum) and the number of scans (count), failed ones included.", []string{"bay"}, nil)
	descBayState = prometheus.NewDesc("obdgw_bay_state", "1 for the state the bay is in (absent, connecting, ignition_off, ready, scanning, fault, …).", []string{"bay", "state"}, nil)
)

func (bayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBayConnects, descBayScans, descBayScanTime, descBayState} {
		ch <- d
	}
}

func (c bayCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.bays() {
		st := s.Status()
		n := st.Counters
		ch <- prometheus.MustNewConstMetric(descBayConnects, prometheus.CounterValue, float64(n.Connects), st.Name)
		ch <- prometheus.MustNewConstMetric(descBayScans, prometheus.CounterValue, float64(n.Scans), st.Name, "ok")
		ch <- prometheus.MustNewConstMetric(descBayScans, prometheus.CounterValue, float64(n.ScanFailures), st.Name, "failed")
		ch <- prometheus.MustNewConstSummary(descBayScanTime, n.Scans+n.ScanFailures, n.ScanSeconds, nil, st.Name)
		ch <- prometheus.MustNewConstMetric(descBayState, prometheus.GaugeValue, 1, st.Name, string(st.State))
	}
}
