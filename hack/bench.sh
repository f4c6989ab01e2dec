#!/usr/bin/env bash
# `make bench`: every Go benchmark of the packages that have them, each printing its ratio
# against a baseline measured in the same run (plain paho publisher, bbolt's own batching…),
# then hack/bench-scan.sh if it exists. Absolute figures drift on shared machines; compare the
# ratios. BENCHTIME (default 4x for the broker benchmarks, which size themselves) and COUNT
# can be overridden.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
COUNT=${COUNT:-1}
pkgs=()
for p in ./buffer ./cloud; do
  if grep -qsE '^func Benchmark' "$p"/*_test.go; then pkgs+=("$p"); fi
done
# Any other package that grew benchmarks.
while read -r f; do
  d=./$(dirname "$f")
  case " ${pkgs[*]} " in *" $d "*) ;; *) pkgs+=("$d");; esac
done < <(git ls-files '*_test.go' | xargs grep -lE '^func Benchmark' 2>/dev/null | grep -vE '^(buffer|cloud)/' || true)
status=0
for p in "${pkgs[@]}"; do
  echo "== $p"
  bt=${BENCHTIME:-}
  if [ -z "$bt" ]; then
    # 4x: BenchmarkDrainVsPlainPaho alternates which phase goes first.
    case $p in ./cloud) bt=4x;; *) bt=1s;; esac
  fi
  $GO test -run '^$' -bench . -benchmem -benchtime "$bt" -count "$COUNT" -timeout 30m "$p" | grep -vE '^(goos|goarch|pkg|cpu):' || status=1
done
if [ -x hack/bench-scan.sh ]; then
  echo "== hack/bench-scan.sh"
  hack/bench-scan.sh || status=1
fi
exit $status
