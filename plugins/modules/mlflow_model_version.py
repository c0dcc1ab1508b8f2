#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mlflow_model_version
short_description: Register a model version in the MLflow model registry, idempotently
version_added: 0.4.0
author:
  - mlops.platform maintainers (!UNKNOWN)
description:
  - Makes sure registered model O(name) has a version whose source is O(source), through the MLflow REST API 2.0;
    it creates the registered model when it is missing, creates the version (with O(run_id), O(tags) and
    O(description)) when no version of the model has that source, and waits until the version is C(READY).
  - A version with the same source (a trailing C(/) does not count) is the one returned, and nothing is created
    (C(changed=false)); differing O(tags) are set on it.
  - Optionally points O(alias) at the version.
  - The password and token are sent only in the C(Authorization) header and never appear in results or errors.
extends_documentation_fragment:
  - mlops.platform.mlflow_http
options:
  name:
    description: Name of the registered model.
    type: str
    required: true
  source:
    description:
      - Artifact URI of the model directory, for example V(s3://mlflow/models/fraud/7) or V(runs:/<run_id>/model).
    type: str
    required: true
  run_id:
    description: MLflow run that produced the model (recorded on a new version).
    type: str
  alias:
    description: Alias to point at the version, for example V(champion).
    type: str
  tags:
    description: Tags of the version (key to value).
    type: dict
    default: {}
  description:
    description: Description of a new version.
    type: str
  tracking_uri:
    description:
      - Base URL of the MLflow server, for example V(https://mlflow.example.com). C(MLFLOW_TRACKING_URI) when unset.
    type: str
  username:
    description: Username for HTTP basic authentication (MLflow's C(basic-auth) app). C(MLFLOW_TRACKING_USERNAME) when unset.
    type: str
  password:
    description: Password for HTTP basic authentication. C(MLFLOW_TRACKING_PASSWORD) when unset.
    type: str
  token:
    description: Bearer token instead of basic authentication. C(MLFLOW_TRACKING_TOKEN) when unset.
    type: str
  ready_timeout:
    description: Seconds to wait for a new version to become C(READY).
    type: int
    default: 300
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Only reads; RV(actions) lists what would be done, and RV(version) is null when a version would be created.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
    details: RV(actions) lists the changes.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: all
seealso:
  - plugin: mlops.platform.mlflow_model_uri
    plugin_type: lookup
  - module: mlops.platform.gpu_training_job
"""

EXAMPLES = r"""
- name: Register what the training Job wrote and make it the champion
  mlops.platform.mlflow_model_version:
    tracking_uri: https://mlflow.example.com
    username: "{{ mlflow_user }}"
    password: "{{ mlflow_password }}"
    name: fraud-detector
    source: s3://mlflow/models/fraud-detector/7
    alias: champion
    tags:
      trained_by: ansible
  register: registered

- name: Serve it
  ansible.builtin.debug:
    msg: "{{ registered.model_uri }}"
"""

RETURN = r"""
name:
  description: Registered model name.
  returned: always
  type: str
  sample: fraud-detector
version:
  description: The version with O(source); null in check mode when it would be created.
  returned: always
  type: str
  sample: "3"
source:
  description: Source of the version.
  returned: always
  type: str
  sample: s3://mlflow/models/fraud-detector/7
run_id:
  description: Run of the version, if any.
  returned: always
  type: str
  sample: 5f1c0e3b9a4d4c0f8e2b7a6d5c4b3a21
status:
  description: Registry status of the version (V(READY)); null in check mode when it would be created.
  returned: always
  type: str
  sample: READY
alias:
  description: The alias given, if any.
  returned: always
  type: str
  sample: champion
model_uri:
  description: C(models:/<name>/<version>), for the P(mlops.platform.mlflow_model_uri#lookup) lookup and KServe.
  returned: always
  type: str
  sample: models:/fraud-detector/3
actions:
  description: What was (or in check mode would be) done.
  returned: always
  type: list
  elements: str
  sample: ["create a version of fraud-detector from s3://mlflow/models/fraud-detector/7", "point alias champion at version 3"]
"""

import json
import os
import re
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import open_url

from ansible_collections.mlops.platform.plugins.module_utils.mlflow_register import register_model_version
from ansible_collections.mlops.platform.plugins.module_utils.mlflow_registry import MlflowRegistryError, decode_body


def _http(base, options, shown):
    """The ``http(method, path, params, body)`` callable of mlflow_register over Ansible's open_url."""
    username, password, token = options["username"], options["password"], options["token"]
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = "Bearer %s" % token

    def http(method, path, params=None, body=None):
        url = "%s%s" % (base, path)
        if params:
            url += "?" + urlencode(params)
        data = None
        send_headers = dict(headers)
        if body is not None:
            data = json.dumps(body)
            send_headers["Content-Type"] = "application/json"
        try:
            response = open_url(
                url, method=method, data=data, headers=send_headers, url_username=username if not token else None,
                url_password=password if not token else None, force_basic_auth=bool(username and not token),
                validate_certs=options["validate_certs"], ca_path=options["ca_path"], timeout=options["timeout"],
                follow_redirects="safe")
            return response.getcode(), decode_body(response.read())
        except HTTPError as exc:
            return exc.code, decode_body(exc.read())
        except URLError as exc:
            raise MlflowRegistryError("cannot reach the MLflow server %s: %s" % (shown, to_native(exc.reason)))
        except (OSError, ValueError) as exc:
            raise MlflowRegistryError("request to the MLflow server %s failed: %s" % (shown, to_native(exc)))

    return http


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            source=dict(type="str", required=True),
            run_id=dict(type="str"),
            alias=dict(type="str"),
            tags=dict(type="dict", default={}),
            description=dict(type="str"),
            tracking_uri=dict(type="str"),
            username=dict(type="str"),
            password=dict(type="str", no_log=True),
            token=dict(type="str", no_log=True),
            validate_certs=dict(type="bool", default=True),
            ca_path=dict(type="path"),
            timeout=dict(type="int", default=30),
            ready_timeout=dict(type="int", default=300),
        ),
        mutually_exclusive=[("token", "password")],
        supports_check_mode=True,
    )
    params = dict(module.params)
    for option, env in (("tracking_uri", "MLFLOW_TRACKING_URI"), ("username", "MLFLOW_TRACKING_USERNAME"),
                        ("password", "MLFLOW_TRACKING_PASSWORD"), ("token", "MLFLOW_TRACKING_TOKEN")):
        if not params.get(option) and os.environ.get(env):
            params[option] = os.environ[env]
    base = (params["tracking_uri"] or "").rstrip("/")
    if not base.startswith(("http://", "https://")):
        module.fail_json(msg="tracking_uri must be the http(s) URL of the MLflow server (or set MLFLOW_TRACKING_URI)")
    shown = re.sub(r"//[^/@]*@", "//", base)  # never show credentials embedded in the URL
    try:
        result = register_model_version(
            _http(base, params, shown), params["name"], params["source"], run_id=params["run_id"], alias=params["alias"],
            tags=params["tags"], description=params["description"], check_mode=module.check_mode, server=shown,
            ready_timeout=params["ready_timeout"])
    except MlflowRegistryError as exc:
        module.fail_json(msg=to_native(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
