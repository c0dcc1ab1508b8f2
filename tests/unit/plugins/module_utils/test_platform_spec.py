# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform spec: every problem named by its path; valid specs mapped onto the roles' variables."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os

import pytest
import yaml

from ansible_collections.mlops.platform.plugins.module_utils.platform_base import PlatformSpecError, render_platform_base
from ansible_collections.mlops.platform.plugins.module_utils.platform_spec import role_vars, spec_errors

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))

# The smallest valid spec outside a throw-away environment.
MINIMAL = {
    "gpu": {"nodeSelector": "accelerator=nvidia-gpu"},
    "jupyterhub": {"publicUrl": "https://hub.example.com",
                   "auth": {"type": "github", "clientId": "id", "clientSecret": "secret", "allowedUsers": ["alice"]}},
}

FULL = {
    "gpu": {"enabled": True, "provider": "aks", "resourceGroup": "rg", "clusterName": "aks", "poolName": "gpu",
            "nodePoolSize": "Standard_NC24ads_A100_v4", "autoscaling": True, "nodeCount": 1, "minNodes": 0, "maxNodes": 10,
            "gpusPerNode": 1, "driverOwner": "aks", "spot": {"enabled": True, "maxPrice": 1.5, "evictionPolicy": "Deallocate"},
            "sharing": {"strategy": "time-slicing", "replicas": 4}},
    "jupyterhub": {"publicUrl": "https://hub.example.com",
                   "auth": {"type": "azuread", "tenantId": "t", "clientId": "c", "clientSecret": "s", "adminGroups": ["admins"]},
                   "userResources": {"cpu": 4, "memory": "16Gi", "gpu": 1}},
    "mlflow": {"storage": "azure-blob", "storageAccount": "stmlops", "connectionString": "cs",
               "database": {"type": "external", "host": "pg.example.com", "user": "mlflow", "password": "pw"},
               "auth": {"adminPassword": "admin-pw"}},
    "modelServing": {"mode": "Knative", "services": [
        {"name": "cpu-model", "namespace": "vision", "storageUri": "s3://m/1", "runtimeImage": "kserve/sklearnserver:v0.20.0",
         "minReplicas": 0},
        {"name": "gpu-model", "namespace": "serving", "modelUri": "models:/resnet/3", "gpu": 1,
         "runtimeImage": "kserve/huggingfaceserver:v0.20.0-gpu"}]},
    "monitoring": {"installPrometheusStack": True, "prometheusSelectorLabels": {"release": "kps"}},
    "teams": [{"name": "vision", "users": ["alice"], "groups": ["vision-ds"], "quota": {"gpus": 4}, "egressCidrs": ["10.1.0.0/16"]},
              {"name": "nlp", "namespace": "nlp-team"}],
    "network": {"apiServerCidrs": ["10.0.0.1/32"]},
}


def merged(base, patch):
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def load_inventory_spec(env):
    with open(os.path.join(ROOT, "inventories", env, "group_vars", "mlops_platform", "platform.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["mlops_platform_spec"]


# --------------------------------------------------------------------------- valid specs

def test_minimal_spec_is_valid_and_fills_defaults():
    assert spec_errors(MINIMAL) == []
    out = role_vars(MINIMAL)
    assert out["components"] == {"platform_base": True, "gpu_nodepool": True, "gpu_operator": True, "dcgm_monitoring": True,
                                 "mlflow": True, "jupyterhub": True, "kserve": True}
    assert out["gpu_nodepool"]["gpu_nodepool_provider"] == "existing"
    assert out["gpu_nodepool"]["gpu_nodepool_node_selector"] == "accelerator=nvidia-gpu"
    assert out["mlflow"]["mlflow_artifacts_mode"] == "minio"
    assert out["mlflow"]["mlflow_database_mode"] == "deployed"
    assert out["mlops"] == {"mlops_gpu_driver_owner": "operator"}
    assert out["readiness"] == {"label_selectors": ["accelerator=nvidia-gpu"], "min_nodes": 1, "gpus_per_node": 1}


def test_full_aks_spec_maps_onto_the_pool_and_operator():
    out = role_vars(FULL)
    aks = out["gpu_nodepool"]["gpu_nodepool_aks"]
    assert aks["vm_size"] == "Standard_NC24ads_A100_v4"
    assert aks["autoscale"] == {"enabled": True, "min_count": 0, "max_count": 10}
    assert aks["spot"] == {"enabled": True, "eviction_policy": "Deallocate", "max_price": 1.5}
    assert aks["resource_group"] == "rg" and aks["cluster_name"] == "aks"
    assert out["mlops"]["mlops_gpu_driver_owner"] == "aks"
    operator = out["gpu_operator"]
    assert operator["gpu_operator_sharing"] == {"strategy": "time-slicing", "replicas": 4, "rename": False,
                                                "fail_requests_greater_than_one": False}
    assert operator["gpu_operator_spot_tolerations"] is True
    assert operator["gpu_operator_min_gpu_nodes"] == 0  # an autoscaled pool may sit at zero
    assert out["readiness"]["min_nodes"] == 0


def test_full_spec_wires_mlflow_into_notebooks_serving_and_teams():
    out = role_vars(FULL)
    uri = "http://mlflow.mlflow.svc.cluster.local"
    assert out["jupyterhub"]["jupyterhub_mlflow_tracking_uri"] == uri
    assert out["kserve"]["kserve_mlflow_tracking_uri"] == uri
    assert out["mlflow"]["mlflow_publish_namespaces"] == ["vision", "nlp-team"]
    assert out["mlflow"]["mlflow_azure_blob"]["storage_account"] == "stmlops"
    assert out["mlflow"]["mlflow_postgres_external"]["host"] == "pg.example.com"
    assert out["mlflow"]["mlflow_auth_admin_password"] == "admin-pw"
    # Team members may log in to JupyterHub.
    assert out["jupyterhub"]["jupyterhub_allowed_users"] == ["alice"]
    assert out["jupyterhub"]["jupyterhub_allowed_groups"] == ["vision-ds"]
    assert out["jupyterhub"]["jupyterhub_azuread"]["tenant_id"] == "t"
    assert out["jupyterhub"]["jupyterhub_github"]["client_id"] == ""


def test_mlflow_off_leaves_no_tracking_uri():
    out = role_vars(merged(MINIMAL, {"mlflow": {"enabled": False}}))
    assert out["components"]["mlflow"] is False
    assert out["jupyterhub"]["jupyterhub_mlflow_tracking_uri"] == ""
    assert not [a for a in out["platform_base"]["platform_base_allows"] if a["to_namespace"] == "mlflow"]
    assert "mlflow" not in [n["name"] for n in out["platform_base"]["platform_base_namespaces"]]


def test_kserve_services_follow_the_pool():
    out = role_vars(FULL)
    services = out["kserve"]["kserve_inference_services"]
    assert services[0] == {"name": "cpu-model", "namespace": "vision", "model_format": "sklearn",
                           "runtime_image": "kserve/sklearnserver:v0.20.0", "gpus": 0, "min_replicas": 0, "max_replicas": 1,
                           "storage_uri": "s3://m/1"}
    assert services[1]["gpus"] == 1 and services[1]["spot"] is True and services[1]["model_uri"] == "models:/resnet/3"
    assert out["kserve"]["kserve_deployment_mode"] == "Knative"


# --------------------------------------------------------------------------- derived profiles

def test_profiles_are_derived_from_user_resources():
    profiles = role_vars(MINIMAL)["jupyterhub"]["jupyterhub_profiles"]
    assert [p["name"] for p in profiles] == ["CPU", "GPU"]
    assert profiles[0] == {"name": "CPU", "description": "2 cores, 8Gi memory", "image": "quay.io/jupyter/scipy-notebook:2025-10-20",
                           "cpu": 2, "memory": "8Gi", "default": True}
    assert profiles[1]["gpus"] == 1 and "mig_profile" not in profiles[1] and "spot" not in profiles[1]


def test_no_gpu_profile_when_user_resources_ask_for_none():
    profiles = role_vars(merged(MINIMAL, {"jupyterhub": {"userResources": {"gpu": 0}}}))["jupyterhub"]["jupyterhub_profiles"]
    assert [p["name"] for p in profiles] == ["CPU"]


def test_mixed_mig_makes_gpu_profiles_and_services_ask_for_the_mig_device():
    spec = load_inventory_spec("aks-prod")
    out = role_vars(spec)
    gpu_profile = [p for p in out["jupyterhub"]["jupyterhub_profiles"] if p.get("gpus")][0]
    assert gpu_profile["mig_profile"] == "1g.5gb"
    assert "MIG 1g.5gb" in gpu_profile["description"]
    gpu_service = [s for s in out["kserve"]["kserve_inference_services"] if s["gpus"]][0]
    assert gpu_service["mig_profile"] == "1g.5gb"
    assert out["gpu_operator"]["gpu_operator_mig_strategy"] == "mixed"
    assert out["gpu_operator"]["gpu_operator_mig_config_default"] == "all-1g.5gb"
    assert out["gpu_nodepool"]["gpu_nodepool_aks"]["gpu_instance_profile"] == "MIG1g"
    assert out["jupyterhub"]["jupyterhub_gpu_time_slicing"] is False


def test_single_mig_keeps_whole_gpu_resource_names():
    spec = merged(load_inventory_spec("aks-prod"), {"gpu": {"mig": {"strategy": "single"}}})
    out = role_vars(spec)
    gpu_profile = [p for p in out["jupyterhub"]["jupyterhub_profiles"] if p.get("gpus")][0]
    assert "mig_profile" not in gpu_profile  # single strategy advertises MIG devices as nvidia.com/gpu
    assert out["gpu_operator"]["gpu_operator_mig_strategy"] == "single"


def test_time_slicing_marks_profiles_and_mps_does_not_use_the_time_slicing_note():
    local = role_vars(load_inventory_spec("local"), allow_dummy_auth=True)
    assert local["jupyterhub"]["jupyterhub_gpu_time_slicing"] is True
    assert local["gpu_operator"]["gpu_operator_sharing"]["replicas"] == 4
    mps = role_vars(merged(MINIMAL, {"gpu": {"sharing": {"strategy": "mps", "replicas": 2}}}))
    assert mps["jupyterhub"]["jupyterhub_gpu_time_slicing"] is False
    assert "(MPS)" in mps["jupyterhub"]["jupyterhub_profiles"][1]["description"]


def test_spot_pool_makes_gpu_profiles_tolerate_spot():
    out = role_vars(load_inventory_spec("aks-dev"))
    gpu_profile = [p for p in out["jupyterhub"]["jupyterhub_profiles"] if p.get("gpus")][0]
    assert gpu_profile["spot"] is True
    assert out["jupyterhub"]["jupyterhub_image_puller_spot"] is True


def test_explicit_profiles_follow_the_pool_too():
    spec = merged(load_inventory_spec("aks-prod"), {"jupyterhub": {"profiles": [
        {"name": "Small", "cpu": 1, "memory": "4Gi", "default": True},
        {"name": "Two slices", "cpu": 8, "memory": "64Gi", "gpu": 2, "image": "example.com/nb:1.0"}]}})
    profiles = role_vars(spec)["jupyterhub"]["jupyterhub_profiles"]
    assert profiles[0]["image"] == "quay.io/jupyter/scipy-notebook:2025-10-20" and profiles[0]["default"] is True
    assert profiles[1] == {"name": "Two slices", "description": "2 MIG 1g.5gb devices, 8 cores, 64Gi memory",
                           "image": "example.com/nb:1.0", "cpu": 8, "memory": "64Gi", "gpus": 2, "mig_profile": "1g.5gb"}


# --------------------------------------------------------------------------- namespaces and policies

def _ns(out, name):
    return [n for n in out["platform_base"]["platform_base_namespaces"] if n["name"] == name][0]


def test_component_namespaces_carry_the_owning_roles_labels():
    out = role_vars(FULL)
    rendered = render_platform_base(out["platform_base"]["platform_base_namespaces"], out["platform_base"]["platform_base_teams"],
                                    out["platform_base"]["platform_base_allows"])
    labels = dict((n["metadata"]["name"], n["metadata"]["labels"]) for n in rendered["namespaces"])
    # gpu_operator role: privileged for enforce, audit and warn; its own managed-by.
    assert labels["gpu-operator"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels["gpu-operator"]["pod-security.kubernetes.io/audit"] == "privileged"
    assert labels["gpu-operator"]["pod-security.kubernetes.io/warn"] == "privileged"
    assert labels["gpu-operator"]["app.kubernetes.io/managed-by"] == "mlops.platform.gpu_operator"
    # jupyterhub and mlflow roles set no managed-by; jupyterhub enforces baseline.
    assert "app.kubernetes.io/managed-by" not in labels["jupyterhub"]
    assert labels["jupyterhub"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["jupyterhub"]["pod-security.kubernetes.io/warn"] == "restricted"
    assert "app.kubernetes.io/managed-by" not in labels["mlflow"]
    assert labels["kserve"]["app.kubernetes.io/managed-by"] == "mlops.platform.kserve"
    # serving namespaces: the kserve role's serving level; team namespaces that serve models agree with it.
    assert labels["serving"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert "app.kubernetes.io/managed-by" not in labels["serving"]
    assert labels["vision"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["nlp-team"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert labels["monitoring"]["app.kubernetes.io/managed-by"] == "mlops.platform.dcgm_monitoring"


def test_allows_cover_notebooks_teams_and_serving_to_mlflow_and_scrapes():
    out = role_vars(FULL)
    allows = dict((a["name"], a) for a in out["platform_base"]["platform_base_allows"])
    clients = allows["mlflow-clients"]
    assert clients["to_namespace"] == "mlflow" and clients["ports"] == [5000]
    assert [s["namespace"] for s in clients["from"]] == ["jupyterhub", "vision", "nlp-team", "serving"]
    assert allows["hub-to-notebooks"]["to_namespace"] == "jupyterhub"
    assert allows["notebooks-to-hub"]["ports"] == [8081]
    assert allows["prometheus-scrape-dcgm"]["from"] == [{"namespace": "monitoring", "egress": True}]
    assert allows["apiserver-to-kserve-webhook"]["from"] == [{"cidr": "10.0.0.1/32"}]
    rendered = render_platform_base(out["platform_base"]["platform_base_namespaces"], out["platform_base"]["platform_base_teams"],
                                    out["platform_base"]["platform_base_allows"])
    names = [(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in rendered["objects"]]
    for ns in ("gpu-operator", "jupyterhub", "mlflow", "kserve", "serving", "monitoring", "vision", "nlp-team"):
        assert (ns, "default-deny") in names
    assert ("monitoring", "allow-prometheus-scrape-dcgm-egress") in names


def test_external_prometheus_gets_no_egress_policy_in_its_namespace():
    out = role_vars(MINIMAL)
    scrape = [a for a in out["platform_base"]["platform_base_allows"] if a["name"] == "prometheus-scrape-dcgm"][0]
    assert scrape["from"] == [{"namespace": "monitoring", "egress": False}]
    rendered = render_platform_base(out["platform_base"]["platform_base_namespaces"], out["platform_base"]["platform_base_teams"],
                                    out["platform_base"]["platform_base_allows"])
    assert not [o for o in rendered["objects"] if o["metadata"].get("namespace") == "monitoring"]


def test_disabled_components_get_no_namespace_and_no_policy():
    spec = merged(MINIMAL, {"jupyterhub": {"enabled": False}, "modelServing": {"enabled": False}, "monitoring": {"enabled": False}})
    out = role_vars(spec)
    assert [n["name"] for n in out["platform_base"]["platform_base_namespaces"]] == ["gpu-operator", "mlflow"]
    assert out["platform_base"]["platform_base_allows"] == []
    assert out["gpu_operator"]["gpu_operator_dcgm_exporter_enabled"] is False


def test_no_pool_means_no_derived_gpu_profile_but_explicit_gpu_asks_fail():
    spec = merged(MINIMAL, {"gpu": {"enabled": False, "nodeSelector": ""}, "monitoring": {"enabled": False}})
    out = role_vars(spec)
    assert [p["name"] for p in out["jupyterhub"]["jupyterhub_profiles"]] == ["CPU"]
    assert out["components"]["gpu_operator"] is False and out["readiness"]["min_nodes"] == 0
    errors = spec_errors(merged(spec, {"jupyterhub": {"profiles": [{"name": "G", "cpu": 1, "memory": "1Gi", "gpu": 1}]}}))
    assert errors == ["jupyterhub.profiles[0].gpu: asks for GPUs but gpu.enabled is false"]


def test_allow_dummy_auth_given_as_text():
    local = load_inventory_spec("local")
    assert spec_errors(local, allow_dummy_auth="True") == []
    assert [e.split(":")[0] for e in spec_errors(local, allow_dummy_auth="false")] == ["jupyterhub.auth.type"]


def test_team_quota_defaults_follow_the_guide():
    out = role_vars(merged(MINIMAL, {"teams": [{"name": "vision"}]}))
    assert out["platform_base"]["platform_base_teams"][0]["quota"] == {
        "gpus": 8, "requests_cpu": 50, "limits_cpu": 100, "requests_memory": "200Gi", "limits_memory": "400Gi", "pvcs": 20}


@pytest.mark.parametrize("env, dummy", [("local", True), ("aks-dev", False), ("aks-prod", False)])
def test_inventory_specs_are_valid_and_render(env, dummy):
    spec = load_inventory_spec(env)
    assert spec_errors(spec, allow_dummy_auth=dummy) == []
    out = role_vars(spec, allow_dummy_auth=dummy)
    render_platform_base(out["platform_base"]["platform_base_namespaces"], out["platform_base"]["platform_base_teams"],
                         out["platform_base"]["platform_base_allows"])


def test_local_spec_matches_the_testbed():
    out = role_vars(load_inventory_spec("local"), allow_dummy_auth=True)
    assert out["readiness"] == {"label_selectors": ["accelerator=nvidia-gpu"], "min_nodes": 2, "gpus_per_node": 4}
    assert out["jupyterhub"]["jupyterhub_auth_type"] == "dummy"
    assert out["dcgm_monitoring"]["dcgm_monitoring_install_prometheus_stack"] is False
    services = out["kserve"]["kserve_inference_services"]
    assert sorted(s["gpus"] for s in services) == [0, 1]
    assert out["kserve"]["kserve_deployment_mode"] == "Standard"


def test_dummy_auth_of_the_local_spec_is_refused_elsewhere():
    errors = spec_errors(load_inventory_spec("local"), allow_dummy_auth=False)
    assert [e.split(":")[0] for e in errors] == ["jupyterhub.auth.type"]


# --------------------------------------------------------------------------- bad specs, each named by its path

BAD = [
    ({"gpu": {"minNodes": 3, "maxNodes": 1}}, "gpu.maxNodes: must be >= gpu.minNodes (got 1 < 3)"),
    ({"gpu": {"minNodes": -1}}, "gpu.minNodes: must be >= 0 (got -1)"),
    ({"gpu": {"maxNodes": "ten"}}, "gpu.maxNodes: expected an integer"),
    ({"gpu": {"enabled": "yes"}}, "gpu.enabled: expected a boolean"),
    ({"gpu": {"provider": "gke"}}, "gpu.provider: 'gke' is not one of"),
    ({"gpu": {"nodePools": 1}}, "gpu.nodePools: unknown key"),
    ({"gpus": {}}, "gpus: unknown key"),
    ({"gpu": {"nodeNames": ["n1"]}}, "gpu.nodeSelector: provider existing needs exactly one"),
    ({"gpu": {"nodeSelector": "accelerator in (a b)"}}, "gpu.nodeSelector: 'accelerator in (a b)' is not a label selector"),
    ({"gpu": {"driverOwner": "aks"}}, "gpu.driverOwner: aks installs the driver only on AKS pools"),
    ({"gpu": {"autoscaling": True}}, "gpu.autoscaling: the autoscaler belongs to gpu.provider aks"),
    ({"gpu": {"gpusPerNode": 0}}, "gpu.gpusPerNode: must be >= 1 (got 0)"),
    ({"gpu": {"sharing": {"strategy": "time-slicing", "replicas": 1}}}, "gpu.sharing.replicas: time-slicing needs at least 2"),
    ({"gpu": {"sharing": {"replicas": 4}}}, "gpu.sharing.replicas: must be 1 without sharing"),
    ({"gpu": {"sharing": {"strategy": "vgpu"}}}, "gpu.sharing.strategy: 'vgpu' is not one of"),
    ({"gpu": {"sharing": {"strategy": "time-slicing", "replicas": 2}, "mig": {"strategy": "mixed", "profile": "1g.10gb"}}},
     "gpu.sharing.strategy: time-slicing cannot be combined with gpu.mig.strategy mixed"),
    ({"gpu": {"mig": {"strategy": "mixed", "profile": "1g10gb"}}}, "gpu.mig.profile: '1g10gb' is not a MIG profile"),
    ({"gpu": {"mig": {"profile": "1g.10gb"}}}, "gpu.mig.profile: set only with gpu.mig.strategy single or mixed"),
    ({"gpu": {"mig": {"strategy": "mixed", "profile": "1g.10gb", "gpuInstanceProfile": "MIG1g"}}},
     "gpu.mig.gpuInstanceProfile: only with gpu.provider aks"),
    ({"gpu": {"spot": {"maxPrice": 0}}}, "gpu.spot.maxPrice: must be -1"),
    ({"gpu": {"spot": {"evictionPolicy": "Stop"}}}, "gpu.spot.evictionPolicy: 'Stop' is not one of"),
    ({"jupyterhub": {"auth": {"type": "dummy"}}}, "jupyterhub.auth.type: dummy (any name and password logs in) is allowed only"),
    ({"jupyterhub": {"auth": {"type": "ldap"}}}, "jupyterhub.auth.type: 'ldap' is not one of"),
    ({"jupyterhub": {"publicUrl": "http://hub.example.com"}}, "jupyterhub.publicUrl: the https:// address users open is required"),
    ({"jupyterhub": {"auth": {"clientSecret": ""}}}, "jupyterhub.auth.clientSecret: is required with auth type github"),
    ({"jupyterhub": {"auth": {"type": "azuread"}}}, "jupyterhub.auth.tenantId: is required with auth type azuread"),
    ({"jupyterhub": {"auth": {"adminGroups": ["admins"]}}}, "jupyterhub.auth.adminGroups: GitHub has no admin groups"),
    ({"jupyterhub": {"auth": {"allowedUsers": []}}}, "jupyterhub.auth.allowedGroups: nobody could log in"),
    ({"jupyterhub": {"userResources": {"memory": "8GB"}}}, "jupyterhub.userResources.memory: '8GB' is not a memory quantity"),
    ({"jupyterhub": {"userResources": {"memory": "8G"}}}, "jupyterhub.userResources.memory: '8G' is not a memory quantity"),
    ({"jupyterhub": {"userResources": {"cpu": "two"}}}, "jupyterhub.userResources.cpu: 'two' is not a CPU quantity"),
    ({"jupyterhub": {"userResources": {"gpu": 2}}}, "jupyterhub.userResources.gpu: 2 GPUs do not fit on one node (gpu.gpusPerNode is 1)"),
    ({"jupyterhub": {"userResources": {"gpus": 1}}}, "jupyterhub.userResources.gpus: unknown key"),
    ({"jupyterhub": {"images": {"gpu": "quay.io/jupyter/pytorch-notebook:latest"}}},
     "jupyterhub.images.gpu: 'quay.io/jupyter/pytorch-notebook:latest' must name"),
    ({"jupyterhub": {"profiles": [{"name": "A", "cpu": 1, "memory": "1Gi", "default": True},
                                  {"name": "A", "cpu": 1, "memory": "1Gi", "default": True}]}},
     "jupyterhub.profiles[1].name: 'A' is already used by jupyterhub.profiles[0]"),
    ({"jupyterhub": {"profiles": [{"name": "A", "cpu": 1}]}}, "jupyterhub.profiles[0].memory: is required"),
    ({"jupyterhub": {"profiles": [{"name": "A", "cpu": 1, "memory": "1Gi"}, {"name": "B", "cpu": 1, "memory": "1Gi", "gpu": 1, "default": True},
                                  {"name": "C", "cpu": 1, "memory": "1Gi", "default": True}]}},
     "jupyterhub.profiles[2].default: only one profile may be the default"),
    ({"jupyterhub": {"culling": {"timeout": 0}}}, "jupyterhub.culling.timeout: must be >= 1 (got 0)"),
    ({"jupyterhub": {"namespace": "Jupyter_Hub"}}, "jupyterhub.namespace: 'Jupyter_Hub' is not a valid DNS-1123 label"),
    ({"mlflow": {"storage": "gcs"}}, "mlflow.storage: 'gcs' is not one of"),
    ({"mlflow": {"storage": "azure-blob"}}, "mlflow.storageAccount: is required with mlflow.storage azure-blob"),
    ({"mlflow": {"storageAccount": "st"}}, "mlflow.storageAccount: only with mlflow.storage azure-blob"),
    ({"mlflow": {"storage": "s3"}}, "mlflow.region: mlflow.storage s3 needs a region or an endpoint"),
    ({"mlflow": {"storage": "s3", "region": "eu", "accessKeyId": "a"}}, "mlflow.secretAccessKey: give both"),
    ({"mlflow": {"database": {"type": "external", "host": "pg"}}}, "mlflow.database.user: is required with mlflow.database.type external"),
    ({"mlflow": {"database": {"type": "external", "host": "pg", "user": "u"}}}, "mlflow.database.password: is required"),
    ({"mlflow": {"database": {"type": "sqlite"}}}, "mlflow.database.type: sqlite is for throw-away environments only"),
    ({"mlflow": {"database": {"port": 70000}}}, "mlflow.database.port: must be <= 65535 (got 70000)"),
    ({"mlflow": {"auth": {"enabled": False}}}, "mlflow.auth.enabled: MLflow without authentication"),
    ({"mlflow": {"storageSize": "100GB"}}, "mlflow.storageSize: '100GB' is not a memory quantity"),
    ({"modelServing": {"framework": "seldon"}}, "modelServing.framework: 'seldon' is not one of 'kserve'"),
    ({"modelServing": {"mode": "Serverless"}}, "modelServing.mode: 'Serverless' is not one of"),
    ({"modelServing": {"services": [{"name": "m", "namespace": "models", "runtimeImage": "kserve/sklearnserver:v0.20.0"}]}},
     "modelServing.services[0].storageUri: set exactly one of storageUri or modelUri"),
    ({"modelServing": {"services": [{"name": "m", "namespace": "models", "storageUri": "s3://x", "runtimeImage": "kserve/sklearnserver"}]}},
     "modelServing.services[0].runtimeImage: 'kserve/sklearnserver' must name an image with a pinned tag"),
    ({"modelServing": {"services": [{"name": "m", "namespace": "models", "storageUri": "s3://x", "minReplicas": 0,
                                     "runtimeImage": "kserve/sklearnserver:v0.20.0"}]}},
     "modelServing.services[0].minReplicas: 0 (scale to zero) needs modelServing.mode Knative"),
    ({"modelServing": {"services": [{"name": "m", "namespace": "models", "modelUri": "runs:/abc/model",
                                     "runtimeImage": "kserve/sklearnserver:v0.20.0"}]}},
     "modelServing.services[0].modelUri: 'runs:/abc/model' is not models:/<name>/<version>"),
    ({"modelServing": {"services": [{"name": "m", "namespace": "mlflow", "storageUri": "s3://x",
                                     "runtimeImage": "kserve/sklearnserver:v0.20.0"}]}},
     "modelServing.services[0].namespace: mlflow is a component namespace"),
    ({"modelServing": {"services": [{"name": "m", "namespace": "models", "storageUri": "s3://x", "gpu": 4,
                                     "runtimeImage": "kserve/sklearnserver:v0.20.0"}]}},
     "modelServing.services[0].gpu: 4 GPUs do not fit on one node"),
    ({"monitoring": {"alerts": {"temperatureWarningCelsius": 90, "temperatureCriticalCelsius": 85}}},
     "monitoring.alerts.temperatureCriticalCelsius: must be above temperatureWarningCelsius (got 85 <= 90)"),
    ({"monitoring": {"scrapeInterval": "30"}}, "monitoring.scrapeInterval: '30' is not a duration"),
    ({"gpu": {"enabled": False}, "jupyterhub": {"userResources": {"gpu": 0}}}, "monitoring.enabled: DCGM monitoring watches the GPU nodes"),
    ({"teams": [{"name": "vision"}, {"name": "nlp", "quota": {"gpus": -1}}]}, "teams[1].quota.gpus: must be >= 0 (got -1)"),
    ({"teams": [{"name": "vision", "quota": {"requestsCpu": 200}}]}, "teams[0].quota.requestsCpu: must not exceed teams[0].quota.limitsCpu (got 200 > 100)"),
    ({"teams": [{"name": "vision", "quota": {"limitsMemory": "400GB"}}]}, "teams[0].quota.limitsMemory: '400GB' is not a memory quantity"),
    ({"teams": [{"name": "vision"}, {"name": "vision2", "namespace": "vision"}]}, "teams[1].namespace: vision is already the namespace of teams[0]"),
    ({"teams": [{"name": "ops", "namespace": "kserve"}]}, "teams[0].namespace: kserve is the namespace of a platform component"),
    ({"teams": [{"name": "vision", "egressCidrs": ["10.0.0.0"]}]}, "teams[0].egressCidrs[0]: '10.0.0.0' is not a CIDR"),
    ({"teams": [{"users": ["a"]}]}, "teams[0].name: is required"),
    ({"teams": {"name": "vision"}}, "teams: expected a list"),
    ({"network": {"apiServerCidrs": "10.0.0.1/32"}}, "network.apiServerCidrs: expected a list"),
]

AKS = {"gpu": {"provider": "aks", "resourceGroup": "rg", "clusterName": "aks", "nodeSelector": ""}}
BAD_AKS = [
    ({"gpu": {"poolName": "GPU-pool"}}, "gpu.poolName: 'GPU-pool' is not an AKS pool name"),
    ({"gpu": {"resourceGroup": ""}}, "gpu.resourceGroup: is required with gpu.provider aks"),
    ({"gpu": {"nodePoolSize": "Standard_D4s_v5"}}, "gpu.nodePoolSize: 'Standard_D4s_v5' is not an Azure GPU VM size"),
    ({"gpu": {"autoscaling": True, "nodeCount": 5, "minNodes": 0, "maxNodes": 3}},
     "gpu.nodeCount: with autoscaling it must lie between gpu.minNodes and gpu.maxNodes (got 5, not in 0..3)"),
    ({"gpu": {"nodeCount": 0}}, "gpu.nodeCount: 0 nodes without autoscaling leaves the pool empty"),
    ({"gpu": {"nodeSelector": "a=b"}}, "gpu.nodeSelector: only with gpu.provider existing"),
    ({"gpu": {"mig": {"strategy": "mixed", "profile": "1g.10gb"}}},
     "gpu.mig.gpuInstanceProfile: MIG on an AKS pool needs the pool's GPU instance profile"),
    ({"gpu": {"mig": {"strategy": "mixed", "profile": "3g.40gb", "gpuInstanceProfile": "MIG1g"}}},
     "gpu.mig.gpuInstanceProfile: MIG1g does not match gpu.mig.profile 3g.40gb (expected MIG3g)"),
    ({"gpu": {"nodePoolSize": "Standard_NC6s_v3", "mig": {"strategy": "single", "profile": "1g.10gb", "gpuInstanceProfile": "MIG1g"}}},
     "gpu.mig.strategy: Standard_NC6s_v3 has no MIG-capable GPU"),
    ({"gpu": {"mig": {"strategy": "mixed", "profile": "1g.10gb", "gpuInstanceProfile": "MIG8g"}}},
     "gpu.mig.gpuInstanceProfile: 'MIG8g' is not one of"),
]


@pytest.mark.parametrize("patch, message", BAD, ids=[m.split(":")[0] + "-%d" % i for i, (_p, m) in enumerate(BAD)])
def test_bad_spec_names_the_path(patch, message):
    errors = spec_errors(merged(MINIMAL, patch))
    assert any(e.startswith(message) for e in errors), errors


@pytest.mark.parametrize("patch, message", BAD_AKS, ids=[m.split(":")[0] + "-%d" % i for i, (_p, m) in enumerate(BAD_AKS)])
def test_bad_aks_spec_names_the_path(patch, message):
    errors = spec_errors(merged(merged(MINIMAL, AKS), patch))
    assert any(e.startswith(message) for e in errors), errors


def test_every_problem_is_reported_at_once():
    spec = merged(MINIMAL, {"gpu": {"minNodes": 3, "maxNodes": 1}, "mlflow": {"storage": "gcs"},
                            "teams": [{"name": "a", "quota": {"limitsMemory": "8GB"}}], "bogus": 1})
    errors = spec_errors(spec)
    paths = [e.split(":")[0] for e in errors]
    for path in ("gpu.maxNodes", "mlflow.storage", "teams[0].quota.limitsMemory", "bogus"):
        assert path in paths, errors
    with pytest.raises(PlatformSpecError) as info:
        role_vars(spec)
    for error in errors:
        assert error in str(info.value)


def test_spec_that_is_not_a_mapping():
    assert spec_errors(["gpu"]) == ["mlops_platform_spec: expected a mapping, got list"]


def test_a_valid_spec_is_not_modified():
    spec = copy.deepcopy(FULL)
    role_vars(spec)
    assert spec == FULL
