# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The jupyterhub role.

Offline: the values the role renders (tasks/render.yml) for each authentication type, with and
without the shared volume, with Ingress or HTTPRoute exposure and with MIG and time-sliced GPU
profiles validate against the real zero-to-jupyterhub 4.4.0 values and schema; a misspelt key
planted through ``jupyterhub_release_overrides`` is caught and named; the validate step refuses the
dummy authenticator unless ``mlops_allow_dummy_auth`` is true.

Testbed: the role installs the stand-in chart, an uninstall without purge leaves the user home PVC
(created as KubeSpawner would), the hub database PVC and a marker object in place, and an
uninstall with ``jupyterhub_purge: true`` removes them and says what it removed. HTTPRoute exposure
on a cluster without the Gateway API CRDs stops with a message naming the CRD.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid

import pytest
import yaml

from upstream import assert_conforms, conformance_errors, render_role_values
from waiting import poll_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STAND_IN = os.path.join(ROOT, "tests", "testbed", "charts", "jupyterhub")

PUBLIC = "https://hub.example.org"
OIDC = {
    "jupyterhub_auth_type": "oidc",
    "jupyterhub_public_url": PUBLIC,
    "jupyterhub_oidc": {
        "client_id": "hub", "client_secret": "s3cret-oidc", "authorize_url": "https://idp.example.org/auth",
        "token_url": "https://idp.example.org/token", "userdata_url": "https://idp.example.org/userinfo",
        "scope": ["openid", "profile", "email", "groups"], "username_claim": "preferred_username",
        "groups_claim": "groups", "login_service": "Example SSO",
    },
    "jupyterhub_allowed_groups": ["data-science"],
    "jupyterhub_admin_groups": ["platform-admins"],
}
AZUREAD = {
    "jupyterhub_auth_type": "azuread",
    "jupyterhub_public_url": PUBLIC,
    "jupyterhub_azuread": {"tenant_id": "00000000-0000-0000-0000-000000000001", "client_id": "app",
                           "client_secret": "s3cret-aad", "username_claim": "preferred_username", "groups_claim": "groups"},
    "jupyterhub_allowed_groups": ["11111111-2222-3333-4444-555555555555"],
    "jupyterhub_admin_users": ["alice@example.org"],
}
GITHUB = {
    "jupyterhub_auth_type": "github",
    "jupyterhub_public_url": PUBLIC + "/",
    "jupyterhub_github": {"client_id": "gh", "client_secret": "s3cret-gh"},
    "jupyterhub_allowed_groups": ["example-org:ml-team"],
    "jupyterhub_admin_users": ["octocat"],
}
DUMMY = {"jupyterhub_auth_type": "dummy", "mlops_allow_dummy_auth": True, "jupyterhub_allow_all": True}
SHARED = {"jupyterhub_shared_volume": {
    "enabled": True, "claim_name": "team-data", "create": True, "storage_class": "azurefile-csi", "size": "500Gi",
    "access_modes": ["ReadWriteMany"], "mount_path": "/home/jovyan/data", "read_only": True}}
INGRESS = {"jupyterhub_exposure": "ingress", "jupyterhub_ingress": {
    "host": "hub.example.org", "class_name": "nginx", "tls_secret_name": "hub-tls",
    "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"}}}
HTTPROUTE = {"jupyterhub_exposure": "httproute", "jupyterhub_httproute": {
    "hostnames": ["hub.example.org"], "gateway_name": "platform", "gateway_namespace": "gateways",
    "section_name": "https", "annotations": {}}}
GPU_PROFILES = {
    "jupyterhub_gpu_time_slicing": True,
    "jupyterhub_profiles": [
        {"name": "Small CPU", "description": "1 core", "image": "quay.io/jupyter/scipy-notebook:2025-10-20",
         "cpu": 1, "memory": "4Gi", "default": True},
        {"name": "A100 slice", "description": "MIG 1g.10gb", "image": "quay.io/jupyter/pytorch-notebook:cuda12-2025-10-20",
         "gpus": 1, "mig_profile": "1g.10gb", "cpu": 4, "memory": "32Gi"},
        {"name": "T4 shared", "description": "one time-sliced T4", "image": "quay.io/jupyter/pytorch-notebook:cuda12-2025-10-20",
         "gpus": 1, "cpu": 4, "memory": "16Gi", "spot": True, "gpu_products": ["Tesla-T4"]},
        {"name": "Two GPUs", "description": "whole GPUs", "image": "quay.io/jupyter/pytorch-notebook:cuda12-2025-10-20",
         "gpus": 2, "gpu_sharing": "exclusive", "start_timeout": 1800},
    ],
}


def merged(*parts):
    out = {}
    for part in parts:
        out.update(part)
    return out


def by_slug(values):
    return {p["slug"]: p for p in values["singleuser"]["profileList"]}


COMBINATIONS = {
    "oidc": merged(OIDC),
    "oidc-shared-ingress": merged(OIDC, SHARED, INGRESS),
    "azuread-httproute-gpu": merged(AZUREAD, HTTPROUTE, GPU_PROFILES),
    "github-shared-gpu": merged(GITHUB, SHARED, GPU_PROFILES, {"jupyterhub_mlflow_tracking_uri": "http://mlflow.mlflow:5000"}),
    "dummy-registry": merged(DUMMY, {"jupyterhub_image_registry": "registry.internal:5000/mirror/"}),
}


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_values_conform_to_the_real_chart(name):
    values = render_role_values("jupyterhub", COMBINATIONS[name])
    assert_conforms("jupyterhub", values)
    # The chart's own network policies stay on and the pullers tolerate the GPU taint.
    assert values["hub"]["networkPolicy"]["enabled"] is True
    assert values["proxy"]["chp"]["networkPolicy"]["enabled"] is True
    assert values["singleuser"]["networkPolicy"]["enabled"] is True
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in values["prePuller"]["extraTolerations"]
    assert values["prePuller"]["hook"]["enabled"] and values["prePuller"]["continuous"]["enabled"]
    assert values["hub"]["db"]["pvc"]["annotations"] == {"helm.sh/resource-policy": "keep"}


def test_authenticators():
    oidc = render_role_values("jupyterhub", OIDC)["hub"]["config"]
    assert oidc["JupyterHub"]["authenticator_class"] == "generic-oauth"
    assert oidc["GenericOAuthenticator"]["oauth_callback_url"] == PUBLIC + "/hub/oauth_callback"
    assert oidc["GenericOAuthenticator"]["allowed_groups"] == ["data-science"]
    assert oidc["GenericOAuthenticator"]["admin_groups"] == ["platform-admins"]
    assert oidc["GenericOAuthenticator"]["auth_state_groups_key"] == "oauth_user.groups"
    aad = render_role_values("jupyterhub", AZUREAD)["hub"]["config"]
    assert aad["JupyterHub"]["authenticator_class"] == "azuread"
    assert aad["AzureAdOAuthenticator"]["tenant_id"] == AZUREAD["jupyterhub_azuread"]["tenant_id"]
    assert aad["Authenticator"]["admin_users"] == ["alice@example.org"]
    assert "GenericOAuthenticator" not in aad
    gh = render_role_values("jupyterhub", GITHUB)["hub"]["config"]
    assert gh["JupyterHub"]["authenticator_class"] == "github"
    assert gh["GitHubOAuthenticator"]["allowed_organizations"] == ["example-org:ml-team"]
    assert gh["GitHubOAuthenticator"]["oauth_callback_url"] == PUBLIC + "/hub/oauth_callback"
    assert gh["GitHubOAuthenticator"]["scope"] == ["read:org"]
    dummy = render_role_values("jupyterhub", DUMMY)["hub"]["config"]
    assert dummy["JupyterHub"]["authenticator_class"] == "dummy"
    assert dummy["Authenticator"]["allow_all"] is True


def test_profiles_start_timeouts_and_shared_gpu_notes():
    profiles = by_slug(render_role_values("jupyterhub", merged(DUMMY, GPU_PROFILES)))
    assert profiles["small-cpu"]["kubespawner_override"]["start_timeout"] == 300
    assert "Shared GPU" not in profiles["small-cpu"]["description"]
    mig = profiles["a100-slice"]
    assert mig["kubespawner_override"]["extra_resource_limits"] == {"nvidia.com/mig-1g.10gb": "1"}
    assert mig["kubespawner_override"]["start_timeout"] == 1200
    assert mig["description"].startswith("MIG 1g.10gb ") and "MIG slice 1g.10gb" in mig["description"]
    shared = profiles["t4-shared"]
    assert "time-sliced" in shared["description"]
    assert shared["kubespawner_override"]["node_affinity_required"]
    whole = profiles["two-gpus"]
    assert whole["kubespawner_override"]["start_timeout"] == 1800
    assert "Shared GPU" not in whole["description"]
    # Without cluster-wide time-slicing a plain GPU profile is exclusive.
    plain = by_slug(render_role_values("jupyterhub", merged(DUMMY, GPU_PROFILES, {"jupyterhub_gpu_time_slicing": False})))
    assert "Shared GPU" not in plain["t4-shared"]["description"]
    assert "MIG slice" in plain["a100-slice"]["description"]


def test_storage_culler_mlflow_and_exposure():
    values = render_role_values("jupyterhub", merged(COMBINATIONS["github-shared-gpu"], INGRESS, {
        "jupyterhub_cull": {"enabled": True, "timeout": 1800, "every": 300, "max_age": 86400, "users": False},
        "jupyterhub_user_storage": {"capacity": "50Gi", "storage_class": "managed-csi-premium",
                                    "access_modes": ["ReadWriteOnce"], "home_mount_path": "/home/jovyan"}}))
    assert_conforms("jupyterhub", values)
    storage = values["singleuser"]["storage"]
    assert storage["type"] == "dynamic" and storage["capacity"] == "50Gi"
    assert storage["dynamic"]["storageClass"] == "managed-csi-premium"
    assert storage["extraVolumes"] == [{"name": "shared-data", "persistentVolumeClaim": {"claimName": "team-data"}}]
    assert storage["extraVolumeMounts"][0]["readOnly"] is True
    assert values["cull"] == {"enabled": True, "timeout": 1800, "every": 300, "maxAge": 86400, "users": False}
    assert values["singleuser"]["extraEnv"] == {"MLFLOW_TRACKING_URI": "http://mlflow.mlflow:5000"}
    assert values["ingress"]["tls"] == [{"hosts": ["hub.example.org"], "secretName": "hub-tls"}]
    assert values["ingress"]["ingressClassName"] == "nginx"
    plain = render_role_values("jupyterhub", OIDC)
    assert plain["singleuser"]["extraEnv"] == {}
    assert plain["singleuser"]["storage"]["extraVolumes"] == []
    assert plain["ingress"] == {"enabled": False}


def test_misspelt_key_fails_the_real_schema():
    values = render_role_values("jupyterhub", merged(OIDC, {"jupyterhub_release_overrides": {
        "singleuser": {"storage": {"capacityy": "20Gi"}}}}))
    errors = conformance_errors("jupyterhub", values)
    assert any(e.startswith("singleuser.storage.capacityy:") for e in errors), errors
    assert any("capacityy" in e and "values.schema.json" in e for e in errors), errors


def test_overrides_are_merged():
    values = render_role_values("jupyterhub", merged(OIDC, {"jupyterhub_release_overrides": {
        "hub": {"concurrentSpawnLimit": 10}, "cull": {"concurrency": 5}}}))
    assert values["hub"]["concurrentSpawnLimit"] == 10 and values["hub"]["networkPolicy"]["enabled"] is True
    assert values["cull"]["concurrency"] == 5 and values["cull"]["timeout"] == 3600
    assert_conforms("jupyterhub", values)


@pytest.mark.parametrize("step, extra, message", [
    ("validate", {"jupyterhub_auth_type": "dummy"}, "mlops_allow_dummy_auth is not true"),
    ("validate", {"jupyterhub_auth_type": "dummy", "mlops_allow_dummy_auth": False}, "mlops_allow_dummy_auth is not true"),
    ("validate", merged(OIDC, {"jupyterhub_public_url": "http://hub.example.org"}), "jupyterhub_public_url must be"),
    ("validate", merged(OIDC, {"jupyterhub_oidc": dict(OIDC["jupyterhub_oidc"], client_secret="")}), "jupyterhub_oidc.client_secret"),
    ("validate", merged(OIDC, {"jupyterhub_allowed_groups": [], "jupyterhub_admin_groups": []}), "jupyterhub_allow_all"),
    ("validate", merged(GITHUB, {"jupyterhub_admin_groups": ["x"]}), "leave jupyterhub_admin_groups empty"),
    ("validate", merged(OIDC, {"jupyterhub_exposure": "ingress"}), "jupyterhub_ingress.tls_secret_name"),
    ("validate", merged(OIDC, {"jupyterhub_profiles": [{"name": "x", "image": "quay.io/jupyter/scipy-notebook:latest"}]}), "jupyterhub_profiles[0] (x)"),
    ("validate", merged(OIDC, {"jupyterhub_profiles": [{"name": "x", "image": "quay.io/jupyter/scipy-notebook"}]}), "pinned tag"),
    ("validate", merged(OIDC, {"jupyterhub_profiles": [{"name": "x", "image": "a/b:1", "gpus": 1, "gpu_sharing": "mig"}]}), "mig needs mig_profile"),
    ("render", merged(OIDC, {"jupyterhub_release_overrides": {"singleuser": {"networkPolicy": {"enabled": False}}}}),
     "singleuser.networkPolicy.enabled"),
    ("render", merged(OIDC, {"jupyterhub_profiles": [{"name": "x", "image": "a/b:1", "gpus": 1, "memory": "8G"}]}), "ambiguous"),
])
def test_refused_before_any_change(step, extra, message):
    """validate.yml (and the render step's own checks) stop with a message naming the variable."""
    with pytest.raises(AssertionError) as err:
        render_role_values("jupyterhub", extra, tasks_from=step)
    assert message in str(err.value)


# --------------------------------------------------------------------------------------------------
# On the testbed

TESTBED_VARS = {
    "mlops_allow_dummy_auth": True, "jupyterhub_auth_type": "dummy", "jupyterhub_allow_all": True,
    "jupyterhub_chart_ref": STAND_IN, "jupyterhub_helm_timeout": "10m0s", "jupyterhub_wait_timeout": 600,
}


def run_role(ansible_env, testbed, extra):
    """Run the role against the testbed; returns the completed ansible-playbook process."""
    helm = os.path.join(os.environ.get("MLOPS_TESTBED_CACHE", os.path.expanduser("~/.cache/mlops-testbed")), "bin", "helm")
    play = [{
        "name": "jupyterhub role", "hosts": "localhost", "gather_facts": False, "connection": "local",
        "module_defaults": {
            "group/kubernetes.core.k8s": {"kubeconfig": testbed.kubeconfig},
            "group/kubernetes.core.helm": {"kubeconfig": testbed.kubeconfig, "binary_path": helm},
        },
        "roles": [{"role": "mlops.platform.jupyterhub"}],
    }]
    with tempfile.TemporaryDirectory() as tmp:
        playbook = os.path.join(tmp, "play.yml")
        varsfile = os.path.join(tmp, "vars.yml")
        with open(playbook, "w", encoding="utf-8") as handle:
            yaml.safe_dump(play, handle)
        with open(varsfile, "w", encoding="utf-8") as handle:
            yaml.safe_dump(merged(TESTBED_VARS, extra), handle)
        return subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", playbook, "-e", "@" + varsfile],
            capture_output=True, text=True, env=ansible_env, check=False,
        )


def flat(text):
    """Output with line wrapping undone (the YAML callback folds long messages)."""
    return " ".join(text.split())


def pvc_names(core, namespace):
    return sorted(p.metadata.name for p in core.list_namespaced_persistent_volume_claim(namespace).items)


def test_uninstall_keeps_volumes_unless_purged(testbed, k8s, ansible_env, namespaces):
    from kubernetes import client

    core = client.CoreV1Api(k8s)
    apps = client.AppsV1Api(k8s)
    ns = "jh-%s" % uuid.uuid4().hex[:8]
    try:
        proc = run_role(ansible_env, testbed, {"jupyterhub_namespace": ns})
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert sorted(d.metadata.name for d in apps.list_namespaced_deployment(ns).items) == ["hub", "proxy"]
        # A marker object, and a home volume created the way KubeSpawner creates one.
        core.create_namespaced_config_map(ns, {"metadata": {"name": "marker"}, "data": {"written-by": "test"}})
        core.create_namespaced_persistent_volume_claim(ns, {
            "metadata": {"name": "claim-alice", "labels": {
                "app": "jupyterhub", "component": "singleuser-storage", "hub.jupyter.org/username": "alice"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
        assert pvc_names(core, ns) == ["claim-alice", "hub-db-dir"]

        proc = run_role(ansible_env, testbed, {"jupyterhub_namespace": ns, "jupyterhub_state": "absent"})
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        poll_until(lambda: not apps.list_namespaced_deployment(ns).items, 300, "the release's Deployments to go", 1.0)
        assert pvc_names(core, ns) == ["claim-alice", "hub-db-dir"]
        assert core.read_namespaced_config_map("marker", ns).data == {"written-by": "test"}
        assert "Kept 2 PersistentVolumeClaims in namespace %s (claim-alice, hub-db-dir)" % ns in flat(proc.stdout)

        proc = run_role(ansible_env, testbed, {"jupyterhub_namespace": ns, "jupyterhub_state": "absent", "jupyterhub_purge": True})
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert "Purged namespace %s: 2 PersistentVolumeClaims (claim-alice, hub-db-dir) and the namespace" % ns in flat(proc.stdout)
        poll_until(lambda: namespaces.phase(ns) is None, 300, "namespace %s to be deleted" % ns, 1.0)
    finally:
        if namespaces.phase(ns) is not None:
            namespaces.delete_and_wait(ns, 300)


def test_httproute_without_gateway_api_stops_before_any_change(testbed, k8s, ansible_env, namespaces):
    ns = "jh-%s" % uuid.uuid4().hex[:8]
    proc = run_role(ansible_env, testbed, merged(HTTPROUTE, {"jupyterhub_namespace": ns}))
    assert proc.returncode != 0
    assert "does not serve gateway.networking.k8s.io/v1 HTTPRoute" in flat(proc.stdout)
    assert "httproutes.gateway.networking.k8s.io" in flat(proc.stdout)
    assert namespaces.phase(ns) is None
