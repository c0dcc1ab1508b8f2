# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The retry pattern for role tasks, on kubernetes.core.k8s through the fault proxy.

    register: applied
    until: applied is not mlops.platform.k8s_transient
    retries: N
    delay: D

A lost response to a create is retried and converges without a duplicate; a 503 uses up the retries; a
403 and a 422 fail on the first attempt.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
import yaml

from audit import AuditLog
from faults import fault_proxy  # noqa: F401  pylint: disable=unused-import

RETRIES = 3


def apply_configmap(ansible_env, tmp_path, kubeconfig, namespace, name, **extra):
    """One kubernetes.core.k8s task with the retry pattern; returns its registered result."""
    out = tmp_path / ("result-%d.json" % time.monotonic_ns())
    task = {"name": "Apply with retries on transient failures", "kubernetes.core.k8s": dict({
        "state": "present",
        "definition": {"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": namespace}, "data": {"k": "v"}}}, **extra),
            "register": "applied", "until": "applied is not mlops.platform.k8s_transient",
            "retries": RETRIES, "delay": 1, "ignore_errors": True}
    play = [{"name": "Retry pattern", "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": [
        task, {"name": "Save", "ansible.builtin.copy": {"content": "{{ applied | to_json }}", "dest": str(out)}}]}]
    playbook = tmp_path / ("play-%d.yml" % time.monotonic_ns())
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(ansible_env, K8S_AUTH_KUBECONFIG=kubeconfig, KUBECONFIG=kubeconfig)
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-e", "ansible_python_interpreter=%s" % sys.executable,
                           str(playbook)], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.fixture
def proxy(fault_proxy):  # noqa: F811  pylint: disable=redefined-outer-name
    fault_proxy.configure(rate=0.0, methods=[])
    yield fault_proxy
    fault_proxy.configure(rate=0.0, methods=[])


def creates_of(log, mark, name):
    return [r for r in log.mutations_since(mark) if r.verb == "create" and r.name == name]


def test_lost_create_response_is_retried_without_a_duplicate(proxy, ansible_env, tmp_path, testbed, namespace, k8s):
    from kubernetes import client

    log = AuditLog.for_kubeconfig(testbed.kubeconfig)
    mark = log.mark()
    name = "lost-%s" % uuid.uuid4().hex[:6]
    # Every create reaches the API server and its response is lost.
    proxy.configure(rate=1.0, mix={"reset_after": 1}, methods=["POST"])
    result = apply_configmap(ansible_env, tmp_path, proxy.kubeconfig, namespace, name)
    print("\nRELIABILITY k8s lost create: attempts %s, failed %s" % (result.get("attempts"), result.get("failed")))
    assert not result.get("failed"), result.get("msg")
    assert result["attempts"] == 2
    assert len(creates_of(log, mark, name)) == 1
    assert client.CoreV1Api(k8s).read_namespaced_config_map(name, namespace).data == {"k": "v"}
    assert [c.metadata.name for c in client.CoreV1Api(k8s).list_namespaced_config_map(namespace).items
            if c.metadata.name.startswith("lost-")] == [name]


def test_503_uses_up_the_retries_then_fails(proxy, ansible_env, tmp_path, namespace):
    proxy.configure(rate=1.0, mix={"unavailable": 1}, methods=["POST"])
    result = apply_configmap(ansible_env, tmp_path, proxy.kubeconfig, namespace, "always-503")
    print("\nRELIABILITY k8s 503: attempts %s, failed %s" % (result.get("attempts"), result.get("failed")))
    assert result["failed"]
    # ansible-core counts `retries` as attempts in all (measured with 2.21): every attempt was used.
    assert result["attempts"] == RETRIES
    assert "503" in result["msg"]
    assert proxy.stats_snapshot()["injected"]["unavailable"] >= RETRIES


@pytest.mark.parametrize("case", ["forbidden", "invalid"])
def test_permanent_errors_fail_on_the_first_attempt(proxy, ansible_env, tmp_path, namespace, case):
    extra = {"impersonate_user": "mlops-no-rights"} if case == "forbidden" else {}
    name = "Not_A_Valid_Name" if case == "invalid" else "forbidden-%s" % uuid.uuid4().hex[:6]
    result = apply_configmap(ansible_env, tmp_path, proxy.kubeconfig, namespace, name, **extra)
    summary = (case, result.get("attempts", 1), result.get("failed"), str(result.get("msg"))[:200])
    print("\nRELIABILITY k8s %s: attempts %s, failed %s: %s" % summary)
    assert result["failed"]
    assert result.get("attempts", 1) == 1
    assert ("403" if case == "forbidden" else "422") in result["msg"] or \
        ("Forbidden" if case == "forbidden" else "Invalid") in str(result.get("reason")), result
