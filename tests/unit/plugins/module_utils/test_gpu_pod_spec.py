# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Behaviour and error paths of plugins/module_utils/gpu_pod_spec.py (pod spec rendering)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible_collections.mlops.platform.plugins.module_utils.gpu_pod_spec import (
    gpu_node_affinity,
    gpu_resource_name,
    gpu_tolerations,
    render_gpu_pod_spec,
)
from ansible_collections.mlops.platform.plugins.module_utils.gpu_vocabulary import (
    DEFAULT_NODE_SELECTOR,
    GPU_RESOURCE,
    GPU_TOLERATION as GPU_TAINT,
    SPOT_TOLERATION as SPOT_TAINT,
    toleration_covers,
)
from ansible_collections.mlops.platform.plugins.module_utils.k8s_values import (
    GpuSpecError,
    parse_quantity,
)

from ansible_collections.mlops.platform.tests.unit.plugins.module_utils.test_gpu_pod_spec_schema import K8S_VERSION, validate_pod_spec


def base_spec():
    return {"containers": [{"name": "main", "image": "registry.example.com/app:1.0"}]}


def two_container_spec():
    return {"containers": [{"name": "sidecar", "image": "busybox:1.36"}, {"name": "trainer", "image": "trainer:2"}]}


# ---------------------------------------------------------------------------------------------- constants

def test_constants():
    assert GPU_RESOURCE == "nvidia.com/gpu"
    assert DEFAULT_NODE_SELECTOR == {"node-type": "ai"}
    assert GPU_TAINT == {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
    assert SPOT_TAINT == {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot", "effect": "NoSchedule"}


# ---------------------------------------------------------------------------------------------- building blocks

@pytest.mark.parametrize("profile, resource", [
    (None, "nvidia.com/gpu"),
    ("1g.5gb", "nvidia.com/mig-1g.5gb"),
    ("1g.10gb", "nvidia.com/mig-1g.10gb"),
    ("3g.20gb", "nvidia.com/mig-3g.20gb"),
    ("7g.141gb", "nvidia.com/mig-7g.141gb"),
    ("1g.12gb+me", "nvidia.com/mig-1g.12gb.me"),
    ("1g.10gb+me.all", "nvidia.com/mig-1g.10gb.me.all"),
    ("1g.24gb-me", "nvidia.com/mig-1g.24gb-me"),
    ("1g.24gb+gfx", "nvidia.com/mig-1g.24gb.gfx"),
])
def test_gpu_resource_name(profile, resource):
    assert gpu_resource_name(profile) == resource


@pytest.mark.parametrize("profile, fragment", [
    ("1g10gb", "is not a MIG profile name"),
    ("0g.10gb", "is not a MIG profile name"),
    ("1g.0gb", "is not a MIG profile name"),
    ("1G.10GB", "is not a MIG profile name"),
    ("1g.10gb+foo", "is not a MIG profile name"),
    ("mig-1g.10gb", "drop the 'mig-' prefix"),
    ("nvidia.com/mig-1g.10gb", "drop the 'mig-' prefix"),
    ("", "is not a MIG profile name"),
    (3, "expected a MIG profile name such as '1g.10gb', got int 3"),
])
def test_gpu_resource_name_rejects_bad_profiles(profile, fragment):
    with pytest.raises(GpuSpecError, match="^mig_profile: ") as err:
        gpu_resource_name(profile)
    assert fragment in str(err.value)


def test_gpu_tolerations():
    assert gpu_tolerations() == [GPU_TAINT]
    assert gpu_tolerations(spot=True) == [GPU_TAINT, SPOT_TAINT]
    first = gpu_tolerations()
    first[0]["value"] = "mutated"
    assert GPU_TAINT["value"] == "true", "callers must get copies, not the module constants"


@pytest.mark.parametrize("spot", ["yes", 1, None])
def test_gpu_tolerations_rejects_non_bool(spot):
    with pytest.raises(GpuSpecError, match=r"^spot: expected a boolean"):
        gpu_tolerations(spot)


def test_gpu_node_affinity():
    assert gpu_node_affinity(["A", "B", "A"]) == {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": ["A", "B"]}]}]}}}


@pytest.mark.parametrize("products, fragment", [
    ("NVIDIA-A100", "products: expected a list, got string"),
    ([], "products: expected a non-empty list"),
    ([""], r"products\[0\]: expected a non-empty string"),
    ([7], r"products\[0\]: expected a string, got int 7"),
    (["has space"], r"products\[0\]: 'has space' is not a valid label value"),
])
def test_gpu_node_affinity_errors(products, fragment):
    with pytest.raises(GpuSpecError, match=fragment):
        gpu_node_affinity(products)


@pytest.mark.parametrize("text, value", [
    ("8Gi", 8 * 2 ** 30), ("512Mi", 512 * 2 ** 20), ("1.5Gi", 3 * 2 ** 29), ("1G", 10 ** 9), ("500m", 0.5), ("1e3", 1000), (2, 2), ("3", 3),
])
def test_parse_quantity(text, value):
    assert parse_quantity(text, "q") == pytest.approx(value)


@pytest.mark.parametrize("text", ["8GB", "Gi", "-1Gi", "8 Gi", "1.2.3", "", True, None, [1]])
def test_parse_quantity_errors(text):
    with pytest.raises(GpuSpecError, match="^q: "):
        parse_quantity(text, "q")


@pytest.mark.parametrize("existing, wanted, covered", [
    (GPU_TAINT, GPU_TAINT, True),
    ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}, GPU_TAINT, True),
    ({"key": "nvidia.com/gpu", "operator": "Exists"}, GPU_TAINT, True),
    ({"operator": "Exists"}, GPU_TAINT, True),
    ({"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}, GPU_TAINT, True),  # operator defaults to Equal
    ({"key": "nvidia.com/gpu", "operator": "Equal", "value": "false", "effect": "NoSchedule"}, GPU_TAINT, False),
    ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, GPU_TAINT, False),
    ({"key": "other", "operator": "Exists"}, GPU_TAINT, False),
    (GPU_TAINT, {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}, False),
    ({"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
     {"key": "k", "operator": "Exists", "effect": "NoExecute"}, False),
    ({"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
     {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}, True),
])
def test_toleration_covers(existing, wanted, covered):
    assert toleration_covers(existing, wanted) is covered


# ---------------------------------------------------------------------------------------------- rendering

def test_minimal_render():
    spec = base_spec()
    out = render_gpu_pod_spec(spec)
    assert out == {
        "containers": [{"name": "main", "image": "registry.example.com/app:1.0", "resources": {"limits": {"nvidia.com/gpu": 1}}}],
        "tolerations": [GPU_TAINT],
        "nodeSelector": {"node-type": "ai"},
    }
    assert spec == base_spec(), "input must not be modified"
    validate_pod_spec(out)


def test_full_render_is_valid_and_idempotent():
    spec = two_container_spec()
    spec["containers"][1]["resources"] = {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"memory": "8Gi"}}
    spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    spec["nodeSelector"] = {"kubernetes.io/os": "linux"}
    kwargs = dict(gpus=2, container="trainer", mig_profile="3g.40gb", spot=True,
                  tolerations=[{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
                  gpu_products=["NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3"], shm_size="16Gi", priority_class="gpu-high")
    out = render_gpu_pod_spec(spec, **kwargs)
    trainer = out["containers"][1]
    assert trainer["resources"]["limits"] == {"memory": "8Gi", "nvidia.com/mig-3g.40gb": 2}
    assert trainer["resources"]["requests"] == {"cpu": "2", "memory": "8Gi", "nvidia.com/mig-3g.40gb": 2}
    assert trainer["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"}]
    assert "resources" not in out["containers"][0]
    assert out["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},  # existing one covers GPU_TAINT
        SPOT_TAINT,
        {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"},
    ]
    assert out["nodeSelector"] == {"kubernetes.io/os": "linux", "node-type": "ai"}
    assert out["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}]
    assert out["priorityClassName"] == "gpu-high"
    assert out["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3"]}]}]
    validate_pod_spec(out)
    assert render_gpu_pod_spec(out, **kwargs) == out


def test_gpu_request_added_only_when_requests_exist():
    spec = base_spec()
    spec["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
    out = render_gpu_pod_spec(spec, gpus=3)
    assert out["containers"][0]["resources"] == {"requests": {"cpu": "1", "nvidia.com/gpu": 3}, "limits": {"nvidia.com/gpu": 3}}
    validate_pod_spec(out)


def test_existing_equal_limit_kept_even_as_string():
    spec = base_spec()
    spec["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "2"}}
    out = render_gpu_pod_spec(spec, gpus=2)
    assert out["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "2"}


def test_numeric_string_gpus_accepted():
    assert render_gpu_pod_spec(base_spec(), gpus="2") == render_gpu_pod_spec(base_spec(), gpus=2)


def test_gpus_zero_returns_unchanged_copy():
    spec = two_container_spec()
    out = render_gpu_pod_spec(spec, gpus=0, spot=True, shm_size="1Gi", priority_class="x", container="trainer")
    assert out == spec
    assert out is not spec and out["containers"] is not spec["containers"]
    assert render_gpu_pod_spec({}, gpus=0) == {}


def test_gpus_zero_still_validates():
    with pytest.raises(GpuSpecError, match="^mig_profile: "):
        render_gpu_pod_spec(base_spec(), gpus=0, mig_profile="bogus")
    with pytest.raises(GpuSpecError, match="^container: no container named 'nope'"):
        render_gpu_pod_spec(base_spec(), gpus=0, container="nope")


def test_node_selector_override_and_disable():
    out = render_gpu_pod_spec(base_spec(), node_selector={"agentpool": "gpupool"})
    assert out["nodeSelector"] == {"agentpool": "gpupool"}
    out = render_gpu_pod_spec(base_spec(), node_selector={})
    assert "nodeSelector" not in out


def test_tolerations_not_duplicated():
    spec = base_spec()
    spec["tolerations"] = [dict(GPU_TAINT), dict(SPOT_TAINT)]
    out = render_gpu_pod_spec(spec, spot=True, tolerations=[dict(GPU_TAINT)])
    assert out["tolerations"] == [GPU_TAINT, SPOT_TAINT]


def test_wildcard_toleration_covers_everything():
    spec = base_spec()
    spec["tolerations"] = [{"operator": "Exists"}]
    out = render_gpu_pod_spec(spec, spot=True)
    assert out["tolerations"] == [{"operator": "Exists"}]


def test_products_anded_into_every_existing_term():
    spec = base_spec()
    zone_a = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}
    spot_b = {"key": "kubernetes.azure.com/scalesetpriority", "operator": "In", "values": ["spot"]}
    spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [zone_a]}, {"matchExpressions": [spot_b]},
                              {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}
    out = render_gpu_pod_spec(spec, gpu_products=["P1"])
    expr = {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["P1"]}
    terms = out["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [
        {"matchExpressions": [zone_a, expr]},
        {"matchExpressions": [spot_b, expr]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}], "matchExpressions": [expr]},
    ]
    validate_pod_spec(out)
    assert render_gpu_pod_spec(out, gpu_products=["P1"]) == out
    # same values in another order count as present
    assert render_gpu_pod_spec(render_gpu_pod_spec(base_spec(), gpu_products=["A", "B"]), gpu_products=["B", "A"]) == \
        render_gpu_pod_spec(base_spec(), gpu_products=["A", "B"])


def test_products_keep_preferred_affinity_and_pod_affinity():
    spec = base_spec()
    preferred = [{"weight": 1, "preference": {"matchExpressions": [{"key": "x", "operator": "Exists"}]}}]
    spec["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}, "podAntiAffinity": {}}
    out = render_gpu_pod_spec(spec, gpu_products=["P"])
    assert out["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == preferred
    assert out["affinity"]["podAntiAffinity"] == {}
    validate_pod_spec(out)


def test_empty_products_add_nothing():
    assert "affinity" not in render_gpu_pod_spec(base_spec(), gpu_products=[])


def test_shm_existing_matching_volume_reused():
    spec = base_spec()
    spec["volumes"] = [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "8192Mi"}}]
    spec["containers"][0]["volumeMounts"] = [{"name": "shm", "mountPath": "/dev/shm"}]
    out = render_gpu_pod_spec(spec, shm_size="8Gi")
    assert out["volumes"] == spec["volumes"]
    assert out["containers"][0]["volumeMounts"] == spec["containers"][0]["volumeMounts"]


def test_shm_int_bytes():
    out = render_gpu_pod_spec(base_spec(), shm_size=2 ** 30)
    assert out["volumes"][0]["emptyDir"]["sizeLimit"] == str(2 ** 30)
    validate_pod_spec(out)


def test_odd_existing_values_do_not_crash():
    spec = base_spec()
    spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": "soon"}]
    spec["containers"][0]["volumeMounts"] = [{"name": "x", "mountPath": None}]
    spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "nvidia.com/gpu.product", "operator": "In", "values": [1, "P"]}]}]}}}
    out = render_gpu_pod_spec(spec, shm_size="1Gi", gpu_products=["P"])
    assert out["tolerations"][-1] == GPU_TAINT
    assert out["containers"][0]["volumeMounts"][-1] == {"name": "dshm", "mountPath": "/dev/shm"}
    assert out["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"][-1] == \
        {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["P"]}


def test_priority_class_same_value_kept():
    spec = base_spec()
    spec["priorityClassName"] = "gpu"
    assert render_gpu_pod_spec(spec, priority_class="gpu")["priorityClassName"] == "gpu"


def test_output_is_plain_and_deep():
    class TaggedStr(str):
        pass

    class TaggedDict(dict):
        pass

    spec = TaggedDict(containers=[TaggedDict(name=TaggedStr("main"), image="x", env=[{"name": "A", "value": "1"}])])
    out = render_gpu_pod_spec(spec)
    assert type(out) is dict and type(out["containers"][0]) is dict  # pylint: disable=unidiomatic-typecheck
    assert type(out["containers"][0]["name"]) is str  # pylint: disable=unidiomatic-typecheck
    out["containers"][0]["env"][0]["value"] = "changed"
    assert spec["containers"][0]["env"][0]["value"] == "1"


# ---------------------------------------------------------------------------------------------- conflicts

@pytest.mark.parametrize("resources, kwargs, fragment", [
    ({"limits": {"nvidia.com/gpu": 1}}, {"mig_profile": "1g.10gb"},
     "gpus/mig_profile: container 'main' already limits nvidia.com/gpu=1; refusing to replace it with nvidia.com/mig-1g.10gb"),
    ({"limits": {"nvidia.com/mig-1g.10gb": 1}}, {},
     "gpus/mig_profile: container 'main' already limits nvidia.com/mig-1g.10gb=1; refusing to replace it with nvidia.com/gpu"),
    ({"limits": {"nvidia.com/gpu": 1}}, {"gpus": 2}, "gpus: container 'main' already has limits nvidia.com/gpu=1, which conflicts with gpus=2"),
    ({"limits": {"nvidia.com/gpu": "one"}}, {}, "gpus: container 'main' already has limits nvidia.com/gpu='one'"),
    ({"requests": {"nvidia.com/gpu": 4}}, {"gpus": 2}, "gpus: container 'main' already has requests nvidia.com/gpu=4"),
])
def test_gpu_resource_conflicts(resources, kwargs, fragment):
    spec = base_spec()
    spec["containers"][0]["resources"] = resources
    before = copy.deepcopy(spec)
    with pytest.raises(GpuSpecError) as err:
        render_gpu_pod_spec(spec, **kwargs)
    assert fragment in str(err.value)
    assert spec == before


def test_node_selector_conflict():
    spec = base_spec()
    spec["nodeSelector"] = {"node-type": "cpu"}
    with pytest.raises(GpuSpecError, match=r"^node_selector: spec.nodeSelector already pins node-type='cpu', which conflicts with 'ai'"):
        render_gpu_pod_spec(spec)


def test_shm_conflicts():
    spec = base_spec()
    spec["volumes"] = [{"name": "host-shm", "hostPath": {"path": "/dev/shm"}}]
    spec["containers"][0]["volumeMounts"] = [{"name": "host-shm", "mountPath": "/dev/shm"}]
    with pytest.raises(GpuSpecError, match=r"^shm_size: container 'main' already mounts volume 'host-shm' at /dev/shm"):
        render_gpu_pod_spec(spec, shm_size="1Gi")

    spec = base_spec()
    spec["volumes"] = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}]
    with pytest.raises(GpuSpecError, match=r"^shm_size: spec.volumes already has a volume named 'dshm'"):
        render_gpu_pod_spec(spec, shm_size="2Gi")

    spec = base_spec()
    spec["containers"][0]["volumeMounts"] = [{"name": "ghost", "mountPath": "/dev/shm/"}]
    with pytest.raises(GpuSpecError, match=r"spec.volumes has no such volume"):
        render_gpu_pod_spec(spec, shm_size="2Gi")


def test_priority_class_conflict():
    spec = base_spec()
    spec["priorityClassName"] = "low"
    with pytest.raises(GpuSpecError, match=r"^priority_class: spec already sets priorityClassName 'low', which conflicts with 'high'"):
        render_gpu_pod_spec(spec, priority_class="high")


# ---------------------------------------------------------------------------------------------- argument errors

@pytest.mark.parametrize("spec, kwargs, pattern", [
    ([], {}, r"^spec: expected a mapping, got list$"),
    ("x", {}, r"^spec: expected a mapping, got string 'x'$"),
    (None, {}, r"^spec: expected a mapping, got null"),
    ({"apiVersion": "v1", "kind": "Pod", "spec": {}}, {}, r"^spec: expected a PodSpec, got a manifest \(kind 'Pod'\)"),
    ({}, {}, r"^spec: has no containers to receive the GPU limit"),
    ({"containers": []}, {}, r"^spec: has no containers"),
    ({"containers": {"name": "a"}}, {}, r"^spec.containers: expected a list, got mapping"),
    ({"containers": ["a"]}, {}, r"^spec.containers\[0\]: expected a mapping, got string"),
    ({}, {"container": "main"}, r"^container: no container named 'main' in spec.containers \(known: none\)"),
])
def test_spec_errors(spec, kwargs, pattern):
    with pytest.raises(GpuSpecError, match=pattern):
        render_gpu_pod_spec(spec, **kwargs)


def test_unknown_container_lists_known():
    with pytest.raises(GpuSpecError, match=r"^container: no container named 'nope' in spec.containers \(known: 'sidecar', 'trainer'\)$"):
        render_gpu_pod_spec(two_container_spec(), container="nope")


@pytest.mark.parametrize("gpus, pattern", [
    (-1, r"^gpus: expected an integer >= 0, got -1$"),
    (True, r"^gpus: expected a non-negative integer, got bool True$"),
    (1.0, r"^gpus: expected a non-negative integer, got float 1.0$"),
    ("two", r"^gpus: expected a non-negative integer, got string 'two'$"),
    ("-1", r"^gpus: expected a non-negative integer, got string '-1'$"),
    ("1.5", r"^gpus: expected a non-negative integer, got string '1.5'$"),
    (None, r"^gpus: expected a non-negative integer, got null"),
])
def test_gpus_errors(gpus, pattern):
    with pytest.raises(GpuSpecError, match=pattern):
        render_gpu_pod_spec(base_spec(), gpus=gpus)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"container": 3}, r"^container: expected a string, got int 3$"),
    ({"node_selector": ["a"]}, r"^node_selector: expected a mapping, got list$"),
    ({"node_selector": {"gpu": True}}, r"^node_selector\['gpu'\]: expected a string value, got bool True \(quote it in YAML\)$"),
    ({"node_selector": {"bad key!": "x"}}, r"^node_selector key: 'bad key!' is not a valid label or annotation key$"),
    ({"node_selector": {"k": "bad value"}}, r"^node_selector\['k'\]: 'bad value' is not a valid label value$"),
    ({"tolerations": {"key": "a"}}, r"^tolerations: expected a list, got mapping$"),
    ({"tolerations": ["a"]}, r"^tolerations\[0\]: expected a mapping, got string 'a'$"),
    ({"tolerations": [{"key": "a", "colour": "red"}]}, r"^tolerations\[0\]: unknown keys colour"),
    ({"tolerations": [{"key": "a", "operator": "Equals"}]}, r"^tolerations\[0\].operator: expected one of Equal, Exists, got 'Equals'$"),
    ({"tolerations": [{"key": "a", "operator": "Exists", "value": "v"}]}, r"^tolerations\[0\].value: must be empty when operator is Exists$"),
    ({"tolerations": [{"operator": "Equal", "value": "v"}]}, r"^tolerations\[0\].key: an empty key requires operator Exists$"),
    ({"tolerations": [{"key": "a", "effect": "NoRun"}]}, r"^tolerations\[0\].effect: expected one of"),
    ({"tolerations": [{"key": "a", "effect": "NoExecute", "tolerationSeconds": "5"}]}, r"^tolerations\[0\].tolerationSeconds: expected an integer"),
    ({"tolerations": [{"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5}]},
     r"^tolerations\[0\].tolerationSeconds: only valid with effect NoExecute$"),
    ({"tolerations": [{"key": 5}]}, r"^tolerations\[0\].key: expected a string, got int 5$"),
    ({"tolerations": [{"key": "a", "value": 1}]}, r"^tolerations\[0\].value: expected a string, got int 1$"),
    ({"spot": "true"}, r"^spot: expected a boolean \(true/false\), got string 'true'$"),
    ({"gpu_products": "A100"}, r"^gpu_products: expected a list, got string 'A100'$"),
    ({"gpu_products": [None]}, r"^gpu_products\[0\]: expected a string, got null"),
    ({"shm_size": "8GB"}, r"^shm_size: '8GB' is not a Kubernetes quantity"),
    ({"shm_size": "0"}, r"^shm_size: expected a positive quantity, got '0'$"),
    ({"shm_size": -5}, r"^shm_size: expected a positive quantity, got -5$"),
    ({"shm_size": "100m"}, r"^shm_size: '100m' uses a sub-unit suffix"),
    ({"shm_size": 1.5}, r"^shm_size: expected a quantity string such as '8Gi' or an integer number of bytes, got float 1.5$"),
    ({"shm_size": ["1Gi"]}, r"^shm_size: expected a Kubernetes quantity such as '8Gi' or '500m', got list$"),
    ({"priority_class": "High_Priority"}, r"^priority_class: 'High_Priority' is not a valid DNS-1123 subdomain"),
    ({"priority_class": 1}, r"^priority_class: expected a string, got int 1$"),
    ({"mig_profile": "1g"}, r"^mig_profile: '1g' is not a MIG profile name"),
])
def test_argument_errors(kwargs, pattern):
    with pytest.raises(GpuSpecError, match=pattern):
        render_gpu_pod_spec(base_spec(), **kwargs)


@pytest.mark.parametrize("spec, pattern", [
    ({"containers": [{"name": "main", "resources": []}]}, r"^spec.containers\[main\].resources: expected a mapping, got list$"),
    ({"containers": [{"name": "main", "resources": {"limits": []}}]}, r"^spec.containers\[main\].resources.limits: expected a mapping"),
    ({"containers": [{"name": "main", "resources": {"requests": "x"}}]}, r"^spec.containers\[main\].resources.requests: expected a mapping"),
    ({"containers": [{"name": "main"}], "tolerations": {}}, r"^spec.tolerations: expected a list, got mapping$"),
    ({"containers": [{"name": "main"}], "tolerations": ["x"]}, r"^spec.tolerations\[0\]: expected a mapping"),
    ({"containers": [{"name": "main"}], "nodeSelector": []}, r"^spec.nodeSelector: expected a mapping, got list$"),
])
def test_malformed_spec_parts(spec, pattern):
    with pytest.raises(GpuSpecError, match=pattern):
        render_gpu_pod_spec(spec)


@pytest.mark.parametrize("affinity, pattern", [
    ([], r"^spec.affinity: expected a mapping"),
    ({"nodeAffinity": []}, r"^spec.affinity.nodeAffinity: expected a mapping"),
    ({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}}, r"requiredDuringSchedulingIgnoredDuringExecution: expected a mapping"),
    ({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": {}}}}, r"nodeSelectorTerms: expected a list"),
    ({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": ["x"]}}}, r"nodeSelectorTerms\[0\]: expected a mapping"),
    ({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": {}}]}}},
     r"nodeSelectorTerms\[0\].matchExpressions: expected a list"),
])
def test_malformed_affinity(affinity, pattern):
    spec = base_spec()
    spec["affinity"] = affinity
    with pytest.raises(GpuSpecError, match=pattern):
        render_gpu_pod_spec(spec, gpu_products=["P"])


@pytest.mark.parametrize("mutate, pattern", [
    (lambda s: s.__setitem__("volumes", {}), r"^spec.volumes: expected a list"),
    (lambda s: s["containers"][0].__setitem__("volumeMounts", "x"), r"^spec.containers\[main\].volumeMounts: expected a list"),
])
def test_malformed_volumes(mutate, pattern):
    spec = base_spec()
    mutate(spec)
    with pytest.raises(GpuSpecError, match=pattern):
        render_gpu_pod_spec(spec, shm_size="1Gi")


def test_schema_version_is_pinned():
    assert K8S_VERSION == "1.34"
