# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mlops.platform.gpu_training_job, the training_job role and playbooks/train.yml on the testbed.

The node agent plays the kubelet: Job pods run for a moment and succeed, or fail on a node carrying the
``smoke-fail`` fault; their log is the agent's vectorAdd-like text (``Test PASSED`` / ``Test FAILED``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
import yaml

from upstream import ROOT

FAULTS = "testbed.mlops.platform/faults"
IMAGE = "registry.example.com/ml/trainer:1.0.0"


@pytest.fixture(scope="module")
def priority_class(k8s):
    """The PriorityClass the platform provides (platform_base); created here when the testbed lacks it."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    from kubernetes.client.exceptions import ApiException  # pylint: disable=import-outside-toplevel

    api = client.SchedulingV1Api(k8s)
    try:
        api.read_priority_class("ml-training")
    except ApiException as err:
        if err.status != 404:
            raise
        api.create_priority_class({"metadata": {"name": "ml-training"}, "value": 1000,
                                   "description": "Training jobs (created by the test in place of platform_base)"})
    return "ml-training"


def play(ansible_env, tmp_path, tasks, check=False, diff=False, playbook=None, extra_vars=None, inventory=None):
    """Run tasks (or a playbook) against the testbed; return (rc, {register name: result}, output)."""
    results = tmp_path / ("results-%s.json" % uuid.uuid4().hex[:6])
    env = dict(ansible_env, MLOPS_KUBECONFIG=ansible_env["KUBECONFIG"])
    env.pop("K8S_AUTH_KUBECONFIG", None)  # the connection must come from module_defaults
    if playbook is None:
        names = [t["register"] for t in tasks if "register" in t]
        keep = {"name": "Keep the results", "ansible.builtin.copy": {
            "content": "{{ {%s} | to_json }}" % ", ".join("'%s': %s | default(none)" % (n, n) for n in names),
            "dest": str(results), "mode": "0600"}, "check_mode": False}
        playbook = tmp_path / "play.yml"
        playbook.write_text(yaml.safe_dump([{
            "name": "Training job", "hosts": "localhost", "gather_facts": False, "connection": "local",
            "module_defaults": {"mlops.platform.gpu_training_job": {"kubeconfig": ansible_env["KUBECONFIG"]},
                                "group/kubernetes.core.k8s": {"kubeconfig": ansible_env["KUBECONFIG"]}},
            "tasks": [dict(t, ignore_errors=True) if "register" in t else t for t in tasks] + [keep]}]))
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory or "localhost,", str(playbook)]
    argv += (["--check"] if check else []) + (["--diff"] if diff else [])
    if extra_vars:
        varsfile = tmp_path / "extra.json"
        varsfile.write_text(json.dumps(extra_vars))
        argv += ["-e", "@%s" % varsfile]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=900)
    found = json.loads(results.read_text()) if results.exists() else {}
    return proc.returncode, found, proc.stdout + proc.stderr


def job(namespace, name, **extra):
    args = {"name": name, "namespace": namespace, "image": IMAGE, "command": ["python", "train.py"], "gpus": 1,
            "mlflow_tracking_uri": "http://mlflow.mlflow.svc:5000", "mlflow_experiment_name": "testbed", "timeout": 300,
            "log_lines": 3}
    args.update(extra)
    return args


def jobs_in(k8s, namespace):
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    return client.BatchV1Api(k8s).list_namespaced_job(namespace).items


def recap_changed(output):
    line = [entry for entry in output.splitlines() if entry.startswith("localhost")][-1]
    return int(line.split("changed=")[1].split()[0])


def test_job_succeeds_with_progress_log_tail_and_reruns_unchanged(ansible_env, tmp_path, namespace, k8s, priority_class):
    rc, out, output = play(ansible_env, tmp_path, [
        {"name": "Check", "mlops.platform.gpu_training_job": job(namespace, "train-a"), "register": "planned", "check_mode": True},
        {"name": "Train", "mlops.platform.gpu_training_job": job(namespace, "train-a"), "register": "trained"},
        {"name": "Again", "mlops.platform.gpu_training_job": job(namespace, "train-a"), "register": "again"},
    ])
    assert rc == 0, output[-4000:]
    planned, trained, again = out["planned"], out["trained"], out["again"]
    assert planned["changed"] and planned["action"] == "create" and planned["status"] is None
    assert trained["changed"] and trained["status"] == "succeeded" and trained["action"] == "create"
    assert [p["state"] for p in trained["progress"]] == ["pending", "running", "succeeded"]
    assert all(p["source"] == "watch" and p["time"].endswith("Z") for p in trained["progress"])
    assert trained["node"] in ("gpu-0", "gpu-1") and trained["pod"].startswith("train-a-")
    assert trained["log_tail"] == ["Copy output data from the CUDA device to the host memory", "Test PASSED", "Done"]
    assert isinstance(trained["duration_seconds"], int)
    assert not again["changed"] and again["action"] == "unchanged" and again["status"] == "succeeded"
    assert again["pod"] == trained["pod"] and again["log_tail"] == trained["log_tail"]
    assert [p["state"] for p in again["progress"]] == ["pending", "running", "succeeded"]
    (created,) = jobs_in(k8s, namespace)
    container = created.spec.template.spec.containers[0]
    env = {e.name: e.value for e in container.env}
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc:5000" and env["MLFLOW_EXPERIMENT_NAME"] == "testbed"
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert created.spec.template.spec.priority_class_name == "ml-training"
    assert any(t.key == "nvidia.com/gpu" for t in created.spec.template.spec.tolerations)


def test_check_mode_creates_nothing_and_a_missing_priority_class_is_named(ansible_env, tmp_path, namespace, k8s, priority_class):
    rc, out, output = play(ansible_env, tmp_path, [
        {"name": "Check", "mlops.platform.gpu_training_job": job(namespace, "train-c"), "register": "planned"},
    ], check=True, diff=True)
    assert rc == 0, output[-4000:]
    assert out["planned"]["changed"] and "would create" in out["planned"]["msg"]
    assert any(line.startswith("+") and IMAGE in line for line in output.splitlines()), output[-3000:]  # the diff
    assert jobs_in(k8s, namespace) == []
    rc, out, output = play(ansible_env, tmp_path, [
        {"name": "Missing class", "mlops.platform.gpu_training_job": job(namespace, "train-c", priority_class_name="no-such-class"),
         "register": "refused"},
    ])
    assert out["refused"]["failed"] and not out["refused"]["changed"]
    assert "PriorityClass 'no-such-class' does not exist" in out["refused"]["msg"]
    assert jobs_in(k8s, namespace) == []


@pytest.fixture
def failing_node(k8s):
    """gpu-1 with the smoke-fail fault: Job pods there end Failed (exit 1). Removed afterwards."""
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    core = client.CoreV1Api(k8s)
    core.patch_node("gpu-1", {"metadata": {"annotations": {FAULTS: "smoke-fail"}}})
    yield "gpu-1"
    core.patch_node("gpu-1", {"metadata": {"annotations": {FAULTS: None}}})


def test_failed_job_fails_the_task_with_reason_and_log_tail(ansible_env, tmp_path, namespace, priority_class, failing_node):
    args = job(namespace, "train-f", node_selector={"kubernetes.io/hostname": failing_node})
    rc, out, output = play(ansible_env, tmp_path, [
        {"name": "Train on the failing node", "mlops.platform.gpu_training_job": args, "register": "failed_run"},
        {"name": "Again", "mlops.platform.gpu_training_job": args, "register": "again"},
    ])
    assert rc == 0, output[-4000:]  # the failures are registered (ignore_errors), the play goes on
    result = out["failed_run"]
    assert result["failed"] and result["status"] == "failed" and result["node"] == failing_node
    assert result["progress"][-1]["state"] == "failed"
    assert "BackoffLimitExceeded" in result["reason"] and "container trainer exited with code 1" in result["reason"]
    assert result["log_tail"][-1] == "Test FAILED"
    assert result["reason"] in result["msg"]
    again = out["again"]
    assert again["failed"] and not again["changed"] and again["action"] == "unchanged" and again["status"] == "failed"


def test_a_different_spec_is_refused_then_replaced_on_request(ansible_env, tmp_path, namespace, k8s, priority_class):
    first = job(namespace, "train-r")
    changed = dict(first, image="registry.example.com/ml/trainer:1.0.1")
    rc, out, output = play(ansible_env, tmp_path, [
        {"name": "Train", "mlops.platform.gpu_training_job": first, "register": "first"},
        {"name": "New image", "mlops.platform.gpu_training_job": changed, "register": "refused"},
        {"name": "Would replace", "mlops.platform.gpu_training_job": dict(changed, replace=True), "register": "planned", "check_mode": True},
    ])
    assert rc == 0, output[-4000:]
    assert out["first"]["status"] == "succeeded"
    refused = out["refused"]
    assert refused["failed"] and not refused["changed"] and "set replace=true" in refused["msg"] and "immutable" in refused["msg"]
    assert out["planned"]["changed"] and out["planned"]["action"] == "replace"
    (kept,) = jobs_in(k8s, namespace)
    assert kept.spec.template.spec.containers[0].image == IMAGE and kept.metadata.uid
    rc, out, output = play(ansible_env, tmp_path, [
        {"name": "Replace", "mlops.platform.gpu_training_job": dict(changed, replace=True), "register": "replaced"},
        {"name": "Again", "mlops.platform.gpu_training_job": dict(changed, replace=True), "register": "again"},
        {"name": "Remove", "mlops.platform.gpu_training_job": {"name": "train-r", "namespace": namespace, "state": "absent"},
         "register": "removed"},
    ])
    assert rc == 0, output[-4000:]
    assert out["replaced"]["changed"] and out["replaced"]["action"] == "replace" and out["replaced"]["status"] == "succeeded"
    assert not out["again"]["changed"]
    assert out["removed"]["changed"] and out["removed"]["action"] == "delete"
    assert jobs_in(k8s, namespace) == []


def test_train_playbook_runs_the_role_and_reruns_with_no_change(ansible_env, tmp_path, namespace, k8s, priority_class):
    extra = {"training_job_name": "train-p", "training_job_namespace": namespace, "training_job_manage_namespace": False,
             "training_job_image": IMAGE, "training_job_mlflow_tracking_uri": "http://mlflow.mlflow.svc:5000",
             "training_job_mlflow_username": "trainer", "training_job_mlflow_password": "s3cret-training-pw",
             "training_job_timeout": 300}
    inventory = os.path.join(ROOT, "inventories", "local", "hosts.yml")
    playbook = os.path.join(ROOT, "playbooks", "train.yml")
    rc, _out, output = play(ansible_env, tmp_path, None, check=True, playbook=playbook, extra_vars=extra, inventory=inventory)
    assert rc == 0, output[-4000:]
    assert jobs_in(k8s, namespace) == []
    rc, _out, output = play(ansible_env, tmp_path, None, playbook=playbook, extra_vars=extra, inventory=inventory)
    assert rc == 0, output[-4000:]
    assert "s3cret-training-pw" not in output
    (created,) = jobs_in(k8s, namespace)
    env = {e.name: e for e in created.spec.template.spec.containers[0].env}
    assert env["MLFLOW_TRACKING_PASSWORD"].value_from.secret_key_ref.name == "train-p-mlflow"
    rc, _out, output = play(ansible_env, tmp_path, None, playbook=playbook, extra_vars=extra, inventory=inventory)
    assert rc == 0, output[-4000:]
    assert recap_changed(output) == 0, output[-4000:]
    rc, _out, output = play(ansible_env, tmp_path, None, playbook=playbook, inventory=inventory,
                            extra_vars=dict(extra, training_job_state="absent"))
    assert rc == 0, output[-4000:]
    assert jobs_in(k8s, namespace) == []
