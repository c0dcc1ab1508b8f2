# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Smoke-test orchestration (plugins/module_utils/gpu_smoke_run.py) against a fake API that plays the Job controller."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible_collections.mlops.platform.plugins.module_utils import gpu_smoke_run as run
from ansible_collections.mlops.platform.plugins.module_utils.gpu_smoke import RUN_LABEL
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import ApiError
from ansible_collections.mlops.platform.tests.unit.plugins.module_utils.fixtures.fake_kube_api import FakeKubeApi
from ansible_collections.mlops.platform.tests.unit.plugins.module_utils.test_gpu_readiness_watch import BASELINE, NODES

JOBS = "/apis/batch/v1/namespaces/smoke/jobs"
PODS = "/api/v1/namespaces/smoke/pods"


def cluster(fail_nodes=(), hang_nodes=(), not_ready=()):
    api = FakeKubeApi(watch_time_scale=0.05)
    for node in BASELINE["nodes"]:
        node = copy.deepcopy(node)
        if node["metadata"]["name"] in not_ready:
            node["status"]["conditions"][1]["status"] = "False"
        api.put(NODES, node)

    def controller(fake, path, job):
        if path != JOBS:
            return
        node = job["spec"]["template"]["spec"]["nodeName"]
        if node in hang_nodes:
            return
        failed = node in fail_nodes
        pod_name = job["metadata"]["name"] + "-x1"
        labels = dict(job["spec"]["template"]["metadata"]["labels"], **{"job-name": job["metadata"]["name"]})
        fake.put(PODS, {
            "metadata": {"name": pod_name, "namespace": "smoke", "labels": labels,
                         "ownerReferences": [{"kind": "Job", "name": job["metadata"]["name"]}]},
            "spec": job["spec"]["template"]["spec"],
            "status": {"phase": "Failed" if failed else "Succeeded",
                       "containerStatuses": [{"name": "vectoradd", "state": {"terminated": {"exitCode": 1 if failed else 0}}}]},
        })
        fake.logs["%s/%s/log" % (PODS, pod_name)] = "Test FAILED\n" if failed else "Test PASSED\nDone\n"
        done = copy.deepcopy(job)
        done["status"] = {"conditions": [{"type": "Failed" if failed else "Complete", "status": "True"}]}
        fake.put(JOBS, done)

    api.on_create = controller
    api.collections.setdefault(JOBS, {})
    api.collections.setdefault(PODS, {})
    return api


def params(**overrides):
    """Module parameters as AnsibleModule fills them from smoke_argument_spec's defaults."""
    values = dict((name, option.get("default")) for name, option in run.smoke_argument_spec().items())
    values.update(namespace="smoke")
    values.update(overrides)
    return values


def test_select_nodes_unions_selectors_and_restricts_to_names():
    api = cluster()
    names = [n["metadata"]["name"] for n in run.select_nodes(api, ["accelerator=nvidia-gpu", ""])]
    assert names == sorted(n["metadata"]["name"] for n in BASELINE["nodes"])
    assert [n["metadata"]["name"] for n in run.select_nodes(api, [""], names=["gpu-1"])] == ["gpu-1"]
    assert sum(1 for c in api.calls if c[0] == "GET" and c[1] == NODES) == 3


def test_node_skip_reason():
    ready = copy.deepcopy(BASELINE["nodes"][0])
    assert run.node_skip_reason(ready) is None
    cordoned = copy.deepcopy(ready)
    cordoned.setdefault("spec", {})["unschedulable"] = True
    assert run.node_skip_reason(cordoned) == "node is cordoned: not tested"
    assert run.node_skip_reason({"metadata": {"name": "x"}}) == "node NotReady: not tested"


def test_run_smoke_judges_each_node_and_cleans_up():
    api = cluster(fail_nodes=("gpu-1",))
    result = run.run_smoke(api, params(), "abc123")
    api.shutdown()
    assert result["changed"] is True and result["passed"] is False
    assert result["passed_nodes"] == ["gpu-0"] and result["failed_nodes"] == ["gpu-1"]
    failed = result["results"][1]
    assert failed["exit_code"] == 1 and "log does not contain 'Test PASSED'" in failed["reasons"]
    assert result["cleaned_up"] is True and api.collections[JOBS] == {} and api.collections[PODS] == {}
    created = [c for c in api.calls if c[0] == "POST"]
    assert len(created) == 2


def test_run_smoke_check_mode_plans_without_requests_that_write():
    api = cluster()
    result = run.run_smoke(api, params(), "abc123", check_mode=True)
    api.shutdown()
    assert result["changed"] is True and result["passed"] is False
    assert all(r["job"] and r["reasons"] == ["check mode: Job not created"] for r in result["results"])
    assert not [c for c in api.calls if c[0] in ("POST", "DELETE")]


def test_run_smoke_times_out_on_a_hanging_job():
    api = cluster(hang_nodes=("gpu-0",))
    result = run.run_smoke(api, params(timeout=1), "abc123")
    api.shutdown()
    hung = result["results"][0]
    assert hung["node"] == "gpu-0" and hung["passed"] is False
    assert hung["reasons"][0].startswith("timed out after 1s waiting for the Job")
    assert result["passed_nodes"] == ["gpu-1"]
    assert api.collections[JOBS] == {}


def test_api_error_carries_changed_and_still_cleans_up():
    api = cluster()
    api.fail[PODS] = 403
    with pytest.raises(ApiError) as err:
        run.run_smoke(api, params(), "abc123")
    api.shutdown()
    assert err.value.changed is True
    assert api.collections[JOBS] == {}


def test_cleanup_reports_errors_and_ignores_missing_objects():
    api = cluster()
    created = {"gpu-0": {"metadata": {"name": "gone"}}}
    ok, errors = run.cleanup(api, JOBS, PODS, "%s=abc123" % RUN_LABEL, created)
    assert ok is True and errors == []
    api.fail[PODS] = 403
    ok, errors = run.cleanup(api, JOBS, PODS, "%s=abc123" % RUN_LABEL, created)
    assert ok is False and len(errors) == 1 and errors[0].startswith("pods %s=abc123: HTTP 403" % RUN_LABEL)


@pytest.mark.parametrize("overrides, message", [
    ({"timeout": 0}, "timeout must be >= 1"),
    ({"gpus": 0}, "gpus must be >= 1"),
    ({"mig_profile": "big"}, "invalid smoke test pod spec: mig_profile: 'big' is not a MIG profile name"),
    ({"tolerations": [{"key": "k", "operator": "Sometimes"}]}, "invalid smoke test pod spec: tolerations[0].operator"),
    ({"priority_class": "Not_Valid"}, "invalid smoke test pod spec: priority_class"),
    ({}, None),
])
def test_validate_smoke_params(overrides, message):
    error = run.validate_smoke_params(params(**overrides))
    if message is None:
        assert error is None
    else:
        assert error.startswith(message)


def test_smoke_message():
    result = {"results": [{"node": "a", "passed": True, "skipped": False, "reasons": []},
                          {"node": "b", "passed": False, "skipped": False, "reasons": ["pod phase is Failed"]}],
              "passed": False, "passed_nodes": ["a"], "failed_nodes": ["b"], "cleanup_errors": ["Job x: HTTP 500"]}
    assert run.smoke_message(result) == ("GPU smoke test failed on 1 of 2 node(s): b: pod phase is Failed; "
                                         "cleanup failed: Job x: HTTP 500")
    assert run.smoke_message(result, check_mode=True).startswith("check mode: nothing created; would run a GPU smoke Job on 2 node(s)")
