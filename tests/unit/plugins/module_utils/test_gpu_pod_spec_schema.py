# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline Kubernetes OpenAPI validation used by the gpu_pod_spec tests, and tests of that validation.

Rendered specs are validated with kubernetes-validate against the schema of Kubernetes 1.34 (strict mode:
unknown fields are errors). A PodSpec is wrapped in a Pod manifest first. There is no schema for KServe's
InferenceService, so its predictor is checked by turning it back into a PodSpec (the predictor is a PodSpec
extension whose ``model`` is a Container extension) and validating that, plus explicit shape checks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import kubernetes_validate
import pytest

K8S_VERSION = "1.34"

# Fields KServe's predictor adds on top of the PodSpec, and its model adds on top of the Container.
PREDICTOR_EXTENSION_FIELDS = ("minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "canaryTrafficPercent",
                              "containerConcurrency", "timeout", "logger", "batcher", "labels", "annotations",
                              "deploymentStrategy", "model")
MODEL_EXTENSION_FIELDS = ("modelFormat", "runtime", "protocolVersion", "storageUri", "storage")


def validate_pod_spec(spec, image="registry.example.com/app:1.0"):
    """Validate ``spec`` as the spec of a Pod; containers without an image get ``image`` (as the API would need)."""
    spec = dict(spec)
    spec["containers"] = [dict(c, image=c.get("image", image)) for c in spec.get("containers", [])]
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "schema-check"}, "spec": spec}
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def predictor_as_pod_spec(predictor):
    """The PodSpec a KServe predictor stands for: pod fields plus the model as container ``kserve-container``."""
    pod = dict((k, v) for k, v in predictor.items() if k not in PREDICTOR_EXTENSION_FIELDS)
    model = dict((k, v) for k, v in predictor["model"].items() if k not in MODEL_EXTENSION_FIELDS)
    model["name"] = "kserve-container"
    pod["containers"] = [model] + list(pod.get("containers", []))
    return pod


def validate_inference_service(manifest):
    """Check the InferenceService's shape and validate its predictor's PodSpec part against the Kubernetes schema."""
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert manifest["kind"] == "InferenceService"
    assert set(manifest) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(manifest["metadata"]) <= {"name", "namespace", "labels", "annotations"}
    assert set(manifest["spec"]) == {"predictor"}
    predictor = manifest["spec"]["predictor"]
    model = predictor["model"]
    assert isinstance(model["modelFormat"]["name"], str)
    assert set(model["modelFormat"]) <= {"name", "version"}
    for key in ("minReplicas", "maxReplicas", "canaryTrafficPercent", "scaleTarget"):
        assert key not in predictor or isinstance(predictor[key], int)
    validate_pod_spec(predictor_as_pod_spec(predictor))


# ---------------------------------------------------------------------------------------------- the checks can fail

@pytest.mark.parametrize("spec", [
    {"containers": [{"name": "a", "resourcez": {}}]},
    {"containers": [{"name": "a"}], "tolerations": [{"key": "a", "tolerationSeconds": "x"}]},
    {"containers": [{"name": "a"}], "nodeSelector": {"node-type": 1}},
    {"containers": [{"name": "a"}], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"terms": []}}}},
    {"containers": [{"name": "a", "volumeMounts": [{"name": "dshm"}]}]},
])
def test_validator_rejects_invalid_pod_specs(spec):
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_pod_spec(spec)


def test_validator_accepts_valid_pod_spec():
    validate_pod_spec({"containers": [{"name": "a", "resources": {"limits": {"nvidia.com/gpu": 1}}}],
                       "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]})


def test_inference_service_checker_rejects_bad_shapes():
    good = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "m"},
            "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://b/m"}}}}
    validate_inference_service(good)
    bad_model = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "m"},
                 "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "resources": {"limit": {}}}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_inference_service(bad_model)
    bad_pod = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "m"},
               "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}}, "tolerations": {}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_inference_service(bad_pod)
    with pytest.raises(AssertionError):
        validate_inference_service(dict(good, kind="Deployment"))
