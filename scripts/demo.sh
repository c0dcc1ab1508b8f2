#!/usr/bin/env bash
# `make demo`: the main job — the whole platform on the embedded local testbed.
#
# 1. Start the testbed (a real kube-apiserver with simulated GPU nodes); the first start on a
#    fresh machine builds the control-plane binaries (a few minutes), later starts take seconds.
# 2. playbooks/site.yml with the `local` inventory: the whole platform from its spec
#    (inventories/local/group_vars/mlops_platform/platform.yml), ending with its summary.
# 3. playbooks/verify.yml: the end-to-end check, with a JSON and a JUnit report.
# 4. playbooks/lifecycle.yml: train a model on a GPU node, register it in MLflow, serve it with KServe
#    (the registry is a real MLflow server on this machine, scripts/demo_registry.py: docs/lifecycle.md).
# The testbed keeps running afterwards so that you can look around; `make testbed-down` stops it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

kubeconfig="$(python tests/testbed/testbed.py up | tail -n 1)"
export MLOPS_KUBECONFIG="$kubeconfig"
echo "[demo] testbed is up; kubeconfig: $kubeconfig"

started=$(date +%s)
ansible-playbook -i inventories/local/hosts.yml playbooks/site.yml "$@"
site_seconds=$(( $(date +%s) - started ))

reports="$ROOT/verify-reports/local"
ansible-playbook -i inventories/local/hosts.yml playbooks/verify.yml -e "mlops_verify_report_dir=$reports" "$@"

registry_file="$(mktemp -u "${TMPDIR:-/tmp}/mlops-demo-registry.XXXXXX")"
python scripts/demo_registry.py --out "$registry_file" &
registry_pid=$!
trap 'kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  [[ -s "$registry_file" ]] && break
  kill -0 "$registry_pid" 2>/dev/null || { echo "[demo] the MLflow registry did not start"; exit 1; }
  sleep 1
done
[[ -s "$registry_file" ]] || { echo "[demo] the MLflow registry did not start within 10 minutes"; exit 1; }
# Address and credentials reach the playbook through the environment, never on a command line.
MLOPS_MLFLOW_API_URL="$(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$registry_file")"
MLOPS_MLFLOW_USERNAME="$(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["username"])' "$registry_file")"
MLOPS_MLFLOW_PASSWORD="$(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["password"])' "$registry_file")"
export MLOPS_MLFLOW_API_URL MLOPS_MLFLOW_USERNAME MLOPS_MLFLOW_PASSWORD
ansible-playbook -i inventories/local/hosts.yml playbooks/lifecycle.yml "$@"

cat <<MSG
[demo] the platform is up on the local testbed (site.yml took ${site_seconds}s; its summary is above),
[demo] and a model went train -> register -> serve (lifecycle.yml, above).
[demo] Reports:  $reports/verify-report.json, $reports/verify-report.xml
[demo] Explore:  KUBECONFIG=$kubeconfig  (e.g. python tests/testbed/testbed.py status)
[demo] Again:    ansible-playbook -i inventories/local/hosts.yml playbooks/site.yml   (a rerun changes nothing)
[demo] Remove:   ansible-playbook -i inventories/local/hosts.yml playbooks/uninstall.yml   (keeps data; -e mlops_purge=true removes it)
[demo] Stop:     make testbed-down
MSG
