# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument handling and results of the gpu_readiness and gpu_node_info modules (fake API)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible_collections.mlops.platform.plugins.modules import gpu_node_info, gpu_readiness
from ansible_collections.mlops.platform.tests.unit.plugins.module_utils.test_gpu_readiness_watch import (
    BASELINE,
    CLUSTERPOLICY_PATH,
    NODES,
    healthy_api,
)
from ansible_collections.mlops.platform.tests.unit.plugins.modules.gpu_module_utils import run_module

READINESS_KEYS = {"ready", "ready_nodes", "total_nodes", "nodes", "operator", "problems", "elapsed", "timed_out",
                  "progress", "api_requests", "changed", "msg"}
NODE_KEYS = {"name", "ok", "ready", "schedulable", "resource", "capacity", "allocatable", "mig_resources", "product",
             "memory_mib", "gpu_count", "driver", "cuda", "mig_strategy", "mig_config_state", "sharing_replicas",
             "sharing_strategy", "taints", "spot", "problems", "hints"}


def broken_api():
    api = healthy_api()
    node = copy.deepcopy(BASELINE["nodes"][1])
    node["status"]["allocatable"]["nvidia.com/gpu"] = "0"
    api.put(NODES, node)
    return api


def test_healthy_cluster(monkeypatch):
    failed, result = run_module(monkeypatch, gpu_readiness, {"gpus_per_node": 4}, healthy_api())
    assert failed is False
    assert result["changed"] is False
    assert result["ready"] is True
    assert result["ready_nodes"] == 2
    assert set(result) == READINESS_KEYS
    assert set(result["nodes"][0]) == NODE_KEYS
    assert result["msg"] == "GPU cluster ready: 2 of 2 selected node(s) ready"
    assert result["api_requests"] == 4


def test_not_ready_fails_with_summary_and_facts(monkeypatch):
    failed, result = run_module(monkeypatch, gpu_readiness, {"min_nodes": 2}, broken_api())
    assert failed is True
    assert "gpu-1: allocatable nvidia.com/gpu=0 but capacity=4" in result["msg"]
    assert result["msg"].startswith("GPU cluster not ready: 1 of 2 selected node(s) ready")
    assert result["ready"] is False
    assert result["changed"] is False
    assert [n["name"] for n in result["nodes"]] == ["gpu-0", "gpu-1"]


def test_not_ready_without_failing(monkeypatch):
    failed, result = run_module(monkeypatch, gpu_readiness, {"min_nodes": 2, "fail_on_not_ready": False}, broken_api())
    assert failed is False
    assert result["ready"] is False
    assert "only 1 of 2 selected GPU node(s) ready, min_nodes=2" in result["problems"]


def test_check_mode_runs_the_same_read_only_check(monkeypatch):
    api = broken_api()
    failed, result = run_module(monkeypatch, gpu_readiness, {"min_nodes": 2, "_ansible_check_mode": True}, api)
    assert failed is True
    assert result["changed"] is False
    assert all(call[0] == "GET" for call in api.calls)


@pytest.mark.parametrize("args,message", [
    ({"resource": "nvidia.com/gpus"}, "resource must be"),
    ({"min_nodes": -1}, "min_nodes must be >= 0"),
    ({"gpus_per_node": 0}, "gpus_per_node must be >= 1"),
    ({"timeout": -5}, "timeout must be >= 0"),
    ({"page_size": 0}, "page_size must be >= 1"),
    ({"wait": "maybe"}, "wait"),
    ({"unknown_option": 1}, "Unsupported parameters"),
])
def test_invalid_arguments(monkeypatch, args, message):
    api = healthy_api()
    failed, result = run_module(monkeypatch, gpu_readiness, args, api)
    assert failed is True
    assert message in result["msg"]
    assert api.requests == 0


def test_api_error_fails_cleanly(monkeypatch):
    api = healthy_api()
    api.fail[NODES] = 403
    failed, result = run_module(monkeypatch, gpu_readiness, {}, api)
    assert failed is True
    assert "Kubernetes API error" in result["msg"] and "403" in result["msg"]


def test_wait_until_ready(monkeypatch):
    api = broken_api()
    # Fixed once the module is known to be waiting (its node watch has started), not after a delay.
    fired = api.when(api.watching(NODES), lambda: api.put(NODES, BASELINE["nodes"][1]))
    failed, result = run_module(monkeypatch, gpu_readiness, {"min_nodes": 2, "wait": True, "timeout": 120}, api)
    api.shutdown()
    assert fired.is_set(), "the module returned before it watched the nodes"
    assert failed is False
    assert result["ready"] is True
    assert result["timed_out"] is False
    assert result["progress"][0]["ready"] is False and result["progress"][-1]["ready"] is True


def test_wait_timeout_message(monkeypatch):
    api = healthy_api()
    policy = copy.deepcopy(BASELINE["clusterpolicies"][0])
    policy["status"]["state"] = "notReady"
    api.put(CLUSTERPOLICY_PATH, policy)
    failed, result = run_module(monkeypatch, gpu_readiness, {"wait": True, "timeout": 1}, api)
    api.shutdown()
    assert failed is True
    assert result["timed_out"] is True
    assert result["msg"].startswith("timed out after 1s waiting for GPU readiness")
    assert "ClusterPolicy cluster-policy state is notReady" in result["msg"]


def test_node_info_never_fails_on_not_ready(monkeypatch):
    failed, result = run_module(monkeypatch, gpu_node_info, {"min_nodes": 2}, broken_api())
    assert failed is False
    assert result["ready"] is False
    assert result["changed"] is False
    assert "progress" not in result and "timed_out" not in result
    assert set(result) == READINESS_KEYS - {"progress", "timed_out"}
    gpu1 = [n for n in result["nodes"] if n["name"] == "gpu-1"][0]
    assert gpu1["problems"] == ["allocatable nvidia.com/gpu=0 but capacity=4"]


@pytest.mark.parametrize("args,message", [
    ({"resource": "nvidia.com/gpus"}, "resource must be"),
    ({"min_nodes": -1}, "min_nodes must be >= 0"),
    ({"gpus_per_node": 0}, "gpus_per_node must be >= 1"),
    ({"page_size": 0}, "page_size must be >= 1"),
])
def test_node_info_invalid_arguments(monkeypatch, args, message):
    api = healthy_api()
    failed, result = run_module(monkeypatch, gpu_node_info, args, api)
    assert failed is True
    assert message in result["msg"]
    assert api.requests == 0


def test_node_info_rejects_wait_option(monkeypatch):
    failed, result = run_module(monkeypatch, gpu_node_info, {"wait": True}, healthy_api())
    assert failed is True
    assert "Unsupported parameters" in result["msg"]


def test_node_info_facts(monkeypatch):
    failed, result = run_module(monkeypatch, gpu_node_info, {"check_operator": False}, healthy_api())
    assert failed is False
    node = result["nodes"][0]
    assert node["product"] == "NVIDIA-A100-SXM4-80GB" and node["allocatable"] == 4
    assert result["operator"]["checked"] is False
    assert result["api_requests"] == 1
