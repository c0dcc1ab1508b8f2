# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GPU vocabulary (plugins/module_utils/gpu_vocabulary.py), and that renderer and readiness speak it alike."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.mlops.platform.plugins.module_utils import gpu_readiness
from ansible_collections.mlops.platform.plugins.module_utils import gpu_vocabulary as v
from ansible_collections.mlops.platform.plugins.module_utils.gpu_pod_spec import gpu_resource_name, render_gpu_pod_spec
from ansible_collections.mlops.platform.plugins.module_utils.k8s_values import GpuSpecError

SUFFIXES = st.sampled_from(("",) + v.MIG_PROFILE_SUFFIXES)
PROFILES = st.builds(lambda s, m, x: "%dg.%dgb%s" % (s, m, x), st.integers(1, 99), st.integers(1, 999), SUFFIXES)
# Fragments resource names are made of, valid or not: the "vice versa" direction searches this space.
FRAGMENTS = st.sampled_from(["nvidia.com/", "mig-", "gpu", ".shared", "1", "7", "0", "g", ".", "gb", "10", "+", "-",
                             "me", ".me", ".all", "-me", ".gfx", "gfx", "xyz", "amd.com/"])
NAMES = st.lists(FRAGMENTS, max_size=10).map("".join)


def readiness_accepts(resource):
    try:
        gpu_readiness.validate_resource(resource)
    except gpu_readiness.GpuReadinessError:
        return False
    return True


def renderer_resource(profile):
    """The resource the renderer requests for ``profile`` (None: whole GPU), or None if it refuses it."""
    try:
        return gpu_resource_name(profile)
    except GpuSpecError:
        return None


@settings(max_examples=300, deadline=None)
@given(profile=st.one_of(st.none(), PROFILES), gpus=st.integers(1, 8))
def test_every_resource_the_renderer_produces_is_accepted_by_readiness(profile, gpus):
    spec = render_gpu_pod_spec({"containers": [{"name": "main"}]}, gpus=gpus, mig_profile=profile)
    limits = spec["containers"][0]["resources"]["limits"]
    assert list(limits) == [gpu_resource_name(profile)]
    resource = list(limits)[0]
    assert readiness_accepts(resource), resource
    # ...and readiness reads back the profile the renderer was given.
    assert gpu_readiness.mig_profile(resource) == profile


@settings(max_examples=1000, deadline=None)
@given(name=st.one_of(NAMES, NAMES.map(lambda n: v.MIG_RESOURCE_PREFIX + n), st.text(max_size=30)))
def test_every_mig_resource_readiness_accepts_is_one_the_renderer_produces(name):
    if not readiness_accepts(name):
        assert v.parse_mig_resource(name) is None
        return
    if name in (v.GPU_RESOURCE, v.SHARED_GPU_RESOURCE):
        return
    profile = gpu_readiness.mig_profile(name)
    assert profile is not None
    assert renderer_resource(profile) == name


@pytest.mark.parametrize("profile, resource", [
    ("1g.5gb", "nvidia.com/mig-1g.5gb"),
    ("3g.40gb", "nvidia.com/mig-3g.40gb"),
    ("1g.10gb+me", "nvidia.com/mig-1g.10gb.me"),
    ("1g.10gb+me.all", "nvidia.com/mig-1g.10gb.me.all"),
    ("1g.24gb-me", "nvidia.com/mig-1g.24gb-me"),
    ("1g.24gb+gfx", "nvidia.com/mig-1g.24gb.gfx"),
])
def test_mig_profile_and_resource_spellings(profile, resource):
    parsed = v.parse_mig_profile(profile)
    assert v.format_mig_profile(parsed) == profile
    assert v.mig_resource_name(profile) == resource
    assert v.parse_mig_resource(resource) == parsed


@pytest.mark.parametrize("resource", [
    "nvidia.com/mig-1g.10gb.xyz", "nvidia.com/mig-1g.10gb+me", "nvidia.com/mig-1g.10gb-foo", "nvidia.com/mig-0g.5gb",
    "nvidia.com/mig-1g.10gb.me.me", "nvidia.com/mig-", "nvidia.com/gpu", None, 3,
])
def test_names_the_renderer_never_produces_are_not_mig_resources(resource):
    assert v.parse_mig_resource(resource) is None


def test_ai_pool_and_spot_facts():
    assert v.AI_POOL_LABELS == {"node-type": "ai", "accelerator": "nvidia-gpu"}
    assert v.DEFAULT_NODE_SELECTOR == {"node-type": "ai"}
    assert v.DEFAULT_LABEL_SELECTORS == ["accelerator=nvidia-gpu"]
    assert v.format_taint(v.GPU_TAINT) == "nvidia.com/gpu=true:NoSchedule"
    assert v.GPU_TOLERATION == {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    assert v.format_taint(v.SPOT_TAINT) == "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"
    assert v.SPOT_TOLERATION == {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
                                 "effect": "NoSchedule"}
    assert v.toleration_tolerates(v.GPU_TOLERATION, v.GPU_TAINT)
    assert v.toleration_tolerates(v.SPOT_TOLERATION, v.SPOT_TAINT)
    assert not v.toleration_tolerates(v.GPU_TOLERATION, v.SPOT_TAINT)
    assert v.is_spot_node({"kubernetes.azure.com/scalesetpriority": "spot"}, [])
    assert v.is_spot_node({}, [v.SPOT_TAINT])
    assert not v.is_spot_node({"kubernetes.azure.com/scalesetpriority": "regular"}, [v.GPU_TAINT])
    assert v.DEFAULT_OPERATOR_NAMESPACE == "gpu-operator"


# Valid tolerations (what the renderer lets through) and a universe of taints to judge them against.
TAINT_KEYS = ["nvidia.com/gpu", "kubernetes.azure.com/scalesetpriority", "dedicated"]
TAINT_VALUES = ["", "true", "spot", "x"]
TAINTS = [{"key": k, "value": val, "effect": e} for k in TAINT_KEYS for val in TAINT_VALUES for e in v.TAINT_EFFECTS]


@st.composite
def tolerations(draw):
    operator = draw(st.sampled_from(v.TOLERATION_OPERATORS))
    key = draw(st.sampled_from(TAINT_KEYS + ([""] if operator == "Exists" else [])))
    tol = {"key": key, "operator": operator, "effect": draw(st.sampled_from(v.TOLERATION_EFFECTS))}
    if operator == "Equal":
        tol["value"] = draw(st.sampled_from(TAINT_VALUES))
    return tol


@settings(max_examples=500, deadline=None)
@given(existing=tolerations(), wanted=tolerations())
def test_covers_is_tolerating_every_taint_the_other_tolerates(existing, wanted):
    # Over this universe, "covers" must be exactly the subset relation of the taints each tolerates,
    # except that an Exists toleration also tolerates values outside it (which only Exists covers).
    subset = all(v.toleration_tolerates(existing, t) for t in TAINTS if v.toleration_tolerates(wanted, t))
    covers = v.toleration_covers(existing, wanted)
    if covers:
        assert subset
    elif subset:
        assert wanted["operator"] == "Exists" and existing["operator"] == "Equal"
