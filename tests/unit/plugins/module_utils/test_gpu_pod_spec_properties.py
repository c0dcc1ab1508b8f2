# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property-based tests: render_gpu_pod_spec is idempotent, never mutates its input, and renders valid PodSpecs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.mlops.platform.plugins.module_utils.gpu_pod_spec import gpu_resource_name, render_gpu_pod_spec
from ansible_collections.mlops.platform.plugins.module_utils.gpu_vocabulary import (
    LABEL_PRODUCT as GPU_PRODUCT_LABEL,
    toleration_covers,
)
from ansible_collections.mlops.platform.plugins.module_utils.k8s_values import GpuSpecError
from ansible_collections.mlops.platform.tests.unit.plugins.module_utils.test_gpu_pod_spec_schema import validate_pod_spec

NAMES = st.sampled_from(["main", "trainer", "sidecar", "proxy", "init-db"])
LABEL_KEYS = st.sampled_from(["node-type", "kubernetes.io/os", "agentpool", "topology.kubernetes.io/zone"])
LABEL_VALUES = st.sampled_from(["ai", "cpu", "linux", "gpupool", "westeurope-1"])
TAINT_KEYS = st.sampled_from(["nvidia.com/gpu", "kubernetes.azure.com/scalesetpriority", "dedicated", ""])
EFFECTS = st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute", ""])
QUANTITIES = st.sampled_from(["1", "2", "500m", "1Gi", "8Gi", "512Mi"])
PRODUCTS = st.lists(st.sampled_from(["NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3", "Tesla-T4", "NVIDIA-L4"]), max_size=3)
MIG = st.one_of(st.none(), st.sampled_from(["1g.10gb", "3g.40gb", "1g.12gb+me", "7g.80gb"]))


@st.composite
def tolerations(draw):
    key = draw(TAINT_KEYS)
    operator = "Exists" if not key else draw(st.sampled_from(["Equal", "Exists"]))
    tol = {"key": key, "operator": operator} if key else {"operator": "Exists"}
    if operator == "Equal":
        tol["value"] = draw(st.sampled_from(["true", "spot", "ml"]))
    effect = draw(EFFECTS)
    if effect:
        tol["effect"] = effect
    if effect == "NoExecute" and draw(st.booleans()):
        tol["tolerationSeconds"] = draw(st.integers(min_value=0, max_value=3600))
    return tol


@st.composite
def containers(draw, name):
    container = {"name": name, "image": "registry.example.com/%s:1" % name}
    if draw(st.booleans()):
        resources = {}
        if draw(st.booleans()):
            resources["requests"] = {"cpu": draw(QUANTITIES), "memory": draw(st.sampled_from(["1Gi", "4Gi"]))}
        if draw(st.booleans()):
            resources["limits"] = {"memory": draw(st.sampled_from(["1Gi", "4Gi"]))}
        container["resources"] = resources
    if draw(st.booleans()):
        container["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    if draw(st.booleans()):
        container["env"] = [{"name": "A", "value": draw(st.text(max_size=5))}]
    return container


@st.composite
def pod_specs(draw):
    names = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
    spec = {"containers": [draw(containers(n)) for n in names]}
    if draw(st.booleans()):
        spec["tolerations"] = draw(st.lists(tolerations(), max_size=3))
    if draw(st.booleans()):
        spec["nodeSelector"] = draw(st.dictionaries(LABEL_KEYS, LABEL_VALUES, max_size=2))
    if draw(st.booleans()):
        terms = draw(st.lists(st.lists(st.fixed_dictionaries({
            "key": st.sampled_from(["topology.kubernetes.io/zone", GPU_PRODUCT_LABEL, "kubernetes.io/arch"]),
            "operator": st.just("In"),
            "values": st.lists(LABEL_VALUES, min_size=1, max_size=2, unique=True)}), min_size=1, max_size=2), max_size=2))
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": t} for t in terms]}}}
    if draw(st.booleans()):
        spec["volumes"] = [{"name": "data", "emptyDir": {}}]
        for container in spec["containers"]:
            container.setdefault("volumeMounts", [])
    else:
        for container in spec["containers"]:
            container.pop("volumeMounts", None)
    if draw(st.booleans()):
        spec["priorityClassName"] = draw(st.sampled_from(["gpu", "batch"]))
    return spec


@st.composite
def arguments(draw, spec):
    names = [c["name"] for c in spec["containers"]]
    kwargs = {"gpus": draw(st.integers(min_value=0, max_value=8)), "spot": draw(st.booleans()), "mig_profile": draw(MIG)}
    if draw(st.booleans()):
        kwargs["container"] = draw(st.sampled_from(names))
    if draw(st.booleans()):
        kwargs["node_selector"] = draw(st.dictionaries(LABEL_KEYS, LABEL_VALUES, max_size=2))
    if draw(st.booleans()):
        kwargs["tolerations"] = draw(st.lists(tolerations(), max_size=2))
    if draw(st.booleans()):
        kwargs["gpu_products"] = draw(PRODUCTS)
    if draw(st.booleans()):
        kwargs["shm_size"] = draw(st.sampled_from(["1Gi", "8Gi", "64Mi"]))
    if draw(st.booleans()):
        kwargs["priority_class"] = draw(st.sampled_from(["gpu", "batch"]))
    return kwargs


@st.composite
def cases(draw):
    spec = draw(pod_specs())
    return spec, draw(arguments(spec))


PROPERTY_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(cases())
def test_idempotent_and_no_mutation(case):
    spec, kwargs = case
    before = copy.deepcopy(spec)
    try:
        once = render_gpu_pod_spec(spec, **kwargs)
    except GpuSpecError as exc:
        # Only the documented conflicts may be refused; the input stays untouched either way.
        assert str(exc).split(":", 1)[0] in ("node_selector", "priority_class", "gpus", "gpus/mig_profile", "shm_size"), str(exc)
        assert spec == before
        return
    assert spec == before, "input was mutated"
    twice = render_gpu_pod_spec(once, **kwargs)
    assert twice == once, "second application changed the result"
    assert once == before or kwargs["gpus"] > 0


@PROPERTY_SETTINGS
@given(cases())
def test_rendered_specs_are_valid_and_complete(case):
    spec, kwargs = case
    try:
        out = render_gpu_pod_spec(spec, **kwargs)
    except GpuSpecError:
        return
    validate_pod_spec(out)
    if kwargs["gpus"] == 0:
        assert out == spec
        return
    target = kwargs.get("container", spec["containers"][0]["name"])
    container = [c for c in out["containers"] if c["name"] == target][0]
    resource = gpu_resource_name(kwargs["mig_profile"])
    assert container["resources"]["limits"][resource] == kwargs["gpus"]
    if "requests" in container["resources"]:
        assert container["resources"]["requests"][resource] == kwargs["gpus"]
    wanted = [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}] + kwargs.get("tolerations", [])
    for tol in wanted:
        assert any(toleration_covers(have, tol) for have in out["tolerations"]), tol
    selector = kwargs.get("node_selector", {"node-type": "ai"})
    for key, value in selector.items():
        assert out["nodeSelector"][key] == value
    if kwargs.get("gpu_products"):
        for term in out["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]:
            assert any(e["key"] == GPU_PRODUCT_LABEL and sorted(e["values"]) == sorted(set(kwargs["gpu_products"]))
                       for e in term["matchExpressions"])
    if "shm_size" in kwargs:
        assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    # Other containers are left alone.
    for original, rendered in zip(spec["containers"], out["containers"]):
        if original["name"] != target:
            assert original == rendered
