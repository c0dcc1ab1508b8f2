# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/gpu_change.yml on the testbed: a GPU sharing change in batches of one, and a failed MIG change.

The GPU operator is installed with the gpu_operator role (time-slicing x2), a GPU workload runs one pod
per GPU node, then the playbook moves every GPU node to time-slicing x4. A watch on the GPU Nodes,
running for the whole playbook run, records every change of ``spec.unschedulable`` in the API server's
order: never two GPU nodes cordoned at once, each one cordoned once, all uncordoned at the end with the
new allocatable; the API server's audit log shows that the workload pods were evicted (not deleted).
The MIG cases ask mig-manager (played by the node agent, with the ``mig-config-failed`` or
``mig-config-stuck`` fault) for a configuration it cannot apply or never finishes: the run stops naming the node, its state and the remedy, and leaves the
node cordoned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from audit import AuditLog, format_requests
from waiting import poll_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STAND_IN = os.path.join(ROOT, "tests", "testbed", "charts", "gpu-operator")
GPU_SELECTOR = "accelerator=nvidia-gpu"
OPERATOR_VARS = {
    "gpu_operator_chart_ref": STAND_IN,
    "gpu_operator_timeout": 300,
    "gpu_operator_min_gpu_nodes": 2,
    "gpu_operator_smoke_test": False,
    "gpu_operator_sharing": {"strategy": "time-slicing", "replicas": 2},
}
SETUP = """
- name: GPU operator for the gpu_change test
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/kubernetes.core.k8s: {kubeconfig: "%(kubeconfig)s"}
    group/kubernetes.core.helm: {kubeconfig: "%(kubeconfig)s"}
    group/mlops.platform.gpu: {kubeconfig: "%(kubeconfig)s"}
  roles:
    - role: mlops.platform.gpu_operator
"""
FAULTS = "testbed.mlops.platform/faults"


def _run(ansible_env, args, extra, tmp_path, name):
    extra_file = tmp_path / ("%s-vars.json" % name)
    extra_file.write_text(json.dumps(extra), encoding="utf-8")
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook")] + args + ["-e", "@%s" % extra_file]
    return subprocess.run(cmd, capture_output=True, text=True, env=ansible_env, cwd=ROOT, check=False)


def _operator(ansible_env, testbed, tmp_path, extra):
    playbook = tmp_path / "operator.yml"
    playbook.write_text(SETUP % {"kubeconfig": testbed.kubeconfig}, encoding="utf-8")
    return _run(ansible_env, [str(playbook)], dict(OPERATOR_VARS, **extra), tmp_path, "operator")


def _gpu_change(ansible_env, tmp_path, extra, name, check=False):
    args = (["--check", "--diff"] if check else []) + [
        "-i", os.path.join(ROOT, "inventories", "local", "hosts.yml"), os.path.join(ROOT, "playbooks", "gpu_change.yml")]
    # The local inventory's cluster is the testbed this session runs.
    cluster = {"mlops_kubeconfig": ansible_env["K8S_AUTH_KUBECONFIG"]}
    return _run(ansible_env, args, dict(OPERATOR_VARS, **cluster, **extra), tmp_path, name)


def _core(k8s):
    from kubernetes import client

    return client.CoreV1Api(k8s)


def _gpu_nodes(k8s):
    return sorted(_core(k8s).list_node(label_selector=GPU_SELECTOR).items, key=lambda n: n.metadata.name)


def _clear_node_labels(k8s, keys):
    for node in _gpu_nodes(k8s):
        _core(k8s).patch_node(node.metadata.name, {"metadata": {"labels": {key: None for key in keys},
                                                                "annotations": {FAULTS: None}},
                                                   "spec": {"unschedulable": None}})


class NodeWatch:
    """Records (node, unschedulable) for every event on the GPU Nodes, in the API server's order."""

    def __init__(self, k8s):
        self.k8s = k8s
        self.events = []
        self.error = None
        self._stop = threading.Event()
        self._thread = None
        listed = _core(k8s).list_node(label_selector=GPU_SELECTOR)
        self.resource_version = listed.metadata.resource_version
        self.initial = {n.metadata.name: bool(n.spec.unschedulable) for n in listed.items}

    def _run(self):
        from kubernetes import watch

        version = self.resource_version
        try:
            while not self._stop.is_set():
                stream = watch.Watch()
                for event in stream.stream(_core(self.k8s).list_node, label_selector=GPU_SELECTOR,
                                           resource_version=version, timeout_seconds=5):
                    node = event["object"]
                    version = node.metadata.resource_version
                    self.events.append((node.metadata.name, bool(node.spec.unschedulable)))
                    if self._stop.is_set():
                        stream.stop()
        except Exception as err:  # pylint: disable=broad-except
            self.error = err

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, name="node-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)
        return False

    def cordons(self):
        """How often each node went from schedulable to cordoned."""
        state = dict(self.initial)
        counts = {name: 0 for name in state}
        for name, unschedulable in self.events:
            if unschedulable and not state.get(name):
                counts[name] = counts.get(name, 0) + 1
            state[name] = unschedulable
        return counts


def max_cordoned_at_once(initial, events):
    """Replays (node, unschedulable) events; the most nodes unschedulable at one time."""
    state = dict(initial)
    most = sum(state.values())
    for name, unschedulable in events:
        state[name] = unschedulable
        most = max(most, sum(state.values()))
    return most


def test_the_overlap_count_sees_two_nodes_cordoned_together():
    """The replay used below can fail: two overlapping cordons count as two."""
    initial = {"gpu-0": False, "gpu-1": False}
    one_by_one = [("gpu-0", True), ("gpu-0", False), ("gpu-1", True), ("gpu-1", False)]
    overlapping = [("gpu-0", True), ("gpu-1", True), ("gpu-0", False), ("gpu-1", False)]
    assert max_cordoned_at_once(initial, one_by_one) == 1
    assert max_cordoned_at_once(initial, overlapping) == 2


@pytest.fixture(scope="module")
def operator(testbed, k8s, ansible_env, namespaces, tmp_path_factory):
    from kubernetes import client

    custom = client.CustomObjectsApi(k8s)

    def others():
        return custom.list_cluster_custom_object("nvidia.com", "v1", "clusterpolicies")["items"]

    poll_until(lambda: not others(), 180, "other ClusterPolicies to go away")
    namespaces.wait_settled("gpu-operator")
    tmp = tmp_path_factory.mktemp("gpu-change-operator")
    proc = _operator(ansible_env, testbed, tmp, {})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    yield
    proc = _operator(ansible_env, testbed, tmp, {"gpu_operator_state": "absent"})
    _clear_node_labels(k8s, ["nvidia.com/device-plugin.config", "nvidia.com/mig.config", "nvidia.com/mig.config.state"])
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    namespaces.delete_and_wait("gpu-operator")


def _workload(k8s, namespace):
    """One pod per GPU node (required anti-affinity), each asking for a GPU, owned by a Deployment."""
    from kubernetes import client

    labels = {"app": "gpu-work"}
    client.AppsV1Api(k8s).create_namespaced_deployment(namespace, {
        "metadata": {"name": "gpu-work"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"accelerator": "nvidia-gpu"},
                    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": labels}, "topologyKey": "kubernetes.io/hostname"}]}},
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{"name": "work", "image": "nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0",
                                    "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
                },
            },
        },
    })

    def running_on():
        pods = _core(k8s).list_namespaced_pod(namespace, label_selector="app=gpu-work").items
        nodes = {p.spec.node_name for p in pods if p.status.phase == "Running"}
        return nodes if len(nodes) == 2 else None

    return poll_until(running_on, 180, "the GPU workload to run on both GPU nodes", 1)


def test_sharing_change_one_node_at_a_time(operator, testbed, k8s, ansible_env, namespace, tmp_path):
    assert _workload(k8s, namespace) == {"gpu-0", "gpu-1"}
    log = AuditLog.for_kubeconfig(testbed.kubeconfig)
    mark = log.mark()
    new = {"gpu_operator_sharing": {"strategy": "time-slicing", "replicas": 4},
           "mlops_gpu_change": "sharing", "mlops_gpu_change_batch_size": 1,
           "mlops_gpu_change_grace_period": 5, "mlops_gpu_change_timeout": 300}
    # Check mode shows the plan and changes nothing: only server-side dry runs reach the API.
    with NodeWatch(k8s) as dry_watch:
        dry = _gpu_change(ansible_env, tmp_path, new, "sharing-check", check=True)
    assert dry.returncode == 0, (dry.stdout + dry.stderr)[-6000:]
    assert "2 of 2 GPU node(s) to change" in dry.stdout
    assert not any(event[1] for event in dry_watch.events), dry_watch.events
    real = [r for r in log.mutations_since(mark) if "dryRun" not in r.uri]
    assert real == [], format_requests(real)

    mark = log.mark()
    with NodeWatch(k8s) as watch:
        proc = _gpu_change(ansible_env, tmp_path, new, "sharing")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-8000:]
    assert "Traceback" not in output
    assert watch.error is None, watch.error

    assert max_cordoned_at_once(watch.initial, watch.events) == 1, watch.events
    assert watch.cordons() == {"gpu-0": 1, "gpu-1": 1}, watch.events

    for node in _gpu_nodes(k8s):
        name = node.metadata.name
        assert not node.spec.unschedulable, name
        assert node.metadata.labels.get("nvidia.com/device-plugin.config") == "default", name
        assert node.status.allocatable["nvidia.com/gpu"] == "16", (name, node.status.allocatable)
        assert node.metadata.labels.get("nvidia.com/gpu.replicas") == "4", name
    data = _core(k8s).read_namespaced_config_map("mlops-device-plugin-config", "gpu-operator").data
    assert sorted(data) == ["default"], sorted(data)

    # The workload pods were evicted through the Eviction API, one per drained node.
    evictions = [r for r in log.mutations_since(mark) if r.resource == "pods/eviction" and r.namespace == namespace]
    assert len(evictions) == 2 and all(r.code == 201 for r in evictions), format_requests(evictions)
    poll_until(lambda: _workload_running(k8s, namespace), 180, "the workload to run again on both GPU nodes", 1)

    # A second run has nothing left to change.
    again = _gpu_change(ansible_env, tmp_path, new, "sharing-again")
    assert again.returncode == 0, (again.stdout + again.stderr)[-6000:]
    assert "0 of 2 GPU node(s) to change" in again.stdout


def _workload_running(k8s, namespace):
    pods = _core(k8s).list_namespaced_pod(namespace, label_selector="app=gpu-work").items
    return len({p.spec.node_name for p in pods if p.status.phase == "Running"}) == 2


@pytest.mark.parametrize("fault,state", [
    ("mig-config-failed", "nvidia.com/mig.config.state=failed"),
    ("mig-config-stuck", "nvidia.com/mig.config.state=pending (still not settled after 20s)"),
])
def test_failed_mig_change_stops_with_the_node_its_state_and_a_remedy(operator, k8s, ansible_env, tmp_path, fault, state):
    core = _core(k8s)
    core.patch_node("gpu-1", {"metadata": {"annotations": {FAULTS: fault}}})
    try:
        proc = _gpu_change(ansible_env, tmp_path, {
            "mlops_gpu_change": "mig",
            "gpu_operator_mig_node_configs": [{"node_selector": "kubernetes.io/hostname=gpu-1", "config": "all-1g.10gb"}],
            # A failed state stops the wait at once; a stuck one waits this long.
            "mlops_gpu_change_timeout": 120 if fault == "mig-config-failed" else 20,
        }, "mig")
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output[-6000:]
        assert "Traceback" not in output
        assert "stopped at node(s) gpu-1" in output
        assert "node gpu-1 (mig.config all-1g.10gb): %s" % state in output
        assert "nvidia-mig-manager pod logs" in output
        assert "left cordoned" in output
        assert core.read_node("gpu-1").spec.unschedulable is True
        assert not core.read_node("gpu-0").spec.unschedulable
    finally:
        _clear_node_labels(k8s, ["nvidia.com/mig.config", "nvidia.com/mig.config.state"])


HOLD = "testbed.mlops.platform/hold"


def test_drain_waits_for_a_pod_whose_namespace_is_being_deleted(operator, testbed, k8s, ansible_env, tmp_path):
    """The API server refuses (403) every eviction in a namespace being deleted; the drain tries again until the pod is gone.

    A finalizer holds the pod for a while after its namespace is deleted, as a slow pod shutdown would.
    """
    from kubernetes import client

    core = _core(k8s)
    name = "t-drain-%s" % os.urandom(4).hex()
    core.create_namespace({"metadata": {"name": name, "labels": {"mlops.platform/test": "true"}}})
    labels = {"app": "leaving"}
    client.AppsV1Api(k8s).create_namespaced_deployment(name, {
        "metadata": {"name": "leaving"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels, "finalizers": [HOLD]},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": "gpu-1"},
                     "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "work", "image": "nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0"}]}}},
    })
    pod = poll_until(lambda: next(iter(p for p in core.list_namespaced_pod(name).items if p.status.phase == "Running"), None),
                     120, "the pod to run on gpu-1", 1)
    core.delete_namespace(name)
    poll_until(lambda: core.read_namespaced_pod(pod.metadata.name, name).metadata.deletion_timestamp, 60,
               "the namespace controller to delete the pod", 1)

    def release():
        core.patch_namespaced_pod(pod.metadata.name, name, {"metadata": {"finalizers": None}})

    log = AuditLog.for_kubeconfig(testbed.kubeconfig)
    mark = log.mark()
    timer = threading.Timer(25, release)
    timer.start()
    try:
        proc = _gpu_change(ansible_env, tmp_path, {
            "mlops_gpu_change": "mig", "mlops_gpu_change_reconcile": False, "mlops_gpu_change_drain_timeout": 120,
            "gpu_operator_mig_node_configs": [{"node_selector": "kubernetes.io/hostname=gpu-1", "config": "all-1g.10gb"}],
        }, "drain-terminating")
    finally:
        timer.cancel()
        try:
            release()
        except client.ApiException as err:
            assert err.status == 404, err
        _clear_node_labels(k8s, ["nvidia.com/mig.config", "nvidia.com/mig.config.state"])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert "1 of 2 GPU node(s) to change" in output
    assert "FAILED - RETRYING: [localhost]: Batch | drain" in output
    evictions = [r for r in log.mutations_since(mark) if r.resource == "pods/eviction" and r.namespace == name]
    assert evictions and all(r.code == 403 for r in evictions), format_requests(evictions)
    assert not core.read_node("gpu-1").spec.unschedulable
