# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure derivation of an AKS GPU user pool: azure.azcollection.azure_rm_aksagentpool parameters, the equivalent
agentPools REST body (for what the module cannot express: the GPU driver mode), whether an existing pool needs an
update, and the label selectors of its nodes. Nothing here talks to Azure.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.mlops.platform.plugins.module_utils.gpu_vocabulary import SPOT_TAINT
from ansible_collections.mlops.platform.plugins.module_utils.gpu_node_labels import (
    NodeLabelError,
    normalise_labels,
    normalise_taints,
    taint_string,
)

DRIVER_OWNERS = ("aks", "operator")
MIG_PROFILES = ("MIG1g", "MIG2g", "MIG3g", "MIG4g", "MIG7g")
EVICTION_POLICIES = ("Delete", "Deallocate")
SPOT_LABEL = (SPOT_TAINT["key"], SPOT_TAINT["value"])
# AKS agentPools: gpuProfile.driver is "Install" (the default when absent) or "None".
DRIVER_MODE = {"aks": "Install", "operator": "None"}


class AksPoolError(ValueError):
    """Invalid pool settings; the message names the offending field."""


def _int(pool, key, minimum=None, maximum=None, required=False):
    value = pool.get(key)
    if value is None:
        if required:
            raise AksPoolError("%s is required" % key)
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value), 10)
        except ValueError:
            raise AksPoolError("%s must be an integer, got %r" % (key, pool.get(key)))
    if minimum is not None and value < minimum:
        raise AksPoolError("%s must be at least %d, got %d" % (key, minimum, value))
    if maximum is not None and value > maximum:
        raise AksPoolError("%s must be at most %d, got %d" % (key, maximum, value))
    return value


def _str(pool, key, required=False):
    value = pool.get(key)
    if value in (None, ""):
        if required:
            raise AksPoolError("%s is required" % key)
        return None
    if not isinstance(value, str):
        raise AksPoolError("%s must be a string" % key)
    return value


def normalise_pool(pool, driver_owner):
    """Validate the role's pool settings and return a normalised copy."""
    if not isinstance(pool, dict):
        raise AksPoolError("the pool settings must be a mapping")
    if driver_owner not in DRIVER_OWNERS:
        raise AksPoolError("mlops_gpu_driver_owner must be one of %s, got %r" % (", ".join(DRIVER_OWNERS), driver_owner))
    name = _str(pool, "name", required=True)
    if not (1 <= len(name) <= 12 and name.isalnum() and name.islower() and name[0].isalpha()):
        raise AksPoolError("name %r must be 1-12 lowercase letters and digits, starting with a letter (AKS Linux pool names)" % name)
    result = {
        "resource_group": _str(pool, "resource_group", required=True),
        "cluster_name": _str(pool, "cluster_name", required=True),
        "name": name,
        "vm_size": _str(pool, "vm_size", required=True),
        "os_disk_size_gb": _int(pool, "os_disk_size_gb", 30, 2048),
        "os_disk_type": _str(pool, "os_disk_type"),
        "os_sku": _str(pool, "os_sku"),
        "max_pods": _int(pool, "max_pods", 10, 250),
        "orchestrator_version": _str(pool, "orchestrator_version"),
        "vnet_subnet_id": _str(pool, "vnet_subnet_id"),
        "availability_zones": list(pool.get("availability_zones") or []),
        "tags": dict(pool.get("tags") or {}),
        "driver_owner": driver_owner,
    }
    autoscale = pool.get("autoscale") or {}
    enabled = bool(autoscale.get("enabled", False))
    result["autoscale"] = enabled
    if enabled:
        min_count = _int(autoscale, "min_count", 0, 1000, required=True)
        max_count = _int(autoscale, "max_count", 1, 1000, required=True)
        if min_count > max_count:
            raise AksPoolError("autoscale.min_count (%d) must not exceed autoscale.max_count (%d)" % (min_count, max_count))
        count = _int(pool, "count", 0, 1000)
        count = min_count if count is None else count
        if not min_count <= count <= max_count:
            raise AksPoolError("count (%d) must lie between autoscale.min_count (%d) and autoscale.max_count (%d)"
                               % (count, min_count, max_count))
        result.update(count=count, min_count=min_count, max_count=max_count)
    else:
        result.update(count=_int(pool, "count", 0, 1000, required=True), min_count=None, max_count=None)
    spot = pool.get("spot") or {}
    result["spot"] = bool(spot.get("enabled", False))
    if result["spot"]:
        policy = spot.get("eviction_policy") or "Delete"
        if policy not in EVICTION_POLICIES:
            raise AksPoolError("spot.eviction_policy must be one of %s, got %r" % (", ".join(EVICTION_POLICIES), policy))
        price = spot.get("max_price", -1)
        try:
            price = float(price)
        except (TypeError, ValueError):
            raise AksPoolError("spot.max_price must be a number, got %r" % (price,))
        if price != -1 and price <= 0:
            raise AksPoolError("spot.max_price must be -1 (pay up to the on-demand price) or greater than 0, got %r" % price)
        result.update(eviction_policy=policy, max_price=price)
    mig = pool.get("gpu_instance_profile")
    if mig not in (None, "") and mig not in MIG_PROFILES:
        raise AksPoolError("gpu_instance_profile must be one of %s, got %r" % (", ".join(MIG_PROFILES), mig))
    result["gpu_instance_profile"] = mig or None
    try:
        labels = normalise_labels(pool.get("labels"))
        taints = normalise_taints(pool.get("taints"))
    except NodeLabelError as exc:
        raise AksPoolError(str(exc))
    if result["spot"]:
        # AKS adds the spot taint to nodeTaints itself; declaring it keeps the comparison with the pool stable.
        if not any(t["key"] == SPOT_TAINT["key"] and t["effect"] == SPOT_TAINT["effect"] for t in taints):
            taints.append(dict(SPOT_TAINT))
    result["labels"] = labels
    result["taints"] = taints
    return result


def module_params(pool, existing=None):
    """Parameters for azure.azcollection.azure_rm_aksagentpool (without the authentication options).

    With autoscaling on and an existing pool, ``count`` is left out: the autoscaler owns it, and sending it back
    would fight the autoscaler and report a change on every run.
    """
    params = {
        "resource_group": pool["resource_group"],
        "cluster_name": pool["cluster_name"],
        "name": pool["name"],
        "mode": "User",
        "os_type": "Linux",
        "type_properties_type": "VirtualMachineScaleSets",
        "vm_size": pool["vm_size"],
        "count": None if (pool["autoscale"] and existing) else pool["count"],
        "enable_auto_scaling": pool["autoscale"],
        "min_count": pool["min_count"],
        "max_count": pool["max_count"],
        "os_disk_size_gb": pool["os_disk_size_gb"],
        "os_disk_type": pool["os_disk_type"],
        "os_sku": pool["os_sku"],
        "max_pods": pool["max_pods"],
        "orchestrator_version": pool["orchestrator_version"],
        "vnet_subnet_id": pool["vnet_subnet_id"],
        "availability_zones": [int(z) for z in pool["availability_zones"]] or None,
        "node_labels": dict(pool["labels"]),
        "node_taints": [taint_string(t) for t in pool["taints"]],
        "scale_set_priority": "Spot" if pool["spot"] else "Regular",
        "scale_set_eviction_policy": pool.get("eviction_policy"),
        "spot_max_price": pool.get("max_price"),
        "gpu_instance_profile": pool["gpu_instance_profile"],
        "tags": pool["tags"] or None,
    }
    return dict((key, value) for key, value in params.items() if value is not None)


def rest_body(pool, existing=None):
    """The agentPools PUT body (``properties`` in the REST spelling), GPU driver mode included."""
    props = {
        "mode": "User",
        "osType": "Linux",
        "type": "VirtualMachineScaleSets",
        "vmSize": pool["vm_size"],
        "count": None if (pool["autoscale"] and existing) else pool["count"],
        "enableAutoScaling": pool["autoscale"],
        "minCount": pool["min_count"],
        "maxCount": pool["max_count"],
        "osDiskSizeGB": pool["os_disk_size_gb"],
        "osDiskType": pool["os_disk_type"],
        "osSKU": pool["os_sku"],
        "maxPods": pool["max_pods"],
        "orchestratorVersion": pool["orchestrator_version"],
        "vnetSubnetID": pool["vnet_subnet_id"],
        "availabilityZones": [str(z) for z in pool["availability_zones"]] or None,
        "nodeLabels": dict(pool["labels"]),
        "nodeTaints": [taint_string(t) for t in pool["taints"]],
        "scaleSetPriority": "Spot" if pool["spot"] else "Regular",
        "scaleSetEvictionPolicy": pool.get("eviction_policy"),
        "spotMaxPrice": pool.get("max_price"),
        "gpuInstanceProfile": pool["gpu_instance_profile"],
        "gpuProfile": {"driver": DRIVER_MODE[pool["driver_owner"]]},
        "tags": pool["tags"] or None,
    }
    if pool["autoscale"] and existing:
        # The autoscaler owns the node count of an existing pool; keep what it chose.
        props["count"] = (existing.get("properties") or {}).get("count")
    return {"properties": dict((key, value) for key, value in props.items() if value is not None)}


def existing_driver(existing):
    """The GPU driver mode of an existing pool from its REST representation (``Install`` when not set)."""
    if not existing:
        return None
    profile = (existing.get("properties") or {}).get("gpuProfile") or {}
    return profile.get("driver") or "Install"


def _differs(wanted, actual, path=""):
    """Paths in ``wanted`` whose value differs from ``actual`` (mappings compared as subsets, taints as sets)."""
    if isinstance(wanted, dict):
        if not isinstance(actual, dict):
            return [path or "."]
        found = []
        for key, value in wanted.items():
            found.extend(_differs(value, actual.get(key), "%s.%s" % (path, key) if path else key))
        return found
    if path.endswith("nodeTaints") or path.endswith("availabilityZones"):
        return [] if sorted(wanted or []) == sorted(actual or []) else [path]
    if isinstance(wanted, float) or isinstance(actual, float):
        try:
            return [] if float(wanted) == float(actual) else [path]
        except (TypeError, ValueError):
            return [path]
    return [] if wanted == actual else [path]


def plan_pool(pool, driver_owner, existing=None, state="present"):
    """Everything the role needs to converge one AKS GPU pool.

    ``existing`` is the pool's REST representation (``None`` when it does not exist). The result holds the module
    parameters, the REST body, whether a create or update is needed and which fields differ, the driver modes, and
    the label selectors of the pool's nodes. A driver mode that differs from an existing pool's is an error: AKS
    cannot change it after creation.
    """
    if state not in ("present", "absent"):
        raise AksPoolError("state must be present or absent, got %r" % (state,))
    if existing is not None and not isinstance(existing, dict):
        raise AksPoolError("existing must be the pool's REST representation or null")
    norm = normalise_pool(pool, driver_owner)
    body = rest_body(norm, existing)
    wanted_driver = DRIVER_MODE[driver_owner]
    current_driver = existing_driver(existing)
    if state == "present" and existing and current_driver != wanted_driver:
        raise AksPoolError(
            "mlops_gpu_driver_owner=%s needs GPU driver mode %s, but pool %s was created with driver mode %s; AKS cannot "
            "change it after creation: recreate the pool (state=absent, then present) or set mlops_gpu_driver_owner=%s"
            % (driver_owner, wanted_driver, norm["name"], current_driver,
               "aks" if current_driver == "Install" else "operator"))
    if state == "absent":
        differences = []
        action = "delete" if existing else "none"
    elif not existing:
        differences = sorted(body["properties"])
        action = "create"
    else:
        actual = dict(existing.get("properties") or {})
        actual["gpuProfile"] = dict(actual.get("gpuProfile") or {}, driver=current_driver)
        differences = _differs(body, {"properties": actual})
        action = "update" if differences else "none"
    selectors = ["%s=%s" % (key, value) for key, value in sorted(norm["labels"].items())]
    expected = norm["count"] if not norm["autoscale"] else norm["min_count"]
    return {
        "pool": norm,
        "module_params": module_params(norm, existing),
        "rest_body": body,
        "action": action,
        "changed": action != "none",
        "differences": differences,
        "driver": wanted_driver,
        "existing_driver": current_driver,
        "use_rest": driver_owner == "operator",
        "label_selector": ",".join(selectors),
        "expected_nodes": expected,
        "taints": copy.deepcopy(norm["taints"]),
    }
