# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pagination, request counting and watch behaviour (re-list on 410) against an in-memory API."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os
import time

import pytest
import yaml

from ansible_collections.mlops.platform.plugins.module_utils import k8s_watch
from ansible_collections.mlops.platform.plugins.module_utils.gpu_cluster import run_check
from ansible_collections.mlops.platform.plugins.module_utils.gpu_vocabulary import CLUSTERPOLICY_PATH
from ansible_collections.mlops.platform.tests.unit.plugins.module_utils.fixtures.fake_kube_api import FakeKubeApi

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
NODES = "/api/v1/nodes"
DS = "/apis/apps/v1/namespaces/gpu-operator/daemonsets"
PODS = "/api/v1/namespaces/gpu-operator/pods"

with open(os.path.join(FIXTURES, "gpu_cluster_healthy.yaml")) as _handle:
    BASELINE = yaml.safe_load(_handle)


def healthy_api(**kwargs):
    api = FakeKubeApi(**kwargs)
    for node in BASELINE["nodes"]:
        api.put(NODES, node)
    for policy in BASELINE["clusterpolicies"]:
        api.put(CLUSTERPOLICY_PATH, policy)
    for ds in BASELINE["daemonsets"]:
        api.put(DS, ds)
    for pod in BASELINE["pods"]:
        api.put(PODS, pod)
    return api


def params(**overrides):
    base = dict(label_selectors=["accelerator=nvidia-gpu"], min_nodes=1, gpus_per_node=None, resource="nvidia.com/gpu",
                check_operator=True, operator_namespace="gpu-operator", wait=False, timeout=5, page_size=500,
                require_all_nodes=False)
    base.update(overrides)
    return base


def many_nodes(api, count, labels=None):
    template = BASELINE["nodes"][0]
    for index in range(count):
        node = copy.deepcopy(template)
        node["metadata"]["name"] = "gpu-%04d" % index
        node["metadata"]["labels"].update(labels or {})
        api.put(NODES, node)


def test_list_all_paginates_by_pages_not_items():
    api = FakeKubeApi()
    many_nodes(api, 1203)
    items, rv = k8s_watch.list_all(api, NODES, {"labelSelector": "accelerator=nvidia-gpu"}, page_size=500)
    assert len(items) == 1203
    assert len(set(i["metadata"]["name"] for i in items)) == 1203
    assert api.requests == 3
    assert [c[2].get("continue") for c in api.calls] == [None, "500", "1000"]
    assert all(c[2]["limit"] == 500 for c in api.calls)
    assert rv == str(api.rv)


def test_list_all_restarts_when_continue_token_expires():
    api = FakeKubeApi()
    many_nodes(api, 30)
    api.compacted_lists.add(NODES)
    items, dummy = k8s_watch.list_all(api, NODES, page_size=10)
    assert len(items) == 30
    # first page, expired continue, then three fresh pages
    assert api.requests == 5


def test_list_all_raises_other_errors():
    api = FakeKubeApi()
    api.fail[NODES] = 403
    with pytest.raises(k8s_watch.ApiError) as err:
        k8s_watch.list_all(api, NODES)
    assert err.value.status == 403


def test_check_once_request_count_grows_with_pages():
    api = healthy_api()
    many_nodes(api, 1000)
    result = run_check(api, params(page_size=500))
    assert result["total_nodes"] == 1002
    assert result["ready"] is True
    # nodes: 1002 items = 3 pages; ClusterPolicies, DaemonSets, Pods: one page each
    assert result["api_requests"] == 6
    assert api.requests == 6
    assert result["timed_out"] is False
    assert len(result["progress"]) == 1


def test_multiple_selectors_are_deduplicated():
    api = healthy_api()
    result = run_check(api, params(label_selectors=["accelerator=nvidia-gpu", "node-type=ai"], check_operator=False))
    assert result["total_nodes"] == 2
    assert api.requests == 2


def test_empty_selector_lists_every_node():
    api = healthy_api()
    cpu = copy.deepcopy(BASELINE["nodes"][0])
    cpu["metadata"] = {"name": "system-0", "labels": {"node-type": "system"}}
    api.put(NODES, cpu)
    result = run_check(api, params(label_selectors=[], check_operator=False))
    assert result["total_nodes"] == 3
    assert "labelSelector" not in api.calls[0][2]


def test_missing_clusterpolicy_crd_is_an_operator_problem():
    api = healthy_api()
    api.missing.add(CLUSTERPOLICY_PATH)
    result = run_check(api, params())
    assert result["ready"] is False
    assert any("is not installed" in p for p in result["operator"]["problems"])


def test_informer_applies_events_and_raises_gone():
    api = healthy_api(watch_time_scale=0.01)
    informer = k8s_watch.Informer("nodes", api, NODES, {"labelSelector": "accelerator=nvidia-gpu"})
    assert informer.relist() is True
    node = copy.deepcopy(BASELINE["nodes"][1])
    node["spec"]["unschedulable"] = True
    api.put(NODES, node)
    api.remove(NODES, "gpu-0")
    informer.watch_once(timeout=1)
    names = sorted(o["metadata"]["name"] for o in informer.items())
    assert names == ["gpu-1"]
    assert informer.items()[0]["spec"]["unschedulable"] is True
    assert informer.resource_version == str(api.rv)
    api.compact()
    informer.resource_version = "1"
    with pytest.raises(k8s_watch.GoneError):
        informer.watch_once(timeout=1)


def test_informer_ignores_bookmarks_but_keeps_their_version():
    informer = k8s_watch.Informer("x", None, NODES)
    informer.apply_event({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "77"}}})
    assert informer.resource_version == "77"
    assert informer.items() == []
    with pytest.raises(k8s_watch.ApiError) as err:
        informer.apply_event({"type": "ERROR", "object": {"code": 500, "message": "boom"}})
    assert err.value.status == 500


def test_wait_returns_soon_after_node_becomes_allocatable():
    api = healthy_api()
    broken = copy.deepcopy(BASELINE["nodes"][1])
    broken["status"]["allocatable"]["nvidia.com/gpu"] = "0"
    api.put(NODES, broken)
    fixed = copy.deepcopy(BASELINE["nodes"][1])
    # The fix lands once the check is known to be waiting (its node watch has started), never on a timer.
    fired = api.when(api.watching(NODES), lambda: api.put(NODES, fixed))
    result = run_check(api, params(wait=True, timeout=120, min_nodes=2))
    api.shutdown()
    assert fired.is_set(), "the check returned before it watched the nodes"
    assert result["ready"] is True
    assert result["timed_out"] is False
    assert len(result["progress"]) >= 2
    assert result["progress"][0]["ready"] is False
    assert result["progress"][-1]["ready"] is True
    assert any("allocatable nvidia.com/gpu=0" in p for p in result["progress"][0]["problems"])
    # 4 lists plus at least one watch per collection
    assert result["api_requests"] >= 8
    assert sum(1 for c in api.calls if c[0] == "WATCH") >= 4


def test_wait_relists_after_410_gone():
    api = healthy_api()
    policy = copy.deepcopy(BASELINE["clusterpolicies"][0])
    policy["status"]["state"] = "notReady"
    api.put(CLUSTERPOLICY_PATH, policy)
    paths = (NODES, DS, PODS, CLUSTERPOLICY_PATH)

    def relisted(fake):
        return all(sum(1 for c in fake.calls if c[0] == "GET" and c[1] == path) >= 2 for path in paths)

    def expire_then_fix():
        api.expire_watches()
        # every informer lists again after its 410; only then does the operator become ready
        if api.wait_until(relisted):
            api.put(CLUSTERPOLICY_PATH, BASELINE["clusterpolicies"][0])

    fired = api.when(api.watching(*paths), expire_then_fix)
    result = run_check(api, params(wait=True, timeout=120))
    api.shutdown()
    assert fired.is_set()
    assert result["ready"] is True
    assert result["operator"]["state"] == "ready"
    # every collection was listed again after its watch was told 410 Gone
    for path in paths:
        assert sum(1 for c in api.calls if c[0] == "GET" and c[1] == path) >= 2, path


def test_relist_on_gone_event_in_running_informer():
    api = healthy_api()
    informer = k8s_watch.Informer("nodes", api, NODES, {}, watch_timeout=20)
    informer.start()
    assert api.wait_until(lambda fake: informer.synced and fake.streams.get(NODES, 0) >= 1), "the informer never watched"
    assert informer.relists == 1
    api.expire_watches()
    node = copy.deepcopy(BASELINE["nodes"][0])
    node["metadata"]["labels"]["extra"] = "yes"
    api.put(NODES, node)
    api.wait_until(lambda fake: informer.relists >= 2 and [
        o for o in informer.items() if o["metadata"]["name"] == "gpu-0" and o["metadata"]["labels"].get("extra") == "yes"])
    informer.stop()
    api.shutdown()
    assert informer.relists == 2
    assert [o for o in informer.items() if o["metadata"]["name"] == "gpu-0"][0]["metadata"]["labels"]["extra"] == "yes"


def test_wait_times_out_with_the_last_verdict():
    api = healthy_api()
    broken = copy.deepcopy(BASELINE["nodes"][0])
    broken["spec"]["unschedulable"] = True
    api.put(NODES, broken)
    started = time.monotonic()
    result = run_check(api, params(wait=True, timeout=1, min_nodes=2))
    elapsed = time.monotonic() - started
    api.shutdown()
    assert result["ready"] is False
    assert result["timed_out"] is True
    assert elapsed >= 1
    assert any("gpu-0: node is cordoned" in p for p in result["problems"])


def test_wait_returns_immediately_when_already_ready():
    api = healthy_api()
    result = run_check(api, params(wait=True, timeout=30))
    api.shutdown()
    assert result["ready"] is True
    assert result["timed_out"] is False
    assert len(result["progress"]) == 1
    # ready on the first lists: no watch is opened at all
    assert not [c for c in api.calls if c[0] == "WATCH"]
    assert result["api_requests"] == 4


def test_wait_surfaces_list_errors_at_once():
    api = healthy_api()
    api.fail[PODS] = 403
    with pytest.raises(k8s_watch.ApiError) as err:
        run_check(api, params(wait=True, timeout=30))
    assert err.value.status == 403
