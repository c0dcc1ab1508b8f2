# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure pieces of the GPU training Job (plugins/module_utils/gpu_training.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
from datetime import datetime, timezone

import pytest

from ansible_collections.mlops.platform.plugins.module_utils import gpu_training as gt
from ansible_collections.mlops.platform.plugins.module_utils.gpu_pod_spec import render_gpu_pod_spec
from ansible_collections.mlops.platform.plugins.module_utils.k8s_values import GpuSpecError


def params(**overrides):
    """Module parameters as AnsibleModule fills them from training_argument_spec's defaults."""
    spec = gt.training_argument_spec()
    values = dict((k, copy.deepcopy(v.get("default"))) for k, v in spec.items())
    values.update(name="train", namespace="ml", image="registry.example.com/trainer:1.0")
    values.update(overrides)
    return values


def pod_spec(job):
    return job["spec"]["template"]["spec"]


def test_pod_spec_is_the_gpu_pod_spec_rendering():
    job = gt.render_training_job(params(gpus=2, gpu_products=["NVIDIA-A100-SXM4-80GB"], shm_size="8Gi", spot=True))
    spec = pod_spec(job)
    again = render_gpu_pod_spec(spec, gpus=2, container=gt.CONTAINER_NAME, gpu_products=["NVIDIA-A100-SXM4-80GB"],
                                shm_size="8Gi", spot=True, priority_class="ml-training")
    assert again == spec  # the renderer is idempotent: the Job's pod spec is its output
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    assert spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert spec["priorityClassName"] == "ml-training" and spec["restartPolicy"] == "Never"


def test_mig_profile_requests_the_mig_resource():
    limits = pod_spec(gt.render_training_job(params(mig_profile="1g.10gb")))["containers"][0]["resources"]["limits"]
    assert limits == {"nvidia.com/mig-1g.10gb": 1}


def test_mlflow_env_wins_and_credentials_come_from_a_secret():
    job = gt.render_training_job(params(
        env={"B": 2, "A": "x", "MLFLOW_TRACKING_URI": "ignored"}, mlflow_tracking_uri="http://mlflow.mlflow.svc:5000",
        mlflow_experiment_name="fraud", mlflow_credentials_secret="mlflow-client"))
    env = pod_spec(job)["containers"][0]["env"]
    assert env[:4] == [{"name": "A", "value": "x"}, {"name": "B", "value": "2"},
                       {"name": "MLFLOW_EXPERIMENT_NAME", "value": "fraud"},
                       {"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow.mlflow.svc:5000"}]
    assert env[4]["valueFrom"]["secretKeyRef"] == {"name": "mlflow-client", "key": "username"}
    assert env[5]["name"] == "MLFLOW_TRACKING_PASSWORD"


def test_volumes_resources_and_job_fields():
    job = gt.render_training_job(params(
        data_volumes=[{"claim_name": "data", "mount_path": "/data", "read_only": True, "name": None},
                      {"claim_name": "out", "mount_path": "/out", "read_only": False, "name": "output"}],
        cpu="4", memory="16Gi", backoff_limit=2, active_deadline_seconds=600, ttl=3600, labels={"team": "fraud"},
        service_account="trainer"))
    spec = pod_spec(job)
    assert spec["volumes"] == [{"name": "data-0", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}},
                               {"name": "output", "persistentVolumeClaim": {"claimName": "out", "readOnly": False}}]
    container = spec["containers"][0]
    assert container["volumeMounts"][0] == {"name": "data-0", "mountPath": "/data", "readOnly": True}
    assert container["resources"]["requests"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 1}
    assert container["resources"]["limits"]["memory"] == "16Gi"
    assert spec["serviceAccountName"] == "trainer" and "automountServiceAccountToken" not in spec
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"], job["spec"]["ttlSecondsAfterFinished"]) == (2, 600, 3600)
    assert job["metadata"]["labels"]["team"] == "fraud" and job["spec"]["template"]["metadata"]["labels"][gt.JOB_LABEL] == "train"


def test_restricted_security_context_by_default_and_cpu_jobs_keep_the_priority_class():
    spec = pod_spec(gt.render_training_job(params(gpus=0)))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "tolerations" not in spec and spec["priorityClassName"] == "ml-training"
    assert "securityContext" not in pod_spec(gt.render_training_job(params(restricted=False)))
    assert "priorityClassName" not in pod_spec(gt.render_training_job(params(priority_class_name="")))


@pytest.mark.parametrize("overrides, message", [
    ({"name": "Bad_Name"}, "name:"),
    ({"image": None}, "image: required"),
    ({"gpus": -1}, "gpus:"),
    ({"mig_profile": "mig-1g.10gb"}, "mig_profile:"),
    ({"memory": "16m"}, "memory:"),
    ({"data_volumes": [{"claim_name": "d", "mount_path": "data", "read_only": False, "name": None}]}, "data_volumes[0].mount_path"),
    ({"priority_class_name": "Not Valid"}, "priority_class_name"),
    ({"active_deadline_seconds": 0}, "active_deadline_seconds"),
])
def test_invalid_options_name_the_option(overrides, message):
    with pytest.raises(GpuSpecError) as info:
        gt.render_training_job(params(**overrides))
    assert message in str(info.value)
    assert message in gt.validate_training_params(params(**overrides))


def test_absent_needs_no_image_and_timeouts_are_checked():
    assert gt.validate_training_params(params(state="absent", image=None)) is None
    assert gt.validate_training_params(params(timeout=0)) == "timeout must be >= 1"


def test_the_stored_spec_decides_what_to_do():
    desired = gt.render_training_job(params())
    existing = copy.deepcopy(desired)
    existing["metadata"].update(uid="u1", resourceVersion="9")  # what the server adds does not matter
    existing["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"
    assert gt.plan_action(None, desired, "present") == gt.CREATE
    assert gt.plan_action(existing, desired, "present") == gt.UNCHANGED
    changed = gt.render_training_job(params(image="registry.example.com/trainer:1.1"))
    assert gt.plan_action(existing, changed, "present") == gt.CONFLICT
    assert gt.plan_action(existing, changed, "present", replace=True) == gt.REPLACE
    assert gt.plan_action(existing, None, "absent") == gt.DELETE
    assert gt.plan_action(None, None, "absent") == gt.ABSENT
    foreign = {"metadata": {"name": "train"}, "spec": {}}
    assert gt.plan_action(foreign, desired, "present") == gt.CONFLICT
    assert "not created by this module" in gt.conflict_message(foreign, "ml", "train")


def test_diff_shows_the_stored_and_the_wanted_manifest():
    old = gt.render_training_job(params())
    new = gt.render_training_job(params(image="registry.example.com/trainer:1.1"))
    diff = gt.diff_for(old, new, "present")
    assert diff["before"]["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.0")
    assert diff["after"]["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.1")
    assert gt.SPEC_ANNOTATION not in str(diff["after"].get("metadata", {}).get("annotations"))
    assert gt.diff_for(None, new, "present")["before"] == {}
    assert gt.diff_for(old, None, "absent")["after"] == {}


def finished_job(kind, reason=None, message=None):
    cond = {"type": kind, "status": "True", "lastTransitionTime": "2026-01-01T10:05:00Z"}
    if reason:
        cond.update(reason=reason, message=message)
    status = {"startTime": "2026-01-01T10:00:00Z", "conditions": [cond]}
    if kind == "Complete":
        status["completionTime"] = "2026-01-01T10:04:30Z"
    return {"metadata": {"name": "train", "creationTimestamp": "2026-01-01T09:59:58Z"}, "status": status}


def failed_pod():
    return {"metadata": {"name": "train-abc"}, "spec": {"nodeName": "gpu-1"},
            "status": {"phase": "Failed", "startTime": "2026-01-01T10:00:01Z", "containerStatuses": [
                {"name": "trainer", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}}


def test_states_and_durations():
    assert gt.job_state(finished_job("Complete")) == gt.SUCCEEDED
    assert gt.job_state(finished_job("Failed")) == gt.FAILED
    assert gt.job_state({"status": {}}, {"status": {"phase": "Running"}}) == gt.RUNNING
    assert gt.job_state({"status": {}}, {"status": {"phase": "Pending"}}) == gt.PENDING
    assert gt.duration_seconds(finished_job("Complete")) == 270
    assert gt.duration_seconds(finished_job("Failed")) == 300
    now = datetime(2026, 1, 1, 10, 1, 0, tzinfo=timezone.utc)
    assert gt.duration_seconds({"status": {"startTime": "2026-01-01T10:00:00Z"}}, now) == 60
    assert gt.duration_seconds({"status": {}}, now) is None
    assert gt.parse_time("2026-01-01T10:00:00.123456Z") == datetime(2026, 1, 1, 10, 0, 0, tzinfo=timezone.utc)
    assert gt.parse_time("yesterday") is None


def test_history_progress_of_a_job_found_finished():
    progress = gt.history_progress(finished_job("Complete"), {"status": {"phase": "Succeeded", "startTime": "2026-01-01T10:00:02Z"}})
    assert [(p["state"], p["time"]) for p in progress] == [
        ("pending", "2026-01-01T09:59:58Z"), ("running", "2026-01-01T10:00:02Z"), ("succeeded", "2026-01-01T10:04:30Z")]
    assert all(p["source"] == "status" for p in progress)


def test_failure_reason_names_the_condition_the_pod_and_warnings():
    events = [{"type": "Warning", "reason": "BackOff", "message": "restarting", "lastTimestamp": "2026-01-01T10:01:00Z"},
              {"type": "Normal", "reason": "Pulled", "message": "ok"},
              {"type": "Warning", "reason": "BackOff", "message": "restarting", "lastTimestamp": "2026-01-01T10:02:00Z"}]
    reason = gt.failure_reason(finished_job("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
                               failed_pod(), events)
    assert reason == ("BackoffLimitExceeded: Job has reached the specified backoff limit; pod train-abc on node gpu-1: "
                      "container trainer exited with code 1 (Error); warning events: BackOff: restarting")
    unschedulable = {"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "message": "0/4 nodes are available: 2 Insufficient nvidia.com/gpu"}]}}
    assert "Insufficient nvidia.com/gpu" in gt.failure_reason({"status": {}}, unschedulable)
    assert gt.failure_reason({"status": {}}, None) == "the Job did not finish"


def test_log_tail_and_newest_pod():
    assert gt.log_tail("a\nb\nc\n", 2) == ["b", "c"]
    assert gt.log_tail("a\nb\n", 0) == [] and gt.log_tail("", 5) == []
    old = {"metadata": {"name": "a", "creationTimestamp": "2026-01-01T10:00:00Z"}}
    new = {"metadata": {"name": "b", "creationTimestamp": "2026-01-01T10:05:00Z"}}
    assert gt.newest_pod([new, old]) is new and gt.newest_pod([]) is None


def test_summary_lines():
    assert gt.summary({"namespace": "ml", "job": "t", "action": "create", "status": "succeeded", "duration_seconds": 3,
                       "node": "gpu-0"}) == "Job ml/t created; status succeeded after 3s on node gpu-0"
    assert gt.summary({"namespace": "ml", "job": "t", "action": "absent"}) == "Job ml/t is absent"
