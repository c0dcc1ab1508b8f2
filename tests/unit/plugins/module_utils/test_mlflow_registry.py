# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugins/module_utils/mlflow_registry.py against a fake MLflow REST layer."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.mlops.platform.plugins.module_utils.mlflow_registry import (
    GET_ALIAS,
    GET_DOWNLOAD_URI,
    GET_VERSION,
    MlflowRegistryError,
    decode_body,
    parse_model_uri,
    resolve_model_uri,
    storage_uri,
)

SERVER = "https://mlflow.example.com"


class FakeRegistry(object):
    """Answers the three registry calls from a table of versions and aliases, and records every request."""

    def __init__(self, versions, aliases=None, status=None, body=None):
        self.versions, self.aliases = versions, aliases or {}
        self.forced = (status, body) if status else None
        self.calls = []

    def __call__(self, path, params):
        self.calls.append((path, dict(params)))
        if self.forced:
            return self.forced
        name = params["name"]
        if path == GET_ALIAS:
            version = self.aliases.get((name, params["alias"]))
            if version is None:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Registered model alias %s not found." % params["alias"]}
            return 200, {"model_version": self.versions[(name, version)]["model_version"]}
        entry = self.versions.get((name, params["version"]))
        if entry is None:
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Model Version (name=%s, version=%s) not found" % (name, params["version"])}
        if path == GET_VERSION:
            return 200, {"model_version": entry["model_version"]}
        if path == GET_DOWNLOAD_URI:
            return 200, {"artifact_uri": entry["download"]}
        return 404, None


def version(name, number, download, source=None, status="READY", **extra):
    model_version = dict(name=name, version=str(number), source=source or "models:/m-%s%s" % (name, number), status=status,
                         run_id="r%s" % number, **extra)
    return {(name, str(number)): {"model_version": model_version, "download": download}}


REGISTRY = {}
REGISTRY.update(version("fraud", 3, "s3://ml/1/models/m-abc/artifacts"))
REGISTRY.update(version("fraud", 4, "mlflow-artifacts:/1/models/m-def/artifacts"))
REGISTRY.update(version("fraud", 5, "s3://ml/1/models/m-pending/artifacts", status="PENDING_REGISTRATION"))
REGISTRY.update(version("fraud", 6, "gs://ml/models/6/"))


@pytest.mark.parametrize("uri, expected", [
    ("models:/fraud/3", ("fraud", "3", None)),
    ("models:/fraud@champion", ("fraud", None, "champion")),
    ("models:/my.model-v2/12/", ("my.model-v2", "12", None)),
    ("models:/fraud@blue_green-1", ("fraud", None, "blue_green-1")),
])
def test_parse_model_uri(uri, expected):
    assert parse_model_uri(uri) == expected


@pytest.mark.parametrize("uri, message", [
    ("runs:/abc/model", "expected models:/<name>/<version>"),
    ("models:/fraud", "expected models:/<name>/<version>"),
    ("models:/fraud/Production", "stages (Production, Staging, latest) are deprecated"),
    ("models:/fraud/latest", "'latest' is not a version number"),
    ("models:/fraud@", "expected models:/"),
    ("", "expected a string"),
    (None, "expected a string"),
])
def test_parse_model_uri_rejects(uri, message):
    with pytest.raises(MlflowRegistryError, match=message.replace("(", r"\(").replace(")", r"\)").replace("<", ".").replace(">", ".")):
        parse_model_uri(uri)


def test_version_resolves_through_the_download_uri_with_a_trailing_slash():
    fake = FakeRegistry(REGISTRY)
    result = resolve_model_uri(fake, "models:/fraud/3", server=SERVER)
    assert result["storage_uri"] == "s3://ml/1/models/m-abc/artifacts/"
    assert result["download_uri"] == "s3://ml/1/models/m-abc/artifacts"
    assert result["source"] == "models:/m-fraud3"
    assert (result["name"], result["version"], result["alias"], result["run_id"]) == ("fraud", "3", None, "r3")
    assert fake.calls == [(GET_VERSION, {"name": "fraud", "version": "3"}), (GET_DOWNLOAD_URI, {"name": "fraud", "version": "3"})]


def test_alias_resolves_to_its_version():
    fake = FakeRegistry(REGISTRY, aliases={("fraud", "champion"): "6"})
    result = resolve_model_uri(fake, "models:/fraud@champion", server=SERVER)
    assert result["version"] == "6"
    assert result["alias"] == "champion"
    assert result["storage_uri"] == "gs://ml/models/6/"  # one slash, not two
    assert fake.calls == [(GET_ALIAS, {"name": "fraud", "alias": "champion"}), (GET_DOWNLOAD_URI, {"name": "fraud", "version": "6"})]


def test_trailing_slash_can_be_turned_off():
    assert resolve_model_uri(FakeRegistry(REGISTRY), "models:/fraud/6", trailing_slash=False)["storage_uri"] == "gs://ml/models/6"


def test_proxied_location_needs_the_destination():
    with pytest.raises(MlflowRegistryError, match="artifact proxy.*set artifacts_destination"):
        resolve_model_uri(FakeRegistry(REGISTRY), "models:/fraud/4", server=SERVER)
    result = resolve_model_uri(FakeRegistry(REGISTRY), "models:/fraud/4", server=SERVER, artifacts_destination="pvc://mlflow-artifacts/")
    assert result["storage_uri"] == "pvc://mlflow-artifacts/1/models/m-def/artifacts/"


@pytest.mark.parametrize("download, destination, expected", [
    ("mlflow-artifacts:/1/m/artifacts", "s3://bucket/mlartifacts", "s3://bucket/mlartifacts/1/m/artifacts/"),
    ("mlflow-artifacts://mlflow.example.com:5000/1/m/artifacts", "s3://bucket", "s3://bucket/1/m/artifacts/"),
    ("https://acct.blob.core.windows.net/c/1/m/artifacts//", None, "https://acct.blob.core.windows.net/c/1/m/artifacts/"),
    ("pvc://claim/1/m", None, "pvc://claim/1/m/"),
])
def test_storage_uri_mapping(download, destination, expected):
    assert storage_uri(download, destination) == expected


@pytest.mark.parametrize("download, message", [
    ("/var/lib/mlflow/1/m/artifacts", "no scheme"),
    ("file:///var/lib/mlflow/1/m", "scheme 'file'"),
    ("models:/m-abc", "itself a registry reference"),
    ("runs:/abc/model", "itself a registry reference"),
    ("", "no artifact location"),
    (None, "no artifact location"),
])
def test_storage_uri_rejects_what_kserve_cannot_load(download, message):
    with pytest.raises(MlflowRegistryError, match=message):
        storage_uri(download)


def test_missing_version_names_the_model_and_the_server():
    with pytest.raises(MlflowRegistryError, match=r"version 9 of registered model 'fraud' not found in the MLflow registry at "
                                                  r"https://mlflow.example.com \(HTTP 404: Model Version"):
        resolve_model_uri(FakeRegistry(REGISTRY), "models:/fraud/9", server=SERVER)


def test_missing_alias_names_the_alias():
    with pytest.raises(MlflowRegistryError, match="alias 'staging' of registered model 'fraud' not found"):
        resolve_model_uri(FakeRegistry(REGISTRY), "models:/fraud@staging", server=SERVER)


def test_missing_alias_as_the_real_server_answers_it():
    # MLflow 3.15.1 answers an unknown alias with HTTP 400 INVALID_PARAMETER_VALUE, not 404.
    fake = FakeRegistry(REGISTRY, status=400, body={"error_code": "INVALID_PARAMETER_VALUE", "message": "Registered model alias nope not found."})
    with pytest.raises(MlflowRegistryError, match="alias 'nope' of registered model 'fraud' not found in the MLflow registry"):
        resolve_model_uri(fake, "models:/fraud@nope", server=SERVER)


def test_other_bad_requests_are_not_called_missing():
    fake = FakeRegistry(REGISTRY, status=400, body={"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid alias name"})
    with pytest.raises(MlflowRegistryError, match="answered HTTP 400 for alias 'x' of registered model 'fraud': Invalid alias name"):
        resolve_model_uri(fake, "models:/fraud@x", server=SERVER)


def test_version_not_ready_is_refused():
    with pytest.raises(MlflowRegistryError, match="is PENDING_REGISTRATION, not READY"):
        resolve_model_uri(FakeRegistry(REGISTRY), "models:/fraud/5", server=SERVER)
    assert resolve_model_uri(FakeRegistry(REGISTRY), "models:/fraud/5", require_ready=False)["status"] == "PENDING_REGISTRATION"


@pytest.mark.parametrize("status", [401, 403])
def test_authentication_failure_says_so(status):
    fake = FakeRegistry(REGISTRY, status=status, body=None)
    with pytest.raises(MlflowRegistryError, match=r"refused the request .*HTTP %d.*check the username and password" % status):
        resolve_model_uri(fake, "models:/fraud/3", server=SERVER)


def test_server_error_carries_its_message():
    fake = FakeRegistry(REGISTRY, status=500, body={"error_code": "INTERNAL_ERROR", "message": "database is locked"})
    with pytest.raises(MlflowRegistryError, match="answered HTTP 500 for version 3 of registered model 'fraud': database is locked"):
        resolve_model_uri(fake, "models:/fraud/3", server=SERVER)


def test_non_json_answer_is_an_error():
    fake = FakeRegistry(REGISTRY, status=200, body=None)
    with pytest.raises(MlflowRegistryError, match="not a JSON object"):
        resolve_model_uri(fake, "models:/fraud/3", server=SERVER)


def test_answer_without_model_version():
    def empty(path, params):
        return 200, {}
    with pytest.raises(MlflowRegistryError, match="gave no model_version"):
        resolve_model_uri(empty, "models:/fraud/3", server=SERVER)


@pytest.mark.parametrize("raw, expected", [
    (b'{"a": 1}', {"a": 1}),
    ('{"a": 1}', {"a": 1}),
    (b"<html>oops</html>", None),
    (b"", None),
    (None, None),
])
def test_decode_body(raw, expected):
    assert decode_body(raw) == expected
