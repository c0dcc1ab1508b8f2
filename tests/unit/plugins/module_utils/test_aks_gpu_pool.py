# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Derivation of the AKS GPU pool parameters and REST body."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible_collections.mlops.platform.plugins.module_utils.aks_gpu_pool import AksPoolError, plan_pool

POOL = {
    "resource_group": "rg-ml",
    "cluster_name": "aks-ml",
    "name": "gpua100",
    "vm_size": "Standard_NC24ads_A100_v4",
    "count": 2,
    "os_disk_size_gb": 256,
    "max_pods": 60,
    "labels": {"node-type": "ai", "accelerator": "nvidia-gpu", "workload-type": "ai-ml"},
    "taints": ["nvidia.com/gpu=true:NoSchedule"],
}


def pool(**changes):
    result = copy.deepcopy(POOL)
    result.update(changes)
    return result


def existing_from(plan, **props):
    """The REST representation AKS would return for a pool created from ``plan``."""
    body = copy.deepcopy(plan["rest_body"])
    body["properties"].update(provisioningState="Succeeded", nodeImageVersion="AKSUbuntu-2204gen2containerd-2026.01.01")
    body["properties"].update(props)
    body["name"] = plan["pool"]["name"]
    return body


def test_create_with_operator_owned_driver():
    plan = plan_pool(pool(), "operator")
    assert plan["action"] == "create" and plan["changed"] and plan["use_rest"]
    props = plan["rest_body"]["properties"]
    assert props["gpuProfile"] == {"driver": "None"}
    assert props["mode"] == "User" and props["osType"] == "Linux"
    assert props["nodeTaints"] == ["nvidia.com/gpu=true:NoSchedule"]
    assert props["nodeLabels"] == POOL["labels"]
    assert props["count"] == 2 and props["enableAutoScaling"] is False
    assert props["scaleSetPriority"] == "Regular"
    assert plan["label_selector"] == "accelerator=nvidia-gpu,node-type=ai,workload-type=ai-ml"
    assert plan["expected_nodes"] == 2


def test_module_params_with_aks_owned_driver():
    plan = plan_pool(pool(), "aks")
    assert plan["use_rest"] is False and plan["driver"] == "Install"
    params = plan["module_params"]
    assert params == {
        "resource_group": "rg-ml", "cluster_name": "aks-ml", "name": "gpua100", "mode": "User", "os_type": "Linux",
        "type_properties_type": "VirtualMachineScaleSets", "vm_size": "Standard_NC24ads_A100_v4", "count": 2,
        "enable_auto_scaling": False, "os_disk_size_gb": 256, "max_pods": 60,
        "node_labels": POOL["labels"], "node_taints": ["nvidia.com/gpu=true:NoSchedule"],
        "scale_set_priority": "Regular",
    }


def test_autoscale_from_zero_and_spot_and_mig():
    plan = plan_pool(pool(count=None, autoscale={"enabled": True, "min_count": 0, "max_count": 4},
                          spot={"enabled": True, "eviction_policy": "Deallocate", "max_price": 1.5},
                          gpu_instance_profile="MIG1g"), "aks")
    params = plan["module_params"]
    assert params["enable_auto_scaling"] is True and params["min_count"] == 0 and params["max_count"] == 4
    assert params["count"] == 0 and plan["expected_nodes"] == 0
    assert params["scale_set_priority"] == "Spot"
    assert params["scale_set_eviction_policy"] == "Deallocate" and params["spot_max_price"] == 1.5
    assert params["gpu_instance_profile"] == "MIG1g"
    assert "kubernetes.azure.com/scalesetpriority=spot:NoSchedule" in params["node_taints"]
    assert plan["rest_body"]["properties"]["spotMaxPrice"] == 1.5


def test_spot_defaults():
    plan = plan_pool(pool(spot={"enabled": True}), "operator")
    props = plan["rest_body"]["properties"]
    assert props["scaleSetEvictionPolicy"] == "Delete" and props["spotMaxPrice"] == -1


def test_existing_pool_unchanged_is_a_no_op():
    plan = plan_pool(pool(), "operator")
    again = plan_pool(pool(), "operator", existing=existing_from(plan))
    assert again["action"] == "none" and again["changed"] is False and again["differences"] == []


def test_taint_order_and_extra_labels_do_not_count_as_changes():
    plan = plan_pool(pool(taints=["a=b:NoSchedule", "nvidia.com/gpu=true:NoSchedule"]), "operator")
    existing = existing_from(plan, nodeTaints=["nvidia.com/gpu=true:NoSchedule", "a=b:NoSchedule"])
    existing["properties"]["nodeLabels"]["added-by-aks"] = "x"
    assert plan_pool(pool(taints=["a=b:NoSchedule", "nvidia.com/gpu=true:NoSchedule"]), "operator",
                     existing=existing)["action"] == "none"


def test_update_lists_the_differences():
    plan = plan_pool(pool(), "operator")
    again = plan_pool(pool(count=3, max_pods=80), "operator", existing=existing_from(plan))
    assert again["action"] == "update"
    assert again["differences"] == ["properties.count", "properties.maxPods"]


def test_autoscaler_owns_the_count_of_an_existing_pool():
    settings = pool(count=1, autoscale={"enabled": True, "min_count": 0, "max_count": 4})
    created = plan_pool(settings, "operator")
    scaled = existing_from(created, count=3)
    again = plan_pool(settings, "operator", existing=scaled)
    assert again["action"] == "none"
    assert again["rest_body"]["properties"]["count"] == 3
    assert "count" not in again["module_params"]


def test_driver_mode_cannot_change_after_creation():
    created = plan_pool(pool(), "aks")
    existing = existing_from(created)
    existing["properties"].pop("gpuProfile")  # pools created without a gpuProfile install the driver
    assert plan_pool(pool(), "aks", existing=existing)["action"] == "none"
    with pytest.raises(AksPoolError, match="mlops_gpu_driver_owner=operator.*driver mode Install.*recreate"):
        plan_pool(pool(), "operator", existing=existing)


def test_absent():
    plan = plan_pool(pool(), "operator")
    assert plan_pool(pool(), "operator", existing=existing_from(plan), state="absent")["action"] == "delete"
    assert plan_pool(pool(), "operator", state="absent")["action"] == "none"
    # a driver mismatch does not block deleting the pool
    assert plan_pool(pool(), "aks", existing=existing_from(plan), state="absent")["action"] == "delete"


@pytest.mark.parametrize("changes, owner, message", [
    ({"name": "GPU-pool"}, "operator", "name"),
    ({"name": "averyveryverylongname"}, "operator", "name"),
    ({"vm_size": None}, "operator", "vm_size is required"),
    ({"count": None}, "operator", "count is required"),
    ({"count": -1}, "operator", "count must be at least 0"),
    ({"max_pods": 5}, "operator", "max_pods must be at least 10"),
    ({"os_disk_size_gb": 10}, "operator", "os_disk_size_gb"),
    ({"autoscale": {"enabled": True, "min_count": 3, "max_count": 2}}, "operator", "min_count .3. must not exceed"),
    ({"count": 9, "autoscale": {"enabled": True, "min_count": 0, "max_count": 2}}, "operator", "must lie between"),
    ({"autoscale": {"enabled": True, "max_count": 2}}, "operator", "min_count is required"),
    ({"spot": {"enabled": True, "eviction_policy": "Stop"}}, "operator", "eviction_policy"),
    ({"spot": {"enabled": True, "max_price": 0}}, "operator", "max_price"),
    ({"spot": {"enabled": True, "max_price": "cheap"}}, "operator", "max_price must be a number"),
    ({"gpu_instance_profile": "MIG5g"}, "operator", "gpu_instance_profile"),
    ({"taints": ["nvidia.com/gpu=true"]}, "operator", "key=value:Effect"),
    ({"labels": {"bad key": "x"}}, "operator", "qualified name"),
    ({}, "nvidia", "mlops_gpu_driver_owner must be one of aks, operator"),
])
def test_bad_settings_name_the_field(changes, owner, message):
    with pytest.raises(AksPoolError, match=message):
        plan_pool(pool(**changes), owner)


def test_bad_state_and_existing():
    with pytest.raises(AksPoolError, match="state"):
        plan_pool(pool(), "aks", state="gone")
    with pytest.raises(AksPoolError, match="existing"):
        plan_pool(pool(), "aks", existing="yes")
    with pytest.raises(AksPoolError, match="mapping"):
        plan_pool(["x"], "aks")
