#!/usr/bin/env bash
# The MLflow contract test's toolchain: the MLflow server release the mlflow role deploys, in its own
# virtualenv (its dependencies would clash with the project's .venv), with the PostgreSQL driver, boto3
# and moto's S3 server; and Debian's PostgreSQL server binaries (the test starts its own cluster, the
# system service is left stopped). Idempotent: a second run only checks.
set -euo pipefail
: "${CACHE:?}"
MLFLOW_VERSION=3.15.1
PINS=("mlflow[auth]==${MLFLOW_VERSION}" "psycopg2-binary==2.9.13" "boto3==1.44.8" "moto[server]==5.2.5")
MVENV="$CACHE/mlflow-venv-${MLFLOW_VERSION}"
STAMP="$MVENV/.mlops-pins"
log() { printf '[bootstrap:mlflow-contract] %s\n' "$*"; }

want="$(printf '%s\n' "${PINS[@]}")"
if [[ -x "$MVENV/bin/mlflow" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  log "ok: $MVENV"
else
  # The project's interpreter (>= 3.12, chosen by bootstrap.sh) builds this virtualenv too.
  PY="$(readlink -f "${VENV:?}/bin/python")"
  [[ -x "$MVENV/bin/python" ]] || "$PY" -m venv "$MVENV"
  "$MVENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
  printf '%s\n' "$want" > "$STAMP"
  log "installed ${PINS[*]} into $MVENV"
fi

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  log "ok: PostgreSQL server binaries in $(dirname /usr/lib/postgresql/*/bin/initdb | head -n1)"
else
  SUDO=""
  [[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
  # The package's maintainer scripts would start a cluster; policy-rc.d keeps every service stopped.
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 0755 /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  # A fresh machine may have no package lists yet.
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends postgresql >/dev/null
  log "installed Debian's postgresql"
fi
