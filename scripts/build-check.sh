#!/usr/bin/env bash
# Build the collection tarball, install it into a scratch path, and check that ansible-doc lists
# and renders every module, filter, lookup and test from the installed copy (not from this checkout).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$ROOT/.build/dist"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

rm -rf "$out" && mkdir -p "$out"
ansible-galaxy collection build --force --output-path "$out" "$ROOT" >/dev/null
tarball="$(ls "$out"/mlops-platform-*.tar.gz)"
echo "built $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"
# Dependencies come from the ansible package; only this collection is installed here.
ansible-galaxy collection install --force --no-deps -p "$scratch" "$tarball" >/dev/null

export ANSIBLE_COLLECTIONS_PATH="$scratch"
installed="$scratch/ansible_collections/mlops/platform"
[[ -f "$installed/MANIFEST.json" ]] || { echo "install produced no MANIFEST.json"; exit 1; }
if tar -tzf "$tarball" | grep -E '^(tests|molecule|\.venv|\.build|scripts|benchmarks)/' >/dev/null; then
  echo "the tarball contains development-only paths"; exit 1
fi

fail=0
check() {  # type, directory, extension
  local type="$1" dir="$2" listed name
  listed="$(ansible-doc -t "$type" -l mlops.platform 2>/dev/null | awk '{print $1}')"
  for f in "$installed/plugins/$dir"/*.py "$installed/plugins/$dir"/*.yml; do
    [[ -e "$f" ]] || continue
    name="$(basename "${f%.*}")"
    [[ "$name" == __init__ ]] && continue
    # Filter and test plugin files host several plugins, each documented in its own .yml.
    if [[ "$type" =~ ^(filter|test)$ && "$f" == *.py && -e "${f%.py}.yml" ]]; then continue; fi
    if [[ "$type" =~ ^(filter|test)$ && "$f" == *.py ]] && ! grep -q "^DOCUMENTATION" "$f"; then continue; fi
    if ! grep -qx "mlops.platform.$name" <<<"$listed"; then echo "ansible-doc -t $type -l does not list mlops.platform.$name"; fail=1; continue; fi
    if ! ansible-doc -t "$type" "mlops.platform.$name" >/dev/null 2>&1; then echo "ansible-doc cannot render $type mlops.platform.$name"; fail=1; continue; fi
    echo "ansible-doc -t $type mlops.platform.$name: ok"
  done
}
check module modules
check filter filter
check lookup lookup
check test test
exit "$fail"
