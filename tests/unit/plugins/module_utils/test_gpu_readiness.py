# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verdict logic of plugins/module_utils/gpu_readiness.py, one fixture case per failure mode."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os

import pytest
import yaml

from ansible_collections.mlops.platform.plugins.module_utils import gpu_readiness as gr
from ansible_collections.mlops.platform.plugins.module_utils.gpu_vocabulary import toleration_tolerates

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def _load(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return yaml.safe_load(handle)


BASELINE = _load("gpu_cluster_healthy.yaml")
CASES = _load("gpu_readiness_cases.yaml")


def _find(cluster, target):
    collection, name = target.split("/", 1)
    for obj in cluster[collection]:
        if obj["metadata"]["name"] == name:
            return obj
    raise AssertionError("fixture has no %s" % target)


def apply_patches(cluster, patches):
    for patch in patches or []:
        target = patch["target"]
        if "/" not in target:
            if "replace" in patch:
                cluster[target] = patch["replace"]
            elif "add" in patch:
                cluster[target].append(patch["add"])
            continue
        obj = _find(cluster, target)
        if patch.get("remove"):
            collection = target.split("/", 1)[0]
            cluster[collection].remove(obj)
            continue
        path = patch["path"]
        parent = obj
        for key in path[:-1]:
            parent = parent[key] if isinstance(parent, list) else parent.setdefault(key, {})
        if patch.get("delete"):
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(patch["value"])
    return cluster


def run_case(case):
    cluster = apply_patches(copy.deepcopy(BASELINE), case.get("patches"))
    return gr.evaluate(
        cluster["nodes"], clusterpolicies=cluster["clusterpolicies"], daemonsets=cluster["daemonsets"],
        pods=cluster["pods"], **(case.get("params") or {})
    )


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_failure_modes(case):
    verdict = run_case(case)
    expect = case["expect"]
    nodes = dict((n["name"], n) for n in verdict["nodes"])
    if "ready" in expect:
        assert verdict["ready"] is expect["ready"], verdict["problems"]
    if "ready_nodes" in expect:
        assert verdict["ready_nodes"] == expect["ready_nodes"], verdict["problems"]
    for node, wanted in (expect.get("node_problems") or {}).items():
        for text in wanted:
            assert any(text in p for p in nodes[node]["problems"]), (text, nodes[node]["problems"])
        assert nodes[node]["ok"] is False
    for node, wanted in (expect.get("node_hints") or {}).items():
        for text in wanted:
            assert any(text in h for h in nodes[node]["hints"]), (text, nodes[node]["hints"])
    for node in expect.get("clean_nodes") or []:
        assert nodes[node]["problems"] == [] and nodes[node]["ok"] is True, nodes[node]["problems"]
    for text in expect.get("operator_problems") or []:
        assert any(text in p for p in verdict["operator"]["problems"]), (text, verdict["operator"]["problems"])
        assert verdict["operator"]["ready"] is False
    if "problems" in expect:
        if expect["problems"] == []:
            assert verdict["problems"] == []
        for text in expect["problems"]:
            assert any(text in p for p in verdict["problems"]), (text, verdict["problems"])


def test_every_node_problem_is_in_the_flat_list_with_its_node_name():
    case = {"patches": [
        {"target": "nodes/gpu-0", "path": ["spec", "unschedulable"], "value": True},
        {"target": "nodes/gpu-1", "path": ["status", "allocatable", "nvidia.com/gpu"], "value": "0"},
    ]}
    verdict = run_case(case)
    for node in verdict["nodes"]:
        for problem in node["problems"]:
            assert "%s: %s" % (node["name"], problem) in verdict["problems"]
    assert verdict["ready"] is False


def test_facts_from_gfd_labels():
    verdict = run_case({})
    node = verdict["nodes"][0]
    assert node["name"] == "gpu-0"
    assert node["product"] == "NVIDIA-A100-SXM4-80GB"
    assert node["memory_mib"] == 81920
    assert node["gpu_count"] == 4
    assert node["driver"] == "550.90.07"
    assert node["cuda"] == "12.4"
    assert node["mig_strategy"] == "single"
    assert node["sharing_replicas"] == 1
    assert node["capacity"] == 4 and node["allocatable"] == 4
    assert node["taints"] == ["nvidia.com/gpu=true:NoSchedule"]
    assert node["spot"] is False
    assert node["ready"] is True and node["schedulable"] is True
    assert any("taint nvidia.com/gpu=true:NoSchedule" in h for h in node["hints"])
    assert verdict["operator"]["state"] == "ready"
    assert verdict["operator"]["clusterpolicy"] == "cluster-policy"
    assert len(verdict["operator"]["daemonsets"]) == 6


def test_full_driver_version_label_wins():
    node = copy.deepcopy(BASELINE["nodes"][0])
    node["metadata"]["labels"]["nvidia.com/cuda.driver-version.full"] = "550.90.07"
    node["metadata"]["labels"]["nvidia.com/cuda.driver.rev"] = "7"
    assert gr.node_facts(node)["driver"] == "550.90.07"


def test_condition_taints_do_not_blame_tolerations():
    cluster = copy.deepcopy(BASELINE)
    cluster["pods"] = [p for p in cluster["pods"] if p["spec"]["nodeName"] != "gpu-1"]
    node = _find(cluster, "nodes/gpu-1")
    node["spec"]["taints"].append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
    verdict = gr.evaluate(cluster["nodes"], cluster["clusterpolicies"], cluster["daemonsets"], cluster["pods"])
    problems = [n for n in verdict["nodes"] if n["name"] == "gpu-1"][0]["problems"]
    assert "no nvidia-driver-daemonset pod on this node" in problems
    assert not any("missing a toleration" in p for p in problems)


@pytest.mark.parametrize("resource", ["nvidia.com/gpu", "nvidia.com/gpu.shared", "nvidia.com/mig-1g.10gb",
                                      "nvidia.com/mig-3g.40gb", "nvidia.com/mig-1g.10gb.me"])
def test_valid_resources(resource):
    assert gr.validate_resource(resource) == resource


@pytest.mark.parametrize("resource", ["nvidia.com/gpus", "amd.com/gpu", "nvidia.com/mig-", "nvidia.com/mig-1g", "", None])
def test_invalid_resources(resource):
    with pytest.raises(gr.GpuReadinessError, match="resource must be"):
        gr.validate_resource(resource)
    with pytest.raises(gr.GpuReadinessError):
        gr.evaluate([], resource=resource)


@pytest.mark.parametrize("selector,labels,expected", [
    ("accelerator=nvidia-gpu", {"accelerator": "nvidia-gpu"}, True),
    ("accelerator=nvidia-gpu", {"accelerator": "amd"}, False),
    ("accelerator==nvidia-gpu,node-type=ai", {"accelerator": "nvidia-gpu", "node-type": "ai"}, True),
    ("accelerator=nvidia-gpu,node-type=ai", {"accelerator": "nvidia-gpu"}, False),
    ("node-type!=cpu", {}, True),
    ("node-type!=cpu", {"node-type": "cpu"}, False),
    ("nvidia.com/gpu.present", {"nvidia.com/gpu.present": "true"}, True),
    ("!nvidia.com/gpu.present", {"nvidia.com/gpu.present": "true"}, False),
    ("node-type in (ai, gpu)", {"node-type": "gpu"}, True),
    ("node-type in (ai,gpu),accelerator", {"node-type": "cpu", "accelerator": "x"}, False),
    ("node-type notin (cpu)", {"node-type": "ai"}, True),
    ("", {"anything": "x"}, True),
])
def test_selector_matches(selector, labels, expected):
    assert gr.selector_matches(selector, labels) is expected


def test_selector_parse_error():
    with pytest.raises(gr.GpuReadinessError, match="cannot parse"):
        gr.parse_label_selector("a b c")


@pytest.mark.parametrize("toleration,taint,expected", [
    ({"key": "nvidia.com/gpu", "operator": "Exists"}, {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}, True),
    ({"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
     {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}, True),
    ({"key": "nvidia.com/gpu", "value": "false"}, {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}, False),
    ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"},
     {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}, False),
    ({"operator": "Exists"}, {"key": "anything", "effect": "NoSchedule"}, True),
    ({"key": "other", "operator": "Exists"}, {"key": "nvidia.com/gpu", "effect": "NoSchedule"}, False),
])
def test_toleration_semantics(toleration, taint, expected):
    assert toleration_tolerates(toleration, taint) is expected


def test_summarize_lists_problems_per_node():
    verdict = run_case({"params": {"min_nodes": 2}, "patches": [
        {"target": "nodes/gpu-1", "path": ["status", "allocatable", "nvidia.com/gpu"], "value": "0"},
        {"target": "clusterpolicies/cluster-policy", "path": ["status", "state"], "value": "notReady"},
    ]})
    message = gr.summarize(verdict)
    assert message.startswith("GPU cluster not ready: 1 of 2 selected node(s) ready")
    assert "gpu-1: allocatable nvidia.com/gpu=0 but capacity=4" in message
    assert "operator: ClusterPolicy cluster-policy state is notReady" in message
    assert "gpu-0:" not in message


def test_summarize_caps_node_count():
    nodes = []
    for index in range(30):
        node = copy.deepcopy(BASELINE["nodes"][0])
        node["metadata"]["name"] = "gpu-%02d" % index
        node["spec"]["unschedulable"] = True
        nodes.append(node)
    verdict = gr.evaluate(nodes, check_operator=False)
    message = gr.summarize(verdict, max_nodes=5)
    assert "and 25 more node(s) with problems" in message
    assert gr.summarize(gr.evaluate([], check_operator=False)).endswith("no node matched the label selectors")


def test_state_signature_changes_with_verdict():
    healthy = run_case({})
    broken = run_case({"patches": [{"target": "nodes/gpu-0", "path": ["spec", "unschedulable"], "value": True}]})
    assert gr.state_signature(healthy) != gr.state_signature(broken)
    assert gr.state_signature(healthy) == gr.state_signature(run_case({}))


def test_inputs_are_not_modified():
    cluster = copy.deepcopy(BASELINE)
    before = copy.deepcopy(cluster)
    gr.evaluate(cluster["nodes"], cluster["clusterpolicies"], cluster["daemonsets"], cluster["pods"], gpus_per_node=4)
    assert cluster == before
