package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/obdgw/obdgw/cloud"
	"github.com/obdgw/obdgw/gateway/config"
	"github.com/obdgw/obdgw/gateway/ehrhttp"
)

// newEHRDelivery builds the delivery of the outbox's ehr records to the national eHR HTTPS API
// (uplink.transport: ehr-https). The other kinds go to the MQTT uplink when broker.url is
// set; otherwise they wait in the outbox and the uplink status says so.
func newEHRDelivery(cfg *config.Config, box ehrhttp.Outbox, reg prometheus.Registerer, log *slog.Logger, now func() time.Time) (*ehrhttp.Delivery, error) {
	e := cfg.Uplink.EHR
	var tc *tls.Config
	if e.CAFile != "" {
		pem, err := os.ReadFile(e.CAFile)
		if err != nil {
			return nil, fmt.Errorf("daemon: uplink.ehr.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("daemon: uplink.ehr.ca_file: %s holds no PEM certificate", e.CAFile)
		}
		tc = &tls.Config{RootCAs: pool}
	}
	c, err := ehrhttp.New(ehrhttp.Options{
		URL:            e.URL,
		TokenPath:      e.TokenPath,
		AddPath:        e.AddPath,
		AppKey:         e.AppKey,
		AppSecret:      e.AppSecret,
		TLS:            tc,
		Timeout:        e.Timeout,
		TokenLifetime:  e.TokenLifetime,
		ExpiredCodes:   e.ExpiredCodes,
		RateLimitCodes: e.RateLimitCodes,
		DuplicateCodes: e.DuplicateCodes,
		Registry:       reg,
		Logger:         log,
		Now:            now,
	})
	if err != nil {
		return nil, fmt.Errorf("daemon: uplink.ehr: %w", err)
	}
	return ehrhttp.NewDelivery(box, c, ehrhttp.DeliveryOptions{OthersByMQTT: cfg.Broker.URL != "", Logger: log, Now: now})
}

// ehrStatus is the uplink status with the eHR delivery: its own, or next to the MQTT
// uplink's under "ehr" when both run.
func (d *Daemon) ehrStatus() any {
	st := d.ehr.Status()
	if d.up == nil {
		return st
	}
	return struct {
		cloud.Status
		EHR ehrhttp.DeliveryStatus `json:"ehr"`
	}{d.up.Status(), st}
}
