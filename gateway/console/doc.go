// Package console is the gateway's web console: a single page served from assets embedded in
// the binary (no CDN, so it works in a shop with no internet), Chinese by default with an
// English switch, laid out for a tablet at the car. It shows the bays with live status, scan
// reports, the work-order list, form and settlement with the validator's messages, the outbox
// and dead letter, and the broker status. It only talks to the daemon's REST API and event
// stream; it holds no state of its own beyond the API token in the browser's storage.
package console
