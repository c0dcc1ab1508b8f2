# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure GPU readiness verdicts.

Every function here works on plain dicts shaped like Kubernetes API objects
(Node, Pod, DaemonSet, ClusterPolicy) and never talks to a cluster, so each
failure mode can be unit-tested from fixtures.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.mlops.platform.plugins.module_utils.gpu_vocabulary import (
    BLOCKING_TAINT_EFFECTS,
    CONDITION_TAINT_PREFIX,
    DEFAULT_OPERATOR_NAMESPACE,
    GPU_RESOURCE,
    LABEL_COUNT,
    LABEL_CUDA_FULL,
    LABEL_CUDA_MAJOR,
    LABEL_CUDA_MINOR,
    LABEL_DRIVER_FULL,
    LABEL_DRIVER_MAJOR,
    LABEL_DRIVER_MINOR,
    LABEL_DRIVER_REV,
    LABEL_MEMORY,
    LABEL_MIG_CONFIG_STATE,
    LABEL_MIG_STRATEGY,
    LABEL_PRODUCT,
    LABEL_REPLICAS,
    LABEL_SHARING_STRATEGY,
    MIG_RESOURCE_PREFIX,
    NODE_CRITICAL_OPERANDS,
    format_mig_profile,
    format_taint,
    is_gpu_resource,
    is_spot_node,
    is_spot_taint,
    parse_mig_resource,
    toleration_tolerates,
)


class GpuReadinessError(ValueError):
    """Raised for invalid verdict inputs (bad resource name, bad selector)."""


# --------------------------------------------------------------------------- helpers


def _meta(obj):
    return (obj or {}).get("metadata") or {}


def _labels(obj):
    return _meta(obj).get("labels") or {}


def _int_quantity(value):
    """Convert an extended-resource quantity (always an integer count) to int."""
    if value is None:
        return None
    try:
        return int(str(value))
    except ValueError:
        # Extended resources are integers; tolerate a "k" suffix just in case.
        text = str(value)
        if text.endswith("k") and text[:-1].isdigit():
            return int(text[:-1]) * 1000
        return None


def validate_resource(resource):
    """Return the resource name if it is nvidia.com/gpu(.shared) or nvidia.com/mig-<profile>."""
    if is_gpu_resource(resource):
        return resource
    raise GpuReadinessError(
        "resource must be nvidia.com/gpu, nvidia.com/gpu.shared or nvidia.com/mig-<profile> "
        "(for example nvidia.com/mig-1g.10gb), got %r" % (resource,)
    )


def mig_profile(resource):
    """Return the MIG profile (profile spelling, e.g. 1g.10gb+me) of a nvidia.com/mig-<profile> resource, else None."""
    parsed = parse_mig_resource(resource)
    return format_mig_profile(parsed) if parsed else None


_SEL_SET_RE = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(selector):
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(selector):
    """Parse a Kubernetes label selector string into a list of (key, op, values).

    Supports ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``, ``k notin (a,b)``.
    """
    if not isinstance(selector, str):
        raise GpuReadinessError("label selector must be a string, got %r" % (selector,))
    requirements = []
    for part in _split_selector(selector):
        match = _SEL_SET_RE.match(part)
        if match:
            values = [v.strip() for v in match.group(3).split(",") if v.strip()]
            requirements.append((match.group(1), match.group(2), values))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            requirements.append((key.strip(), "!=", [value.strip()]))
        elif "==" in part:
            key, value = part.split("==", 1)
            requirements.append((key.strip(), "=", [value.strip()]))
        elif "=" in part:
            key, value = part.split("=", 1)
            requirements.append((key.strip(), "=", [value.strip()]))
        elif part.startswith("!"):
            requirements.append((part[1:].strip(), "!exists", []))
        elif re.match(r"^[A-Za-z0-9._/-]+$", part):
            requirements.append((part, "exists", []))
        else:
            raise GpuReadinessError("cannot parse label selector %r (at %r)" % (selector, part))
    return requirements


def selector_matches(selector, labels):
    """True if the label dict satisfies the selector string (empty selector matches all)."""
    labels = labels or {}
    for key, op, values in parse_label_selector(selector):
        present = key in labels
        if op == "=" and (not present or labels[key] != values[0]):
            return False
        if op == "!=" and present and labels[key] == values[0]:
            return False
        if op == "exists" and not present:
            return False
        if op == "!exists" and present:
            return False
        if op == "in" and (not present or labels[key] not in values):
            return False
        if op == "notin" and present and labels[key] in values:
            return False
    return True


def untolerated_taints(taints, tolerations, effects=BLOCKING_TAINT_EFFECTS):
    """Taints (with the given effects) that no toleration tolerates."""
    result = []
    for taint in taints or []:
        if taint.get("effect") not in effects:
            continue
        if not any(toleration_tolerates(t, taint) for t in tolerations or []):
            result.append(taint)
    return result


# --------------------------------------------------------------------------- node facts


def node_condition(node, cond_type):
    for cond in ((node or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == cond_type:
            return cond
    return None


def _driver_version(labels):
    if labels.get(LABEL_DRIVER_FULL):
        return labels[LABEL_DRIVER_FULL]
    parts = [labels.get(k) for k in (LABEL_DRIVER_MAJOR, LABEL_DRIVER_MINOR, LABEL_DRIVER_REV)]
    parts = [p for p in parts if p not in (None, "")]
    return ".".join(parts) if parts else None


def _cuda_version(labels):
    if labels.get(LABEL_CUDA_FULL):
        return labels[LABEL_CUDA_FULL]
    parts = [labels.get(k) for k in (LABEL_CUDA_MAJOR, LABEL_CUDA_MINOR)]
    parts = [p for p in parts if p not in (None, "")]
    return ".".join(parts) if parts else None


def node_facts(node, resource=GPU_RESOURCE):
    """Facts about one node without judging them."""
    meta = _meta(node)
    labels = meta.get("labels") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    capacity = status.get("capacity") or {}
    allocatable = status.get("allocatable") or {}
    ready_cond = node_condition(node, "Ready")
    taints = spec.get("taints") or []
    spot = is_spot_node(labels, taints)
    memory = labels.get(LABEL_MEMORY)
    replicas = _int_quantity(labels.get(LABEL_REPLICAS))
    gpu_count = _int_quantity(labels.get(LABEL_COUNT))
    mig_resources = dict(
        (k, _int_quantity(v)) for k, v in sorted(allocatable.items()) if k.startswith(MIG_RESOURCE_PREFIX)
    )
    return {
        "name": meta.get("name"),
        "ready": bool(ready_cond and ready_cond.get("status") == "True"),
        "ready_reason": (ready_cond or {}).get("reason"),
        "schedulable": not spec.get("unschedulable", False),
        "resource": resource,
        "capacity": _int_quantity(capacity.get(resource)),
        "allocatable": _int_quantity(allocatable.get(resource)),
        "mig_resources": mig_resources,
        "product": labels.get(LABEL_PRODUCT),
        "memory_mib": _int_quantity(memory) if memory is not None else None,
        "gpu_count": gpu_count,
        "driver": _driver_version(labels),
        "cuda": _cuda_version(labels),
        "mig_strategy": labels.get(LABEL_MIG_STRATEGY),
        "mig_config_state": labels.get(LABEL_MIG_CONFIG_STATE),
        "sharing_replicas": replicas,
        "sharing_strategy": labels.get(LABEL_SHARING_STRATEGY),
        "taints": [format_taint(t) for t in taints],
        "spot": bool(spot),
    }


# --------------------------------------------------------------------------- pods


def pod_problem(pod):
    """Return a short reason if a pod is not ready/complete, else None."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    if phase == "Succeeded":
        return None
    if phase == "Failed":
        return "failed (%s)" % (status.get("reason") or "phase Failed")
    for init in status.get("initContainerStatuses") or []:
        state = init.get("state") or {}
        if "terminated" in state and (state["terminated"] or {}).get("exitCode", 0) == 0:
            continue
        if init.get("ready"):
            continue
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or {}
        reason = waiting.get("reason") or terminated.get("reason") or ("running" if "running" in state else "waiting")
        return "stuck in Init (init container %s: %s)" % (init.get("name"), reason)
    for cstat in status.get("containerStatuses") or []:
        if cstat.get("ready"):
            continue
        state = cstat.get("state") or {}
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or {}
        if waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated:
            reason = "terminated %s, exit code %s" % (terminated.get("reason") or "", terminated.get("exitCode"))
        else:
            reason = "container not ready"
        restarts = cstat.get("restartCount") or 0
        extra = ", %d restarts" % restarts if restarts else ""
        return "not ready (container %s: %s%s)" % (cstat.get("name"), reason, extra)
    if phase != "Running":
        return "not ready (phase %s)" % (phase or "Unknown")
    cond = None
    for item in status.get("conditions") or []:
        if item.get("type") == "Ready":
            cond = item
    if cond is not None and cond.get("status") != "True":
        return "not ready (%s)" % (cond.get("reason") or "Ready condition false")
    return None


def _owner_daemonset(pod):
    for ref in _meta(pod).get("ownerReferences") or []:
        if ref.get("kind") == "DaemonSet":
            return ref.get("name")
    return None


def pod_operand_name(pod):
    """Operand name of a GPU operator pod: owning DaemonSet, else the 'app' label."""
    return _owner_daemonset(pod) or _labels(pod).get("app") or _meta(pod).get("name")


# --------------------------------------------------------------------------- operator


def evaluate_operator(clusterpolicies, daemonsets, namespace=DEFAULT_OPERATOR_NAMESPACE):
    """Cluster-level GPU operator verdict: ClusterPolicy state and DaemonSet roll-out."""
    problems = []
    policies = list(clusterpolicies or [])
    state = None
    policy_name = None
    active = [p for p in policies if ((p.get("status") or {}).get("state")) != "ignored"]
    if clusterpolicies is None:
        problems.append("ClusterPolicy resource type (nvidia.com/v1) is not installed: GPU operator CRDs missing")
    elif not policies:
        problems.append("no ClusterPolicy found: the GPU operator has nothing to reconcile")
    elif not active:
        names = ", ".join(sorted(_meta(p).get("name") or "?" for p in policies))
        problems.append("every ClusterPolicy is in state ignored (%s): only one ClusterPolicy may be active" % names)
        state = "ignored"
        policy_name = _meta(policies[0]).get("name")
    else:
        policy = sorted(active, key=lambda p: _meta(p).get("creationTimestamp") or "")[0]
        policy_name = _meta(policy).get("name")
        state = (policy.get("status") or {}).get("state")
        if state != "ready":
            problems.append("ClusterPolicy %s state is %s (expected ready)" % (policy_name, state or "unset"))
        ignored = [p for p in policies if ((p.get("status") or {}).get("state")) == "ignored"]
        for extra in ignored:
            problems.append(
                "ClusterPolicy %s is ignored because another ClusterPolicy is active; delete it" % _meta(extra).get("name")
            )
    ds_report = []
    for ds in sorted(daemonsets or [], key=lambda d: _meta(d).get("name") or ""):
        name = _meta(ds).get("name")
        status = ds.get("status") or {}
        desired = status.get("desiredNumberScheduled", 0) or 0
        ready = status.get("numberReady", 0) or 0
        available = status.get("numberAvailable", 0) or 0
        updated = status.get("updatedNumberScheduled", desired)
        if updated is None:
            updated = desired
        entry = {"name": name, "desired": desired, "ready": ready, "available": available, "updated": updated}
        ds_report.append(entry)
        if ready < desired:
            problems.append("DaemonSet %s/%s has %d of %d pods ready" % (namespace, name, ready, desired))
        elif updated < desired:
            problems.append("DaemonSet %s/%s roll-out in progress: %d of %d pods updated" % (namespace, name, updated, desired))
    if clusterpolicies is not None and policies and state == "ready" and not daemonsets:
        problems.append("ClusterPolicy is ready but no operand DaemonSets exist in namespace %s" % namespace)
    return {
        "clusterpolicy": policy_name,
        "state": state,
        "namespace": namespace,
        "daemonsets": ds_report,
        "problems": problems,
        "ready": not problems,
    }


# --------------------------------------------------------------------------- nodes


def _expected_operands(node, daemonsets):
    """DaemonSets whose nodeSelector selects this node (pods expected there)."""
    labels = _labels(node)
    expected = []
    for ds in daemonsets or []:
        pod_spec = (((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
        selector = pod_spec.get("nodeSelector") or {}
        if all(labels.get(k) == v for k, v in selector.items()):
            expected.append(ds)
    return expected


def evaluate_node(node, resource=GPU_RESOURCE, gpus_per_node=None, operator_pods=None, daemonsets=None,
                  check_operator=True):
    """Facts plus problems and hints for one node.

    ``operator_pods`` are the GPU operator pods scheduled on this node; ``daemonsets`` all operand
    DaemonSets (used to spot operands that are missing from the node, e.g. for lack of a toleration).
    """
    facts = node_facts(node, resource)
    labels = _labels(node)
    problems = []
    hints = []
    name = facts["name"]

    if not facts["ready"]:
        reason = facts["ready_reason"]
        problems.append("node NotReady" + (" (%s)" % reason if reason else ""))
    if not facts["schedulable"]:
        problems.append("node is cordoned (spec.unschedulable=true); uncordon it to schedule GPU pods")

    capacity = facts["capacity"]
    allocatable = facts["allocatable"]
    requested_mig = mig_profile(resource)
    strategy = facts["mig_strategy"]
    product = facts["product"] or ""

    if requested_mig and strategy == "single":
        problems.append(
            "MIG strategy is single but resource %s was requested; with the single strategy MIG devices are "
            "advertised as nvidia.com/gpu (use resource nvidia.com/gpu or the mixed strategy)" % resource
        )
    elif not requested_mig and resource == GPU_RESOURCE and strategy == "mixed" and not capacity:
        profiles = ", ".join(sorted(facts["mig_resources"])) or "none"
        problems.append(
            "MIG strategy is mixed so GPUs are advertised per profile (%s); request a nvidia.com/mig-<profile> "
            "resource instead of %s" % (profiles, resource)
        )

    if not (requested_mig and strategy == "single") and not (strategy == "mixed" and not requested_mig and not capacity):
        if capacity is None and allocatable is None:
            problems.append("no %s capacity: the device plugin has not advertised any GPU on this node" % resource)
        elif not allocatable:
            problems.append("allocatable %s=%s but capacity=%s" % (resource, allocatable or 0, capacity or 0))
        elif capacity is not None and allocatable < capacity:
            problems.append(
                "allocatable %s=%d is lower than capacity=%d: %d device(s) unhealthy or reserved"
                % (resource, allocatable, capacity, capacity - allocatable)
            )

    if product.endswith("-MIG-INVALID") or product.upper().endswith("MIG-INVALID"):
        problems.append(
            "product label is %s: GPUs on this node have inconsistent MIG configurations for the %s strategy"
            % (product, strategy or "configured")
        )
    if facts["mig_config_state"] == "failed":
        problems.append("MIG manager reports nvidia.com/mig.config.state=failed")

    replicas = facts["sharing_replicas"] or 1
    if gpus_per_node is not None and allocatable is not None and not requested_mig:
        expected = gpus_per_node * replicas
        if allocatable != expected:
            if replicas > 1:
                problems.append(
                    "allocatable %s=%d but expected %d (gpus_per_node=%d x %d time-slicing replicas)"
                    % (resource, allocatable, expected, gpus_per_node, replicas)
                )
            else:
                problems.append(
                    "allocatable %s=%d but gpus_per_node=%d expected" % (resource, allocatable, gpus_per_node)
                )
    if replicas > 1 and allocatable:
        physical = facts["gpu_count"] or capacity
        hints.append(
            "time-slicing: %s replicas per GPU (%s=%d from %s physical GPU(s)); this is expected, not a fault"
            % (replicas, resource, allocatable, physical if physical is not None else "?")
        )

    if LABEL_PRODUCT not in labels:
        # GFD is one of the GPU operator's operands. Without the operator (e.g. a pool whose driver and
        # device plugin come from the cloud provider) GPU pods run fine; only the product facts are unknown.
        if check_operator:
            problems.append(
                "missing GPU Feature Discovery labels (%s); gpu-feature-discovery may not run on this node" % LABEL_PRODUCT
            )
        else:
            hints.append(
                "no GPU Feature Discovery labels (%s): product, memory and driver are unknown; the GPU operator's "
                "gpu-feature-discovery provides them" % LABEL_PRODUCT
            )

    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") not in BLOCKING_TAINT_EFFECTS:
            continue
        if is_spot_taint(taint):
            hints.append(
                "spot node: taint %s; pods need a matching toleration and may be evicted at any time" % format_taint(taint)
            )
        elif (taint.get("key") or "").startswith(CONDITION_TAINT_PREFIX):
            continue
        else:
            hints.append("taint %s: GPU pods need a matching toleration" % format_taint(taint))
    if facts["spot"] and not any(h.startswith("spot node") for h in hints):
        hints.append("spot node: capacity may be evicted at any time")

    if check_operator:
        pods = list(operator_pods or [])
        seen = set()
        for pod in sorted(pods, key=lambda p: _meta(p).get("name") or ""):
            operand = pod_operand_name(pod)
            seen.add(operand)
            reason = pod_problem(pod)
            if reason:
                problems.append("%s pod on this node %s" % (operand, reason))
        for ds in sorted(_expected_operands(node, daemonsets), key=lambda d: _meta(d).get("name") or ""):
            ds_name = _meta(ds).get("name")
            if ds_name in seen or ds_name not in NODE_CRITICAL_OPERANDS:
                continue
            pod_spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
            # Condition taints (node.kubernetes.io/*) come and go with the node's state and are reported
            # as such; only taints someone put on purpose hint at a missing toleration.
            taints = [t for t in (node.get("spec") or {}).get("taints") or []
                      if not (t.get("key") or "").startswith(CONDITION_TAINT_PREFIX)]
            blocking = untolerated_taints(taints, pod_spec.get("tolerations"))
            if blocking:
                problems.append(
                    "no %s pod on this node: DaemonSet is missing a toleration for taint %s"
                    % (ds_name, ", ".join(format_taint(t) for t in blocking))
                )
            else:
                problems.append("no %s pod on this node" % ds_name)

    facts["problems"] = problems
    facts["hints"] = hints
    facts["ok"] = not problems
    facts.pop("ready_reason", None)
    facts["name"] = name
    return facts


def evaluate(nodes, clusterpolicies=None, daemonsets=None, pods=None, resource=GPU_RESOURCE, min_nodes=1,
             gpus_per_node=None, check_operator=True, operator_namespace=DEFAULT_OPERATOR_NAMESPACE,
             require_all_nodes=False):
    """Cluster verdict.

    ``nodes`` are the selected GPU nodes; ``clusterpolicies`` is None when the ClusterPolicy type is
    not served by the API (CRD missing); ``daemonsets`` and ``pods`` come from the operator namespace.
    """
    validate_resource(resource)
    pods_by_node = {}
    for pod in pods or []:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name:
            pods_by_node.setdefault(node_name, []).append(pod)
    reports = []
    for node in sorted(nodes or [], key=lambda n: _meta(n).get("name") or ""):
        reports.append(
            evaluate_node(
                node,
                resource=resource,
                gpus_per_node=gpus_per_node,
                operator_pods=pods_by_node.get(_meta(node).get("name"), []),
                daemonsets=daemonsets,
                check_operator=check_operator,
            )
        )
    ready_nodes = sum(1 for r in reports if r["ok"])
    problems = []
    if check_operator:
        operator = evaluate_operator(clusterpolicies, daemonsets, operator_namespace)
        problems.extend("operator: %s" % p for p in operator["problems"])
    else:
        operator = {"clusterpolicy": None, "state": None, "namespace": operator_namespace, "daemonsets": [],
                    "problems": [], "ready": True, "checked": False}
    operator.setdefault("checked", check_operator)
    for report in reports:
        problems.extend("%s: %s" % (report["name"], p) for p in report["problems"])
    if ready_nodes < min_nodes:
        problems.append(
            "only %d of %d selected GPU node(s) ready, min_nodes=%d" % (ready_nodes, len(reports), min_nodes)
        )
    ready = ready_nodes >= min_nodes and operator["ready"]
    if require_all_nodes and ready_nodes < len(reports):
        ready = False
    return {
        "ready": ready,
        "ready_nodes": ready_nodes,
        "total_nodes": len(reports),
        "nodes": reports,
        "operator": operator,
        "problems": problems,
    }


def summarize(verdict, max_nodes=20):
    """One human-readable message summarising the problems per node."""
    parts = []
    if verdict["operator"]["problems"]:
        parts.append("operator: " + "; ".join(verdict["operator"]["problems"]))
    bad = [n for n in verdict["nodes"] if n["problems"]]
    for node in bad[:max_nodes]:
        parts.append("%s: %s" % (node["name"], "; ".join(node["problems"])))
    if len(bad) > max_nodes:
        parts.append("... and %d more node(s) with problems" % (len(bad) - max_nodes))
    head = "GPU cluster not ready: %d of %d selected node(s) ready" % (verdict["ready_nodes"], verdict["total_nodes"])
    if not verdict["nodes"]:
        head = "GPU cluster not ready: no node matched the label selectors"
    return head + (" | " + " | ".join(parts) if parts else "")


def state_signature(verdict):
    """A compact signature that changes when the verdict changes (used to log progress)."""
    return (
        verdict["ready"],
        verdict["ready_nodes"],
        verdict["total_nodes"],
        tuple(verdict["problems"]),
    )
