# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPU-aware Kubernetes pod spec rendering.

Pure functions shared by the ``mlops.platform`` filter plugins and modules. Nothing here talks to a
cluster or imports Ansible error classes: every problem is reported as :class:`GpuSpecError`, a
``ValueError`` whose message starts with the name of the offending argument.

Facts this module relies on:

* The NVIDIA device plugin advertises whole GPUs as ``nvidia.com/gpu`` and, under the ``mixed`` MIG
  strategy, MIG devices as ``nvidia.com/mig-<profile>`` (for example ``nvidia.com/mig-1g.10gb``).
  Kubernetes resource names cannot contain ``+``, so a media-extension profile such as ``1g.10gb+me``
  is advertised as ``nvidia.com/mig-1g.10gb.me``.
* MIG profile names follow ``<slices>g.<memory>gb`` with an optional suffix: ``+me`` (media
  extensions), ``+me.all``, ``-me`` and ``+gfx`` (Blackwell), e.g. ``1g.5gb``, ``3g.40gb``,
  ``1g.12gb+me``, ``7g.141gb``, ``1g.24gb+gfx``.
* GPU feature discovery labels nodes with ``nvidia.com/gpu.product`` (e.g. ``NVIDIA-A100-SXM4-80GB``).
* AKS spot node pools carry the taint ``kubernetes.azure.com/scalesetpriority=spot:NoSchedule``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from decimal import Decimal, InvalidOperation

from collections.abc import Mapping

GPU_RESOURCE = "nvidia.com/gpu"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_TAINT = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
SPOT_TAINT = {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot", "effect": "NoSchedule"}
DEFAULT_NODE_SELECTOR = {"node-type": "ai"}
SHM_VOLUME_NAME = "dshm"
SHM_MOUNT_PATH = "/dev/shm"

KSERVE_API_VERSION = "serving.kserve.io/v1beta1"
KSERVE_DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
KSERVE_MODEL_CONTAINER = "kserve-container"
# "Knative" and "Standard" are the names newer KServe releases use for Serverless and RawDeployment.
KSERVE_SCALE_TO_ZERO_MODES = ("Serverless", "Knative")
KSERVE_DEPLOYMENT_MODES = ("Serverless", "RawDeployment", "Knative", "Standard", "ModelMesh")
KSERVE_SCALE_METRICS = ("concurrency", "rps", "cpu", "memory")
KSERVE_PROTOCOL_VERSIONS = ("v1", "v2", "grpc-v1", "grpc-v2")

TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")
TOLERATION_OPERATORS = ("Equal", "Exists")
TOLERATION_EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")

_MIG_PROFILE_RE = re.compile(r"^[1-9][0-9]*g\.[1-9][0-9]*gb(?:\+me\.all|\+me|-me|\+gfx)?$")
_QUANTITY_RE = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
_DNS1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_URI_RE = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")
_DIGITS_RE = re.compile(r"^[0-9]+$")

_BINARY_SUFFIXES = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}
_DECIMAL_SUFFIXES = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1, "k": 10 ** 3,
                     "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18}
# KubeSpawner's byte specification: K/M/G/T are powers of 1024 (the same as Ki/Mi/Gi/Ti).
_KUBESPAWNER_SUFFIXES = (("T", 2 ** 40), ("G", 2 ** 30), ("M", 2 ** 20), ("K", 2 ** 10))


class GpuSpecError(ValueError):
    """Raised for invalid arguments or conflicting input. The message names the argument."""


# --------------------------------------------------------------------------------------------------
# small helpers


def _type_name(value):
    """A YAML-flavoured name for the type of ``value`` used in error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _describe(value):
    return "%s %r" % (_type_name(value), value) if not isinstance(value, (Mapping, list, tuple)) else _type_name(value)


def _plain(value):
    """Deep copy ``value`` into plain ``dict``/``list``/``str`` objects (tagged subclasses become plain)."""
    if isinstance(value, Mapping):
        return dict((_plain(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str) and type(value) is not str:  # pylint: disable=unidiomatic-typecheck
        return str(value)
    return value


def _require_mapping(value, name):
    if not isinstance(value, Mapping):
        raise GpuSpecError("%s: expected a mapping, got %s" % (name, _describe(value)))
    return value


def _require_list(value, name):
    if not isinstance(value, (list, tuple)):
        raise GpuSpecError("%s: expected a list, got %s" % (name, _describe(value)))
    return value


def _require_string(value, name, allow_empty=False):
    if not isinstance(value, str):
        raise GpuSpecError("%s: expected a string, got %s" % (name, _describe(value)))
    if not allow_empty and not value:
        raise GpuSpecError("%s: expected a non-empty string" % name)
    return value


def _require_bool(value, name):
    if not isinstance(value, bool):
        raise GpuSpecError("%s: expected a boolean (true/false), got %s" % (name, _describe(value)))
    return value


def _int_arg(value, name, minimum=0):
    """Accept an int (not a bool) or a string of decimal digits; return an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise GpuSpecError("%s: expected a non-negative integer, got %s" % (name, _describe(value)))
    if isinstance(value, str):
        if not _DIGITS_RE.match(value):
            raise GpuSpecError("%s: expected a non-negative integer, got string %r" % (name, value))
        value = int(value)
    if value < minimum:
        raise GpuSpecError("%s: expected an integer >= %d, got %d" % (name, minimum, value))
    return value


def _check_dns1123_label(value, name):
    _require_string(value, name)
    if len(value) > 63 or not _DNS1123_LABEL_RE.match(value):
        raise GpuSpecError("%s: %r is not a valid DNS-1123 label (lower-case alphanumerics and '-', at most 63 characters)" % (name, value))
    return value


def _check_dns1123_subdomain(value, name):
    _require_string(value, name)
    if len(value) > 253 or not all(_DNS1123_LABEL_RE.match(part) for part in value.split(".")):
        raise GpuSpecError("%s: %r is not a valid DNS-1123 subdomain (lower-case alphanumerics, '-' and '.')" % (name, value))
    return value


def _check_label_key(value, name):
    _require_string(value, name)
    prefix, _sep, label = value.rpartition("/")
    if (prefix and len(prefix) > 253) or (prefix and not all(_DNS1123_LABEL_RE.match(p) for p in prefix.split("."))):
        raise GpuSpecError("%s: %r has an invalid prefix (expected a DNS subdomain before '/')" % (name, value))
    if len(label) > 63 or not _LABEL_NAME_RE.match(label):
        raise GpuSpecError("%s: %r is not a valid label or annotation key" % (name, value))
    return value


def _string_map(value, name, check_values=True):
    """Validate a mapping of label keys to string values (node selectors, labels)."""
    _require_mapping(value, name)
    for key, val in value.items():
        _check_label_key(key, "%s key" % name)
        if not isinstance(val, str):
            raise GpuSpecError("%s[%r]: expected a string value, got %s (quote it in YAML)" % (name, key, _describe(val)))
        if check_values and (len(val) > 63 or not _LABEL_VALUE_RE.match(val)):
            raise GpuSpecError("%s[%r]: %r is not a valid label value" % (name, key, val))
    return value


def parse_quantity(value, name):
    """Parse a Kubernetes quantity (``8Gi``, ``500m``, ``1e3``, ``2``) into a ``Decimal``.

    Integers are taken as plain numbers. Raises :class:`GpuSpecError` naming ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise GpuSpecError("%s: expected a Kubernetes quantity such as '8Gi' or '500m', got %s" % (name, _describe(value)))
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    match = _QUANTITY_RE.match(value)
    if not match:
        raise GpuSpecError("%s: %r is not a Kubernetes quantity (expected e.g. '8Gi', '512Mi', '1.5', '500m')" % (name, value))
    number, suffix = match.group(1), match.group(2) or ""
    try:
        base = Decimal(number)
    except InvalidOperation:  # pragma: no cover - the regex only lets decimals through
        raise GpuSpecError("%s: %r is not a Kubernetes quantity" % (name, value))
    if suffix in _BINARY_SUFFIXES:
        return base * _BINARY_SUFFIXES[suffix]
    if suffix in _DECIMAL_SUFFIXES:
        return base * Decimal(_DECIMAL_SUFFIXES[suffix])
    return base * (Decimal(10) ** int(suffix[1:]))


def _memory_quantity(value, name):
    """Validate a positive memory quantity; return ``(string form, bytes as Decimal)``."""
    if isinstance(value, str) and value[-1:] in ("m", "u", "n"):
        raise GpuSpecError("%s: %r uses a sub-unit suffix; memory needs bytes (e.g. '8Gi', '512Mi')" % (name, value))
    amount = parse_quantity(value, name)
    if isinstance(value, float):
        raise GpuSpecError("%s: expected a quantity string such as '8Gi' or an integer number of bytes, got float %r" % (name, value))
    if amount <= 0:
        raise GpuSpecError("%s: expected a positive quantity, got %r" % (name, value))
    return str(value), amount


def _cpu_quantity(value, name):
    """Validate a positive CPU amount (``2``, ``0.5``, ``"500m"``); return ``(k8s form, cores as Decimal)``."""
    amount = parse_quantity(value, name)
    if (isinstance(value, str) and value[-1:] in ("n", "u")) or amount <= 0:
        raise GpuSpecError("%s: expected a positive number of cores such as 2, 0.5 or '500m', got %r" % (name, value))
    if isinstance(value, str):
        return value, amount
    return str(value) if isinstance(value, float) else value, amount


# --------------------------------------------------------------------------------------------------
# GPU building blocks


def validate_mig_profile(mig_profile):
    """Return ``mig_profile`` if it is a MIG GPU-instance profile name, else raise."""
    if not isinstance(mig_profile, str):
        raise GpuSpecError("mig_profile: expected a MIG profile name such as '1g.10gb', got %s" % _describe(mig_profile))
    if not _MIG_PROFILE_RE.match(mig_profile):
        hint = " (drop the 'mig-' prefix)" if mig_profile.startswith(("mig-", "nvidia.com/")) else ""
        raise GpuSpecError(
            "mig_profile: %r is not a MIG profile name%s; expected <slices>g.<memory>gb with an optional "
            "+me, +me.all, -me or +gfx suffix, e.g. '1g.5gb', '3g.40gb', '1g.10gb+me'" % (mig_profile, hint))
    return mig_profile


def gpu_resource_name(mig_profile=None):
    """The extended resource to request: ``nvidia.com/gpu`` or ``nvidia.com/mig-<profile>``."""
    if mig_profile is None:
        return GPU_RESOURCE
    validate_mig_profile(mig_profile)
    return MIG_RESOURCE_PREFIX + mig_profile.replace("+", ".")


def _is_gpu_resource(resource):
    return resource == GPU_RESOURCE or (isinstance(resource, str) and resource.startswith(MIG_RESOURCE_PREFIX))


def gpu_tolerations(spot=False):
    """Tolerations a GPU pod needs: the GPU taint, plus the AKS spot taint when ``spot``."""
    _require_bool(spot, "spot")
    result = [dict(GPU_TAINT)]
    if spot:
        result.append(dict(SPOT_TAINT))
    return result


def _validate_products(products, name="gpu_products"):
    _require_list(products, name)
    seen = []
    for index, product in enumerate(products):
        item = "%s[%d]" % (name, index)
        _require_string(product, item)
        if len(product) > 63 or not _LABEL_VALUE_RE.match(product):
            raise GpuSpecError("%s: %r is not a valid label value (GPU feature discovery writes e.g. 'NVIDIA-A100-SXM4-80GB')" % (item, product))
        if product not in seen:
            seen.append(product)
    return seen


def _product_expression(products):
    return {"key": GPU_PRODUCT_LABEL, "operator": "In", "values": list(products)}


def gpu_node_affinity(products):
    """An ``affinity`` object requiring ``nvidia.com/gpu.product`` to be one of ``products``."""
    products = _validate_products(products, "products")
    if not products:
        raise GpuSpecError("products: expected a non-empty list of nvidia.com/gpu.product label values")
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [_product_expression(products)]}]}}}


def _validate_toleration(tol, name):
    _require_mapping(tol, name)
    unknown = sorted(set(tol) - set(TOLERATION_KEYS))
    if unknown:
        raise GpuSpecError("%s: unknown keys %s; a toleration has %s" % (name, ", ".join(map(str, unknown)), ", ".join(TOLERATION_KEYS)))
    key = tol.get("key", "")
    _require_string(key, "%s.key" % name, allow_empty=True)
    operator = tol.get("operator", "Equal")
    if operator not in TOLERATION_OPERATORS:
        raise GpuSpecError("%s.operator: expected one of Equal, Exists, got %r" % (name, operator))
    value = tol.get("value", "")
    _require_string(value, "%s.value" % name, allow_empty=True)
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
            raise GpuSpecError("%s.tolerationSeconds: expected an integer, got %s" % (name, _describe(seconds)))
        if effect != "NoExecute":
            raise GpuSpecError("%s.tolerationSeconds: only valid with effect NoExecute" % name)
    return tol


def toleration_covers(existing, wanted):
    """True when toleration ``existing`` tolerates every taint that ``wanted`` tolerates."""
    e_op = existing.get("operator") or "Equal"
    w_op = wanted.get("operator") or "Equal"
    e_key = existing.get("key") or ""
    w_key = wanted.get("key") or ""
    if e_key or e_op != "Exists":
        if e_key != w_key:
            return False
        if e_op == "Equal" and (w_op != "Equal" or (existing.get("value") or "") != (wanted.get("value") or "")):
            return False
    e_effect = existing.get("effect") or ""
    if e_effect and e_effect != (wanted.get("effect") or ""):
        return False
    e_secs = existing.get("tolerationSeconds")
    if e_secs is not None:
        w_secs = wanted.get("tolerationSeconds")
        if not isinstance(e_secs, int) or not isinstance(w_secs, int) or e_secs < w_secs:
            return False
    return True


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
    _require_list(containers, "spec.containers")
    names = []
    for index, item in enumerate(containers):
        _require_mapping(item, "spec.containers[%d]" % index)
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
    if isinstance(value, str) and _DIGITS_RE.match(value):
        return int(value)
    return None


def _apply_gpu_resource(target, resource, gpus):
    cname = target.get("name", "<unnamed>")
    resources = target.setdefault("resources", {})
    _require_mapping(resources, "spec.containers[%s].resources" % cname)
    limits = resources.setdefault("limits", {})
    _require_mapping(limits, "spec.containers[%s].resources.limits" % cname)
    requests = resources.get("requests")
    sections = [("limits", limits)]
    if requests is not None:
        _require_mapping(requests, "spec.containers[%s].resources.requests" % cname)
        sections.append(("requests", requests))
    for section, values in sections:
        for key, current in values.items():
            if not _is_gpu_resource(key):
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
    _require_mapping(current, "spec.nodeSelector")
    for key, value in wanted.items():
        if key in current and current[key] != value:
            raise GpuSpecError("node_selector: spec.nodeSelector already pins %s=%r, which conflicts with %r" % (key, current[key], value))
        current[key] = value


def _apply_tolerations(spec, wanted):
    current = spec.get("tolerations")
    if current is None:
        current = []
    _require_list(current, "spec.tolerations")
    for index, tol in enumerate(current):
        _require_mapping(tol, "spec.tolerations[%d]" % index)
    spec["tolerations"] = merge_tolerations(current, wanted)


def _same_values(expr, products):
    values = expr.get("values")
    return isinstance(values, (list, tuple)) and all(isinstance(v, str) for v in values) and set(values) == set(products)


def _apply_products(spec, products):
    affinity = spec.setdefault("affinity", {})
    _require_mapping(affinity, "spec.affinity")
    node_affinity = affinity.setdefault("nodeAffinity", {})
    _require_mapping(node_affinity, "spec.affinity.nodeAffinity")
    required = node_affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    _require_mapping(required, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution")
    terms = required.setdefault("nodeSelectorTerms", [])
    _require_list(terms, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms")
    if not terms:
        terms.append({"matchExpressions": [_product_expression(products)]})
        return
    # Terms are ORed and the expressions inside one term ANDed: to AND the product constraint with
    # whatever the user required, it goes into every term.
    for index, term in enumerate(terms):
        _require_mapping(term, "spec.affinity...nodeSelectorTerms[%d]" % index)
        expressions = term.setdefault("matchExpressions", [])
        _require_list(expressions, "spec.affinity...nodeSelectorTerms[%d].matchExpressions" % index)
        if any(isinstance(e, Mapping) and e.get("key") == GPU_PRODUCT_LABEL and e.get("operator") == "In" and _same_values(e, products)
               for e in expressions):
            continue
        expressions.append(_product_expression(products))


def _apply_shm(spec, target, size, size_bytes):
    cname = target.get("name", "<unnamed>")
    mounts = target.get("volumeMounts")
    if mounts is None:
        mounts = []
    _require_list(mounts, "spec.containers[%s].volumeMounts" % cname)
    volumes = spec.get("volumes")
    if volumes is None:
        volumes = []
    _require_list(volumes, "spec.volumes")
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
    _require_mapping(spec, "spec")
    if "apiVersion" in spec or "kind" in spec:
        raise GpuSpecError("spec: expected a PodSpec, got a manifest (kind %r); pass its pod spec, e.g. manifest.spec" % spec.get("kind"))
    gpus = _int_arg(gpus, "gpus")
    if container is not None:
        _require_string(container, "container")
    resource = gpu_resource_name(mig_profile)
    if node_selector is None:
        selector = dict(DEFAULT_NODE_SELECTOR)
    else:
        selector = dict(_string_map(node_selector, "node_selector"))
    wanted_tolerations = gpu_tolerations(spot)
    if tolerations is not None:
        _require_list(tolerations, "tolerations")
        wanted_tolerations.extend(dict(_validate_toleration(t, "tolerations[%d]" % i)) for i, t in enumerate(tolerations))
    products = _validate_products(gpu_products) if gpu_products is not None else []
    if shm_size is not None:
        shm_size, shm_bytes = _memory_quantity(shm_size, "shm_size")
    if priority_class is not None:
        _check_dns1123_subdomain(priority_class, "priority_class")

    result = _plain(spec)
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


# --------------------------------------------------------------------------------------------------
# zero-to-jupyterhub profiles

PROFILE_KEYS = ("name", "description", "image", "gpus", "cpu", "memory", "cpu_guarantee", "memory_guarantee",
                "mig_profile", "default", "spot", "gpu_products")


def kubespawner_bytes(value, name):
    """Convert a Kubernetes memory quantity to KubeSpawner's byte specification.

    KubeSpawner's ``mem_limit``/``mem_guarantee`` take an integer number of bytes or a number with a
    K, M, G or T suffix, where those suffixes are powers of 1024. ``8Gi`` therefore becomes ``8G``.
    Decimal suffixes (``8G`` in Kubernetes means 8*10^9 bytes) are rejected as ambiguous.
    """
    if isinstance(value, str) and re.match(r"^[0-9.]+[kKMGTPE]$", value):
        raise GpuSpecError("%s: %r is ambiguous (Kubernetes reads %s as powers of 1000, KubeSpawner as powers of 1024); "
                           "write it with a binary suffix such as '%si'" % (name, value, value[-1], value.upper()))
    _text, amount = _memory_quantity(value, name)
    if amount != amount.to_integral_value():
        raise GpuSpecError("%s: %r is not a whole number of bytes" % (name, value))
    amount = int(amount)
    for suffix, factor in _KUBESPAWNER_SUFFIXES:
        if amount % factor == 0:
            return "%d%s" % (amount // factor, suffix)
    return str(amount)


def _profile_slug(name):
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "profile"


def render_jupyterhub_profiles(profiles):
    """Build zero-to-jupyterhub ``singleuser.profileList`` entries from simple profile mappings."""
    _require_list(profiles, "profiles")
    result = []
    names = {}
    slugs = {}
    default_at = None
    for index, profile in enumerate(profiles):
        where = "profiles[%d]" % index
        _require_mapping(profile, where)
        unknown = sorted(str(k) for k in set(profile) - set(PROFILE_KEYS))
        if unknown:
            raise GpuSpecError("%s: unknown keys %s; allowed keys are %s" % (where, ", ".join(unknown), ", ".join(PROFILE_KEYS)))
        if "name" not in profile:
            raise GpuSpecError("%s: missing required key 'name'" % where)
        name = _require_string(profile["name"], "%s.name" % where)
        where = "profiles[%d] (%r)" % (index, name)
        if name in names:
            raise GpuSpecError("%s.name: duplicate profile name, already used by profiles[%d]" % (where, names[name]))
        names[name] = index
        slug = _profile_slug(name)
        if slug in slugs:
            raise GpuSpecError("%s.name: slug %r clashes with profiles[%d]; choose names that differ in letters or digits" % (where, slug, slugs[slug]))
        slugs[slug] = index
        if "image" not in profile:
            raise GpuSpecError("%s: missing required key 'image'" % where)
        image = _require_string(profile["image"], "%s.image" % where)
        if any(c.isspace() for c in image):
            raise GpuSpecError("%s.image: %r contains whitespace" % (where, image))
        description = _require_string(profile.get("description", ""), "%s.description" % where, allow_empty=True)
        gpus = _int_arg(profile.get("gpus", 0), "%s.gpus" % where)
        default = _require_bool(profile.get("default", False), "%s.default" % where)
        if default:
            if default_at is not None:
                raise GpuSpecError("%s.default: only one profile may be the default, profiles[%d] already is" % (where, default_at))
            default_at = index
        spot = _require_bool(profile.get("spot", False), "%s.spot" % where)
        mig_profile = profile.get("mig_profile")
        try:
            resource = gpu_resource_name(mig_profile)
            products = _validate_products(profile.get("gpu_products") or [], "gpu_products")
        except GpuSpecError as exc:
            raise GpuSpecError("%s.%s" % (where, exc))
        if gpus == 0 and (mig_profile is not None or products):
            raise GpuSpecError("%s: mig_profile and gpu_products need gpus >= 1 (this profile is CPU-only)" % where)

        override = {"image": image}
        if "cpu" in profile:
            override["cpu_limit"] = float(_cpu_quantity(profile["cpu"], "%s.cpu" % where)[1])
        if "cpu_guarantee" in profile:
            override["cpu_guarantee"] = float(_cpu_quantity(profile["cpu_guarantee"], "%s.cpu_guarantee" % where)[1])
        if "memory" in profile:
            override["mem_limit"] = kubespawner_bytes(profile["memory"], "%s.memory" % where)
        if "memory_guarantee" in profile:
            override["mem_guarantee"] = kubespawner_bytes(profile["memory_guarantee"], "%s.memory_guarantee" % where)
        if override.get("cpu_guarantee", 0) > override.get("cpu_limit", float("inf")):
            raise GpuSpecError("%s.cpu_guarantee: exceeds cpu (%s > %s)" % (where, override["cpu_guarantee"], override["cpu_limit"]))
        if "mem_guarantee" in override and "mem_limit" in override and \
                parse_quantity(profile["memory_guarantee"], "memory_guarantee") > parse_quantity(profile["memory"], "memory"):
            raise GpuSpecError("%s.memory_guarantee: exceeds memory (%s > %s)" % (where, profile["memory_guarantee"], profile["memory"]))
        if gpus:
            override["extra_resource_limits"] = {resource: str(gpus)}
            override["tolerations"] = gpu_tolerations(spot)
            override["node_selector"] = dict(DEFAULT_NODE_SELECTOR)
            if products:
                override["node_affinity_required"] = [{"matchExpressions": [_product_expression(products)]}]
        elif spot:
            override["tolerations"] = [dict(SPOT_TAINT)]

        entry = {"display_name": name, "slug": slug, "description": description, "kubespawner_override": override}
        if default:
            entry["default"] = True
        result.append(entry)
    return result


# --------------------------------------------------------------------------------------------------
# KServe InferenceService

_MODEL_FORMAT_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")


def render_inference_service(name, namespace=None, model_format="sklearn", storage_uri=None, gpus=0, mig_profile=None,
                             min_replicas=None, max_replicas=None, canary_traffic_percent=None, runtime=None, spot=False,
                             gpu_products=None, cpu=None, memory=None, deployment_mode=None, labels=None, annotations=None,
                             scale_target=None, scale_metric=None, model_format_version=None, protocol_version=None,
                             service_account_name=None, node_selector=None, tolerations=None, shm_size=None, priority_class=None):
    """Build a KServe ``serving.kserve.io/v1beta1`` InferenceService manifest with a GPU-aware predictor."""
    _require_string(name, "name")
    if len(name) > 63 or not _DNS1035_LABEL_RE.match(name):
        raise GpuSpecError("name: %r is not a valid DNS-1035 label (start with a letter; lower-case alphanumerics and '-'; at most 63 characters)" % (name,))
    if namespace is not None:
        _check_dns1123_label(namespace, "namespace")
    _require_string(model_format, "model_format")
    if not _MODEL_FORMAT_RE.match(model_format):
        raise GpuSpecError("model_format: %r is not a model format name such as sklearn, pytorch, huggingface or triton" % (model_format,))
    if model_format_version is not None:
        _require_string(model_format_version, "model_format_version")
    if storage_uri is not None:
        _require_string(storage_uri, "storage_uri")
        if not _URI_RE.match(storage_uri):
            raise GpuSpecError("storage_uri: %r is not a URI with a scheme, e.g. s3://bucket/model, gs://..., pvc://claim/path, hf://org/model"
                               % (storage_uri,))
    gpus = _int_arg(gpus, "gpus")
    if runtime is not None:
        _check_dns1123_subdomain(runtime, "runtime")
    if protocol_version is not None and protocol_version not in KSERVE_PROTOCOL_VERSIONS:
        raise GpuSpecError("protocol_version: expected one of %s, got %r" % (", ".join(KSERVE_PROTOCOL_VERSIONS), protocol_version))
    if deployment_mode is not None and deployment_mode not in KSERVE_DEPLOYMENT_MODES:
        raise GpuSpecError("deployment_mode: expected one of %s, got %r" % (", ".join(KSERVE_DEPLOYMENT_MODES), deployment_mode))
    if min_replicas is not None:
        min_replicas = _int_arg(min_replicas, "min_replicas")
    if max_replicas is not None:
        max_replicas = _int_arg(max_replicas, "max_replicas", minimum=1)
    if min_replicas is not None and max_replicas is not None and min_replicas > max_replicas:
        raise GpuSpecError("min_replicas/max_replicas: min_replicas (%d) is greater than max_replicas (%d)" % (min_replicas, max_replicas))
    if canary_traffic_percent is not None:
        canary_traffic_percent = _int_arg(canary_traffic_percent, "canary_traffic_percent")
        if canary_traffic_percent > 100:
            raise GpuSpecError("canary_traffic_percent: expected 0..100, got %d" % canary_traffic_percent)
    if deployment_mode is not None and deployment_mode not in KSERVE_SCALE_TO_ZERO_MODES:
        if canary_traffic_percent is not None:
            raise GpuSpecError("canary_traffic_percent: canary rollouts need deployment_mode Serverless, got %r" % deployment_mode)
        if min_replicas == 0:
            raise GpuSpecError("min_replicas: scale to zero (min_replicas=0) needs deployment_mode Serverless, got %r" % deployment_mode)
    if scale_metric is not None and scale_metric not in KSERVE_SCALE_METRICS:
        raise GpuSpecError("scale_metric: expected one of %s, got %r" % (", ".join(KSERVE_SCALE_METRICS), scale_metric))
    if scale_target is not None:
        scale_target = _int_arg(scale_target, "scale_target", minimum=1)
    if service_account_name is not None:
        _check_dns1123_subdomain(service_account_name, "service_account_name")
    if labels is not None:
        _string_map(labels, "labels")
    if annotations is not None:
        _require_mapping(annotations, "annotations")
        for key, value in annotations.items():
            _check_label_key(key, "annotations key")
            _require_string(value, "annotations[%r]" % key, allow_empty=True)
        if KSERVE_DEPLOYMENT_MODE_ANNOTATION in annotations and deployment_mode is not None \
                and annotations[KSERVE_DEPLOYMENT_MODE_ANNOTATION] != deployment_mode:
            raise GpuSpecError("annotations: %s=%r conflicts with deployment_mode=%r" % (
                KSERVE_DEPLOYMENT_MODE_ANNOTATION, annotations[KSERVE_DEPLOYMENT_MODE_ANNOTATION], deployment_mode))

    resources = {}
    if cpu is not None:
        cpu_text = _cpu_quantity(cpu, "cpu")[0]
        resources.setdefault("requests", {})["cpu"] = cpu_text
        resources.setdefault("limits", {})["cpu"] = cpu_text
    if memory is not None:
        mem_text = _memory_quantity(memory, "memory")[0]
        resources.setdefault("requests", {})["memory"] = mem_text
        resources.setdefault("limits", {})["memory"] = mem_text
    container = {"name": KSERVE_MODEL_CONTAINER}
    if resources:
        container["resources"] = resources
    pod = render_gpu_pod_spec({"containers": [container]}, gpus=gpus, mig_profile=mig_profile, node_selector=node_selector,
                              tolerations=tolerations, spot=spot, gpu_products=gpu_products, shm_size=shm_size,
                              priority_class=priority_class)
    model_container = pod.pop("containers")[0]
    model_container.pop("name")

    model = {"modelFormat": {"name": model_format}}
    if model_format_version is not None:
        model["modelFormat"]["version"] = model_format_version
    if runtime is not None:
        model["runtime"] = runtime
    if protocol_version is not None:
        model["protocolVersion"] = protocol_version
    if storage_uri is not None:
        model["storageUri"] = storage_uri
    model.update(model_container)

    predictor = {}
    for key, value in (("minReplicas", min_replicas), ("maxReplicas", max_replicas), ("scaleTarget", scale_target),
                       ("scaleMetric", scale_metric), ("canaryTrafficPercent", canary_traffic_percent),
                       ("serviceAccountName", service_account_name)):
        if value is not None:
            predictor[key] = value
    predictor.update(pod)
    predictor["model"] = model

    metadata = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = _plain(labels)
    merged_annotations = _plain(annotations) if annotations else {}
    if deployment_mode is not None:
        merged_annotations[KSERVE_DEPLOYMENT_MODE_ANNOTATION] = deployment_mode
    if merged_annotations:
        metadata["annotations"] = merged_annotations
    return {"apiVersion": KSERVE_API_VERSION, "kind": "InferenceService", "metadata": metadata, "spec": {"predictor": predictor}}
