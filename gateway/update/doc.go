// Package update keeps an unattended gateway up to date with signed releases: a client of The
// Update Framework (go-tuf v2) that checks a static HTTPS repository, downloads the binary for
// its architecture, verifies it against the signed metadata and installs it beside the packaged
// one; the launcher step that `obdgw run` takes at start; the health gate that keeps or rolls
// back a new version; and the publishing side (`obdgw release`) that builds and signs the
// repository. How it fits together is in docs/update.md.
//
// Layout under the state directory (one writable place, owned by the daemon's user):
//
//	update/state.json         current, previous, trial, bad versions, last check (State)
//	update/bin/obdgw-<ver>    installed binaries, mode 0755
//	update/metadata/          the trusted TUF metadata (root.json first from update.root_file)
//	update/download/          a download in progress
//
// The packaged /usr/bin/obdgw stays untouched (root owns it); at start it re-executes the
// newest verified binary of update/bin when one is current or on trial (Launch).
//
// Concepts:
//   - trial: a freshly installed version runs on trial until it is healthy (ready, buffer
//     open, uplink connected or failing as it did before the update). It is then current,
//     and the version it replaced previous.
//   - rollback: a trial that starts MaxStarts times without becoming healthy, or stays
//     unhealthy for the health timeout, is recorded in bad and never installed again; the
//     gateway goes on with the current version.
//   - rollout: a target's rollout_percent admits a stable share of gateways (InRollout).
package update
