# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one home of every NVIDIA and Kubernetes GPU fact the collection relies on.

Resource names, the MIG profile grammar, GPU Feature Discovery label keys, the labels and taints of the AI
node pool and of spot capacity, the GPU operator's defaults, and Kubernetes' toleration-matching rules.
Readiness verdicts, pod-spec rendering, the smoke test and the filters import these names; nothing else in
``plugins/`` spells them out. This module imports nothing from the collection.

Facts:

* The NVIDIA device plugin advertises whole GPUs as ``nvidia.com/gpu`` (``nvidia.com/gpu.shared`` when
  time-sliced GPUs are renamed) and, under the ``mixed`` MIG strategy, MIG devices as
  ``nvidia.com/mig-<profile>``.
* A MIG profile is ``<slices>g.<memory>gb`` with an optional suffix ``+me`` (media extensions), ``+me.all``,
  ``-me`` or ``+gfx`` (Blackwell), e.g. ``1g.5gb``, ``3g.40gb``, ``1g.12gb+me``, ``7g.141gb``, ``1g.24gb+gfx``.
  Kubernetes resource names cannot contain ``+``, so the resource spells ``+`` as ``.``: profile
  ``1g.10gb+me`` is resource ``nvidia.com/mig-1g.10gb.me``.
* GPU Feature Discovery (GFD) labels nodes with ``nvidia.com/gpu.product`` (e.g. ``NVIDIA-A100-SXM4-80GB``),
  ``nvidia.com/gpu.memory``, ``nvidia.com/gpu.count``, the driver and CUDA versions, MIG and sharing state.
* The collection's AI node pool is labelled ``node-type=ai`` and ``accelerator=nvidia-gpu`` and tainted
  ``nvidia.com/gpu=true:NoSchedule``.
* AKS spot node pools carry the label and taint ``kubernetes.azure.com/scalesetpriority=spot`` (taint effect
  ``NoSchedule``); GKE and EKS mark spot capacity with the labels in :data:`SPOT_LABELS`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from collections import namedtuple
from functools import lru_cache

# --------------------------------------------------------------------------- extended resources

GPU_RESOURCE = "nvidia.com/gpu"
SHARED_GPU_RESOURCE = GPU_RESOURCE + ".shared"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"

# --------------------------------------------------------------------------- MIG profile grammar

# Suffixes in profile spelling; a resource name writes each "+" as ".".
MIG_PROFILE_SUFFIXES = ("+me.all", "+me", "-me", "+gfx")
_MIG_PROFILE_RE = re.compile(
    r"^(?P<slices>[1-9][0-9]*)g\.(?P<memory>[1-9][0-9]*)gb(?P<suffix>%s)?$"
    % "|".join(re.escape(s) for s in MIG_PROFILE_SUFFIXES)
)
# Resource spelling of each suffix, longest first so that ".me.all" wins over ".me".
_RESOURCE_SUFFIXES = tuple(sorted(((s.replace("+", "."), s) for s in MIG_PROFILE_SUFFIXES),
                                  key=lambda pair: -len(pair[0])))

MigProfile = namedtuple("MigProfile", ["slices", "memory_gb", "suffix"])


def parse_mig_profile(profile):
    """Parse a profile in profile spelling (``1g.10gb+me``) into a :class:`MigProfile`, or None."""
    if not isinstance(profile, str):
        return None
    return _parse_mig_profile(profile)


@lru_cache(maxsize=256)
def _parse_mig_profile(profile):
    match = _MIG_PROFILE_RE.match(profile)
    if not match:
        return None
    return MigProfile(int(match.group("slices")), int(match.group("memory")), match.group("suffix") or "")


def format_mig_profile(profile):
    """A :class:`MigProfile` in profile spelling: ``1g.10gb+me``."""
    return "%dg.%dgb%s" % (profile.slices, profile.memory_gb, profile.suffix)


def mig_resource_name(profile):
    """The extended resource of a profile (profile spelling or :class:`MigProfile`), or None if it is none.

    ``1g.10gb+me`` -> ``nvidia.com/mig-1g.10gb.me``.
    """
    parsed = profile if isinstance(profile, MigProfile) else parse_mig_profile(profile)
    if parsed is None:
        return None
    return MIG_RESOURCE_PREFIX + format_mig_profile(parsed).replace("+", ".")


def parse_mig_resource(resource):
    """The :class:`MigProfile` of a ``nvidia.com/mig-<profile>`` resource name, or None.

    Only names that :func:`mig_resource_name` produces are accepted, so the two are inverse.
    """
    if not isinstance(resource, str) or not resource.startswith(MIG_RESOURCE_PREFIX):
        return None
    rest = resource[len(MIG_RESOURCE_PREFIX):]
    for spelled, suffix in _RESOURCE_SUFFIXES:
        if rest.endswith(spelled):
            rest = rest[:-len(spelled)] + suffix
            break
    parsed = parse_mig_profile(rest)
    if parsed is None or mig_resource_name(parsed) != resource:
        return None
    return parsed


def is_gpu_resource(resource):
    """True for every resource name GPU work can request: whole, shared and MIG GPUs."""
    return resource in (GPU_RESOURCE, SHARED_GPU_RESOURCE) or parse_mig_resource(resource) is not None


def claims_nvidia_gpu(resource):
    """True for a resource name in the NVIDIA GPU namespace a container may already request.

    Looser than :func:`is_gpu_resource` on purpose: any ``nvidia.com/mig-*`` name counts, so a container that
    already asks for some MIG device is never given a second GPU resource.
    """
    return resource == GPU_RESOURCE or (isinstance(resource, str) and resource.startswith(MIG_RESOURCE_PREFIX))


# --------------------------------------------------------------------------- GPU Feature Discovery labels

LABEL_PRODUCT = "nvidia.com/gpu.product"
LABEL_MEMORY = "nvidia.com/gpu.memory"
LABEL_COUNT = "nvidia.com/gpu.count"
LABEL_DRIVER_MAJOR = "nvidia.com/cuda.driver.major"
LABEL_DRIVER_MINOR = "nvidia.com/cuda.driver.minor"
LABEL_DRIVER_REV = "nvidia.com/cuda.driver.rev"
LABEL_DRIVER_FULL = "nvidia.com/cuda.driver-version.full"
LABEL_CUDA_MAJOR = "nvidia.com/cuda.runtime.major"
LABEL_CUDA_MINOR = "nvidia.com/cuda.runtime.minor"
LABEL_CUDA_FULL = "nvidia.com/cuda.runtime-version.full"
LABEL_MIG_STRATEGY = "nvidia.com/mig.strategy"
LABEL_MIG_CONFIG_STATE = "nvidia.com/mig.config.state"
LABEL_REPLICAS = "nvidia.com/gpu.replicas"
LABEL_SHARING_STRATEGY = "nvidia.com/gpu.sharing-strategy"

# --------------------------------------------------------------------------- NVIDIA GPU operator

DEFAULT_OPERATOR_NAMESPACE = "gpu-operator"
CLUSTERPOLICY_PATH = "/apis/nvidia.com/v1/clusterpolicies"
# Operand DaemonSets whose pod must be ready on every GPU node they target.
NODE_CRITICAL_OPERANDS = (
    "nvidia-driver-daemonset",
    "nvidia-container-toolkit-daemonset",
    "nvidia-device-plugin-daemonset",
    "nvidia-operator-validator",
)

# --------------------------------------------------------------------------- Kubernetes tolerations

TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")
TOLERATION_OPERATORS = ("Equal", "Exists")
TOLERATION_EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")
TAINT_EFFECTS = TOLERATION_EFFECTS[1:]
# Effects that keep a pod off a node (PreferNoSchedule only steers the scheduler).
BLOCKING_TAINT_EFFECTS = ("NoSchedule", "NoExecute")
# Taints the node lifecycle controller sets and clears with the node's conditions.
CONDITION_TAINT_PREFIX = "node.kubernetes.io/"


def toleration_for(taint):
    """The ``Equal`` toleration that tolerates exactly ``taint`` (a fresh dict)."""
    return {"key": taint["key"], "operator": "Equal", "value": taint.get("value") or "", "effect": taint["effect"]}


def format_taint(taint):
    """``key=value:effect`` (``key:effect`` without a value), as kubectl writes taints."""
    value = taint.get("value")
    return "%s%s:%s" % (taint.get("key"), "=" + value if value else "", taint.get("effect"))


def toleration_tolerates(toleration, taint):
    """True if one toleration tolerates one taint: Kubernetes' matching rules, the one implementation."""
    effect = toleration.get("effect")
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key")
    operator = toleration.get("operator") or "Equal"
    if not key:
        # An empty key with Exists matches every taint.
        return operator == "Exists"
    if key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return (toleration.get("value") or "") == (taint.get("value") or "")


# A key and a value no real taint can carry: they stand for "any key" and "any value".
_ANY = "\x00any"


def _taints_tolerated_by(toleration):
    """Representatives of every kind of taint ``toleration`` tolerates (one per effect it allows)."""
    operator = toleration.get("operator") or "Equal"
    return _representative_taints(toleration.get("key") or _ANY,
                                  _ANY if operator == "Exists" else (toleration.get("value") or ""),
                                  toleration.get("effect") or "")


@lru_cache(maxsize=256)
def _representative_taints(key, value, effect):
    return tuple({"key": key, "value": value, "effect": e} for e in ([effect] if effect else TAINT_EFFECTS))


def toleration_covers(existing, wanted):
    """True when toleration ``existing`` tolerates every taint that ``wanted`` tolerates, for at least as long."""
    for taint in _taints_tolerated_by(wanted):
        if not toleration_tolerates(existing, taint):
            return False
    e_secs = existing.get("tolerationSeconds")
    if e_secs is not None:
        w_secs = wanted.get("tolerationSeconds")
        if not isinstance(e_secs, int) or not isinstance(w_secs, int) or e_secs < w_secs:
            return False
    return True


# --------------------------------------------------------------------------- the AI node pool

NODE_TYPE_LABEL = "node-type"
ACCELERATOR_LABEL = "accelerator"
AI_POOL_LABELS = {NODE_TYPE_LABEL: "ai", ACCELERATOR_LABEL: "nvidia-gpu"}
# What GPU pods pin to, and what the readiness checks select by default.
DEFAULT_NODE_SELECTOR = {NODE_TYPE_LABEL: AI_POOL_LABELS[NODE_TYPE_LABEL]}
DEFAULT_LABEL_SELECTORS = ["%s=%s" % (ACCELERATOR_LABEL, AI_POOL_LABELS[ACCELERATOR_LABEL])]
GPU_TAINT = {"key": GPU_RESOURCE, "value": "true", "effect": "NoSchedule"}
GPU_TOLERATION = toleration_for(GPU_TAINT)

# --------------------------------------------------------------------------- spot capacity

SPOT_TAINT = {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"}
SPOT_TOLERATION = toleration_for(SPOT_TAINT)
# Labels that mark spot (preemptible) capacity on common clouds; a taint with one of these keys marks it too.
SPOT_LABELS = {
    SPOT_TAINT["key"]: SPOT_TAINT["value"],
    "cloud.google.com/gke-spot": "true",
    "eks.amazonaws.com/capacityType": "SPOT",
}


def is_spot_taint(taint):
    return taint.get("key") in SPOT_LABELS


def is_spot_node(labels, taints):
    """True when a node's labels or taints mark it as spot capacity."""
    labels = labels or {}
    return any(labels.get(k) == v for k, v in SPOT_LABELS.items()) or any(is_spot_taint(t) for t in taints or [])
