# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""gpu_readiness, gpu_node_info and gpu_smoke_test through real ansible-playbook runs against the testbed.

Faults are injected with the node agent's ``testbed.mlops.platform/faults`` annotation and always removed
again. Every wait is bounded and waits on an event (a verdict, a registered watch, the agent's log line),
never on elapsed time, so a busy machine makes the tests slower, not red.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest
import yaml

import waiting

FAULTS = "testbed.mlops.platform/faults"
STATE = "testbed.mlops.platform/state"
GPU_NODES = ("gpu-0", "gpu-1")
FAULTY = "gpu-1"


def run_module(ansible_env, tmp_path, module, args, check=False, timeout=900):
    """Run one module task in a playbook; return (failed, result dict, seconds the playbook took)."""
    out = tmp_path / ("result-%s.json" % time.monotonic_ns())
    play = [{
        "name": "Run %s" % module,
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "tasks": [
            {"name": "Module under test", module: args, "register": "result", "ignore_errors": True},
            {"name": "Save the result", "ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": str(out)},
             "check_mode": False},
        ],
    }]
    playbook = tmp_path / ("play-%s.yml" % time.monotonic_ns())
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    cmd = ["ansible-playbook", "-i", "localhost,", "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook)]
    cmd += ["--check"] if check else []
    started = time.monotonic()
    proc = subprocess.run(cmd, env=ansible_env, capture_output=True, text=True, timeout=timeout, check=False)
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    return bool(result.get("failed")), result, took


def set_faults(k8s, node, faults):
    from kubernetes import client

    value = ",".join(faults) if faults else None
    client.CoreV1Api(k8s).patch_node(node, {"metadata": {"annotations": {FAULTS: value}}})


def node_problems(result, node):
    return [n for n in result["nodes"] if n["name"] == node][0]["problems"]


def wait_for_problem(ansible_env, tmp_path, node, text, deadline_s=300, **extra):
    """Run gpu_node_info until ``text`` shows up in ``node``'s problems (bounded); return the last result."""
    deadline = time.monotonic() + deadline_s
    while True:
        failed, result, dummy = run_module(ansible_env, tmp_path, "mlops.platform.gpu_node_info", dict(extra))
        assert not failed, result.get("msg")
        if any(text in p for p in node_problems(result, node)) or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


CHART = os.path.join(os.path.dirname(__file__), "..", "testbed", "charts", "gpu-operator")


def _clusterpolicies(k8s):
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        return client.CustomObjectsApi(k8s).list_cluster_custom_object("nvidia.com", "v1", "clusterpolicies")["items"]
    except ApiException as err:
        if err.status == 404:
            return []
        raise


@pytest.fixture(scope="module")
def gpu_operator(testbed, k8s, namespaces, ansible_env):
    """A GPU operator ClusterPolicy on the testbed: installs the gpu-operator stand-in chart if there is none."""
    installed = False
    if not _clusterpolicies(k8s):
        namespaces.wait_settled("gpu-operator")
        cmd = ["helm", "upgrade", "--install", "gpu-operator", CHART, "--namespace", "gpu-operator", "--create-namespace",
               "--kubeconfig", testbed.kubeconfig]
        proc = subprocess.run(cmd, env=ansible_env, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        installed = True
    yield
    if installed:
        subprocess.run(["helm", "uninstall", "gpu-operator", "--namespace", "gpu-operator", "--kubeconfig", testbed.kubeconfig],
                       env=ansible_env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def gpu_testbed(testbed, gpu_operator, k8s, ansible_env):
    """The testbed with a GPU operator and both GPU nodes free of faults, before and after the test."""
    for node in GPU_NODES:
        set_faults(k8s, node, None)
    yield testbed
    for node in GPU_NODES:
        set_faults(k8s, node, None)


def agent_log_count(testbed, text):
    """How often ``text`` appears in the node agent's log (the testbed's state directory holds it)."""
    log = os.path.join(os.path.dirname(testbed.kubeconfig), "logs", "node-agent.log")
    if not os.path.exists(log):
        pytest.fail("no node agent log at %s: this test needs the testbed's node agent" % log)
    with open(log, encoding="utf-8", errors="replace") as handle:
        return handle.read().count(text)


def wait_ready(ansible_env, tmp_path, timeout=300):
    failed, result, dummy = run_module(ansible_env, tmp_path, "mlops.platform.gpu_readiness",
                                       {"min_nodes": 2, "wait": True, "timeout": timeout})
    assert not failed, result["msg"]
    return result


def test_healthy_cluster(gpu_testbed, ansible_env, tmp_path):
    result = wait_ready(ansible_env, tmp_path)
    failed, result, dummy = run_module(ansible_env, tmp_path, "mlops.platform.gpu_readiness", {"min_nodes": 2, "gpus_per_node": 4})
    assert failed is False, result.get("msg")
    assert result["ready"] is True and result["changed"] is False
    assert result["ready_nodes"] == 2 and result["total_nodes"] == 2
    assert [n["name"] for n in result["nodes"]] == list(GPU_NODES)
    for node in result["nodes"]:
        assert node["product"].startswith("NVIDIA-A100-SXM4-80GB")
        assert node["memory_mib"] == 81920 and node["driver"].startswith("550.90")
        assert node["problems"] == []
    assert result["operator"]["state"] == "ready"
    assert result["operator"]["daemonsets"], "operand DaemonSets expected"
    assert result["api_requests"] == 4


def test_node_info_in_check_mode(gpu_testbed, ansible_env, tmp_path):
    failed, result, dummy = run_module(ansible_env, tmp_path, "mlops.platform.gpu_node_info", {}, check=True)
    assert failed is False
    assert result["changed"] is False
    assert result["total_nodes"] == 2


FAULT_CASES = [
    ("gpu-allocatable-zero", "allocatable nvidia.com/gpu=0 but capacity="),
    ("gpu-allocatable-partial", "is lower than capacity="),
    ("mig-invalid", "product label is NVIDIA-A100-SXM4-80GB-MIG-INVALID"),
    ("not-ready", "node NotReady"),
    ("operand-not-ready", "pod on this node stuck in Init"),
    ("no-gfd-labels", "missing GPU Feature Discovery labels"),
]


@pytest.mark.parametrize("fault,text", FAULT_CASES, ids=[c[0] for c in FAULT_CASES])
def test_injected_fault_is_reported_on_the_right_node(gpu_testbed, k8s, ansible_env, tmp_path, fault, text):
    wait_ready(ansible_env, tmp_path)
    set_faults(k8s, FAULTY, [fault])
    info = wait_for_problem(ansible_env, tmp_path, FAULTY, text)
    assert any(text in p for p in node_problems(info, FAULTY)), node_problems(info, FAULTY)
    assert node_problems(info, "gpu-0") == []
    failed, result, dummy = run_module(ansible_env, tmp_path, "mlops.platform.gpu_readiness", {"min_nodes": 2})
    assert failed is True
    assert result["ready"] is False
    assert "%s: " % FAULTY in result["msg"] and text in result["msg"]
    assert "gpu-0:" not in result["msg"]
    assert result["ready_nodes"] == 1


def test_clusterpolicy_not_ready(gpu_testbed, k8s, ansible_env, tmp_path):
    from kubernetes import client

    wait_ready(ansible_env, tmp_path)
    api = client.CustomObjectsApi(k8s)
    policies = api.list_cluster_custom_object("nvidia.com", "v1", "clusterpolicies")["items"]
    assert policies, "the testbed should have a ClusterPolicy"
    name = policies[0]["metadata"]["name"]
    api.patch_cluster_custom_object("nvidia.com", "v1", "clusterpolicies", name, {"metadata": {"annotations": {STATE: "notReady"}}})
    try:
        deadline = time.monotonic() + 300
        while True:
            failed, result, dummy = run_module(ansible_env, tmp_path, "mlops.platform.gpu_readiness", {"fail_on_not_ready": False})
            if not result["operator"]["ready"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert failed is False
        assert result["ready"] is False
        assert any("ClusterPolicy %s state is notReady" % name in p for p in result["operator"]["problems"]), result["operator"]
        dummy, unchecked, dummy2 = run_module(ansible_env, tmp_path, "mlops.platform.gpu_readiness", {"check_operator": False})
        assert unchecked["ready"] is True
    finally:
        api.patch_cluster_custom_object("nvidia.com", "v1", "clusterpolicies", name, {"metadata": {"annotations": {STATE: None}}})
    wait_ready(ansible_env, tmp_path)


def registered_watchers(k8s, kind="Node"):
    """How many watches on ``kind`` the API server holds (its ``apiserver_registered_watchers`` gauge)."""
    response = k8s.call_api("GET", k8s.configuration.host + "/metrics")
    response.read()
    pattern = re.compile(r'^apiserver_registered_watchers\{group="",kind="%s",version="v1"\} (\d+)' % kind, re.M)
    match = pattern.search(response.data.decode())
    return int(match.group(1)) if match else 0


def test_wait_until_node_becomes_allocatable(gpu_testbed, k8s, ansible_env, tmp_path):
    """The module waits on events: it reports the not-ready verdict, then ready once the node is fixed.

    The fault is cleared once the module is known to be waiting (a new watch on Nodes is registered at
    the API server, which it opens only after its first verdict was not ready), never on a timer, so how
    long ansible-playbook takes to start does not matter.
    """
    wait_ready(ansible_env, tmp_path)
    set_faults(k8s, FAULTY, ["gpu-allocatable-zero"])
    wait_for_problem(ansible_env, tmp_path, FAULTY, "allocatable nvidia.com/gpu=0")
    baseline = max(registered_watchers(k8s) for _sample in range(3))
    outcome = {}

    def run():
        outcome["result"] = run_module(ansible_env, tmp_path, "mlops.platform.gpu_readiness",
                                       {"min_nodes": 2, "wait": True, "timeout": 600}, timeout=900)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    try:
        waiting.poll_until(lambda: registered_watchers(k8s) > baseline or not runner.is_alive(), 600,
                           "the module to watch Nodes (more than %d watchers)" % baseline, interval=0.2)
        assert runner.is_alive(), "the module returned before it waited: %r" % (outcome.get("result"),)
    finally:
        set_faults(k8s, FAULTY, None)
        runner.join(900)
    assert "result" in outcome, "the module did not finish"
    failed, result, dummy = outcome["result"]
    assert failed is False, result.get("msg")
    assert result["ready"] is True and result["timed_out"] is False
    assert result["progress"][0]["ready"] is False
    assert any("allocatable nvidia.com/gpu=0" in p for p in result["progress"][0]["problems"])
    assert result["progress"][-1]["ready"] is True
    assert [step["elapsed"] for step in result["progress"]] == sorted(step["elapsed"] for step in result["progress"])


def test_wait_times_out_with_useful_message(gpu_testbed, k8s, ansible_env, tmp_path):
    wait_ready(ansible_env, tmp_path)
    set_faults(k8s, FAULTY, ["not-ready"])
    wait_for_problem(ansible_env, tmp_path, FAULTY, "node NotReady")
    failed, result, took = run_module(ansible_env, tmp_path, "mlops.platform.gpu_readiness",
                                      {"min_nodes": 2, "wait": True, "timeout": 3})
    assert failed is True
    assert result["timed_out"] is True
    assert result["msg"].startswith("timed out after 3s waiting for GPU readiness")
    assert "gpu-1: node NotReady" in result["msg"]
    assert result["elapsed"] >= 3


def _jobs_and_pods(k8s, namespace):
    from kubernetes import client

    jobs = client.BatchV1Api(k8s).list_namespaced_job(namespace).items
    pods = client.CoreV1Api(k8s).list_namespaced_pod(namespace).items
    return jobs, pods


def _wait_gone(k8s, namespace, deadline_s=300):
    deadline = time.monotonic() + deadline_s
    while True:
        jobs, pods = _jobs_and_pods(k8s, namespace)
        if (not jobs and not pods) or time.monotonic() > deadline:
            return jobs, pods
        time.sleep(0.5)


def test_smoke_test_passes_and_cleans_up(gpu_testbed, k8s, ansible_env, tmp_path, namespace):
    wait_ready(ansible_env, tmp_path)
    failed, result, dummy = run_module(ansible_env, tmp_path, "mlops.platform.gpu_smoke_test",
                                       {"namespace": namespace, "timeout": 300})
    assert failed is False, result.get("msg")
    assert result["changed"] is True
    assert result["passed_nodes"] == list(GPU_NODES)
    for entry in result["results"]:
        assert entry["passed"] is True and entry["exit_code"] == 0 and entry["log_passed"] is True
        assert entry["phase"] == "Succeeded" and entry["job_status"] == "Complete"
    assert result["cleaned_up"] is True
    jobs, pods = _wait_gone(k8s, namespace)
    assert jobs == [] and pods == []


def test_smoke_test_fails_on_smoke_fail_node(gpu_testbed, k8s, ansible_env, tmp_path, namespace):
    wait_ready(ansible_env, tmp_path)
    seen = agent_log_count(gpu_testbed, "node %s faults now ['smoke-fail']" % FAULTY)
    set_faults(k8s, FAULTY, ["smoke-fail"])
    # Run the smoke test only once the node agent has taken the fault in (it logs each change).
    waiting.poll_until(lambda: agent_log_count(gpu_testbed, "node %s faults now ['smoke-fail']" % FAULTY) > seen, 300,
                       "the node agent to see the smoke-fail fault on %s" % FAULTY, interval=0.2)
    failed, result, dummy = run_module(ansible_env, tmp_path, "mlops.platform.gpu_smoke_test",
                                       {"namespace": namespace, "timeout": 300})
    assert failed is True
    assert result["failed_nodes"] == [FAULTY]
    assert result["passed_nodes"] == ["gpu-0"]
    bad = [r for r in result["results"] if r["node"] == FAULTY][0]
    assert bad["phase"] == "Failed" and bad["exit_code"] == 1 and bad["log_passed"] is False
    assert "container exited with code 1" in bad["reasons"]
    assert "gpu-1:" in result["msg"]
    jobs, pods = _wait_gone(k8s, namespace)
    assert jobs == [] and pods == []


def test_smoke_test_check_mode_creates_nothing(gpu_testbed, k8s, ansible_env, tmp_path, namespace):
    failed, result, dummy = run_module(ansible_env, tmp_path, "mlops.platform.gpu_smoke_test", {"namespace": namespace}, check=True)
    assert failed is False
    assert result["msg"].startswith("check mode: nothing created")
    jobs, pods = _jobs_and_pods(k8s, namespace)
    assert jobs == [] and pods == []


def test_ansible_doc_renders(ansible_env):
    for module in ("gpu_readiness", "gpu_node_info", "gpu_smoke_test"):
        proc = subprocess.run(["ansible-doc", "mlops.platform.%s" % module], env=ansible_env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "RETURN VALUES" in proc.stdout or "RETURN" in proc.stdout
