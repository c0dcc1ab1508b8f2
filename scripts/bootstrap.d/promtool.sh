#!/usr/bin/env bash
# promtool, for `promtool test rules` on the alert rules the dcgm_monitoring role renders.
#
# It comes from Debian's `prometheus` package, unpacked (apt-get download + dpkg -x) into
# $CACHE/promtool, so that no Prometheus daemon is installed or started. The binary ends up at
# $CACHE/bin/promtool, where the tests look for it (or set PROMTOOL). Idempotent: a working
# promtool there is only checked.
set -euo pipefail

CACHE="${CACHE:-${MLOPS_TESTBED_CACHE:-$HOME/.cache/mlops-testbed}}"
DEST="$CACHE/promtool"
BIN="$CACHE/bin/promtool"

if [[ -x "$BIN" ]] && "$BIN" --version >/dev/null 2>&1; then
  echo "promtool: $("$BIN" --version 2>&1 | head -n1)"
  exit 0
fi

mkdir -p "$DEST" "$CACHE/bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download prometheus >/dev/null 2>&1; then
  # The package lists may be stale or missing on a fresh machine.
  if [[ "$(id -u)" == 0 ]]; then apt-get update -qq; else sudo -n apt-get update -qq; fi
  apt-get download prometheus
fi
deb="$(ls prometheus_*.deb | head -n1)"
rm -rf "$DEST/root"
dpkg -x "$deb" "$DEST/root"
ln -sfn "$DEST/root/usr/bin/promtool" "$BIN"
"$BIN" --version 2>&1 | head -n1
