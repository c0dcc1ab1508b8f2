# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""gpu_readiness and gpu_node_info through the fault proxy: transient faults are survived, 403 fails fast.

Real ansible-playbook runs whose only route to the API server is the fault proxy. The proxy's
counters show that faults were injected; every task must still succeed. The figures are printed
(``pytest -s``) for docs/reliability.md.
"""

from __future__ import annotations

import json
import sys
import time

import pytest
import yaml

from audit import AuditLog
from faults import fault_proxy  # noqa: F401  pylint: disable=unused-import

NODE_INFO = {"mlops.platform.gpu_node_info": {"check_operator": True}}
READINESS = {"mlops.platform.gpu_readiness": {"min_nodes": 2, "gpus_per_node": 4, "check_operator": False,
                                              "wait": True, "timeout": 300}}


def run_tasks(ansible_env, tmp_path, kubeconfig, tasks, timeout=900):
    """Run module tasks (each registered; a failure does not end the play); return their results in order."""
    out = tmp_path / ("results-%d.json" % time.monotonic_ns())
    play_tasks = []
    for index, (module_args, loops) in enumerate(tasks):
        task = {"name": "Task %d" % index, "register": "r%d" % index, "ignore_errors": True,
                "loop": list(range(loops))}
        task.update(module_args)
        play_tasks.append(task)
    names = ", ".join("r%d" % i for i in range(len(tasks)))
    play_tasks.append({"name": "Save the results", "ansible.builtin.copy": {
        "content": "{{ [%s] | to_json }}" % names, "dest": str(out)}})
    play = [{"name": "Modules through the fault proxy", "hosts": "localhost", "connection": "local",
             "gather_facts": False, "tasks": play_tasks}]
    playbook = tmp_path / ("play-%d.yml" % time.monotonic_ns())
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(ansible_env, K8S_AUTH_KUBECONFIG=kubeconfig, KUBECONFIG=kubeconfig)
    import subprocess

    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-e", "ansible_python_interpreter=%s" % sys.executable,
                           str(playbook)], env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return [list(registered["results"]) for registered in json.loads(out.read_text())]


def report(label, proxy, results, seconds):
    snap = proxy.stats_snapshot()
    runs = sum(len(r) for r in results)
    failed = sum(1 for r in results for item in r if item.get("failed"))
    print("\nRELIABILITY %s: module runs %d, failed %d, proxied requests %d, injected %s (total %d), %.0fs"
          % (label, runs, failed, snap["requests"], json.dumps(snap["injected"], sort_keys=True),
             snap["injected_total"], seconds))
    return snap


def _reset(proxy, **config):
    proxy.stats.__init__()
    proxy.configure(**config)


def _assert_all_succeeded(results):
    for per_task in results:
        for item in per_task:
            assert not item.get("failed"), item.get("msg")
            if "ready" in item and item.get("invocation", {}).get("module_args", {}).get("wait"):
                assert item["ready"], item.get("msg")


@pytest.fixture
def proxy(fault_proxy):  # noqa: F811  pylint: disable=redefined-outer-name
    yield fault_proxy
    fault_proxy.configure(rate=0.0, methods=[])


def test_modules_converge_at_a_ten_percent_mixed_fault_rate(proxy, ansible_env, tmp_path):
    _reset(proxy, rate=0.1, mix={"throttle": 1, "unavailable": 1, "reset": 1, "slow": 1}, seed=14,
           retry_after=1, slow_seconds=1.0)
    started = time.monotonic()
    results = run_tasks(ansible_env, tmp_path, proxy.kubeconfig, [(NODE_INFO, 12), (READINESS, 4)])
    snap = report("mixed 10%", proxy, results, time.monotonic() - started)
    _assert_all_succeeded(results)
    assert snap["injected_total"] >= 1, snap
    # Faults change nothing in the answer: every gpu_node_info run saw both GPU nodes and the same verdict.
    verdicts = set(json.dumps([i["ready"], i["ready_nodes"], i["total_nodes"], sorted(i["problems"])]) for i in results[0])
    assert len(verdicts) == 1, verdicts
    assert all(i["total_nodes"] == 2 for i in results[0])


@pytest.mark.parametrize("kind", ["throttle", "unavailable", "reset", "slow"])
def test_each_fault_kind_is_survived(proxy, ansible_env, tmp_path, kind):
    _reset(proxy, rate=0.25, mix={kind: 1}, seed=3, retry_after=1, slow_seconds=1.0)
    started = time.monotonic()
    results = run_tasks(ansible_env, tmp_path, proxy.kubeconfig, [(NODE_INFO, 6), (READINESS, 2)])
    snap = report("%s 25%%" % kind, proxy, results, time.monotonic() - started)
    _assert_all_succeeded(results)
    assert snap["injected"][kind] >= 1, snap


def test_forbidden_fails_fast_with_a_clear_message(proxy, ansible_env, tmp_path, testbed):
    _reset(proxy, rate=0.0)
    user = "mlops-no-rights"
    log = AuditLog.for_kubeconfig(testbed.kubeconfig)
    mark = log.mark()
    task = {"mlops.platform.gpu_node_info": {"impersonate_user": user}}
    results = run_tasks(ansible_env, tmp_path, proxy.kubeconfig, [(task, 1)])
    item = results[0][0]
    print("\nRELIABILITY 403: %s" % item.get("msg"))
    assert item["failed"]
    assert "HTTP 403" in item["msg"] and "forbidden" in item["msg"] and user in item["msg"], item["msg"]
    # Fail fast: the forbidden list was sent exactly once, never retried.
    sent = [e for e in log.events_since(mark)
            if (e.get("impersonatedUser") or {}).get("username") == user
            and (e.get("objectRef") or {}).get("resource") == "nodes"]
    assert len(sent) == 1, sent
    assert sent[0]["responseStatus"]["code"] == 403
