# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning of the labels and taints gpu_nodepool manages on existing nodes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json

import pytest

from ansible_collections.mlops.platform.plugins.module_utils.gpu_node_labels import (
    ANNOTATION,
    NodeLabelError,
    normalise_taints,
    parse_taint,
    plan_node,
    plan_nodes,
    read_record,
    taint_string,
)

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
FOREIGN = {"key": "dedicated", "value": "team-a", "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"}
LABELS = {"node-type": "ai", "workload-type": "ai-ml"}


def node(name="n1", labels=None, taints=None, annotations=None):
    obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": dict(labels or {})}, "spec": {}}
    if taints is not None:
        obj["spec"]["taints"] = copy.deepcopy(taints)
    if annotations:
        obj["metadata"]["annotations"] = dict(annotations)
    return obj


def apply(obj, plan):
    """Apply a JSON merge patch the way the API server does (labels/annotations merged, taints replaced)."""
    result = copy.deepcopy(obj)
    patch = plan["patch"] or {}
    for field in ("labels", "annotations"):
        for key, value in (patch.get("metadata") or {}).get(field, {}).items():
            target = result["metadata"].setdefault(field, {})
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
    if "spec" in patch:
        result["spec"]["taints"] = patch["spec"]["taints"]
    return result


def test_parse_taint_forms():
    assert parse_taint("nvidia.com/gpu=true:NoSchedule") == GPU_TAINT
    assert parse_taint("gpu:NoExecute") == {"key": "gpu", "value": "", "effect": "NoExecute"}
    assert parse_taint({"key": "a", "value": True, "effect": "PreferNoSchedule"})["value"] == "true"
    assert taint_string(GPU_TAINT) == "nvidia.com/gpu=true:NoSchedule"
    assert taint_string({"key": "gpu", "effect": "NoExecute"}) == "gpu:NoExecute"


@pytest.mark.parametrize("bad, message", [
    ("nvidia.com/gpu=true", "key=value:Effect"),
    ("a=b:Sometimes", "effect"),
    ({"key": "bad key", "value": "x", "effect": "NoSchedule"}, "qualified name"),
    ({"key": "a", "value": "no spaces", "effect": "NoSchedule"}, "label value"),
    ({"key": "a", "effect": "NoSchedule", "operator": "Equal"}, "unknown fields"),
    (42, "mapping"),
])
def test_parse_taint_rejects(bad, message):
    with pytest.raises(NodeLabelError, match=message):
        parse_taint(bad)


def test_duplicate_taint_rejected():
    with pytest.raises(NodeLabelError, match="given twice"):
        normalise_taints(["a=1:NoSchedule", "a=2:NoSchedule"])


def test_bad_labels_rejected():
    with pytest.raises(NodeLabelError, match="qualified name"):
        plan_node(node(), {"-bad": "x"})
    with pytest.raises(NodeLabelError, match="mapping"):
        plan_node(node(), ["a=b"])
    with pytest.raises(NodeLabelError, match="state"):
        plan_node(node(), LABELS, state="gone")


def test_merge_keeps_foreign_taint_and_records_only_additions():
    start = node(labels={"kubernetes.io/hostname": "n1", "node-type": "ai"}, taints=[FOREIGN])
    plan = plan_node(start, LABELS, [GPU_TAINT])
    assert plan["changed"]
    # the complete list: the foreign taint (untouched, timeAdded kept) and ours
    assert plan["patch"]["spec"]["taints"] == [FOREIGN, GPU_TAINT]
    # node-type already had the wanted value: not set, not recorded
    assert plan["patch"]["metadata"]["labels"] == {"workload-type": "ai-ml"}
    record = json.loads(plan["patch"]["metadata"]["annotations"][ANNOTATION])
    assert record == {"labels": {"workload-type": {"value": "ai-ml", "previous": None}},
                      "taints": [dict(GPU_TAINT, previous=None)]}
    assert plan["taints_added"] == ["nvidia.com/gpu=true:NoSchedule"]


def test_rerun_is_a_no_op():
    start = node(labels={"a": "b"}, taints=[FOREIGN])
    after = apply(start, plan_node(start, LABELS, [GPU_TAINT]))
    again = plan_node(after, LABELS, [GPU_TAINT])
    assert again["changed"] is False and again["patch"] is None


def test_absent_removes_only_what_was_added():
    start = node(labels={"node-type": "ai", "zone": "z1"}, taints=[FOREIGN])
    present = apply(start, plan_node(start, LABELS, [GPU_TAINT]))
    absent_plan = plan_node(present, LABELS, [GPU_TAINT], state="absent")
    restored = apply(present, absent_plan)
    assert restored["metadata"]["labels"] == start["metadata"]["labels"]
    assert restored["spec"]["taints"] == [FOREIGN]
    assert ANNOTATION not in restored["metadata"].get("annotations", {})
    assert absent_plan["labels_removed"] == ["workload-type"]
    assert absent_plan["taints_removed"] == ["nvidia.com/gpu=true:NoSchedule"]
    assert plan_node(restored, state="absent")["changed"] is False


def test_taint_already_present_is_never_removed():
    start = node(taints=[GPU_TAINT])
    plan = plan_node(start, {}, [GPU_TAINT])
    assert plan["changed"] is False
    assert plan_node(start, state="absent")["changed"] is False


def test_overwritten_values_are_restored():
    start = node(labels={"workload-type": "batch"}, taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}])
    present = apply(start, plan_node(start, LABELS, [GPU_TAINT]))
    assert present["metadata"]["labels"]["workload-type"] == "ai-ml"
    assert present["spec"]["taints"] == [GPU_TAINT]
    restored = apply(present, plan_node(present, state="absent"))
    assert restored["metadata"]["labels"] == {"workload-type": "batch"}
    assert restored["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]


def test_values_changed_by_someone_else_are_left_alone_on_absent():
    start = node()
    present = apply(start, plan_node(start, LABELS, [GPU_TAINT]))
    present["metadata"]["labels"]["workload-type"] = "theirs"
    present["spec"]["taints"][0]["value"] = "theirs"
    plan = plan_node(present, state="absent")
    restored = apply(present, plan)
    assert restored["metadata"]["labels"]["workload-type"] == "theirs"
    assert restored["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "theirs", "effect": "NoSchedule"}]
    assert "node-type" not in restored["metadata"]["labels"]
    assert ANNOTATION not in restored["metadata"].get("annotations", {})


def test_dropping_a_label_from_the_wanted_set_releases_it():
    start = node()
    present = apply(start, plan_node(start, LABELS, [GPU_TAINT]))
    smaller = apply(present, plan_node(present, {"node-type": "ai"}, []))
    assert smaller["metadata"]["labels"] == {"node-type": "ai"}
    assert smaller["spec"]["taints"] == []
    assert json.loads(smaller["metadata"]["annotations"][ANNOTATION]) == {
        "labels": {"node-type": {"value": "ai", "previous": None}}, "taints": []}


def test_changed_value_of_a_managed_label_keeps_the_original_previous():
    start = node(labels={"workload-type": "batch"})
    first = apply(start, plan_node(start, {"workload-type": "ai-ml"}))
    second = apply(first, plan_node(first, {"workload-type": "training"}))
    assert second["metadata"]["labels"]["workload-type"] == "training"
    assert apply(second, plan_node(second, state="absent"))["metadata"]["labels"] == {"workload-type": "batch"}


def test_valueless_taint_and_effect_identity():
    start = node(taints=[{"key": "nvidia.com/gpu", "effect": "NoExecute"}])
    plan = plan_node(start, {}, [GPU_TAINT])
    # same key, different effect: a different taint, both kept
    assert plan["patch"]["spec"]["taints"] == [{"key": "nvidia.com/gpu", "effect": "NoExecute"}, GPU_TAINT]


def test_broken_annotation_is_reported():
    with pytest.raises(NodeLabelError, match="not valid JSON"):
        read_record(node(annotations={ANNOTATION: "{nope"}))


def test_plan_nodes_sorted_and_validated():
    plans = plan_nodes([node("b"), node("a")], LABELS)
    assert [p["name"] for p in plans] == ["a", "b"]
    with pytest.raises(NodeLabelError, match="list"):
        plan_nodes({"metadata": {"name": "x"}}, LABELS)
    with pytest.raises(NodeLabelError, match="metadata.name"):
        plan_nodes([{"metadata": {}}], LABELS)
