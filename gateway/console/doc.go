// Package console is the gateway's web console: a single page served from assets embedded in
// the binary (no CDN, no outside fonts, so it works in a shop with no internet), Chinese by
// default with an English switch, laid out for a 1024×768 tablet at the car.
//
// It shows the bays with live status, the last scan report (VIN, MIL, DTCs by kind with ECU and
// description, readiness, freeze frames, odometer), live values, scan now, and clearing DTCs
// behind a dialog that wants the car's VIN typed; on a bay with an emission rig, the self-test
// panel (method, rated speed, limit set; start; the operator's prompt, countdown, engine-speed
// window and gases or opacity while it runs; abort behind a confirmation; then the verdict with
// its reasons, each pollutant against its limit, λ from the analyzer and computed, and the
// process data as small SVG charts and a table); the inspection station's OBD check of the
// bay's last scan, line by line; a scan
// that matched several open orders, for the technician to choose; the work-order list, form,
// items and parts, settlement with the validator's messages naming each field, the warnings
// after it, and corrections as new record revisions; the outbox and dead letter with requeue;
// the broker status.
//
// The bay page charts the live PIDs a technician picks (several per request, at the rate the
// adapter answers; pause; CSV export) and the curves of a running self-test with its phase and
// time left. The charts are drawn with uPlot 1.6.32 (MIT), vendored unchanged from the npm
// package uplot as assets/uPlot.iife.min.js and uPlot.min.css, its licence in uPlot.LICENSE;
// A running scan shows its step and how many are left (progress.js, from "scan.step" events).
// A car's history by VIN lists its scans, orders and judged self-tests; from it the customer's
// diagnostic report of a scan and the I/M self-test report of an order open as pages printed
// on A4 (@page size A4, the console's header and buttons left out in print; "Save as PDF" in
// the print dialog makes the PDF), with a font stack naming the CJK fonts of iPadOS, Android
// and Windows so no font ships with the page (reports.js).
// The shop views' code lives in charts.js, progress.js and reports.js, their translations in
// i18n-shop.js.
//
// It talks only to the daemon's REST API (/api/v1, bearer token kept in the browser's local
// storage) and its event stream, read with fetch so the token travels in a header. Besides the
// files, Handler answers two public lookups from the obd tables: /dtc.json (DTC descriptions in
// both languages, so the switch can re-describe a report decoded in the other) and /labels.json
// (readiness monitor and PID names). Owner name and phone appear only on a work order's own
// page, when the API returns them.
package console
