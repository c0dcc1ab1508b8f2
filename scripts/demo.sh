#!/usr/bin/env bash
# `make demo`: the main job — the site playbook against the embedded local testbed.
#
# 1. Start the testbed (a real kube-apiserver with simulated GPU nodes); the first start on a
#    fresh machine builds the control-plane binaries (a few minutes), later starts take seconds.
# 2. Run playbooks/site.yml with the `local` inventory.
# The testbed keeps running afterwards so that you can look around; `make testbed-down` stops it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

kubeconfig="$(python tests/testbed/testbed.py up | tail -n 1)"
export MLOPS_KUBECONFIG="$kubeconfig"
echo "[demo] testbed is up; kubeconfig: $kubeconfig"

ansible-playbook -i inventories/local/hosts.yml playbooks/site.yml "$@"

cat <<MSG
[demo] site playbook finished on the local testbed.
[demo] Explore:  KUBECONFIG=$kubeconfig  (e.g. python tests/testbed/testbed.py status)
[demo] Stop:     make testbed-down
MSG
