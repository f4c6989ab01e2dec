#!/usr/bin/env bash
# Full-scan benchmark: `obdgw scan`'s work (open + initialise the adapter, full scan) against the
# simulated petrol car over a real pty, paced at 38400 / 9600 / 115200 baud with 15 ms ECU
# latency, with the count digit unsupported, and a second scan on the open adapter.
#
# Each line reports, per scan:
#   x-bound        wall time / the simulator's lower bound (bytes on the wire + ECU latency); target ≤ 1.3
#   timeouts/op    requests after which the adapter waited out its response timeout (0 when the
#                  count digit is used well); waited-ms/op is the time that cost
#   x-replay       wall time / the same commands sent by a bare client (the driver's own overhead)
#   replay-x-bound the bare client against the bound (what the simulator and pty add)
#
# Then the quick connect (BenchmarkQuickConnect): the same open + full scan through an adapter
# whose automatic protocol search takes 3 s, side by side with an adapter that starts on the
# right protocol and with the connect that searches:
#   x-right        the default connect (CAN 11/500 tried directly) / the right-protocol
#                  baseline; target ≤ 1.3
#   search-x-right the searching connect / the same baseline (what the quick tries save)
# Absolute times drift on shared machines; the ratios are measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
$GO test -run '^$' -bench 'BenchmarkScanPetrol|BenchmarkQuickConnect' -benchtime "${BENCHTIME:-3x}" -timeout 30m ./drivers/elm327/elm327sim
