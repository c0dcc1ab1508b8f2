# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/lifecycle.yml on the testbed: train -> register -> serve.

What is real and what is played: the Kubernetes API server, scheduler and controllers are real; the node agent
plays the kubelet (the training Job's pod succeeds) and the KServe controller (the InferenceService becomes
Ready); MLflow is a real server (mlflow_server.py: the release the platform deploys, basic auth, PostgreSQL, S3)
outside the cluster, reached from the controller. KServe is installed first with the kserve role, as a platform
run would have done, from the testbed's stand-in chart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
import yaml

from mlflow_server import BUCKET, mlflow_server  # noqa: F401  pylint: disable=unused-import
from upstream import ROOT

STAND_IN = os.path.join(ROOT, "tests", "testbed", "charts", "kserve")
HELM = os.path.join(os.environ.get("MLOPS_TESTBED_CACHE", os.path.expanduser("~/.cache/mlops-testbed")), "bin", "helm")
INVENTORY = os.path.join(ROOT, "inventories", "local", "hosts.yml")
LIFECYCLE = os.path.join(ROOT, "playbooks", "lifecycle.yml")


def ansible_playbook(ansible_env, playbook, extra_vars, tmp_path, check=False):
    env = dict(ansible_env, MLOPS_KUBECONFIG=ansible_env["KUBECONFIG"])
    env.pop("K8S_AUTH_KUBECONFIG", None)  # the connection must come from the play's module_defaults
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        env.pop(name, None)
    varsfile = tmp_path / ("vars-%s.json" % uuid.uuid4().hex[:6])
    varsfile.write_text(json.dumps(extra_vars))
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY, playbook, "-e", "@%s" % varsfile]
    proc = subprocess.run(argv + (["--check"] if check else []), capture_output=True, text=True, env=env, check=False, timeout=1800)
    return proc.returncode, proc.stdout + proc.stderr


def recap(output):
    line = [entry for entry in output.splitlines() if entry.startswith("localhost")][-1]
    return dict((key, int(value)) for key, value in (item.split("=") for item in line.split(":", 1)[1].split()))


@pytest.fixture(scope="module")
def kserve_installed(ansible_env, tmp_path_factory):
    """The kserve role run on the testbed (stand-in chart, no InferenceServices), as the platform would have."""
    tmp = tmp_path_factory.mktemp("kserve")
    playbook = tmp / "kserve.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "KServe", "hosts": "mlops_platform", "gather_facts": False,
        "module_defaults": {"group/kubernetes.core.k8s": {"kubeconfig": "{{ mlops_kubeconfig }}"},
                            "group/kubernetes.core.helm": {"kubeconfig": "{{ mlops_kubeconfig }}"}},
        "roles": [{"role": "mlops.platform.kserve", "vars": {
            "kserve_chart_ref": STAND_IN, "kserve_crd_install": False, "kserve_require_cert_manager": False,
            "kserve_helm_binary_path": HELM, "kserve_wait_timeout": 300}}]}]))
    rc, output = ansible_playbook(ansible_env, str(playbook), {}, tmp)
    assert rc == 0, output[-4000:]
    return True


@pytest.fixture(scope="module")
def priority_class(k8s):
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    from kubernetes.client.exceptions import ApiException  # pylint: disable=import-outside-toplevel

    try:
        client.SchedulingV1Api(k8s).read_priority_class("ml-training")
    except ApiException as err:
        if err.status != 404:
            raise
        client.SchedulingV1Api(k8s).create_priority_class({"metadata": {"name": "ml-training"}, "value": 1000})


@pytest.fixture
def lifecycle_namespaces(k8s):
    suffix = uuid.uuid4().hex[:6]
    names = {"train": "lc-train-%s" % suffix, "serve": "lc-serve-%s" % suffix}
    yield names
    from kubernetes import client  # pylint: disable=import-outside-toplevel
    from kubernetes.client.exceptions import ApiException  # pylint: disable=import-outside-toplevel

    for name in names.values():
        try:
            client.CoreV1Api(k8s).delete_namespace(name, propagation_policy="Background")
        except ApiException as err:
            if err.status != 404:
                raise


def test_train_register_serve_and_rerun_unchanged(ansible_env, k8s, tmp_path, mlflow_server, kserve_installed,  # noqa: F811
                                                  priority_class, lifecycle_namespaces):
    from kubernetes import client  # pylint: disable=import-outside-toplevel

    server = mlflow_server
    model = "lc-%s" % uuid.uuid4().hex[:6]
    store = "s3://%s/models" % BUCKET
    extra = {
        "mlops_mlflow_api_url": server.uri, "mlops_mlflow_username": server.username, "mlops_mlflow_password": server.password,
        # On the testbed the pods are played, so the in-cluster tracking URI is never dialled; it must only be wired in.
        "lifecycle_mlflow_tracking_uri": "http://mlflow.mlflow.svc:5000",
        "lifecycle_model_name": model, "lifecycle_run_name": "%s-train" % model, "lifecycle_model_store": store,
        "lifecycle_training_namespace": lifecycle_namespaces["train"], "lifecycle_serving_namespace": lifecycle_namespaces["serve"],
        "lifecycle_training_timeout": 300, "lifecycle_wait_timeout": 300,
    }
    source = "%s/%s/%s-train" % (store, model, model)

    rc, output = ansible_playbook(ansible_env, LIFECYCLE, extra, tmp_path, check=True)
    assert rc == 0, output[-5000:]
    assert "would register %s" % source in output
    assert server.rest("registered-models/get", name=model)[0] == 404, "check mode registered the model"
    assert lifecycle_namespaces["train"] not in [n.metadata.name for n in client.CoreV1Api(k8s).list_namespace().items]

    rc, output = ansible_playbook(ansible_env, LIFECYCLE, extra, tmp_path)
    assert rc == 0, output[-5000:]
    assert server.password not in output

    # Trained: the Job succeeded, with MLflow wired into its environment.
    job = client.BatchV1Api(k8s).read_namespaced_job("%s-train" % model, lifecycle_namespaces["train"])
    assert job.status.succeeded == 1 and any(c.type == "Complete" and c.status == "True" for c in job.status.conditions)
    env = {e.name: e for e in job.spec.template.spec.containers[0].env}
    assert env["MLFLOW_TRACKING_URI"].value == "http://mlflow.mlflow.svc:5000"
    assert env["MODEL_OUTPUT_URI"].value == source
    assert env["MLFLOW_TRACKING_PASSWORD"].value_from.secret_key_ref.key == "password"

    # Registered: one version, from the artifact location the Job was told to write.
    status, found = server.rest("model-versions/search", filter="name='%s'" % model)
    assert status == 200 and [(v["version"], v["source"], v["status"]) for v in found["model_versions"]] == [("1", source, "READY")]
    status, alias = server.rest("registered-models/alias", name=model, alias="champion")
    assert status == 200 and alias["model_version"]["version"] == "1"
    status, download = server.rest("model-versions/get-download-uri", name=model, version="1")
    assert status == 200

    # Served: the InferenceService loads the registered version's download location and is Ready.
    isvc = client.CustomObjectsApi(k8s).get_namespaced_custom_object(
        "serving.kserve.io", "v1beta1", lifecycle_namespaces["serve"], "inferenceservices", model)
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == download["artifact_uri"].rstrip("/") + "/"
    assert isvc["spec"]["predictor"]["model"]["modelFormat"]["name"] == "mlflow"
    ready = [c for c in isvc["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True", isvc["status"]

    rc, output = ansible_playbook(ansible_env, LIFECYCLE, extra, tmp_path)
    assert rc == 0, output[-5000:]
    assert recap(output)["changed"] == 0, output[-5000:]
    assert len(server.rest("model-versions/search", filter="name='%s'" % model)[1]["model_versions"]) == 1
