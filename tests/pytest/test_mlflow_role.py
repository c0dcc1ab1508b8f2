# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mlflow role without a cluster: its Helm values against the real chart data, its refusals, and the
command-line model behind ``mlflow_server_command``."""

from __future__ import annotations


import pytest

from upstream import assert_conforms, conformance_errors, render_role_values

from ansible_collections.mlops.platform.plugins.module_utils.mlflow_chart import expand_env_refs, kebab_case, server_command

EXTERNAL_PG = {"host": "pg.example.com", "port": 5432, "user": "mlflow", "password": "s3cret-pw", "sslmode": "require"}

MODES = {
    "defaults (deployed PostgreSQL, MinIO)": {},
    "external PostgreSQL, S3, two replicas, ingress": {
        "mlflow_database_mode": "external", "mlflow_postgres_external": EXTERNAL_PG, "mlflow_replicas": 2,
        "mlflow_artifacts_mode": "s3", "mlflow_s3": {"access_key_id": "AKIA", "secret_access_key": "x"},
        "mlflow_ingress": {"enabled": True, "host": "mlflow.example.com", "tls_secret_name": "tls"},
    },
    "Azure Blob": {"mlflow_artifacts_mode": "azure_blob",
                   "mlflow_azure_blob": {"storage_account": "acct", "container": "mlflow", "connection_string": "x"}},
    "claim, SQLite, no auth": {"mlflow_artifacts_mode": "pvc", "mlflow_database_mode": "sqlite", "mlflow_allow_sqlite": True,
                               "mlflow_auth_enabled": False},
}


@pytest.mark.parametrize("role_vars", list(MODES.values()), ids=list(MODES))
def test_values_conform_to_the_real_chart(role_vars):
    assert_conforms("mlflow", render_role_values("mlflow", role_vars))


def test_the_check_catches_a_misspelt_override():
    values = render_role_values("mlflow", {"mlflow_release_overrides": {"artifactRoot": {"s3": {"bucktet": "x"}}}})
    errors = conformance_errors("mlflow", values)
    assert any(e.startswith("artifactRoot.s3.bucktet:") for e in errors), errors


def test_values_carry_no_secret():
    role_vars = dict(MODES["external PostgreSQL, S3, two replicas, ingress"])
    values = render_role_values("mlflow", role_vars)
    text = repr(values)
    assert "s3cret-pw" not in text and "AKIA" not in text
    assert values["backendStore"]["existingDatabaseSecret"]["name"] == "mlflow-server-env"
    assert values["extraSecretNamesForEnvFrom"] == ["mlflow-server-env"]
    assert values["auth"]["enabled"] is False
    assert values["extraArgs"]["appName"] == "basic-auth"
    assert values["ingress"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "10g"
    assert values["ingress"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "900"
    assert "mlflow.example.com" in values["extraArgs"]["allowedHosts"].split(",")


def test_rendered_environment_and_auth_file():
    role_vars = dict(MODES["external PostgreSQL, S3, two replicas, ingress"], mlflow_auth_admin_password="admin-pass-1234%")
    out = render_role_values("mlflow", role_vars, fact="{'env': mlflow_server_env, 'ini': mlflow_auth_config}")
    env = out["env"]
    assert env["PGUSER"] == "mlflow" and env["PGPASSWORD"] == "s3cret-pw" and env["PGSSLMODE"] == "require"
    assert env["AWS_ACCESS_KEY_ID"] == "AKIA" and env["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/mlflow/auth/basic_auth.ini"
    assert "database_uri = postgresql+psycopg2://mlflow:s3cret-pw@pg.example.com:5432/mlflow_auth?sslmode=require" in out["ini"]
    assert "admin_password = admin-pass-1234%%" in out["ini"]  # configparser interpolation escaped


@pytest.mark.parametrize("role_vars, words", [
    ({"mlflow_replicas": 2, "mlflow_database_mode": "sqlite", "mlflow_allow_sqlite": True}, ["mlflow_replicas=2", "mlflow_database_mode"]),
    ({"mlflow_database_mode": "sqlite"}, ["mlflow_allow_sqlite"]),
    ({"mlflow_database_mode": "external"}, ["mlflow_postgres_external.host"]),
    ({"mlflow_database_mode": "external", "mlflow_postgres_external": dict(EXTERNAL_PG, password="p@ss/word")}, ["mlflow_postgres_external"]),
    ({"mlflow_artifacts_mode": "s3"}, ["mlflow_s3.access_key_id"]),
    ({"mlflow_artifacts_mode": "azure_blob", "mlflow_azure_blob": {"storage_account": "a", "create": True}}, ["resource_group"]),
])
def test_bad_input_fails_before_any_change(role_vars, words):
    with pytest.raises(AssertionError) as failure:
        render_role_values("mlflow", role_vars, tasks_from="validate", fact="mlflow_namespace")
    for word in words:
        assert word in str(failure.value)
    assert "p@ss/word" not in str(failure.value)


def test_argument_spec_refuses_an_unknown_choice():
    # The role's entry point validates meta/argument_specs.yml before its first task.
    with pytest.raises(AssertionError) as failure:
        render_role_values("mlflow", {"mlflow_database_mode": "postgres"}, tasks_from="main", fact="mlflow_namespace")
    text = str(failure.value)
    assert "mlflow_database_mode" in text and "deployed, external, sqlite" in text
    assert "Credentials" not in text and "Present |" not in text


def test_server_command_model():
    values = {"backendStore": {"postgres": {"enabled": True, "host": "db", "port": 5432, "database": "mlflow", "driver": "psycopg2"}},
              "artifactRoot": {"proxiedArtifactStorage": True, "s3": {"enabled": True, "bucket": "b", "path": "p"}},
              "extraArgs": {"workers": 2, "allowedHosts": "a,b"}, "extraFlags": ["exposePrometheus"]}
    assert server_command(values) == [
        "mlflow", "server", "--host=0.0.0.0", "--port=5000",
        "--backend-store-uri=postgresql+psycopg2://$(PGUSER):$(PGPASSWORD)@db:5432/mlflow",
        "--serve-artifacts", "--artifacts-destination=s3://b/p", "--allowed-hosts=a,b", "--workers=2", "--expose-prometheus"]
    assert server_command({})[4:] == ["--backend-store-uri=sqlite:///:memory:", "--default-artifact-root=./mlruns"]
    assert kebab_case("gunicornOpts") == "gunicorn-opts" and kebab_case("serveHTTPArtifacts") == "serve-http-artifacts"
    assert expand_env_refs("u=$(PGUSER) $(NOPE) $$(PGUSER)", {"PGUSER": "me"}) == "u=me $(NOPE) $(PGUSER)"
