# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Contract test: the MLflow release the role deploys, run with the command line and environment the
role renders, against a real PostgreSQL and an S3-compatible store (see mlflow_server.py)."""

from __future__ import annotations

from mlflow_server import BUCKET, MLFLOW_VERSION, mlflow_server  # noqa: F401  pylint: disable=unused-import

CLIENT = r"""
import json, os, sys, tempfile
import boto3, mlflow, requests
from mlflow import MlflowClient

uri = os.environ["MLFLOW_TRACKING_URI"]
out = {"version": mlflow.__version__}
mlflow.set_tracking_uri(uri)
print("connected", file=sys.stderr, flush=True)
experiment = mlflow.set_experiment("contract")
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "marker.txt")
    with open(path, "w") as handle:
        handle.write("contract marker")
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        mlflow.log_param("alpha", "0.5")
        mlflow.log_metric("rmse", 0.25)
        mlflow.log_artifact(path, artifact_path="files")
print("run logged", file=sys.stderr, flush=True)

class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input

with mlflow.start_run(experiment_id=experiment.experiment_id) as model_run:
    info = mlflow.pyfunc.log_model(name="model", python_model=Echo(), pip_requirements=["mlflow==%s" % mlflow.__version__],
                                   registered_model_name="contract-model")
print("model logged", file=sys.stderr, flush=True)
client = MlflowClient()
version = client.get_model_version("contract-model", info.registered_model_version)
out["run_id"] = run.info.run_id
out["artifacts"] = [f.path for f in client.list_artifacts(run.info.run_id, "files")]
out["downloaded"] = open(client.download_artifacts(run.info.run_id, "files/marker.txt", tempfile.mkdtemp())).read()
out["model_version"] = version.version
out["model_status"] = version.status
out["model_source"] = version.source
out["experiment_artifact_location"] = experiment.artifact_location

s3 = boto3.client("s3", endpoint_url=os.environ["MLFLOW_S3_ENDPOINT_URL"])
keys = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[1]):
    keys += [obj["Key"] for obj in page.get("Contents", [])]
out["bucket_keys"] = keys
out["marker_in_bucket"] = [s3.get_object(Bucket=sys.argv[1], Key=k)["Body"].read().decode() for k in keys if k.endswith("files/marker.txt")]
print(json.dumps(out))
"""

ANONYMOUS = r"""
import json, os, requests
uri = os.environ["MLFLOW_TRACKING_URI"]
out = {}
out["search"] = requests.post(uri + "/api/2.0/mlflow/experiments/search", json={"max_results": 1}, timeout=30).status_code
out["registry"] = requests.get(uri + "/api/2.0/mlflow/registered-models/search", timeout=30).status_code
out["wrong_password"] = requests.post(uri + "/api/2.0/mlflow/experiments/search", json={"max_results": 1},
                                      auth=("admin", "not-the-password"), timeout=30).status_code
out["health"] = requests.get(uri + "/health", timeout=30).status_code
print(json.dumps(out))
"""


def test_server_runs_the_rendered_command_line(mlflow_server):  # noqa: F811
    command = mlflow_server.rendered["command"]
    assert command[:2] == ["mlflow", "server"]
    assert "--app-name=basic-auth" in command
    assert "--serve-artifacts" in command
    assert "--artifacts-destination=s3://%s/artifacts" % BUCKET in command
    assert any(a.startswith("--backend-store-uri=postgresql+psycopg2://$(PGUSER):$(PGPASSWORD)@127.0.0.1:") for a in command)
    assert any(a.startswith("--uvicorn-opts=") for a in command)
    assert "--workers=1" in command
    assert not any(a.startswith("--gunicorn-opts") for a in command)
    # What ran is that command line, with only host and port moved to a free loopback port.
    ran = [a for a in mlflow_server.argv[1:] if not a.startswith(("--host=", "--port=", "--backend-store-uri="))]
    assert ran == [a for a in command[1:] if not a.startswith(("--host=", "--port=", "--backend-store-uri="))]
    assert "$(" not in " ".join(mlflow_server.argv)


def test_authenticated_client_logs_a_run_and_registers_a_model(mlflow_server):  # noqa: F811
    result = mlflow_server.run_client(CLIENT, BUCKET)
    assert result["version"] == MLFLOW_VERSION
    assert result["artifacts"] == ["files/marker.txt"]
    assert result["downloaded"] == "contract marker"
    assert result["model_version"] == "1"
    assert result["model_status"] == "READY"
    # The server proxies the artifacts: clients see mlflow-artifacts:, the objects land in the bucket.
    assert result["experiment_artifact_location"].startswith("mlflow-artifacts:")
    assert result["marker_in_bucket"] == ["contract marker"], result["bucket_keys"]
    assert all(k.startswith("artifacts/") for k in result["bucket_keys"]), result["bucket_keys"]
    assert any(k.endswith("MLmodel") for k in result["bucket_keys"]), result["bucket_keys"]


def test_unauthenticated_requests_are_refused(mlflow_server):  # noqa: F811
    result = mlflow_server.run_client(ANONYMOUS, authenticated=False)
    assert result == {"search": 401, "registry": 401, "wrong_password": 401, "health": 200}


def test_schemas_are_in_postgres(mlflow_server):  # noqa: F811
    tracking = mlflow_server.postgres.psql("SELECT count(*) FROM experiments", database="mlflow")
    users = mlflow_server.postgres.psql("SELECT username FROM users", database="mlflow_auth")
    assert int(tracking.strip()) >= 1
    assert users.split() == ["admin"]


def test_migration_scripts_are_idempotent(mlflow_server):  # noqa: F811
    # An upgrade reruns them on a current schema: they must succeed and change nothing.
    for name in ("tracking", "auth"):
        done = mlflow_server.run_script(mlflow_server.rendered["upgrade_scripts"][name])
        assert done.returncode == 0, done.stderr[-3000:]
