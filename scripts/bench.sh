#!/usr/bin/env bash
# `make bench`: every benchmark, printing its figures. Benchmarks never fail on a speed target.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
for bench in benchmarks/bench_*.py; do
  echo "== $bench"
  python "$bench" "$@"
done
