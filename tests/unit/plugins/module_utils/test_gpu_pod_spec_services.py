# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""zero-to-jupyterhub profiles and KServe InferenceService rendering from gpu_pod_spec."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

import pytest

from ansible_collections.mlops.platform.plugins.module_utils.gpu_vocabulary import (
    GPU_TOLERATION as GPU_TAINT,
    SPOT_TOLERATION as SPOT_TAINT,
)
from ansible_collections.mlops.platform.plugins.module_utils.inference_service import render_inference_service
from ansible_collections.mlops.platform.plugins.module_utils.jupyterhub_profiles import kubespawner_bytes, render_jupyterhub_profiles
from ansible_collections.mlops.platform.plugins.module_utils.k8s_values import GpuSpecError
from ansible_collections.mlops.platform.tests.unit.plugins.module_utils.test_gpu_pod_spec_schema import (
    predictor_as_pod_spec,
    validate_inference_service,
    validate_pod_spec,
)

CPU_PROFILE = {"name": "CPU small", "description": "2 cores", "image": "quay.io/jupyter/scipy-notebook:2025-10-20", "cpu": 2, "memory": "8Gi"}
GPU_PROFILE = {"name": "A100 slice", "description": "one 1g.10gb slice", "image": "quay.io/jupyter/pytorch-notebook:cuda12",
               "gpus": 1, "mig_profile": "1g.10gb", "cpu": "500m", "memory": "1.5Gi", "default": True,
               "gpu_products": ["NVIDIA-A100-SXM4-80GB"], "spot": True}


# ---------------------------------------------------------------------------------------------- jupyterhub

def test_profiles():
    profiles = [CPU_PROFILE, GPU_PROFILE]
    before = copy.deepcopy(profiles)
    out = render_jupyterhub_profiles(profiles)
    assert profiles == before
    assert out[0] == {"display_name": "CPU small", "slug": "cpu-small", "description": "2 cores",
                      "kubespawner_override": {"image": CPU_PROFILE["image"], "cpu_limit": 2.0, "mem_limit": "8G"}}
    assert out[1] == {
        "display_name": "A100 slice", "slug": "a100-slice", "description": "one 1g.10gb slice", "default": True,
        "kubespawner_override": {
            "image": GPU_PROFILE["image"], "cpu_limit": 0.5, "mem_limit": "1536M",
            "extra_resource_limits": {"nvidia.com/mig-1g.10gb": "1"},
            "tolerations": [GPU_TAINT, SPOT_TAINT],
            "node_selector": {"node-type": "ai"},
            "node_affinity_required": [{"matchExpressions": [
                {"key": "nvidia.com/gpu.product", "operator": "In", "values": ["NVIDIA-A100-SXM4-80GB"]}]}],
        },
    }
    assert "extra_tolerations" not in out[1]["kubespawner_override"]


def test_profile_overrides_make_a_valid_pod():
    """The override keys map onto PodSpec fields; build that pod and validate it against the schema."""
    for entry in render_jupyterhub_profiles([CPU_PROFILE, GPU_PROFILE, dict(GPU_PROFILE, name="full", mig_profile=None, gpus=2, default=False)]):
        override = entry["kubespawner_override"]
        spec = {"containers": [{"name": "notebook", "image": override["image"],
                                "resources": {"limits": dict(override.get("extra_resource_limits", {}))}}]}
        if "tolerations" in override:
            spec["tolerations"] = override["tolerations"]
        if "node_selector" in override:
            spec["nodeSelector"] = override["node_selector"]
        if "node_affinity_required" in override:
            spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": override["node_affinity_required"]}}}
        validate_pod_spec(spec)


def test_cpu_only_profiles_get_no_gpu_settings():
    out = render_jupyterhub_profiles([CPU_PROFILE, dict(CPU_PROFILE, name="CPU spot", spot=True)])
    assert set(out[0]["kubespawner_override"]) == {"image", "cpu_limit", "mem_limit"}
    assert out[1]["kubespawner_override"]["tolerations"] == [SPOT_TAINT]
    assert "node_selector" not in out[1]["kubespawner_override"]


def test_guarantees_and_defaults():
    out = render_jupyterhub_profiles([{"name": "g", "image": "i", "gpus": "2", "cpu": 4, "cpu_guarantee": 1.5,
                                       "memory": "16Gi", "memory_guarantee": "4096Mi"}])
    override = out[0]["kubespawner_override"]
    assert override["cpu_guarantee"] == 1.5 and override["mem_guarantee"] == "4G"
    assert override["extra_resource_limits"] == {"nvidia.com/gpu": "2"}
    assert out[0]["description"] == "" and "default" not in out[0]
    assert render_jupyterhub_profiles([]) == []


@pytest.mark.parametrize("value, expected", [("8Gi", "8G"), ("512Mi", "512M"), ("1Ti", "1T"), ("1536Mi", "1536M"),
                                             ("100Ki", "100K"), (1000, "1000"), ("1000", "1000"), ("1.5Gi", "1536M")])
def test_kubespawner_bytes(value, expected):
    assert kubespawner_bytes(value, "memory") == expected


@pytest.mark.parametrize("profiles, pattern", [
    ({"name": "x"}, r"^profiles: expected a list, got mapping$"),
    (["x"], r"^profiles\[0\]: expected a mapping, got string 'x'$"),
    ([{"image": "i"}], r"^profiles\[0\]: missing required key 'name'$"),
    ([{"name": "a"}], r"^profiles\[0\] \('a'\): missing required key 'image'$"),
    ([{"name": "a", "image": "i", "gpu": 1}], r"^profiles\[0\]: unknown keys gpu; allowed keys are name, description, image"),
    ([{"name": "a", "image": "i", "extra_tolerations": []}], r"^profiles\[0\]: unknown keys extra_tolerations"),
    ([{"name": "a", "image": "i"}, {"name": "a", "image": "j"}], r"^profiles\[1\] \('a'\).name: duplicate profile name, already used by profiles\[0\]$"),
    ([{"name": "A b", "image": "i"}, {"name": "a-b", "image": "j"}], r"^profiles\[1\] \('a-b'\).name: slug 'a-b' clashes with profiles\[0\]"),
    ([{"name": "a", "image": "i", "default": True}, {"name": "b", "image": "i", "default": True}],
     r"^profiles\[1\] \('b'\).default: only one profile may be the default, profiles\[0\] already is$"),
    ([{"name": "a", "image": "i", "default": "yes"}], r"^profiles\[0\] \('a'\).default: expected a boolean"),
    ([{"name": "a", "image": "i", "spot": 1}], r"^profiles\[0\] \('a'\).spot: expected a boolean"),
    ([{"name": 5, "image": "i"}], r"^profiles\[0\].name: expected a string, got int 5$"),
    ([{"name": "", "image": "i"}], r"^profiles\[0\].name: expected a non-empty string$"),
    ([{"name": "a", "image": ""}], r"^profiles\[0\] \('a'\).image: expected a non-empty string$"),
    ([{"name": "a", "image": "my image"}], r"^profiles\[0\] \('a'\).image: 'my image' contains whitespace$"),
    ([{"name": "a", "image": "i", "description": 3}], r"^profiles\[0\] \('a'\).description: expected a string, got int 3$"),
    ([{"name": "a", "image": "i", "gpus": -1}], r"^profiles\[0\] \('a'\).gpus: expected an integer >= 0, got -1$"),
    ([{"name": "a", "image": "i", "gpus": True}], r"^profiles\[0\] \('a'\).gpus: expected a non-negative integer, got bool True$"),
    ([{"name": "a", "image": "i", "gpus": 1, "mig_profile": "big"}], r"^profiles\[0\] \('a'\).mig_profile: 'big' is not a MIG profile name"),
    ([{"name": "a", "image": "i", "gpus": 1, "gpu_products": "T4"}], r"^profiles\[0\] \('a'\).gpu_products: expected a list, got string 'T4'$"),
    ([{"name": "a", "image": "i", "mig_profile": "1g.10gb"}], r"^profiles\[0\] \('a'\): mig_profile and gpu_products need gpus >= 1"),
    ([{"name": "a", "image": "i", "gpu_products": ["T4"]}], r"^profiles\[0\] \('a'\): mig_profile and gpu_products need gpus >= 1"),
    ([{"name": "a", "image": "i", "cpu": "two"}], r"^profiles\[0\] \('a'\).cpu: 'two' is not a Kubernetes quantity"),
    ([{"name": "a", "image": "i", "cpu": 0}], r"^profiles\[0\] \('a'\).cpu: expected a positive number of cores"),
    ([{"name": "a", "image": "i", "cpu": True}], r"^profiles\[0\] \('a'\).cpu: expected a Kubernetes quantity"),
    ([{"name": "a", "image": "i", "cpu_guarantee": -1}], r"^profiles\[0\] \('a'\).cpu_guarantee: expected a positive number of cores"),
    ([{"name": "a", "image": "i", "memory": "8G"}], r"^profiles\[0\] \('a'\).memory: '8G' is ambiguous .* '8Gi'$"),
    ([{"name": "a", "image": "i", "memory": "8gb"}], r"^profiles\[0\] \('a'\).memory: '8gb' is not a Kubernetes quantity"),
    ([{"name": "a", "image": "i", "memory": "1.3Ki"}], r"^profiles\[0\] \('a'\).memory: '1.3Ki' is not a whole number of bytes$"),
    ([{"name": "a", "image": "i", "memory_guarantee": "0"}], r"^profiles\[0\] \('a'\).memory_guarantee: expected a positive quantity"),
    ([{"name": "a", "image": "i", "cpu": 1, "cpu_guarantee": 2}], r"^profiles\[0\] \('a'\).cpu_guarantee: exceeds cpu \(2.0 > 1.0\)$"),
    ([{"name": "a", "image": "i", "memory": "1Gi", "memory_guarantee": "2Gi"}], r"^profiles\[0\] \('a'\).memory_guarantee: exceeds memory \(2Gi > 1Gi\)$"),
])
def test_profile_errors(profiles, pattern):
    with pytest.raises(GpuSpecError, match=pattern):
        render_jupyterhub_profiles(profiles)


# ---------------------------------------------------------------------------------------------- kserve

def test_inference_service_gpu():
    out = render_inference_service(
        "llama-chat", namespace="serving", model_format="huggingface", model_format_version="1", storage_uri="hf://meta-llama/Llama-3.1-8B",
        gpus=1, cpu="4", memory="32Gi", min_replicas=0, max_replicas=3, canary_traffic_percent=10, runtime="kserve-huggingfaceserver",
        protocol_version="v2", spot=True, gpu_products=["NVIDIA-A100-SXM4-80GB"], deployment_mode="Serverless", labels={"team": "nlp"},
        annotations={"example.com/owner": "nlp"}, scale_target=5, scale_metric="concurrency", service_account_name="models",
        shm_size="8Gi", priority_class="inference")
    assert out["metadata"] == {"name": "llama-chat", "namespace": "serving", "labels": {"team": "nlp"},
                               "annotations": {"example.com/owner": "nlp", "serving.kserve.io/deploymentMode": "Serverless"}}
    predictor = out["spec"]["predictor"]
    assert predictor["minReplicas"] == 0 and predictor["maxReplicas"] == 3 and predictor["canaryTrafficPercent"] == 10
    assert predictor["scaleTarget"] == 5 and predictor["scaleMetric"] == "concurrency" and predictor["serviceAccountName"] == "models"
    assert predictor["tolerations"] == [GPU_TAINT, SPOT_TAINT]
    assert predictor["nodeSelector"] == {"node-type": "ai"}
    assert predictor["priorityClassName"] == "inference"
    assert predictor["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}]
    assert "containers" not in predictor
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "huggingface", "version": "1"}
    assert model["storageUri"] == "hf://meta-llama/Llama-3.1-8B" and model["runtime"] == "kserve-huggingfaceserver"
    assert model["protocolVersion"] == "v2"
    assert model["resources"] == {"requests": {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": 1},
                                  "limits": {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": 1}}
    assert model["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"}]
    assert "name" not in model
    validate_inference_service(out)
    assert predictor_as_pod_spec(predictor)["containers"][0]["name"] == "kserve-container"


def test_inference_service_cpu_only_and_minimal():
    out = render_inference_service("iris", storage_uri="gs://kfserving-examples/models/sklearn/1.0/model")
    assert out == {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "iris"},
                   "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"},
                                                    "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model"}}}}
    validate_inference_service(out)
    cpu = render_inference_service("iris", cpu=1, memory="2Gi", deployment_mode="RawDeployment", min_replicas=1, max_replicas=2)
    assert "tolerations" not in cpu["spec"]["predictor"] and "nodeSelector" not in cpu["spec"]["predictor"]
    assert cpu["spec"]["predictor"]["model"]["resources"] == {"requests": {"cpu": 1, "memory": "2Gi"}, "limits": {"cpu": 1, "memory": "2Gi"}}
    validate_inference_service(cpu)


def test_inference_service_mig_standard_mode():
    out = render_inference_service("triton", model_format="triton", gpus=2, mig_profile="3g.40gb", deployment_mode="Standard",
                                   min_replicas=1, max_replicas=1, storage_uri="pvc://models/triton")
    assert out["spec"]["predictor"]["model"]["resources"] == {"limits": {"nvidia.com/mig-3g.40gb": 2}}
    assert out["metadata"]["annotations"] == {"serving.kserve.io/deploymentMode": "Standard"}
    validate_inference_service(out)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"name": "Bad_Name"}, r"^name: 'Bad_Name' is not a valid DNS-1035 label"),
    ({"name": "1model"}, r"^name: '1model' is not a valid DNS-1035 label"),
    ({"name": "a" * 64}, r"^name: 'a+' is not a valid DNS-1035 label"),
    ({"name": 3}, r"^name: expected a string, got int 3$"),
    ({"namespace": "Serving"}, r"^namespace: 'Serving' is not a valid DNS-1123 label"),
    ({"model_format": "Py Torch"}, r"^model_format: 'Py Torch' is not a model format name"),
    ({"model_format": None}, r"^model_format: expected a string, got null"),
    ({"model_format_version": 2}, r"^model_format_version: expected a string, got int 2$"),
    ({"storage_uri": "/models/x"}, r"^storage_uri: '/models/x' is not a URI with a scheme"),
    ({"gpus": -2}, r"^gpus: expected an integer >= 0, got -2$"),
    ({"gpus": 1, "mig_profile": "1g"}, r"^mig_profile: '1g' is not a MIG profile name"),
    ({"runtime": "My Runtime"}, r"^runtime: 'My Runtime' is not a valid DNS-1123 subdomain"),
    ({"protocol_version": "v3"}, r"^protocol_version: expected one of v1, v2, grpc-v1, grpc-v2, got 'v3'$"),
    ({"deployment_mode": "serverless"}, r"^deployment_mode: expected one of Serverless, RawDeployment, Knative, Standard, ModelMesh, got 'serverless'$"),
    ({"min_replicas": -1}, r"^min_replicas: expected an integer >= 0, got -1$"),
    ({"max_replicas": 0}, r"^max_replicas: expected an integer >= 1, got 0$"),
    ({"min_replicas": 3, "max_replicas": 2}, r"^min_replicas/max_replicas: min_replicas \(3\) is greater than max_replicas \(2\)$"),
    ({"canary_traffic_percent": 101}, r"^canary_traffic_percent: expected 0..100, got 101$"),
    ({"canary_traffic_percent": 10.5}, r"^canary_traffic_percent: expected a non-negative integer, got float 10.5$"),
    ({"canary_traffic_percent": 10, "deployment_mode": "RawDeployment"},
     r"^canary_traffic_percent: canary rollouts need deployment_mode Serverless, got 'RawDeployment'$"),
    ({"min_replicas": 0, "deployment_mode": "Standard"}, r"^min_replicas: scale to zero \(min_replicas=0\) needs deployment_mode Serverless, got 'Standard'$"),
    ({"scale_metric": "gpu"}, r"^scale_metric: expected one of concurrency, rps, cpu, memory, got 'gpu'$"),
    ({"scale_target": 0}, r"^scale_target: expected an integer >= 1, got 0$"),
    ({"service_account_name": "SA"}, r"^service_account_name: 'SA' is not a valid DNS-1123 subdomain"),
    ({"labels": ["a"]}, r"^labels: expected a mapping, got list$"),
    ({"labels": {"team": 1}}, r"^labels\['team'\]: expected a string value, got int 1"),
    ({"annotations": "x"}, r"^annotations: expected a mapping, got string 'x'$"),
    ({"annotations": {"a": 1}}, r"^annotations\['a'\]: expected a string, got int 1$"),
    ({"annotations": {"bad key": "x"}}, r"^annotations key: 'bad key' is not a valid label or annotation key$"),
    ({"annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"}, "deployment_mode": "Serverless"},
     r"^annotations: serving.kserve.io/deploymentMode='RawDeployment' conflicts with deployment_mode='Serverless'$"),
    ({"cpu": "lots"}, r"^cpu: 'lots' is not a Kubernetes quantity"),
    ({"memory": "-1Gi"}, r"^memory: '-1Gi' is not a Kubernetes quantity"),
    ({"gpus": 1, "spot": "no"}, r"^spot: expected a boolean"),
    ({"gpus": 1, "gpu_products": "A100"}, r"^gpu_products: expected a list, got string 'A100'$"),
    ({"gpus": 1, "shm_size": "big"}, r"^shm_size: 'big' is not a Kubernetes quantity"),
    ({"gpus": 1, "node_selector": []}, r"^node_selector: expected a mapping, got list$"),
    ({"gpus": 1, "tolerations": {}}, r"^tolerations: expected a list, got mapping$"),
    ({"gpus": 1, "priority_class": "P"}, r"^priority_class: 'P' is not a valid DNS-1123 subdomain"),
])
def test_inference_service_errors(kwargs, pattern):
    kwargs = dict(kwargs)
    name = kwargs.pop("name", "model")
    with pytest.raises(GpuSpecError, match=pattern):
        render_inference_service(name, **kwargs)
