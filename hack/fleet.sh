#!/usr/bin/env bash
# `make fleet`: FLEET_GATEWAYS (2,000) simulated gateways, each a real uplink over its own bbolt
# outbox, publish a compressed working day to a real Mosquitto while FLEET_RECEIVERS (2)
# reference receivers in one shared-subscription group store it; the broker is SIGKILLed and
# restarted FLEET_OUTAGE_SECONDS (60) later. Prints the figures and exits non-zero on a lost
# record, an id stored twice by one receiver or a receiver that stopped.
# Knobs: FLEET_GATEWAYS, FLEET_RECEIVERS, FLEET_SECONDS (the day, 300), FLEET_OUTAGE_SECONDS,
# FLEET_BURST (records per gateway in each capacity burst, 5), FLEET_SEED.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
gateways=${FLEET_GATEWAYS:-2000}
# Each gateway holds a socket and its outbox file in the test process and a socket in the
# broker, which inherits this shell's limit: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
need=$((2 * gateways + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  echo "fleet: $gateways gateways need about $need open files, this shell allows $(ulimit -n): raise the hard limit (e.g. LimitNOFILE, /etc/security/limits.conf)"
  exit 1
fi
echo "fleet: open files allowed: $(ulimit -n)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
$GO test -tags fleet -run '^TestFleet$' -count=1 -v -timeout 60m ./hack/fleet/ 2>&1 | tee "$log" | grep --line-buffered -E '^(fleet:|--- |FAIL|ok|panic)'
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
  echo "fleet: FAILED (log tail below)"; tail -60 "$log"; exit 1
fi
