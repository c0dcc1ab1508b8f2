# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""gpu_smoke_test module against a fake API that plays the Job controller and kubelet."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mlops.platform.plugins.module_utils.gpu_smoke import RUN_LABEL
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import ApiError
from ansible_collections.mlops.platform.plugins.modules import gpu_smoke_test
from ansible_collections.mlops.platform.tests.unit.plugins.module_utils.test_gpu_smoke_run import JOBS, PODS, cluster
from ansible_collections.mlops.platform.tests.unit.plugins.modules.gpu_module_utils import run_module


def test_all_pass_and_cleanup(monkeypatch):
    api = cluster()
    failed, result = run_module(monkeypatch, gpu_smoke_test, {"namespace": "smoke"}, api)
    api.shutdown()
    assert failed is False, result["msg"]
    assert result["changed"] is True
    assert result["passed"] is True
    assert result["passed_nodes"] == ["gpu-0", "gpu-1"]
    assert result["msg"] == "GPU smoke test passed on 2 of 2 node(s)"
    assert result["cleaned_up"] is True
    assert api.collections[JOBS] == {} and api.collections[PODS] == {}
    deletes = [c for c in api.calls if c[0] == "DELETE" and c[1].startswith(JOBS + "/")]
    assert len(deletes) == 2 and all(c[2]["propagationPolicy"] == "Background" for c in deletes)
    assert result["results"][0]["exit_code"] == 0 and result["results"][0]["log_passed"] is True


def test_failure_on_one_node(monkeypatch):
    api = cluster(fail_nodes=("gpu-1",))
    failed, result = run_module(monkeypatch, gpu_smoke_test, {"namespace": "smoke"}, api)
    api.shutdown()
    assert failed is True
    assert result["failed_nodes"] == ["gpu-1"]
    assert result["passed_nodes"] == ["gpu-0"]
    bad = result["results"][1]
    assert bad["node"] == "gpu-1" and bad["exit_code"] == 1 and bad["phase"] == "Failed"
    assert "container exited with code 1" in bad["reasons"]
    assert "gpu-1:" in result["msg"] and "gpu-0:" not in result["msg"]
    assert api.collections[JOBS] == {}


def test_failure_reported_without_failing(monkeypatch):
    api = cluster(fail_nodes=("gpu-0",))
    failed, result = run_module(monkeypatch, gpu_smoke_test, {"namespace": "smoke", "fail_on_error": False, "cleanup": False}, api)
    api.shutdown()
    assert failed is False
    assert result["passed"] is False
    assert result["cleaned_up"] is False
    assert len(api.collections[JOBS]) == 2
    assert all(j["metadata"]["labels"][RUN_LABEL] == result["run_id"] for j in api.collections[JOBS].values())


def test_timeout_still_cleans_up(monkeypatch):
    api = cluster(hang_nodes=("gpu-0",))
    failed, result = run_module(monkeypatch, gpu_smoke_test, {"namespace": "smoke", "timeout": 1}, api)
    api.shutdown()
    assert failed is True
    stuck = result["results"][0]
    assert stuck["node"] == "gpu-0"
    assert stuck["reasons"][0].startswith("timed out after 1s waiting for the Job (pod phase none, no pod created)")
    assert result["results"][1]["passed"] is True
    assert api.collections[JOBS] == {}


def test_not_ready_node_is_skipped(monkeypatch):
    api = cluster(not_ready=("gpu-1",))
    failed, result = run_module(monkeypatch, gpu_smoke_test, {"namespace": "smoke", "fail_on_error": False}, api)
    api.shutdown()
    assert failed is False
    skipped = result["results"][1]
    assert skipped["skipped"] is True and skipped["reasons"] == ["node NotReady: not tested"]
    assert len([c for c in api.calls if c[0] == "POST"]) == 1


def test_check_mode_creates_nothing(monkeypatch):
    api = cluster()
    failed, result = run_module(monkeypatch, gpu_smoke_test, {"namespace": "smoke", "_ansible_check_mode": True}, api)
    assert failed is False
    assert result["changed"] is True
    assert result["msg"].startswith("check mode: nothing created; would run a GPU smoke Job on 2 node(s): gpu-0, gpu-1")
    assert all(c[0] == "GET" for c in api.calls)
    assert result["results"][0]["job"].startswith("gpu-smoke-gpu-0-")


def test_no_matching_node_fails(monkeypatch):
    api = cluster()
    failed, result = run_module(monkeypatch, gpu_smoke_test, {"namespace": "smoke", "label_selectors": ["nothing=here"]}, api)
    assert failed is True
    assert result["msg"] == "no node matched the label selectors"


def test_nodes_option_restricts_selection(monkeypatch):
    api = cluster()
    failed, result = run_module(monkeypatch, gpu_smoke_test, {"namespace": "smoke", "nodes": ["gpu-1"]}, api)
    api.shutdown()
    assert failed is False
    assert [r["node"] for r in result["results"]] == ["gpu-1"]


def test_invalid_mig_profile(monkeypatch):
    failed, result = run_module(monkeypatch, gpu_smoke_test, {"namespace": "smoke", "mig_profile": "big"}, cluster())
    assert failed is True
    assert result["msg"].startswith("invalid smoke test pod spec: mig_profile")


def test_api_error_after_creating_reports_changed(monkeypatch):
    api = cluster()
    api.fail[PODS] = 403
    failed, result = run_module(monkeypatch, gpu_smoke_test, {"namespace": "smoke", "cleanup": False}, api)
    api.shutdown()
    assert failed is True
    assert result["changed"] is True
    assert "403" in result["msg"]


def test_api_error_before_creating_reports_unchanged(monkeypatch):
    api = cluster()
    api.fail[JOBS] = 403
    failed, result = run_module(monkeypatch, gpu_smoke_test, {"namespace": "smoke"}, api)
    assert failed is True
    assert result["changed"] is False


def test_cleanup_failure_is_reported(monkeypatch):
    api = cluster()
    original = api.request

    def refuse_pod_deletes(method, path, query=None, body=None):
        if method == "DELETE" and path == PODS:
            raise ApiError(403, "pods is forbidden")
        return original(method, path, query, body)

    api.request = refuse_pod_deletes
    failed, result = run_module(monkeypatch, gpu_smoke_test, {"namespace": "smoke"}, api)
    api.shutdown()
    assert failed is False
    assert result["passed"] is True
    assert result["cleaned_up"] is False
    assert result["cleanup_errors"] and "403" in result["cleanup_errors"][0]
    assert "cleanup failed" in result["msg"]
    assert api.collections[JOBS] == {}
