# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The testbed serves the real upstream CRDs, and its API server validates custom resources against them.

Every object here is created with a server-side dry run: the API server runs its full validation
(the CRD's OpenAPI schema included) and stores nothing, so the tests leave no trace and do not
disturb other users of the same testbed.
"""

from __future__ import annotations

import json
import os

import pytest

import crd_downlevel
import upstream


REQUIRED = (
    "clusterpolicies.nvidia.com", "nvidiadrivers.nvidia.com",
    "inferenceservices.serving.kserve.io", "servingruntimes.serving.kserve.io", "clusterservingruntimes.serving.kserve.io",
    "servicemonitors.monitoring.coreos.com", "podmonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com",
)


@pytest.fixture(scope="module")
def served(k8s):
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    return {c.metadata.name: c for c in client.ApiextensionsV1Api(k8s).list_custom_resource_definition().items}


@pytest.fixture(scope="module")
def custom(k8s):
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    return client.CustomObjectsApi(k8s)


def _create(custom, group, version, plural, body, namespace=None):
    """Create with dryRun=All; returns None when accepted, else (HTTP status, message)."""
    from kubernetes.client.exceptions import ApiException  # pylint: disable=import-outside-toplevel

    try:
        if namespace:
            custom.create_namespaced_custom_object(group, version, namespace, plural, body, dry_run="All")
        else:
            custom.create_cluster_custom_object(group, version, plural, body, dry_run="All")
    except ApiException as err:
        return err.status, json.loads(err.body).get("message", err.body)
    return None


def _rejected(result, *needles):
    assert result is not None, "the API server accepted an invalid object"
    status, message = result
    assert status == 422, (status, message)
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize("name", REQUIRED)
def test_real_crd_is_established(served, name):
    assert name in served, "%s is not served; served: %s" % (name, sorted(served))
    conditions = {c.type: c.status for c in served[name].status.conditions or []}
    assert conditions.get("Established") == "True", conditions
    assert conditions.get("NamesAccepted") == "True", conditions


def test_every_upstream_crd_is_served_down_levelled(served):
    """Each upstream CRD is served, with the upstream schema minus only what the down-level removed."""
    upstream.upstream_path()
    crds, rows = crd_downlevel.report(upstream.UPSTREAM)
    assert set(rows) <= set(served), sorted(set(rows) - set(served))
    for lowered in crds:
        name = lowered["metadata"]["name"]
        live = {v.name: v for v in served[name].spec.versions}
        for version in lowered["spec"]["versions"]:
            schema = live[version["name"]].schema.open_apiv3_schema
            want = version["schema"]["openAPIV3Schema"]
            assert sorted(schema.properties or {}) == sorted(want.get("properties") or {}), name
            assert sorted((schema.properties or {}).get("spec").properties or {} if "spec" in (schema.properties or {}) else []) == \
                sorted((want.get("properties") or {}).get("spec", {}).get("properties") or {}), name


def test_down_level_report_is_in_the_state_directory(testbed):
    report = os.path.join(os.path.dirname(testbed.kubeconfig), "crds-downlevel.json")
    if not os.path.exists(report):
        pytest.fail("no down-level report at %s: is this cluster a testbed started by testbed.py up?" % report)
    with open(report, encoding="utf-8") as handle:
        data = json.load(handle)
    _crds, rows = crd_downlevel.report(upstream.UPSTREAM)
    assert data["crds"] == rows


# --- KServe ----------------------------------------------------------------------------------------------------------

def inference_service(predictor):
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "sklearn-iris"}, "spec": {"predictor": predictor}}


VALID_PREDICTOR = {
    "minReplicas": 1, "maxReplicas": 2,
    "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "pvc://models/iris",
              "resources": {"limits": {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"}}},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
}


def test_inference_service_valid_is_accepted(custom, namespace):
    assert _create(custom, "serving.kserve.io", "v1beta1", "inferenceservices", inference_service(VALID_PREDICTOR), namespace) is None


def test_inference_service_string_for_integer_is_rejected(custom, namespace):
    predictor = dict(VALID_PREDICTOR, minReplicas="two")
    result = _create(custom, "serving.kserve.io", "v1beta1", "inferenceservices", inference_service(predictor), namespace)
    _rejected(result, "spec.predictor.minReplicas", "integer")


def test_inference_service_wrong_nested_type_is_rejected(custom, namespace):
    predictor = dict(VALID_PREDICTOR, model=dict(VALID_PREDICTOR["model"], modelFormat="sklearn"))
    result = _create(custom, "serving.kserve.io", "v1beta1", "inferenceservices", inference_service(predictor), namespace)
    _rejected(result, "spec.predictor.model.modelFormat", "object")


def test_inference_service_missing_required_field_is_rejected(custom, namespace):
    """The upstream schema requires a model format's name; the empty-default removal did not loosen that."""
    predictor = dict(VALID_PREDICTOR, model=dict(VALID_PREDICTOR["model"], modelFormat={"version": "1"}))
    result = _create(custom, "serving.kserve.io", "v1beta1", "inferenceservices", inference_service(predictor), namespace)
    _rejected(result, "spec.predictor.model.modelFormat.name", "Required")


def test_serving_runtime_checks_its_containers(custom, namespace):
    runtime = {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "ServingRuntime", "metadata": {"name": "rt"},
               "spec": {"supportedModelFormats": [{"name": "sklearn", "version": "1", "autoSelect": True}],
                        "containers": [{"name": "kserve-container", "image": "kserve/sklearnserver:v0.20.0",
                                        "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}}
    assert _create(custom, "serving.kserve.io", "v1alpha1", "servingruntimes", runtime, namespace) is None
    runtime["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    _rejected(_create(custom, "serving.kserve.io", "v1alpha1", "servingruntimes", runtime, namespace), "containerPort")
    cluster_runtime = dict(runtime, kind="ClusterServingRuntime")
    _rejected(_create(custom, "serving.kserve.io", "v1alpha1", "clusterservingruntimes", cluster_runtime), "containerPort")


# --- NVIDIA GPU operator ---------------------------------------------------------------------------------------------

def cluster_policy(**overrides):
    spec = {section: {} for section in ("operator", "daemonsets")}
    spec.update({section: {"enabled": True} for section in ("driver", "toolkit", "dcgm", "dcgmExporter", "gfd", "devicePlugin")})
    spec["nodeStatusExporter"] = {"enabled": False}
    spec.update(overrides)
    return {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "metadata": {"name": "t-dry-run-policy"}, "spec": spec}


def test_cluster_policy_valid_is_accepted(custom):
    body = cluster_policy(mig={"strategy": "single"}, devicePlugin={"enabled": True, "config": {"name": "ts", "default": "any"}})
    assert _create(custom, "nvidia.com", "v1", "clusterpolicies", body) is None


def test_cluster_policy_wrong_type_is_rejected(custom):
    _rejected(_create(custom, "nvidia.com", "v1", "clusterpolicies", cluster_policy(driver={"enabled": "yes"})),
              "spec.driver.enabled", "boolean")


def test_cluster_policy_wrong_enum_and_missing_section_are_rejected(custom):
    _rejected(_create(custom, "nvidia.com", "v1", "clusterpolicies", cluster_policy(mig={"strategy": "double"})),
              "spec.mig.strategy", "double")
    body = cluster_policy()
    del body["spec"]["driver"]
    _rejected(_create(custom, "nvidia.com", "v1", "clusterpolicies", body), "spec.driver", "Required")


def test_nvidia_driver_is_validated(custom):
    body = {"apiVersion": "nvidia.com/v1alpha1", "kind": "NVIDIADriver", "metadata": {"name": "t-dry-run-driver"},
            "spec": {"driverType": "gpu", "image": "driver", "repository": "nvcr.io/nvidia", "version": "580.95.05"}}
    assert _create(custom, "nvidia.com", "v1alpha1", "nvidiadrivers", body) is None
    body["spec"]["driverType"] = "quantum"
    _rejected(_create(custom, "nvidia.com", "v1alpha1", "nvidiadrivers", body), "spec.driverType")


# --- Prometheus operator ---------------------------------------------------------------------------------------------

def test_monitors_and_rules_are_validated(custom, namespace):
    group, version = "monitoring.coreos.com", "v1"
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "dcgm"},
               "spec": {"selector": {"matchLabels": {"app": "dcgm-exporter"}},
                        "endpoints": [{"port": "metrics", "interval": "15s"}]}}
    assert _create(custom, group, version, "servicemonitors", monitor, namespace) is None
    monitor["spec"]["endpoints"][0]["interval"] = 15
    _rejected(_create(custom, group, version, "servicemonitors", monitor, namespace), "interval")

    pod_monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {"name": "dcgm"},
                   "spec": {"selector": {"matchLabels": {"app": "dcgm-exporter"}},
                            "podMetricsEndpoints": [{"port": "metrics"}]}}
    assert _create(custom, group, version, "podmonitors", pod_monitor, namespace) is None
    pod_monitor["spec"]["podMetricsEndpoints"] = {"port": "metrics"}
    _rejected(_create(custom, group, version, "podmonitors", pod_monitor, namespace), "podMetricsEndpoints")

    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "gpu"},
            "spec": {"groups": [{"name": "gpu", "rules": [{"alert": "GpuHot", "expr": "DCGM_FI_DEV_GPU_TEMP > 85",
                                                              "for": "5m", "labels": {"severity": "warning"}}]}]}}
    assert _create(custom, group, version, "prometheusrules", rule, namespace) is None
    del rule["spec"]["groups"][0]["name"]
    _rejected(_create(custom, group, version, "prometheusrules", rule, namespace), "name", "Required")
