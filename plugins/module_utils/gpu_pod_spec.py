# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPU-aware Kubernetes pod spec rendering: the GPU building blocks and ``render_gpu_pod_spec``.

Pure functions shared by the ``mlops.platform`` filter plugins, the JupyterHub and KServe renderers and the
smoke test. Nothing here talks to a cluster or imports Ansible error classes: every problem is reported as
:class:`GpuSpecError` (from k8s_values), whose message starts with the name of the offending argument. The GPU
facts (resource names, MIG grammar, taints, labels, toleration matching) come from gpu_vocabulary.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible_collections.mlops.platform.plugins.module_utils.gpu_vocabulary import (
    DEFAULT_NODE_SELECTOR,
    GPU_RESOURCE,
    GPU_TOLERATION,
    LABEL_PRODUCT,
    SPOT_TOLERATION,
    TOLERATION_EFFECTS,
    TOLERATION_KEYS,
    TOLERATION_OPERATORS,
    claims_nvidia_gpu,
    mig_resource_name,
    parse_mig_profile,
    toleration_covers,
)
from ansible_collections.mlops.platform.plugins.module_utils.k8s_values import (
    GpuSpecError,
    check_dns1123_subdomain,
    describe,
    int_arg,
    is_digits,
    is_label_value,
    memory_quantity,
    parse_quantity,
    plain,
    require_bool,
    require_list,
    require_mapping,
    require_string,
    string_map,
)

SHM_VOLUME_NAME = "dshm"
SHM_MOUNT_PATH = "/dev/shm"


# --------------------------------------------------------------------------------------------------
# GPU building blocks


def validate_mig_profile(mig_profile):
    """Return ``mig_profile`` if it is a MIG GPU-instance profile name, else raise."""
    if not isinstance(mig_profile, str):
        raise GpuSpecError("mig_profile: expected a MIG profile name such as '1g.10gb', got %s" % describe(mig_profile))
    if parse_mig_profile(mig_profile) is None:
        hint = " (drop the 'mig-' prefix)" if mig_profile.startswith(("mig-", "nvidia.com/")) else ""
        raise GpuSpecError(
            "mig_profile: %r is not a MIG profile name%s; expected <slices>g.<memory>gb with an optional "
            "+me, +me.all, -me or +gfx suffix, e.g. '1g.5gb', '3g.40gb', '1g.10gb+me'" % (mig_profile, hint))
    return mig_profile


def gpu_resource_name(mig_profile=None):
    """The extended resource to request: ``nvidia.com/gpu`` or ``nvidia.com/mig-<profile>``."""
    if mig_profile is None:
        return GPU_RESOURCE
    return mig_resource_name(validate_mig_profile(mig_profile))


def gpu_tolerations(spot=False):
    """Tolerations a GPU pod needs: the GPU taint, plus the AKS spot taint when ``spot``."""
    require_bool(spot, "spot")
    result = [dict(GPU_TOLERATION)]
    if spot:
        result.append(dict(SPOT_TOLERATION))
    return result


def validate_products(products, name="gpu_products"):
    require_list(products, name)
    seen = []
    for index, product in enumerate(products):
        item = "%s[%d]" % (name, index)
        require_string(product, item)
        if not is_label_value(product):
            raise GpuSpecError("%s: %r is not a valid label value (GPU feature discovery writes e.g. 'NVIDIA-A100-SXM4-80GB')" % (item, product))
        if product not in seen:
            seen.append(product)
    return seen


def product_expression(products):
    """The node selector requirement ``nvidia.com/gpu.product In products``."""
    return {"key": LABEL_PRODUCT, "operator": "In", "values": list(products)}


def gpu_node_affinity(products):
    """An ``affinity`` object requiring ``nvidia.com/gpu.product`` to be one of ``products``."""
    products = validate_products(products, "products")
    if not products:
        raise GpuSpecError("products: expected a non-empty list of nvidia.com/gpu.product label values")
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [product_expression(products)]}]}}}


def _validate_toleration(tol, name):
    require_mapping(tol, name)
    unknown = sorted(set(tol) - set(TOLERATION_KEYS))
    if unknown:
        raise GpuSpecError("%s: unknown keys %s; a toleration has %s" % (name, ", ".join(map(str, unknown)), ", ".join(TOLERATION_KEYS)))
    key = tol.get("key", "")
    require_string(key, "%s.key" % name, allow_empty=True)
    operator = tol.get("operator", "Equal")
    if operator not in TOLERATION_OPERATORS:
        raise GpuSpecError("%s.operator: expected one of Equal, Exists, got %r" % (name, operator))
    value = tol.get("value", "")
    require_string(value, "%s.value" % name, allow_empty=True)
    if operator == "Exists" and value:
        raise GpuSpecError("%s.value: must be empty when operator is Exists" % name)
    if not key and operator != "Exists":
        raise GpuSpecError("%s.key: an empty key requires operator Exists" % name)
    effect = tol.get("effect", "")
    if effect not in TOLERATION_EFFECTS:
        raise GpuSpecError("%s.effect: expected one of NoSchedule, PreferNoSchedule, NoExecute, got %r" % (name, effect))
    if "tolerationSeconds" in tol:
        seconds = tol["tolerationSeconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise GpuSpecError("%s.tolerationSeconds: expected an integer, got %s" % (name, describe(seconds)))
        if effect != "NoExecute":
            raise GpuSpecError("%s.tolerationSeconds: only valid with effect NoExecute" % name)
    return tol


def merge_tolerations(existing, wanted):
    """Append each toleration of ``wanted`` that no toleration in ``existing`` already covers."""
    result = list(existing)
    for tol in wanted:
        if not any(isinstance(have, Mapping) and toleration_covers(have, tol) for have in result):
            result.append(dict(tol))
    return result


# --------------------------------------------------------------------------------------------------
# the pod spec renderer


def _find_container(spec, container):
    containers = spec.get("containers")
    if containers is None:
        containers = []
    require_list(containers, "spec.containers")
    names = []
    for index, item in enumerate(containers):
        require_mapping(item, "spec.containers[%d]" % index)
        names.append(item.get("name"))
    if container is None:
        if not containers:
            raise GpuSpecError("spec: has no containers to receive the GPU limit; add one under 'containers' (the 'container' argument names which)")
        return containers[0]
    if container not in names:
        known = ", ".join(repr(n) for n in names) if names else "none"
        raise GpuSpecError("container: no container named %r in spec.containers (known: %s)" % (container, known))
    return containers[names.index(container)]


def _gpu_count(value):
    """Normalise an existing GPU limit (int or digit string) to an int, or ``None`` if unparseable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if is_digits(value):
        return int(value)
    return None


def _apply_gpu_resource(target, resource, gpus):
    cname = target.get("name", "<unnamed>")
    resources = target.setdefault("resources", {})
    require_mapping(resources, "spec.containers[%s].resources" % cname)
    limits = resources.setdefault("limits", {})
    require_mapping(limits, "spec.containers[%s].resources.limits" % cname)
    requests = resources.get("requests")
    sections = [("limits", limits)]
    if requests is not None:
        require_mapping(requests, "spec.containers[%s].resources.requests" % cname)
        sections.append(("requests", requests))
    for section, values in sections:
        for key, current in values.items():
            if not claims_nvidia_gpu(key):
                continue
            if key != resource:
                raise GpuSpecError(
                    "gpus/mig_profile: container %r already %s %s=%r; refusing to replace it with %s" % (cname, section, key, current, resource))
            if _gpu_count(current) != gpus:
                raise GpuSpecError("gpus: container %r already has %s %s=%r, which conflicts with gpus=%d" % (cname, section, key, current, gpus))
    if resource not in limits:
        limits[resource] = gpus
    if requests is not None and resource not in requests:
        requests[resource] = gpus


def _apply_node_selector(spec, wanted):
    if not wanted:
        return
    current = spec.get("nodeSelector")
    if current is None:
        current = spec["nodeSelector"] = {}
    require_mapping(current, "spec.nodeSelector")
    for key, value in wanted.items():
        if key in current and current[key] != value:
            raise GpuSpecError("node_selector: spec.nodeSelector already pins %s=%r, which conflicts with %r" % (key, current[key], value))
        current[key] = value


def _apply_tolerations(spec, wanted):
    current = spec.get("tolerations")
    if current is None:
        current = []
    require_list(current, "spec.tolerations")
    for index, tol in enumerate(current):
        require_mapping(tol, "spec.tolerations[%d]" % index)
    spec["tolerations"] = merge_tolerations(current, wanted)


def _same_values(expr, products):
    values = expr.get("values")
    return isinstance(values, (list, tuple)) and all(isinstance(v, str) for v in values) and set(values) == set(products)


def _apply_products(spec, products):
    affinity = spec.setdefault("affinity", {})
    require_mapping(affinity, "spec.affinity")
    node_affinity = affinity.setdefault("nodeAffinity", {})
    require_mapping(node_affinity, "spec.affinity.nodeAffinity")
    required = node_affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    require_mapping(required, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution")
    terms = required.setdefault("nodeSelectorTerms", [])
    require_list(terms, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms")
    if not terms:
        terms.append({"matchExpressions": [product_expression(products)]})
        return
    # Terms are ORed and the expressions inside one term ANDed: to AND the product constraint with
    # whatever the user required, it goes into every term.
    for index, term in enumerate(terms):
        require_mapping(term, "spec.affinity...nodeSelectorTerms[%d]" % index)
        expressions = term.setdefault("matchExpressions", [])
        require_list(expressions, "spec.affinity...nodeSelectorTerms[%d].matchExpressions" % index)
        if any(isinstance(e, Mapping) and e.get("key") == LABEL_PRODUCT and e.get("operator") == "In" and _same_values(e, products)
               for e in expressions):
            continue
        expressions.append(product_expression(products))


def _apply_shm(spec, target, size, size_bytes):
    cname = target.get("name", "<unnamed>")
    mounts = target.get("volumeMounts")
    if mounts is None:
        mounts = []
    require_list(mounts, "spec.containers[%s].volumeMounts" % cname)
    volumes = spec.get("volumes")
    if volumes is None:
        volumes = []
    require_list(volumes, "spec.volumes")
    mount = None
    for item in mounts:
        if isinstance(item, Mapping) and str(item.get("mountPath") or "").rstrip("/") == SHM_MOUNT_PATH:
            mount = item
    volume_name = mount.get("name") if mount is not None else SHM_VOLUME_NAME
    volume = None
    for item in volumes:
        if isinstance(item, Mapping) and item.get("name") == volume_name:
            volume = item
    if volume is not None:
        empty_dir = volume.get("emptyDir")
        ok = isinstance(empty_dir, Mapping) and empty_dir.get("medium") == "Memory"
        if ok:
            try:
                ok = parse_quantity(empty_dir.get("sizeLimit"), "sizeLimit") == size_bytes
            except GpuSpecError:
                ok = False
        if not ok:
            if mount is not None:
                raise GpuSpecError("shm_size: container %r already mounts volume %r at %s, and it is not a memory emptyDir of size %s" % (
                    cname, volume_name, SHM_MOUNT_PATH, size))
            raise GpuSpecError("shm_size: spec.volumes already has a volume named %r that is not a memory emptyDir of size %s" % (volume_name, size))
    elif mount is not None:
        raise GpuSpecError("shm_size: container %r already mounts volume %r at %s, but spec.volumes has no such volume" % (cname, volume_name, SHM_MOUNT_PATH))
    else:
        volumes.append({"name": SHM_VOLUME_NAME, "emptyDir": {"medium": "Memory", "sizeLimit": size}})
        spec["volumes"] = volumes
    if mount is None:
        mounts.append({"name": SHM_VOLUME_NAME, "mountPath": SHM_MOUNT_PATH})
        target["volumeMounts"] = mounts


def render_gpu_pod_spec(spec, gpus=1, container=None, mig_profile=None, node_selector=None, tolerations=None,
                        spot=False, gpu_products=None, shm_size=None, priority_class=None):
    """Return a copy of PodSpec ``spec`` made to run on GPU nodes. See docs/filters.md for the contract.

    The input is never modified. Applying the function to its own output changes nothing.
    """
    # Validate every argument before touching anything.
    require_mapping(spec, "spec")
    if "apiVersion" in spec or "kind" in spec:
        raise GpuSpecError("spec: expected a PodSpec, got a manifest (kind %r); pass its pod spec, e.g. manifest.spec" % spec.get("kind"))
    gpus = int_arg(gpus, "gpus")
    if container is not None:
        require_string(container, "container")
    resource = gpu_resource_name(mig_profile)
    if node_selector is None:
        selector = dict(DEFAULT_NODE_SELECTOR)
    else:
        selector = dict(string_map(node_selector, "node_selector"))
    wanted_tolerations = gpu_tolerations(spot)
    if tolerations is not None:
        require_list(tolerations, "tolerations")
        wanted_tolerations.extend(dict(_validate_toleration(t, "tolerations[%d]" % i)) for i, t in enumerate(tolerations))
    products = validate_products(gpu_products) if gpu_products is not None else []
    if shm_size is not None:
        shm_size, shm_bytes = memory_quantity(shm_size, "shm_size")
    if priority_class is not None:
        check_dns1123_subdomain(priority_class, "priority_class")

    result = plain(spec)
    if gpus == 0:
        if container is not None and result.get("containers"):
            _find_container(result, container)
        return result

    target = _find_container(result, container)
    _apply_gpu_resource(target, resource, gpus)
    _apply_tolerations(result, wanted_tolerations)
    _apply_node_selector(result, selector)
    if products:
        _apply_products(result, products)
    if shm_size is not None:
        _apply_shm(result, target, shm_size, shm_bytes)
    if priority_class is not None:
        current = result.get("priorityClassName")
        if current is not None and current != priority_class:
            raise GpuSpecError("priority_class: spec already sets priorityClassName %r, which conflicts with %r" % (current, priority_class))
        result["priorityClassName"] = priority_class
    return result
