# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Training Job orchestration (plugins/module_utils/gpu_training_run.py) against a fake API that plays the Job controller."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible_collections.mlops.platform.plugins.module_utils import gpu_training as gt
from ansible_collections.mlops.platform.plugins.module_utils.gpu_training_run import TrainingJobError, TrainingRun
from ansible_collections.mlops.platform.plugins.module_utils.k8s_retry import RetryPolicy
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import ApiError
from ansible_collections.mlops.platform.tests.unit.plugins.module_utils.fixtures.fake_kube_api import FakeKubeApi
from ansible_collections.mlops.platform.tests.unit.plugins.module_utils.test_gpu_training import params

JOBS = "/apis/batch/v1/namespaces/ml/jobs"
PODS = "/api/v1/namespaces/ml/pods"
PRIORITY = "/apis/scheduling.k8s.io/v1/priorityclasses/ml-training"


class FakeTrainingApi(FakeKubeApi):
    """FakeKubeApi plus single-object GETs, uids, PriorityClasses, injected write failures and a played Job controller."""

    def __init__(self, outcome="Complete", priority_classes=("ml-training",)):
        super(FakeTrainingApi, self).__init__(watch_time_scale=0.05)
        self.outcome = outcome
        self.priority_classes = set(priority_classes)
        self.uids = 0
        self.write_failures = []  # statuses raised by the next POSTs, before (or, for 'after', after) they apply
        self.collections.setdefault(JOBS, {})
        self.collections.setdefault(PODS, {})
        self.on_create = self.controller

    def request(self, method, path, query=None, body=None):
        if method == "GET" and path.startswith("/apis/scheduling.k8s.io/"):
            self._count(method, path, query)
            if path.rsplit("/", 1)[1] not in self.priority_classes:
                raise ApiError(404, "priorityclasses not found")
            return {"metadata": {"name": path.rsplit("/", 1)[1]}}
        parent, dummy, name = path.rpartition("/")
        if method == "GET" and parent in self.collections:
            self._count(method, path, query)
            if name not in self.collections[parent]:
                raise ApiError(404, "not found")
            return copy.deepcopy(self.collections[parent][name])
        failure = self.write_failures.pop(0) if method == "POST" and self.write_failures else None
        if failure and failure[1] == "before":
            self._count(method, path, query)
            raise ApiError(failure[0], "injected")
        if method == "POST" and body["metadata"]["name"] not in self.collections.get(path, {}):
            self.uids += 1
            body = copy.deepcopy(body)
            body["metadata"].update(uid="uid-%d" % self.uids, creationTimestamp="2026-01-01T10:00:00Z")
        answer = super(FakeTrainingApi, self).request(method, path, query, body)
        if failure:
            raise ApiError(failure[0], "injected after the create was carried out")
        return answer

    def controller(self, fake, path, job):
        if path != JOBS or self.outcome is None:
            return
        uid = job["metadata"]["uid"]
        failed = self.outcome == "Failed"
        pod = "%s-x%d" % (job["metadata"]["name"], self.uids)
        fake.put(PODS, {
            "metadata": {"name": pod, "namespace": "ml", "creationTimestamp": "2026-01-01T10:00:01Z",
                         "labels": {"controller-uid": uid, "job-name": job["metadata"]["name"]}},
            "spec": dict(job["spec"]["template"]["spec"], nodeName="gpu-0"),
            "status": {"phase": "Failed" if failed else "Succeeded", "startTime": "2026-01-01T10:00:02Z",
                       "containerStatuses": [{"name": "trainer", "state": {"terminated": {
                           "exitCode": 1 if failed else 0, "reason": "Error" if failed else "Completed"}}}]}})
        fake.logs["%s/%s/log" % (PODS, pod)] = "epoch 1\nepoch 2\n" + ("Traceback: boom\n" if failed else "saved model\n")
        done = copy.deepcopy(job)
        cond = {"type": self.outcome, "status": "True", "lastTransitionTime": "2026-01-01T10:01:02Z"}
        if failed:
            cond.update(reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit")
        done["status"] = {"startTime": "2026-01-01T10:00:02Z", "conditions": [cond]}
        if not failed:
            done["status"]["completionTime"] = "2026-01-01T10:01:02Z"
        fake.put(JOBS, done)


def run(api, check_mode=False, **overrides):
    values = params(**dict(dict(log_lines=2, timeout=30), **overrides))
    return TrainingRun(api, values, check_mode=check_mode, write_policy=RetryPolicy(attempts=3, base=0), sleep=lambda s: None).run()


def writes(api):
    return [(m, p) for m, p, dummy in api.calls if m in ("POST", "DELETE")]


def test_create_waits_and_reports_then_a_rerun_changes_nothing():
    api = FakeTrainingApi()
    result = run(api)
    assert result["changed"] and result["action"] == gt.CREATE and result["status"] == gt.SUCCEEDED
    assert (result["pod"], result["node"], result["duration_seconds"]) == ("train-x1", "gpu-0", 60)
    assert result["log_tail"] == ["epoch 2", "saved model"]
    assert [p["state"] for p in result["progress"]][0] == "pending" and result["progress"][-1]["state"] == "succeeded"
    assert result["reason"] is None
    before = len(writes(api))
    again = run(api)
    assert not again["changed"] and again["action"] == gt.UNCHANGED and again["status"] == gt.SUCCEEDED
    assert [p["source"] for p in again["progress"]] == ["status"] * 3
    assert len(writes(api)) == before


def test_failed_job_reports_reason_and_log():
    api = FakeTrainingApi(outcome="Failed")
    result = run(api)
    assert result["status"] == gt.FAILED and result["log_tail"] == ["epoch 2", "Traceback: boom"]
    assert result["reason"].startswith("BackoffLimitExceeded: Job has reached the specified backoff limit; pod train-x1 on node gpu-0: "
                                       "container trainer exited with code 1 (Error)")


def test_check_mode_writes_nothing():
    api = FakeTrainingApi()
    result = run(api, check_mode=True)
    assert result["changed"] and result["action"] == gt.CREATE and result["status"] is None
    assert writes(api) == []


def test_changed_spec_is_refused_unless_replace():
    api = FakeTrainingApi()
    run(api)
    with pytest.raises(TrainingJobError) as info:
        run(api, image="registry.example.com/trainer:2.0")
    assert "set replace=true" in str(info.value) and not info.value.result["changed"]
    assert [m for m, p in writes(api)] == ["POST"]
    replaced = run(api, image="registry.example.com/trainer:2.0", replace=True)
    assert replaced["changed"] and replaced["action"] == gt.REPLACE and replaced["status"] == gt.SUCCEEDED
    assert [m for m, p in writes(api)] == ["POST", "DELETE", "POST"]
    assert api.collections[JOBS]["train"]["metadata"]["uid"] == "uid-2"


def test_missing_priority_class_creates_nothing():
    api = FakeTrainingApi(priority_classes=())
    with pytest.raises(TrainingJobError, match="PriorityClass 'ml-training' does not exist"):
        run(api)
    assert writes(api) == []


def test_transient_create_failures_are_retried_and_our_own_create_is_recognised():
    api = FakeTrainingApi()
    api.write_failures = [(503, "before"), (504, "after")]
    result = run(api)
    assert result["status"] == gt.SUCCEEDED and result["action"] == gt.CREATE
    posts = [p for m, p in writes(api) if m == "POST"]
    assert len(posts) == 3  # 503, 504 after the create went through, then 409 recognised as ours
    assert len(api.collections[JOBS]) == 1


def test_a_job_that_never_finishes_times_out_with_a_reason():
    api = FakeTrainingApi(outcome=None)
    result = run(api, timeout=1)
    assert result["status"] == gt.PENDING and result["reason"].startswith("timed out after 1s waiting for the Job (status pending)")


def test_absent_deletes_and_waits_until_gone():
    api = FakeTrainingApi()
    run(api)
    result = run(api, state="absent", image=None)
    assert result["changed"] and result["action"] == gt.DELETE and "train" not in api.collections[JOBS]
    assert run(api, state="absent", image=None)["action"] == gt.ABSENT
