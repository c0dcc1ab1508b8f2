# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mlflow role on the testbed: a failing migration stops the install with the Job's log; a version
change runs backup, both migrations, then the roll, in that order; uninstall keeps every claim.

The node agent finishes Job pods Succeeded, or Failed with a log ending in ``Test FAILED`` on a node
annotated with the ``smoke-fail`` fault; the role's pods are pinned to one system node for that.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
import uuid

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHART = os.path.join(ROOT, "tests", "testbed", "charts", "mlflow")
FAULTS = "testbed.mlops.platform/faults"
NODE = "system-1"


def run_role(ansible_env, testbed, role_vars):
    """Run the role; return (rc, [(task name, changed, failed, msg)]) from the JSON callback."""
    with tempfile.TemporaryDirectory() as tmp:
        play = os.path.join(tmp, "play.yml")
        helm = os.path.join(os.environ.get("MLOPS_TESTBED_CACHE", os.path.expanduser("~/.cache/mlops-testbed")), "bin", "helm")
        with open(play, "w", encoding="utf-8") as handle:
            yaml.safe_dump([{
                "name": "mlflow", "hosts": "localhost", "gather_facts": False, "connection": "local",
                "module_defaults": {"group/kubernetes.core.k8s": {"kubeconfig": testbed.kubeconfig},
                                    "group/kubernetes.core.helm": {"kubeconfig": testbed.kubeconfig, "binary_path": helm}},
                "roles": [{"role": "mlops.platform.mlflow"}],
            }], handle)
        varsfile = os.path.join(tmp, "vars.json")
        with open(varsfile, "w", encoding="utf-8") as handle:
            json.dump(role_vars, handle)
        env = dict(ansible_env, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
        proc = subprocess.run(["ansible-playbook", "-i", "localhost,", play, "-e", "@" + varsfile],
                              capture_output=True, text=True, env=env, timeout=1500, check=False)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("no JSON report from ansible-playbook (rc %s):\n%s\n%s" % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    tasks = []
    for play_report in report["plays"]:
        for task in play_report["tasks"]:
            host = task["hosts"].get("localhost", {})
            name = task["task"]["name"].split(" : ", 1)[-1]  # without the "mlops.platform.mlflow : " prefix
            tasks.append((name, bool(host.get("changed")), bool(host.get("failed")), str(host.get("msg", ""))))
    return proc.returncode, tasks, report["stats"]["localhost"]


def changed_tasks(tasks):
    return [name for name, changed, _failed, _msg in tasks if changed]


@pytest.fixture
def mlflow_vars(k8s):
    namespace = "mlf-%s" % uuid.uuid4().hex[:8]
    yield {"mlflow_namespace": namespace, "mlflow_chart_ref": CHART, "mlflow_node_selector": {"kubernetes.io/hostname": NODE},
           # Artifacts on a claim: MinIO's bucket Job would be the first Job to fail under the fault.
           "mlflow_artifacts_mode": "pvc", "mlflow_artifacts_storage_size": "1Gi",
           "mlflow_postgres_storage_size": "1Gi", "mlflow_minio_storage_size": "1Gi", "mlflow_backup_storage_size": "1Gi",
           "mlflow_timeout": 300, "mlflow_job_timeout": 240}
    from kubernetes import client

    client.CoreV1Api(k8s).patch_node(NODE, {"metadata": {"annotations": {FAULTS: None}}})


def set_fault(k8s, value):
    from kubernetes import client

    client.CoreV1Api(k8s).patch_node(NODE, {"metadata": {"annotations": {FAULTS: value}}})


def test_failed_migration_upgrade_order_and_uninstall(k8s, ansible_env, testbed, namespaces, mlflow_vars):
    from kubernetes import client

    core = client.CoreV1Api(k8s)
    apps = client.AppsV1Api(k8s)
    namespace = mlflow_vars["mlflow_namespace"]
    try:
        # 1. A first install whose migration Job fails: the run stops with the Job's log, nothing is rolled out.
        set_fault(k8s, "smoke-fail")
        rc, tasks, _stats = run_role(ansible_env, testbed, mlflow_vars)
        assert rc != 0
        failed = [t for t in tasks if t[2]]
        assert failed and failed[-1][0] == "Job | stop with the log", failed
        assert "mlflow-migrate-tracking failed" in failed[-1][3] and "Test FAILED" in failed[-1][3], failed[-1][3]
        assert not apps.list_namespaced_deployment(namespace).items

        # 2. The fault gone, the next run replaces the failed Job and installs.
        set_fault(k8s, None)
        started = time.monotonic()
        rc, tasks, stats = run_role(ansible_env, testbed, mlflow_vars)
        print("mlflow role: install %.0fs" % (time.monotonic() - started))
        assert rc == 0, [t for t in tasks if t[2]]
        order = changed_tasks(tasks)
        assert order.index("Job | remove a failed Job left by an earlier run, mlflow-migrate-tracking") < order.index(
            "Install | install or upgrade the MLflow release")
        assert "Job | start mlflow-backup" not in order  # nothing to back up on a first install

        # 3. A rerun changes nothing.
        started = time.monotonic()
        rc, tasks, stats = run_role(ansible_env, testbed, mlflow_vars)
        print("mlflow role: rerun %.0fs" % (time.monotonic() - started))
        assert rc == 0 and stats["changed"] == 0, changed_tasks(tasks)

        # 4. A version change: backup, tracking migration, auth migration, then the roll.
        rc, tasks, stats = run_role(ansible_env, testbed, dict(mlflow_vars, mlflow_version="3.15.2"))
        assert rc == 0, [t for t in tasks if t[2]]
        order = changed_tasks(tasks)
        steps = ["Job | start mlflow-backup", "Job | start mlflow-migrate-tracking", "Job | start mlflow-migrate-auth",
                 "Install | install or upgrade the MLflow release"]
        assert all(step in order for step in steps), order
        assert [order.index(step) for step in steps] == sorted(order.index(step) for step in steps), order
        image = apps.read_namespaced_deployment("mlflow", namespace).spec.template.spec.containers[0].image
        assert image.endswith(":3.15.2")
        assert core.read_namespaced_config_map("mlflow-state", namespace).data["mlflow_version"] == "3.15.2"
        assert not client.BatchV1Api(k8s).list_namespaced_job(namespace).items

        # 5. Uninstall without purge: the claims and a marker object stay.
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "marker"}, "data": {"written": "before uninstall"}})
        claims = sorted(c.metadata.name for c in core.list_namespaced_persistent_volume_claim(namespace).items)
        assert claims == ["data-mlflow-postgres-0", "mlflow-artifacts", "mlflow-backup"]
        rc, tasks, _stats = run_role(ansible_env, testbed, dict(mlflow_vars, mlflow_state="absent"))
        assert rc == 0, [t for t in tasks if t[2]]
        assert sorted(c.metadata.name for c in core.list_namespaced_persistent_volume_claim(namespace).items) == claims
        assert core.read_namespaced_config_map("marker", namespace).data == {"written": "before uninstall"}
        assert not apps.list_namespaced_stateful_set(namespace).items
        assert not apps.list_namespaced_deployment(namespace).items

        # 6. Purge removes the claims and the namespace.
        rc, tasks, _stats = run_role(ansible_env, testbed, dict(mlflow_vars, mlflow_state="absent", mlflow_purge=True))
        assert rc == 0, [t for t in tasks if t[2]]
        assert namespaces.phase(namespace) is None
    finally:
        set_fault(k8s, None)
        if namespaces.phase(namespace) is not None:
            namespaces.delete_and_wait(namespace)
