# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: mlflow_model_uri
short_description: Resolve an MLflow registry model reference to the artifact URI KServe loads
version_added: 0.3.0
description:
  - Resolves C(models:/<name>/<version>) or C(models:/<name>@<alias>) through the MLflow REST API (C(model-versions/get)
    or C(registered-models/alias), then C(model-versions/get-download-uri)) and returns the artifact URI to put in an
    InferenceService's C(storageUri).
  - The result always ends with one C(/); KServe cannot load an MLflow model directory without it
    (kserve/kserve#3899).
  - A location behind the MLflow server's artifact proxy (C(mlflow-artifacts:/...)) is mapped onto
    O(artifacts_destination), the store the proxy writes to.
  - The password and token are sent only in the C(Authorization) header and never appear in errors or results.
author:
  - mlops.platform maintainers (@mlops-platform)
extends_documentation_fragment:
  - mlops.platform.mlflow_http
options:
  _terms:
    description: Model references, C(models:/<name>/<version>) or C(models:/<name>@<alias>).
    type: list
    elements: str
    required: true
  tracking_uri:
    description: Base URL of the MLflow tracking server, for example V(https://mlflow.example.com).
    type: str
    required: true
    env:
      - name: MLFLOW_TRACKING_URI
  username:
    description: Username for HTTP basic authentication (MLflow's C(basic-auth) app).
    type: str
    env:
      - name: MLFLOW_TRACKING_USERNAME
  password:
    description: Password for HTTP basic authentication.
    type: str
    env:
      - name: MLFLOW_TRACKING_PASSWORD
  token:
    description: Bearer token, instead of basic authentication.
    type: str
    env:
      - name: MLFLOW_TRACKING_TOKEN
  artifacts_destination:
    description:
      - The artifact store behind the server's artifact proxy (its C(--artifacts-destination)), for example
        V(s3://bucket/mlartifacts) or V(pvc://mlflow-artifacts). Needed when the registry answers with a
        C(mlflow-artifacts:/) location.
    type: str
  trailing_slash:
    description: End the URI with C(/). Leave on for MLflow model directories.
    type: bool
    default: true
  details:
    description: Return a dictionary (name, version, alias, source, run_id, status, download_uri, storage_uri) instead of the URI.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Serve the version of the model that the alias "champion" points to
  kubernetes.core.k8s:
    state: present
    definition: >-
      {{ 'fraud' | mlops.platform.inference_service(namespace='serving', model_format='mlflow',
         storage_uri=lookup('mlops.platform.mlflow_model_uri', 'models:/fraud-detector@champion',
                            tracking_uri='https://mlflow.example.com', username=mlflow_user, password=mlflow_password,
                            artifacts_destination='s3://mlflow-artifacts')) }}

- name: Everything the registry says about version 3
  ansible.builtin.debug:
    msg: "{{ lookup('mlops.platform.mlflow_model_uri', 'models:/fraud-detector/3', details=true) }}"
"""

RETURN = r"""
_raw:
  description: One entry per term, the artifact URI ending in C(/), or a dictionary with O(details=true).
  type: list
  elements: raw
"""

import re
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import open_url
from ansible.plugins.lookup import LookupBase

from ansible_collections.mlops.platform.plugins.module_utils.mlflow_registry import (
    MlflowRegistryError,
    decode_body,
    resolve_model_uri,
)


class LookupModule(LookupBase):
    def _http_get(self, base, options):
        username, password, token = options["username"], options["password"], options["token"]
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = "Bearer %s" % token

        def http_get(path, params):
            url = "%s%s?%s" % (base, path, urlencode(params))
            try:
                response = open_url(
                    url, method="GET", headers=headers, url_username=username if not token else None,
                    url_password=password if not token else None, force_basic_auth=bool(username and not token),
                    validate_certs=options["validate_certs"], ca_path=options["ca_path"], timeout=options["timeout"],
                    follow_redirects="safe")
                return response.getcode(), decode_body(response.read())
            except HTTPError as exc:
                return exc.code, decode_body(exc.read())
            except URLError as exc:
                raise MlflowRegistryError("cannot reach the MLflow server %s: %s" % (re.sub(r"//[^/@]*@", "//", base), to_native(exc.reason)))
            except (OSError, ValueError) as exc:
                raise MlflowRegistryError("request to the MLflow server %s failed: %s" % (re.sub(r"//[^/@]*@", "//", base), to_native(exc)))
        return http_get

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        names = ("tracking_uri", "username", "password", "token", "artifacts_destination", "trailing_slash", "details",
                 "validate_certs", "ca_path", "timeout")
        options = dict((name, self.get_option(name)) for name in names)
        base = (options["tracking_uri"] or "").rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise AnsibleLookupError("mlops.platform.mlflow_model_uri: tracking_uri must be an http(s) URL")
        http_get = self._http_get(base, options)
        shown = re.sub(r"//[^/@]*@", "//", base)  # never show credentials embedded in the URL
        results = []
        for term in terms:
            try:
                resolved = resolve_model_uri(http_get, term, server=shown, artifacts_destination=options["artifacts_destination"],
                                             trailing_slash=options["trailing_slash"])
            except MlflowRegistryError as exc:
                raise AnsibleLookupError("mlops.platform.mlflow_model_uri: %s" % to_native(exc))
            results.append(resolved if options["details"] else resolved["storage_uri"])
        return results
