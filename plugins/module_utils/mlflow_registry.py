# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""From an MLflow registry reference (``models:/<name>/<version>`` or ``models:/<name>@<alias>``) to the
artifact URI that KServe's storage initializer can download.

Everything here is pure except for the one ``http_get`` callable that ``resolve_model_uri`` is given, so the
REST exchanges and every error path are unit-tested with a fake HTTP layer; the lookup plugin
``mlops.platform.mlflow_model_uri`` plugs in Ansible's ``open_url``.

The MLflow REST calls used (API 2.0):

* ``GET /api/2.0/mlflow/model-versions/get?name=&version=`` for a numbered version;
* ``GET /api/2.0/mlflow/registered-models/alias?name=&alias=`` for an alias;
* ``GET /api/2.0/mlflow/model-versions/get-download-uri?name=&version=`` for the artifact location. A
  version's ``source`` may be ``models:/m-<id>`` or ``runs:/...`` (MLflow 3 logged models), which KServe
  cannot load; the download URI is the storage location behind it.

KServe loads an MLflow model directory only when ``storageUri`` ends with ``/`` (kserve/kserve#3899): the
resolved URI always gets exactly one trailing slash.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

MODEL_URI_RE = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[A-Za-z0-9_-]+))/?$")
GET_VERSION = "/api/2.0/mlflow/model-versions/get"
GET_ALIAS = "/api/2.0/mlflow/registered-models/alias"
GET_DOWNLOAD_URI = "/api/2.0/mlflow/model-versions/get-download-uri"
PROXY_SCHEME = "mlflow-artifacts"
# Schemes KServe's storage initializer downloads from (https covers Azure Blob and plain HTTP servers).
KSERVE_SCHEMES = ("s3", "gs", "abfs", "abfss", "wasb", "wasbs", "https", "http", "pvc", "hdfs", "webhdfs", "oci", "hf")
READY = "READY"


class MlflowRegistryError(Exception):
    """A reference that cannot be resolved; the message says why and never carries credentials."""


def parse_model_uri(uri):
    """``(name, version, alias)`` of a ``models:/`` reference; exactly one of version and alias is set."""
    if not isinstance(uri, str) or not uri:
        raise MlflowRegistryError("model URI: expected a string such as models:/<name>/<version> or models:/<name>@<alias>, got %r" % (uri,))
    match = MODEL_URI_RE.match(uri.strip())
    if not match:
        raise MlflowRegistryError("model URI %r: expected models:/<name>/<version> or models:/<name>@<alias>" % (uri,))
    version = match.group("version")
    if version is not None and not version.isdigit():
        raise MlflowRegistryError(
            "model URI %r: %r is not a version number; stages (Production, Staging, latest) are deprecated in the MLflow "
            "registry, use a version number or an alias (models:/<name>@<alias>)" % (uri, version))
    return match.group("name"), version, match.group("alias")


def api_error(status, body, what, server):
    """The message for an HTTP error answer of the MLflow server."""
    code = message = None
    if isinstance(body, dict):
        code, message = body.get("error_code"), body.get("message")
    detail = ": %s" % message if message else ""
    if status in (401, 403):
        return MlflowRegistryError(
            "MLflow server %s refused the request for %s (HTTP %d%s): check the username and password "
            "(or token) given to the lookup" % (server, what, status, " " + code if code else ""))
    # MLflow answers a missing alias with HTTP 400 ("Registered model alias <a> not found."), a missing version with 404.
    if status == 404 or code == "RESOURCE_DOES_NOT_EXIST" or (status == 400 and re.search(r"not found", message or "", re.IGNORECASE)):
        return MlflowRegistryError("%s not found in the MLflow registry at %s (HTTP %d%s)" % (what, server, status, detail))
    return MlflowRegistryError("MLflow server %s answered HTTP %d for %s%s" % (server, status, what, detail))


def _get(http_get, path, params, what, server):
    status, body = http_get(path, params)
    if status >= 400:
        raise api_error(status, body, what, server)
    if not isinstance(body, dict):
        raise MlflowRegistryError("MLflow server %s answered %s for %s with something that is not a JSON object" % (server, path, what))
    return body


def storage_uri(download_uri, artifacts_destination=None, trailing_slash=True):
    """The URI KServe loads, from the download URI the registry gives.

    ``mlflow-artifacts:/<path>`` (the server proxies its artifact store) is mapped onto ``artifacts_destination``
    (the server's ``--artifacts-destination``, e.g. ``s3://bucket/mlartifacts`` or ``pvc://mlflow-artifacts``),
    because KServe cannot talk to the proxy. The result ends with exactly one ``/`` (kserve#3899).
    """
    if not isinstance(download_uri, str) or not download_uri:
        raise MlflowRegistryError("the registry gave no artifact location (%r)" % (download_uri,))
    uri = download_uri
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme == PROXY_SCHEME:
        if not artifacts_destination:
            raise MlflowRegistryError(
                "artifact location %s is served through the MLflow server's artifact proxy, which KServe cannot download "
                "from: set artifacts_destination to the store behind the proxy (the server's --artifacts-destination, "
                "for example s3://bucket/mlartifacts or pvc://mlflow-artifacts)" % uri)
        rest = re.sub(r"^%s:(//[^/]*)?" % PROXY_SCHEME, "", uri, flags=re.IGNORECASE).lstrip("/")
        uri = artifacts_destination.rstrip("/") + "/" + rest
        scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme in ("models", "runs"):
        raise MlflowRegistryError("artifact location %s is itself a registry reference; the server did not resolve it" % uri)
    if scheme not in KSERVE_SCHEMES:
        raise MlflowRegistryError(
            "artifact location %s has %s, which KServe's storage initializer cannot download; supported: %s" % (
                uri, "scheme %r" % scheme if scheme else "no scheme (a path on the MLflow server's disk)", ", ".join(KSERVE_SCHEMES)))
    uri = uri.rstrip("/")
    return uri + "/" if trailing_slash else uri


def resolve_model_uri(http_get, uri, server="", artifacts_destination=None, trailing_slash=True, require_ready=True):
    """Resolve a ``models:/`` reference through the registry's REST API.

    ``http_get(path, params)`` returns ``(status, decoded JSON body or None)``. The answer is a dict with
    ``name``, ``version``, ``alias``, ``source``, ``download_uri``, ``status``, ``run_id`` and ``storage_uri`` (the
    URI for ``storageUri``).
    """
    name, version, alias = parse_model_uri(uri)
    if alias is not None:
        body = _get(http_get, GET_ALIAS, {"name": name, "alias": alias}, "alias %r of registered model %r" % (alias, name), server)
    else:
        body = _get(http_get, GET_VERSION, {"name": name, "version": version}, "version %s of registered model %r" % (version, name), server)
    model_version = body.get("model_version")
    if not isinstance(model_version, dict) or not model_version.get("version"):
        raise MlflowRegistryError("MLflow server %s gave no model_version for %s" % (server, uri))
    version = str(model_version["version"])
    status = model_version.get("status")
    if require_ready and status and status != READY:
        raise MlflowRegistryError("%s: version %s of registered model %r is %s, not %s%s" % (
            uri, version, name, status, READY,
            " (%s)" % model_version["status_message"] if model_version.get("status_message") else ""))
    body = _get(http_get, GET_DOWNLOAD_URI, {"name": name, "version": version},
                "the download URI of version %s of registered model %r" % (version, name), server)
    download_uri = body.get("artifact_uri")
    return {
        "name": name,
        "version": version,
        "alias": alias,
        "source": model_version.get("source"),
        "run_id": model_version.get("run_id"),
        "status": status,
        "download_uri": download_uri,
        "storage_uri": storage_uri(download_uri, artifacts_destination, trailing_slash),
    }


def decode_body(raw):
    """The JSON object of an answer body (bytes or str), or None when it is not JSON."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        return None
