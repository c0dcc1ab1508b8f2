# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The project's stand-in Helm charts under tests/testbed/charts.

Offline checks (helm, kubernetes-validate and the upstream chart data): every chart lints, renders
with its defaults and with the values the collection's roles set, rejects a mistyped values key
through its values.schema.json, renders only manifests that validate against a modern Kubernetes
and use API versions served by both the v1.20 testbed and current clusters, ships no CRDs of its
own, and renders a ClusterPolicy the real CRD schema accepts.

Testbed checks (the ``testbed`` fixture): gpu-operator installs and its ClusterPolicy reaches
``status.state == ready`` through the node agent; jupyterhub installs, its hub and proxy
Deployments become available, and an upgrade keeps the generated proxy token.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid

import pytest
import yaml

from upstream import dotted, leaf_paths, load_yaml_all
from upstream import _schema_admits as schema_admits
from waiting import poll_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHARTS_DIR = os.path.join(ROOT, "tests", "testbed", "charts")
CHARTS = sorted(d for d in os.listdir(CHARTS_DIR) if os.path.isfile(os.path.join(CHARTS_DIR, d, "Chart.yaml")))
CACHE = os.environ.get("MLOPS_TESTBED_CACHE", os.path.expanduser("~/.cache/mlops-testbed"))

# Kubernetes versions the rendered manifests are validated against (kubernetes-validate schemas).
VALIDATE_VERSIONS = ("1.30", "1.37")
# Group/versions served both by the v1.20 testbed and by current clusters (none removed since).
PORTABLE_API_VERSIONS = {
    "v1", "apps/v1", "rbac.authorization.k8s.io/v1", "networking.k8s.io/v1", "apiextensions.k8s.io/v1",
    "scheduling.k8s.io/v1", "node.k8s.io/v1", "autoscaling/v1", "coordination.k8s.io/v1",
}
# Custom resources the charts create: not in kubernetes-validate's schemas, checked against the real CRDs
# (offline below, and by the API server on the testbed, which serves them).
CUSTOM_API_VERSIONS = {"nvidia.com/v1", "serving.kserve.io/v1beta1", "serving.kserve.io/v1alpha1"}

# Values the collection's roles pass (the keys that matter), per chart.
ROLE_VALUES = {
    "gpu-operator": {
        "driver": {"enabled": False},
        "toolkit": {"enabled": False},
        "mig": {"strategy": "single"},
        "migManager": {"enabled": False},
        "cdi": {"enabled": True},
        "nfd": {"enabled": True},
        "dcgmExporter": {"enabled": True, "serviceMonitor": {"enabled": True}},
        "daemonsets": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
        "devicePlugin": {"config": {"create": True, "name": "time-slicing-config", "default": "any",
                                    "data": {"any": "version: v1\nsharing:\n  timeSlicing:\n    resources:\n"
                                                    "      - name: nvidia.com/gpu\n        replicas: 4\n"}}},
        "node-feature-discovery": {"worker": {"tolerations": []}},
    },
    "jupyterhub": {
        "hub": {"db": {"type": "sqlite-memory"}, "config": {"JupyterHub": {"authenticator_class": "dummy"}},
                "networkPolicy": {"enabled": True}, "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}},
        "proxy": {"service": {"type": "ClusterIP"}},
        "singleuser": {
            "image": {"name": "quay.io/jupyter/pytorch-notebook", "tag": "cuda12-2025-11-10"},
            "profileList": [{"display_name": "GPU", "kubespawner_override": {"extra_resource_limits": {"nvidia.com/gpu": "1"}}}],
            "storage": {"type": "dynamic", "capacity": "10Gi", "dynamic": {"storageClass": "managed-csi"}},
            "cpu": {"limit": 4, "guarantee": 0.5}, "memory": {"limit": "16G", "guarantee": "1G"},
            "extraResource": {"limits": {"nvidia.com/gpu": "1"}}, "startTimeout": 600, "defaultUrl": "/lab",
            "networkPolicy": {"enabled": True},
        },
        "cull": {"enabled": True, "timeout": 3600, "every": 300, "users": False, "maxAge": 0},
        "prePuller": {"hook": {"enabled": False}, "continuous": {"enabled": False}},
        "scheduling": {"userScheduler": {"enabled": False}},
        "ingress": {"enabled": True, "hosts": ["jupyter.example.com"], "ingressClassName": "nginx"},
        "rbac": {"create": True},
        "global": {"safeToShowValues": False},
    },
    "kserve": {"kserve": {"controller": {"deploymentMode": "RawDeployment", "gateway": {"domain": "models.example.com"}}}},
    "mlflow": {
        "backendStore": {"postgres": {"enabled": True, "host": "pg", "port": 5432, "database": "mlflow", "user": "mlflow",
                                      "password": "pgpass"}},
        "artifactRoot": {"proxiedArtifactStorage": True, "azureBlob": {"enabled": True, "container": "mlflow", "storageAccount": "acct"}},
        "auth": {"enabled": True, "adminUsername": "admin", "adminPassword": "s3cret"},
        "extraVolumes": [{"name": "artifacts", "persistentVolumeClaim": {"claimName": "mlflow-artifacts"}}],
        "extraVolumeMounts": [{"name": "artifacts", "mountPath": "/mlartifacts"}],
        "extraDeploy": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "mlflow-artifacts"},
                         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}}],
    },
}

# (chart, values with one mistyped key, the key the schema error must name)
TYPOS = [
    ("gpu-operator", {"devicePlugin": {"cofig": {"name": "x"}}}, "cofig"),
    ("gpu-operator", {"driver": {"enable": False}}, "enable"),
    ("gpu-operator", {"operator": {"defaultRuntime": "containerd"}}, "defaultRuntime"),  # not in the real v26.7.0 values
    ("gpu-operator", {"mig": {"stratgy": "single"}}, "stratgy"),
    ("gpu-operator", {"dcgmExporter": {"serviceMonitor": {"enable": True}}}, "enable"),
    ("jupyterhub", {"singleuser": {"profilelist": []}}, "profilelist"),
    ("jupyterhub", {"cull": {"enabled": True, "timout": 60}}, "timout"),
    ("jupyterhub", {"hub": {"db": {"typ": "sqlite-pvc"}}}, "typ"),
    ("jupyterhub", {"singleuser": {"storage": {"dynamic": {"storageclass": "x"}}}}, "storageclass"),
    ("jupyterhub", {"proxy": {"secrettoken": "x"}}, "secrettoken"),
    ("jupyterhub", {"singleuser": {"cpu": {"limit": "two"}}}, "limit"),
    ("kserve", {"kserve": {"controller": {"deploymentmode": "Standard"}}}, "deploymentmode"),
    ("kserve", {"kserve": {"controller": {"deploymentMode": "Serverles"}}}, "deploymentMode"),
    ("kserve", {"controller": {"deploymentMode": "Standard"}}, "controller"),
    ("mlflow", {"backendStore": {"postgress": {"enabled": True}}}, "postgress"),
    ("mlflow", {"auth": {"enable": True}}, "enable"),
]


def _helm():
    found = shutil.which("helm") or os.path.join(CACHE, "bin", "helm")
    if not os.access(found, os.X_OK):
        pytest.fail("helm is required (expected on PATH or at %s; run `make testbed-binaries`)" % found)
    return found


def helm(*args, check=True, kubeconfig=None):
    """Run helm; returns the completed process (stdout/stderr as text)."""
    cmd = [_helm()] + list(args)
    if kubeconfig:
        cmd += ["--kubeconfig", kubeconfig]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    if check and proc.returncode != 0:
        pytest.fail("%s failed (rc %d):\n%s\n%s" % (" ".join(cmd), proc.returncode, proc.stdout, proc.stderr))
    return proc


def chart_path(chart):
    return os.path.join(CHARTS_DIR, chart)


def values_file(tmp_path, values):
    path = tmp_path / ("values-%s.yaml" % uuid.uuid4().hex[:8])
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return str(path)


def render(chart, tmp_path, values=None, namespace="mlops-test"):
    """Rendered documents (CRDs included) of a chart."""
    args = ["template", "rel", chart_path(chart), "--namespace", namespace, "--include-crds"]
    if values is not None:
        args += ["-f", values_file(tmp_path, values)]
    return [doc for doc in yaml.safe_load_all(helm(*args).stdout) if doc]


def _pod_spec(doc):
    return doc["spec"]["template"]["spec"]


def test_charts_present():
    assert {"gpu-operator", "jupyterhub", "kserve"} <= set(CHARTS)


@pytest.mark.parametrize("chart", CHARTS)
def test_chart_metadata(chart):
    with open(os.path.join(chart_path(chart), "Chart.yaml"), encoding="utf-8") as handle:
        meta = yaml.safe_load(handle)
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == chart
    assert os.path.isfile(os.path.join(chart_path(chart), "values.schema.json"))


@pytest.mark.parametrize("chart", CHARTS)
def test_helm_lint(chart):
    proc = helm("lint", "--strict", chart_path(chart), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("chart", CHARTS)
def test_lint_with_role_values(chart, tmp_path):
    proc = helm("lint", "--strict", chart_path(chart), "-f", values_file(tmp_path, ROLE_VALUES[chart]), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("chart,values,key", TYPOS, ids=["%s-%s" % (case[0], case[2]) for case in TYPOS])
def test_schema_rejects_wrong_values(chart, values, key, tmp_path):
    if chart not in CHARTS:
        pytest.fail("chart %s is missing" % chart)
    proc = helm("template", "rel", chart_path(chart), "-f", values_file(tmp_path, values), check=False)
    assert proc.returncode != 0, "a mistyped key rendered:\n" + proc.stdout[:500]
    assert "don't meet the specifications of the schema" in proc.stderr, proc.stderr
    assert key in proc.stderr, proc.stderr


def _portable_and_valid(docs):
    """Validate built-in objects (and CRDs as apiextensions/v1 objects); returns the kinds checked."""
    import kubernetes_validate  # pylint: disable=import-outside-toplevel

    checked = []
    for doc in docs:
        api_version, kind = doc["apiVersion"], doc["kind"]
        if api_version in CUSTOM_API_VERSIONS:
            continue
        assert api_version in PORTABLE_API_VERSIONS, "%s %s uses %s" % (kind, doc["metadata"]["name"], api_version)
        for version in VALIDATE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail("%s %s is invalid for Kubernetes %s: %s" % (kind, doc["metadata"]["name"], version, exc))
        checked.append(kind)
    return checked


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize("variant", ["defaults", "role-values"])
def test_rendered_manifests_validate(chart, variant, tmp_path):
    docs = render(chart, tmp_path, None if variant == "defaults" else ROLE_VALUES[chart])
    checked = _portable_and_valid(docs)
    assert "Deployment" in checked


@pytest.mark.parametrize("chart", CHARTS)
def test_workloads_are_hardened_and_pinned(chart, tmp_path):
    docs = render(chart, tmp_path, ROLE_VALUES[chart])
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]
    assert workloads
    for doc in workloads:
        spec = _pod_spec(doc)
        pod_ctx = spec.get("securityContext") or {}
        for container in spec["containers"] + spec.get("initContainers", []):
            where = "%s/%s" % (doc["metadata"]["name"], container["name"])
            ctx = container.get("securityContext") or {}
            assert pod_ctx.get("runAsNonRoot") or ctx.get("runAsNonRoot"), where + " may run as root"
            assert ctx.get("allowPrivilegeEscalation") is False, where
            assert "ALL" in ctx.get("capabilities", {}).get("drop", []), where
            assert container.get("resources", {}).get("requests"), where + " has no resource requests"
            image = container["image"]
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            assert tag and tag != "latest", where + " image not pinned: " + image


def test_charts_ship_no_crds():
    """The testbed serves the real upstream CRDs; a stand-in's own copy would shadow or conflict with them."""
    for chart in CHARTS:
        assert not os.path.exists(os.path.join(chart_path(chart), "crds")), chart


def _real_crd_schema(file_parts, version):
    (crd,) = load_yaml_all(*file_parts)
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return served["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize("variant", ["defaults", "role-values"])
def test_cluster_policy_conforms_to_real_crd(variant, tmp_path):
    """The ClusterPolicy the gpu-operator stand-in renders validates against the real v26.7.0 CRD schema."""
    import jsonschema  # pylint: disable=import-outside-toplevel

    schema = _real_crd_schema(("gpu-operator", "crds", "nvidia.com_clusterpolicies.yaml"), "v1")
    docs = render("gpu-operator", tmp_path, None if variant == "defaults" else ROLE_VALUES["gpu-operator"])
    (policy,) = [d for d in docs if d["kind"] == "ClusterPolicy"]
    errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(policy), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join("%s: %s" % (".".join(map(str, e.absolute_path)), e.message) for e in errors)
    for path, _value in leaf_paths(policy["spec"]):
        assert schema_admits(schema["properties"]["spec"], path), "spec.%s is not in the real ClusterPolicy CRD" % dotted(path)


def test_real_crd_check_catches_a_wrong_cluster_policy():
    """The check above can fail: a mistyped field and a wrong type are reported."""
    import jsonschema  # pylint: disable=import-outside-toplevel

    schema = _real_crd_schema(("gpu-operator", "crds", "nvidia.com_clusterpolicies.yaml"), "v1")
    spec = schema["properties"]["spec"]
    assert not schema_admits(spec, ("devicePlugin", "cofig", "name"))
    bad = {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "metadata": {"name": "x"},
           "spec": {"mig": {"strategy": "double"}}}
    messages = [e.message for e in jsonschema.Draft4Validator(schema).iter_errors(bad)]
    assert any("'double' is not one of" in m for m in messages), messages
    assert any("'driver' is a required property" in m for m in messages), messages


def test_gpu_operator_renders_role_values(tmp_path):
    docs = render("gpu-operator", tmp_path, ROLE_VALUES["gpu-operator"], namespace="gpu-operator")
    policy = next(d for d in docs if d["kind"] == "ClusterPolicy")
    spec = policy["spec"]
    assert spec["driver"]["enabled"] is False and spec["toolkit"]["enabled"] is False
    assert "defaultRuntime" not in spec["operator"]  # gone from the real chart's values
    assert spec["devicePlugin"]["config"] == {"name": "time-slicing-config", "default": "any"}
    assert spec["dcgmExporter"]["serviceMonitor"]["enabled"] is True
    assert spec["migManager"]["enabled"] is False
    assert spec["daemonsets"]["tolerations"] == ROLE_VALUES["gpu-operator"]["daemonsets"]["tolerations"]
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "time-slicing-config"]
    assert config_map["metadata"]["namespace"] == "gpu-operator"
    assert "replicas: 4" in config_map["data"]["any"]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["metadata"]["name"] == "gpu-operator"
    assert _pod_spec(deployment)["containers"][0]["image"] == "nvcr.io/nvidia/gpu-operator:v25.10.1"


def test_gpu_operator_image_overridable(tmp_path):
    values = {"operator": {"repository": "registry.local/nvidia", "version": "v25.10.1-mirror"}}
    deployment = next(d for d in render("gpu-operator", tmp_path, values) if d["kind"] == "Deployment")
    assert _pod_spec(deployment)["containers"][0]["image"] == "registry.local/nvidia/gpu-operator:v25.10.1-mirror"


def test_gpu_operator_without_time_slicing_has_no_config_map(tmp_path):
    docs = render("gpu-operator", tmp_path)
    assert not [d for d in docs if d["kind"] == "ConfigMap"]
    assert "config" not in next(d for d in docs if d["kind"] == "ClusterPolicy")["spec"]["devicePlugin"]


def test_jupyterhub_objects(tmp_path):
    by_kind = {}
    for doc in render("jupyterhub", tmp_path):
        by_kind.setdefault(doc["kind"], set()).add(doc["metadata"]["name"])
    assert by_kind["Deployment"] == {"hub", "proxy"}
    assert by_kind["Service"] == {"hub", "proxy-public", "proxy-api"}
    assert by_kind["PersistentVolumeClaim"] == {"hub-db-dir"}
    assert by_kind["NetworkPolicy"] == {"hub", "proxy", "singleuser"}
    assert {"ConfigMap", "Secret", "ServiceAccount", "Role", "RoleBinding"} <= set(by_kind)

    docs = render("jupyterhub", tmp_path, ROLE_VALUES["jupyterhub"])
    kinds = {d["kind"] for d in docs}
    assert "PersistentVolumeClaim" not in kinds and "Ingress" in kinds
    values = yaml.safe_load(base64.b64decode(next(d for d in docs if d["kind"] == "Secret")["data"]["values.yaml"]))
    assert values["singleuser"]["profileList"] == ROLE_VALUES["jupyterhub"]["singleuser"]["profileList"]
    assert values["cull"]["every"] == 300

    docs = render("jupyterhub", tmp_path, {"hub": {"networkPolicy": {"enabled": False}},
                                           "proxy": {"chp": {"networkPolicy": {"enabled": False}}},
                                           "singleuser": {"networkPolicy": {"enabled": False}}})
    assert not [d for d in docs if d["kind"] == "NetworkPolicy"]


def test_kserve_config(tmp_path):
    docs = render("kserve", tmp_path, ROLE_VALUES["kserve"], namespace="kserve")
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert config_map["metadata"]["name"] == "inferenceservice-config"
    assert yaml.safe_load(config_map["data"]["deploy"]) == {"defaultDeploymentMode": "RawDeployment"}
    assert yaml.safe_load(config_map["data"]["ingress"])["ingressDomain"] == "models.example.com"
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["metadata"]["name"] == "kserve-controller-manager"
    images = {c["name"]: c["image"] for c in _pod_spec(deployment)["containers"]}
    assert images["manager"] == "kserve/kserve-controller:v0.16.0"


# --- on the testbed -------------------------------------------------------------------------------------------------


def _wait(predicate, timeout, what):
    return poll_until(predicate, timeout, what, interval=2)


def _ensure_namespace(core, name):
    from kubernetes.client.rest import ApiException  # pylint: disable=import-outside-toplevel

    try:
        core.read_namespace(name)
        return False
    except ApiException as exc:
        if exc.status != 404:
            raise
    core.create_namespace({"metadata": {"name": name}})
    return True


def _has_crd(k8s):
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    names = [c.metadata.name for c in client.ApiextensionsV1Api(k8s).list_custom_resource_definition().items]
    return "clusterpolicies.nvidia.com" in names


def test_gpu_operator_on_testbed(testbed, k8s, namespaces, tmp_path):
    from kubernetes import client, dynamic  # pylint: disable=import-outside-toplevel

    namespace = "gpu-operator"  # where the node agent, like the real operator, puts the operands
    core = client.CoreV1Api(k8s)
    created = _ensure_namespace(core, namespace)
    release = "t-gpu-%s" % uuid.uuid4().hex[:6]
    policies = dynamic.DynamicClient(k8s).resources.get(api_version="nvidia.com/v1", kind="ClusterPolicy") if _has_crd(k8s) else None
    if policies is not None:
        # A cluster has one ClusterPolicy; another user of a shared testbed may hold it for a while.
        _wait(lambda: not [p for p in policies.get().items if p.metadata.name == "cluster-policy"], 180,
              "the ClusterPolicy cluster-policy of another user of this testbed to go away")
    helm("install", release, chart_path("gpu-operator"), "-n", namespace, "-f",
         values_file(tmp_path, ROLE_VALUES["gpu-operator"]), kubeconfig=testbed.kubeconfig)
    try:
        policies = dynamic.DynamicClient(k8s).resources.get(api_version="nvidia.com/v1", kind="ClusterPolicy")

        def ready():
            state = (policies.get(name="cluster-policy").to_dict().get("status") or {}).get("state")
            return state == "ready"

        _wait(ready, 240, "ClusterPolicy cluster-policy status.state == ready")
        policy = policies.get(name="cluster-policy").to_dict()
        assert policy["spec"]["devicePlugin"]["config"]["name"] == "time-slicing-config"
        assert core.read_namespaced_config_map("time-slicing-config", namespace).data["any"]
        deployment = client.AppsV1Api(k8s).read_namespaced_deployment("gpu-operator", namespace)
        assert deployment.spec.template.spec.service_account_name == "gpu-operator"
    finally:
        helm("uninstall", release, "-n", namespace, "--wait", kubeconfig=testbed.kubeconfig, check=False)
        if created:
            namespaces.delete_and_wait(namespace)


def test_jupyterhub_on_testbed(testbed, k8s, namespace, tmp_path):
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    apps = client.AppsV1Api(k8s)
    core = client.CoreV1Api(k8s)
    values = values_file(tmp_path, ROLE_VALUES["jupyterhub"])
    helm("install", "jupyterhub", chart_path("jupyterhub"), "-n", namespace, "-f", values, kubeconfig=testbed.kubeconfig)
    try:
        def available():
            states = []
            for name in ("hub", "proxy"):
                status = apps.read_namespaced_deployment_status(name, namespace).status
                states.append(any(c.type == "Available" and c.status == "True" for c in status.conditions or [])
                              and (status.ready_replicas or 0) >= 1)
            return all(states)

        _wait(available, 240, "Deployments hub and proxy to become available")
        services = {s.metadata.name for s in core.list_namespaced_service(namespace).items}
        assert {"hub", "proxy-public", "proxy-api"} <= services

        token_key = "hub.config.ConfigurableHTTPProxy.auth_token"
        token = core.read_namespaced_secret("hub", namespace).data[token_key]
        helm("upgrade", "jupyterhub", chart_path("jupyterhub"), "-n", namespace, "-f", values, kubeconfig=testbed.kubeconfig)
        assert core.read_namespaced_secret("hub", namespace).data[token_key] == token, "upgrade regenerated the proxy token"
    finally:
        helm("uninstall", "jupyterhub", "-n", namespace, kubeconfig=testbed.kubeconfig, check=False)
