# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The MLflow server command line that the community-charts mlflow chart renders from its values.

The role hands the chart its values and needs to know the exact ``mlflow server`` argv the pod will
run, to publish it (``mlflow_server_command``) and to run the very same command line in the contract
test against the real MLflow release. This module models the chart's container arguments for the
values paths the role sets: host and port, the backend store (PostgreSQL through ``$(PGUSER)`` and
``$(PGPASSWORD)``, which the kubelet expands from the container environment, or SQLite), the
proxied artifact destination (S3, Azure Blob or a local path), ``auth.appName``, ``extraArgs``
(sorted by key, keys turned to kebab case) and ``extraFlags``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re


class MlflowChartError(ValueError):
    """Values the model cannot turn into a command line."""


def kebab_case(name):
    """``gunicornOpts`` -> ``gunicorn-opts`` (Sprig's kebabcase for the camel-case keys charts use)."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", str(name))
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", text)
    return text.replace("_", "-").lower()


def _get(values, *path, **kwargs):
    node = values
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return kwargs.get("default")
        node = node[key]
    return node


def _artifact_target(values):
    root = _get(values, "artifactRoot", default={}) or {}
    proxied = bool(root.get("proxiedArtifactStorage", False))
    flag = "artifacts-destination" if proxied else "default-artifact-root"
    target = root.get("defaultArtifactsDestination", "./mlartifacts") if proxied else root.get("defaultArtifactRoot", "./mlruns")
    azure = root.get("azureBlob") or {}
    s3 = root.get("s3") or {}
    gcs = root.get("gcs") or {}
    if azure.get("enabled"):
        target = "wasbs://%s@%s.blob.core.windows.net/%s" % (azure.get("container", ""), azure.get("storageAccount", ""), azure.get("path", ""))
    elif s3.get("enabled"):
        target = "s3://%s/%s" % (s3.get("bucket", ""), s3.get("path", ""))
    elif gcs.get("enabled"):
        target = "gs://%s/%s" % (gcs.get("bucket", ""), gcs.get("path", ""))
    return proxied, flag, target


def server_command(values):
    """The container command plus arguments (one list) of the MLflow server for chart ``values``."""
    if not isinstance(values, dict):
        raise MlflowChartError("expected the chart values as a dict, got %s" % type(values).__name__)
    store = _get(values, "backendStore", default={}) or {}
    postgres = store.get("postgres") or {}
    argv = ["mlflow", "server", "--host=%s" % values.get("serverHost", "0.0.0.0"),
            "--port=%s" % _get(values, "service", "containerPort", default=5000)]
    if postgres.get("enabled"):
        driver = postgres.get("driver") or ""
        argv.append("--backend-store-uri=postgresql%s://$(PGUSER):$(PGPASSWORD)@%s:%s/%s" % (
            "+" + driver if driver else "", postgres.get("host", ""), postgres.get("port", 5432), postgres.get("database", "")))
    elif (store.get("mysql") or {}).get("enabled"):
        raise MlflowChartError("backendStore.mysql is not modelled; the role uses PostgreSQL or SQLite")
    else:
        argv.append("--backend-store-uri=sqlite:///%s" % store.get("defaultSqlitePath", ":memory:"))
    proxied, flag, target = _artifact_target(values)
    if proxied:
        argv.append("--serve-artifacts")
    argv.append("--%s=%s" % (flag, target))
    if _get(values, "auth", "enabled", default=False):
        argv.append("--app-name=%s" % _get(values, "auth", "appName", default="basic-auth"))
    for key in sorted(values.get("extraArgs") or {}):
        argv.append("--%s=%s" % (kebab_case(key), values["extraArgs"][key]))
    for flag_name in values.get("extraFlags") or []:
        argv.append("--%s" % kebab_case(flag_name))
    return argv


_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


def expand_env_refs(text, env):
    """Expand ``$(VAR)`` as the kubelet does in container args: unknown references stay, ``$$`` is ``$``."""
    def repl(match):
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)
    return _VAR_REF.sub(repl, text)
