package cloud

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/obdgw/obdgw/buffer"
)

type uplinkMetrics struct {
	connected    prometheus.Gauge
	reconnects   prometheus.Counter
	inFlight     prometheus.Gauge
	published    *prometheus.CounterVec
	delivered    *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	noReceipt    prometheus.Counter
	badReceipts  prometheus.Counter
	latency      prometheus.Histogram
}

func newUplinkMetrics(reg *prometheus.Registry) *uplinkMetrics {
	m := &uplinkMetrics{
		connected:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "obdgw_uplink_connected", Help: "1 while connected to the broker."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "obdgw_uplink_reconnects_total", Help: "Connections that failed or were lost."}),
		inFlight:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "obdgw_uplink_in_flight", Help: "Records published and not yet acknowledged."}),
		published:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "obdgw_uplink_published_total", Help: "Publishes, resends included, by kind."}, []string{"kind"}),
		delivered:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "obdgw_uplink_delivered_total", Help: "Records that left the outbox as delivered (PUBACK or receipt), by kind."}, []string{"kind"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "obdgw_uplink_dead_lettered_total",
			Help: "Records moved to the dead letter by the uplink, by kind and reason (rejected by the receiver, unframeable)."}, []string{"kind", "reason"}),
		noReceipt:   prometheus.NewCounter(prometheus.CounterOpts{Name: "obdgw_uplink_no_receipt_total", Help: "Receipt timeouts (the connection is restarted and the records resent)."}),
		badReceipts: prometheus.NewCounter(prometheus.CounterOpts{Name: "obdgw_uplink_bad_receipts_total", Help: "Receipts that could not be decoded or named no record of ours."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "obdgw_uplink_publish_latency_seconds",
			Help:    "From publish to the acknowledgement that let the record leave the outbox.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14)}),
	}
	reg.MustRegister(m.connected, m.reconnects, m.inFlight, m.published, m.delivered, m.deadLettered, m.noReceipt, m.badReceipts, m.latency)
	return m
}

// OutboxCollector reads the outbox's own counters at scrape time, so the numbers survive
// restarts exactly as far as the outbox keeps them. A gateway registers it in its registry
// whether or not a broker is configured.
func OutboxCollector(box interface{ Stats() buffer.Stats }) prometheus.Collector {
	return outboxCollector{box}
}

type outboxCollector struct {
	box interface{ Stats() buffer.Stats }
}

var (
	descDepth     = prometheus.NewDesc("obdgw_outbox_depth", "Records waiting in the outbox.", nil, nil)
	descBytes     = prometheus.NewDesc("obdgw_outbox_bytes", "Payload bytes waiting in the outbox.", nil, nil)
	descOldest    = prometheus.NewDesc("obdgw_outbox_oldest_age_seconds", "Age of the oldest waiting record.", nil, nil)
	descDepthKind = prometheus.NewDesc("obdgw_outbox_depth_by_kind", "Records waiting in the outbox, by kind.", []string{"kind"}, nil)
	descDead      = prometheus.NewDesc("obdgw_outbox_dead_letters", "Records in the dead letter.", nil, nil)
	descAppended  = prometheus.NewDesc("obdgw_outbox_appended_total", "Records appended, by kind.", []string{"kind"}, nil)
	descAcked     = prometheus.NewDesc("obdgw_outbox_delivered_total", "Records acknowledged out of the outbox, by kind.", []string{"kind"}, nil)
	descDropped   = prometheus.NewDesc("obdgw_outbox_dropped_total", "Telemetry records dropped to make room, by kind and reason.", []string{"kind", "reason"}, nil)
	descRefused   = prometheus.NewDesc("obdgw_outbox_refused_total", "Appends refused because the outbox was full, by kind and reason.", []string{"kind", "reason"}, nil)
	descDeadKind  = prometheus.NewDesc("obdgw_outbox_dead_lettered_total", "Records moved to the dead letter, by kind.", []string{"kind"}, nil)
)

func (outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDepth, descDepthKind, descBytes, descOldest, descDead, descAppended, descAcked, descDropped, descRefused, descDeadKind} {
		ch <- d
	}
}

func (c outboxCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.box.Stats()
	ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(s.Depth))
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, s.OldestAge.Seconds())
	ch <- prometheus.MustNewConstMetric(descDead, prometheus.GaugeValue, float64(s.DeadLetters))
	for k, v := range s.Appended {
		ch <- prometheus.MustNewConstMetric(descAppended, prometheus.CounterValue, float64(v), k)
	}
	for k, v := range s.Delivered {
		ch <- prometheus.MustNewConstMetric(descAcked, prometheus.CounterValue, float64(v), k)
	}
	for k, by := range s.DroppedBy {
		for reason, v := range by {
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(v), k, reason)
		}
	}
	for k, by := range s.RefusedBy {
		for reason, v := range by {
			ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(v), k, reason)
		}
	}
	for k, v := range s.DepthByKind {
		ch <- prometheus.MustNewConstMetric(descDepthKind, prometheus.GaugeValue, float64(v), k)
	}
	for k, v := range s.DeadByKind {
		ch <- prometheus.MustNewConstMetric(descDeadKind, prometheus.CounterValue, float64(v), k)
	}
}

// Registry is the uplink's own metric registry (never the global default), for a gateway that
// wants to gather it together with its own.
func (u *Uplink) Registry() *prometheus.Registry { return u.reg }

// Handler serves /metrics (Prometheus text) and /healthz (the Status as JSON; 200 while Run is
// running, 503 otherwise — an unreachable broker is not a reason to restart the gateway, so it
// is reported in the body, not in the code). Mount it where the gateway wants.
func (u *Uplink) Handler() http.Handler {
	return healthMux(u.reg, func() (any, bool) {
		s := u.Status()
		return s, s.Running
	})
}

func healthMux(reg *prometheus.Registry, health func() (any, bool)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		body, ok := health()
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(body)
	})
	return mux
}
