# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform_base role on the testbed, driven by role variables computed from a platform spec.

Check mode creates nothing; converge creates every namespace and object; the component roles' own
namespace tasks (read from the roles' task files, not restated here) then apply the same namespaces,
and neither platform_base nor those tasks change anything on a rerun; absent removes the role's
objects and keeps the namespaces; purge deletes the namespaces. The tests run in file order and
share the cluster state.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

from ansible_collections.mlops.platform.plugins.module_utils.platform_spec import role_vars

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

SPEC = {
    "gpu": {"nodeSelector": "accelerator=nvidia-gpu", "nodeCount": 2, "gpusPerNode": 4, "operatorNamespace": "pbt-gpu-operator",
            "sharing": {"strategy": "time-slicing", "replicas": 4}},
    "jupyterhub": {"namespace": "pbt-hub", "auth": {"type": "dummy"}},
    "mlflow": {"namespace": "pbt-mlflow"},
    "modelServing": {"namespace": "pbt-kserve", "services": [
        {"name": "cpu", "namespace": "pbt-models", "storageUri": "s3://m/1", "runtimeImage": "kserve/sklearnserver:v0.20.0"},
        {"name": "gpu", "namespace": "pbt-team", "storageUri": "s3://m/2", "gpu": 1, "runtimeImage": "kserve/sklearnserver:v0.20.0"}]},
    "monitoring": {"installPrometheusStack": True, "prometheusNamespace": "pbt-monitoring"},
    "teams": [{"name": "pbt-team", "users": ["alice"], "groups": ["ds"], "quota": {"gpus": 4}, "egressCidrs": ["10.20.0.0/16"]}],
    "network": {"apiServerCidrs": ["10.0.0.1/32"]},
}
ROLES = role_vars(SPEC, allow_dummy_auth=True)
BASE_VARS = ROLES["platform_base"]
NAMESPACES = [n["name"] for n in BASE_VARS["platform_base_namespaces"]] + ["pbt-team"]

# The component roles' tasks that apply their namespace, and the files holding them.
OWNER_TASK_FILES = {
    "gpu_operator": "present.yml",
    "jupyterhub": "present.yml",
    "mlflow": "present.yml",
    "kserve": "apply.yml",
    "dcgm_monitoring": "prometheus_stack.yml",
}


def _namespace_tasks(role, filename):
    with open(os.path.join(ROOT, "roles", role, "tasks", filename), encoding="utf-8") as handle:
        tasks = yaml.safe_load(handle)
    found = []
    for task in tasks:
        args = task.get("kubernetes.core.k8s") or {}
        definition = args.get("definition") if isinstance(args, dict) else None
        if isinstance(definition, dict) and definition.get("kind") == "Namespace" and args.get("state", "present") == "present":
            found.append(task)
    assert found, "no namespace task found in roles/%s/tasks/%s" % (role, filename)
    return found


def _run(ansible_env, tmp_path, plays, *args):
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(plays))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", str(playbook)]
                          + list(args), capture_output=True, text=True, env=ansible_env, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    recap = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", output)
    assert recap, output[-3000:]
    return int(recap.group(1)), output


def _base_play(ansible_env, extra=None):
    return [{
        "name": "Platform base", "hosts": "localhost", "gather_facts": False, "connection": "local",
        "module_defaults": {"group/kubernetes.core.k8s": {"kubeconfig": ansible_env["KUBECONFIG"]}},
        "roles": [{"role": "mlops.platform.platform_base", "vars": dict(BASE_VARS, **(extra or {}))}],
    }]


def _owner_play(ansible_env):
    tasks = []
    for role, filename in OWNER_TASK_FILES.items():
        tasks.extend(_namespace_tasks(role, filename))
    play_vars = {}
    for role in ("gpu_operator", "jupyterhub", "mlflow", "kserve", "dcgm_monitoring"):
        play_vars.update(ROLES[role])
    return [{
        "name": "The component roles' namespace tasks", "hosts": "localhost", "gather_facts": False, "connection": "local",
        "module_defaults": {"group/kubernetes.core.k8s": {"kubeconfig": ansible_env["KUBECONFIG"]}},
        "vars_files": [os.path.join(ROOT, "roles", role, "vars", "main.yml")
                       for role in ("jupyterhub", "mlflow", "kserve", "dcgm_monitoring")],
        "vars": play_vars,
        "tasks": tasks,
    }]


def _core(k8s):
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    return client.CoreV1Api(k8s)


def _namespace_names(k8s):
    return set(ns.metadata.name for ns in _core(k8s).list_namespace().items)


def _policies(k8s, namespace):
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    return sorted(p.metadata.name for p in client.NetworkingV1Api(k8s).list_namespaced_network_policy(namespace).items)


def _priority_classes(k8s):
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    return set(p.metadata.name for p in client.SchedulingV1Api(k8s).list_priority_class().items)


@pytest.fixture(scope="module", autouse=True)
def clean_cluster(k8s, namespaces):
    """Start and end without the test's namespaces."""
    for name in NAMESPACES:
        namespaces.delete_and_wait(name)
    yield
    for name in NAMESPACES:
        namespaces.delete_and_wait(name)


def test_check_mode_creates_nothing(ansible_env, k8s, tmp_path):
    before = _priority_classes(k8s)
    changed, _output = _run(ansible_env, tmp_path, _base_play(ansible_env), "--check", "--diff")
    assert changed > 0
    assert not _namespace_names(k8s) & set(NAMESPACES)
    assert _priority_classes(k8s) == before


def test_converge_creates_every_object(ansible_env, k8s, tmp_path):
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    changed, output = _run(ansible_env, tmp_path, _base_play(ansible_env))
    assert changed > 0
    assert "objects present" in output
    assert set(NAMESPACES) <= _namespace_names(k8s)
    for name in NAMESPACES:
        assert {"default-deny", "allow-dns-egress", "allow-same-namespace"} <= set(_policies(k8s, name)), name
    assert "allow-mlflow-clients" in _policies(k8s, "pbt-mlflow")
    assert "allow-prometheus-scrape-dcgm" in _policies(k8s, "pbt-gpu-operator")
    assert "allow-prometheus-scrape-dcgm-egress" in _policies(k8s, "pbt-monitoring")
    quota = _core(k8s).read_namespaced_resource_quota("team-quota", "pbt-team")
    assert quota.spec.hard["requests.nvidia.com/gpu"] == "4"
    assert quota.spec.hard["limits.memory"] == "400Gi"
    binding = client.RbacAuthorizationV1Api(k8s).read_namespaced_role_binding("team-member", "pbt-team")
    assert sorted(s.name for s in binding.subjects) == ["alice", "ds"]
    classes = dict((p.metadata.name, p.value) for p in client.SchedulingV1Api(k8s).list_priority_class().items)
    assert classes["ml-training"] == 1000 and classes["ml-inference"] == 2000
    labels = _core(k8s).read_namespace("pbt-gpu-operator").metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels["app.kubernetes.io/managed-by"] == "mlops.platform.gpu_operator"
    assert _core(k8s).read_namespace("pbt-team").metadata.labels["pod-security.kubernetes.io/enforce"] == "baseline"


def test_rerun_changes_nothing(ansible_env, tmp_path):
    changed, output = _run(ansible_env, tmp_path, _base_play(ansible_env))
    assert changed == 0, output[-6000:]


def test_component_roles_and_platform_base_agree_on_namespaces(ansible_env, k8s, tmp_path):
    _run(ansible_env, tmp_path, _owner_play(ansible_env))
    changed, output = _run(ansible_env, tmp_path, _base_play(ansible_env))
    assert changed == 0, output[-6000:]
    changed, output = _run(ansible_env, tmp_path, _owner_play(ansible_env))
    assert changed == 0, output[-6000:]
    # Both sides' labels are there.
    labels = _core(k8s).read_namespace("pbt-kserve").metadata.labels
    assert labels["app.kubernetes.io/managed-by"] == "mlops.platform.kserve"
    assert labels["app.kubernetes.io/part-of"] == "mlops-platform"
    hub = _core(k8s).read_namespace("pbt-hub").metadata
    assert hub.labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert "app.kubernetes.io/managed-by" not in hub.labels
    assert hub.annotations["mlops.platform/pod-security-justification"]


def test_absent_removes_objects_and_keeps_namespaces(ansible_env, k8s, tmp_path):
    changed, output = _run(ansible_env, tmp_path, _base_play(ansible_env, {"platform_base_state": "absent"}))
    assert changed > 0
    assert "Removed" in output and "NetworkPolicy/pbt-team/default-deny" in output
    assert "Kept namespaces" in output
    assert set(NAMESPACES) <= _namespace_names(k8s)
    for name in NAMESPACES:
        assert _policies(k8s, name) == [], name
    assert _core(k8s).list_namespaced_resource_quota("pbt-team").items == []
    assert not {"ml-training", "ml-inference"} & _priority_classes(k8s)
    changed, output = _run(ansible_env, tmp_path, _base_play(ansible_env, {"platform_base_state": "absent"}))
    assert changed == 0, output[-6000:]


def test_purge_deletes_the_namespaces(ansible_env, k8s, tmp_path):
    changed, output = _run(ansible_env, tmp_path, _base_play(ansible_env, {"platform_base_state": "absent", "platform_base_purge": True}))
    assert changed > 0
    assert "Deleted namespaces" in output
    assert not _namespace_names(k8s) & set(NAMESPACES)
