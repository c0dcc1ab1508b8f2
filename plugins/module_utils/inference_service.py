# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""KServe ``serving.kserve.io/v1beta1`` InferenceService rendering (the ``mlops.platform.inference_service`` filter).

The predictor's pod fields come from ``render_gpu_pod_spec``, so a model server requests its GPU, tolerations
and node placement exactly like any other GPU pod of the collection.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.mlops.platform.plugins.module_utils.gpu_pod_spec import render_gpu_pod_spec
from ansible_collections.mlops.platform.plugins.module_utils.k8s_values import (
    GpuSpecError,
    check_dns1035_label,
    check_dns1123_label,
    check_dns1123_subdomain,
    check_label_key,
    cpu_quantity,
    int_arg,
    memory_quantity,
    plain,
    require_mapping,
    require_string,
    string_map,
)

KSERVE_API_VERSION = "serving.kserve.io/v1beta1"
KSERVE_DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
KSERVE_MODEL_CONTAINER = "kserve-container"
# "Knative" and "Standard" are the names newer KServe releases use for Serverless and RawDeployment.
KSERVE_SCALE_TO_ZERO_MODES = ("Serverless", "Knative")
KSERVE_DEPLOYMENT_MODES = ("Serverless", "RawDeployment", "Knative", "Standard", "ModelMesh")
KSERVE_SCALE_METRICS = ("concurrency", "rps", "cpu", "memory")
KSERVE_PROTOCOL_VERSIONS = ("v1", "v2", "grpc-v1", "grpc-v2")

_URI_RE = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")
_MODEL_FORMAT_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")


def render_inference_service(name, namespace=None, model_format="sklearn", storage_uri=None, gpus=0, mig_profile=None,
                             min_replicas=None, max_replicas=None, canary_traffic_percent=None, runtime=None, spot=False,
                             gpu_products=None, cpu=None, memory=None, deployment_mode=None, labels=None, annotations=None,
                             scale_target=None, scale_metric=None, model_format_version=None, protocol_version=None,
                             service_account_name=None, node_selector=None, tolerations=None, shm_size=None, priority_class=None):
    """Build a KServe ``serving.kserve.io/v1beta1`` InferenceService manifest with a GPU-aware predictor."""
    check_dns1035_label(name, "name")
    if namespace is not None:
        check_dns1123_label(namespace, "namespace")
    require_string(model_format, "model_format")
    if not _MODEL_FORMAT_RE.match(model_format):
        raise GpuSpecError("model_format: %r is not a model format name such as sklearn, pytorch, huggingface or triton" % (model_format,))
    if model_format_version is not None:
        require_string(model_format_version, "model_format_version")
    if storage_uri is not None:
        require_string(storage_uri, "storage_uri")
        if not _URI_RE.match(storage_uri):
            raise GpuSpecError("storage_uri: %r is not a URI with a scheme, e.g. s3://bucket/model, gs://..., pvc://claim/path, hf://org/model"
                               % (storage_uri,))
    gpus = int_arg(gpus, "gpus")
    if runtime is not None:
        check_dns1123_subdomain(runtime, "runtime")
    if protocol_version is not None and protocol_version not in KSERVE_PROTOCOL_VERSIONS:
        raise GpuSpecError("protocol_version: expected one of %s, got %r" % (", ".join(KSERVE_PROTOCOL_VERSIONS), protocol_version))
    if deployment_mode is not None and deployment_mode not in KSERVE_DEPLOYMENT_MODES:
        raise GpuSpecError("deployment_mode: expected one of %s, got %r" % (", ".join(KSERVE_DEPLOYMENT_MODES), deployment_mode))
    if min_replicas is not None:
        min_replicas = int_arg(min_replicas, "min_replicas")
    if max_replicas is not None:
        max_replicas = int_arg(max_replicas, "max_replicas", minimum=1)
    if min_replicas is not None and max_replicas is not None and min_replicas > max_replicas:
        raise GpuSpecError("min_replicas/max_replicas: min_replicas (%d) is greater than max_replicas (%d)" % (min_replicas, max_replicas))
    if canary_traffic_percent is not None:
        canary_traffic_percent = int_arg(canary_traffic_percent, "canary_traffic_percent")
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
        scale_target = int_arg(scale_target, "scale_target", minimum=1)
    if service_account_name is not None:
        check_dns1123_subdomain(service_account_name, "service_account_name")
    if labels is not None:
        string_map(labels, "labels")
    if annotations is not None:
        require_mapping(annotations, "annotations")
        for key, value in annotations.items():
            check_label_key(key, "annotations key")
            require_string(value, "annotations[%r]" % key, allow_empty=True)
        if KSERVE_DEPLOYMENT_MODE_ANNOTATION in annotations and deployment_mode is not None \
                and annotations[KSERVE_DEPLOYMENT_MODE_ANNOTATION] != deployment_mode:
            raise GpuSpecError("annotations: %s=%r conflicts with deployment_mode=%r" % (
                KSERVE_DEPLOYMENT_MODE_ANNOTATION, annotations[KSERVE_DEPLOYMENT_MODE_ANNOTATION], deployment_mode))

    resources = {}
    if cpu is not None:
        cpu_text = cpu_quantity(cpu, "cpu")[0]
        resources.setdefault("requests", {})["cpu"] = cpu_text
        resources.setdefault("limits", {})["cpu"] = cpu_text
    if memory is not None:
        mem_text = memory_quantity(memory, "memory")[0]
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
        metadata["labels"] = plain(labels)
    merged_annotations = plain(annotations) if annotations else {}
    if deployment_mode is not None:
        merged_annotations[KSERVE_DEPLOYMENT_MODE_ANNOTATION] = deployment_mode
    if merged_annotations:
        metadata["annotations"] = merged_annotations
    return {"apiVersion": KSERVE_API_VERSION, "kind": "InferenceService", "metadata": metadata, "spec": {"predictor": predictor}}
