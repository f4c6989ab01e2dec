#!/usr/bin/env bash
# `make chaos`: 10,000 records flow from a gateway process through a real Mosquitto to the
# reference receiver while the broker is SIGKILLed 10 times and the gateway 10 times at random
# moments. Prints lost / duplicated / reordered and exits non-zero unless it is 0 / 0 / 0.
# Knobs: CHAOS_SEED (reproduce a schedule), CHAOS_RECORDS, CHAOS_BROKER_KILLS,
# CHAOS_GATEWAY_KILLS, CHAOS_APPEND_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
$GO test -tags chaos -run '^TestChaos$' -count=1 -v -timeout 20m ./hack/chaos/ 2>&1 | tee "$log" | grep -E '^(chaos:|lost /|--- |FAIL|ok|panic)'
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ] || ! grep -q '^lost / duplicated / reordered: 0 / 0 / 0$' "$log"; then
  echo "chaos: FAILED (full log below)"; tail -100 "$log"; exit 1
fi
echo "chaos: passed"
