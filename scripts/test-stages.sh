#!/usr/bin/env bash
# `make test`: run the test stages in order, stop at the first failure, and print how long each
# stage took (also when one fails).
#
# One testbed serves every stage that needs a cluster: it is started before the first such stage
# (pytest), started afresh before the molecule stage, and reused by the molecule scenarios through
# KUBECONFIG (their shared create step uses a cluster that answers there); each scenario's cleanup
# removes what it created. The testbed is stopped at the end when this script started it.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

stages=("$@")
declare -a names=() secs=() results=()
started_testbed=0
total_start=$(date +%s)

report() {
  printf '\n== stage timings\n'
  local i
  for i in "${!names[@]}"; do
    printf '  %-12s %6ss  %s\n' "${names[$i]}" "${secs[$i]}" "${results[$i]}"
  done
  printf '  %-12s %6ss\n' total "$(( $(date +%s) - total_start ))"
}

stop_testbed() {
  if (( started_testbed )); then
    python tests/testbed/testbed.py down >/dev/null 2>&1 || true
  fi
}

# Before the molecule stage the testbed this script started is started afresh (its data wiped), so
# that what the pytest stage left behind cannot show up in a scenario's check-mode assertions.
reset_testbed() {
  if (( started_testbed )) && [[ -n "${KUBECONFIG_FOR_TESTS:-}" ]]; then
    python tests/testbed/testbed.py down >/dev/null 2>&1 || true
    KUBECONFIG_FOR_TESTS=""
  fi
}

ensure_testbed() {
  if [[ -n "${KUBECONFIG_FOR_TESTS:-}" ]]; then return 0; fi
  if ! python tests/testbed/testbed.py status >/dev/null 2>&1; then
    started_testbed=1
  fi
  local out
  out="$(python tests/testbed/testbed.py up)" || { echo "testbed did not start"; return 1; }
  KUBECONFIG_FOR_TESTS="$(printf '%s\n' "$out" | tail -n 1)"
  export KUBECONFIG="$KUBECONFIG_FOR_TESTS"
}

trap 'stop_testbed' EXIT

for stage in "${stages[@]}"; do
  t0=$(date +%s)
  rc=0
  case "$stage" in
    pytest) ensure_testbed || rc=1 ;;
    molecule) reset_testbed; ensure_testbed || rc=1 ;;
  esac
  if (( rc == 0 )); then
    make --no-print-directory "$stage" || rc=$?
  fi
  names+=("$stage")
  secs+=("$(( $(date +%s) - t0 ))")
  if (( rc != 0 )); then
    results+=("FAILED (rc=$rc)")
    report
    echo "make test: stage '$stage' failed"
    exit 1
  fi
  results+=("ok")
done
report
echo "make test: all stages passed"
