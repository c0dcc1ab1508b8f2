# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registering a model version in the MLflow registry over its REST API 2.0, idempotently.

Pure except for the ``http(method, path, params=None, body=None)`` callable it is given, which returns
``(status, decoded JSON body or None)``; the mlflow_model_version module plugs in Ansible's ``open_url`` and the
unit tests a fake registry. The calls:

* ``GET registered-models/get`` (is the model there?), ``POST registered-models/create`` (if not);
* ``GET model-versions/search`` with ``name='<name>'`` (paginated): a version whose ``source`` is the one asked
  for is the registered version, and nothing is created;
* ``POST model-versions/create`` otherwise, then ``GET model-versions/get`` until the version is ``READY``;
* ``POST model-versions/set-tag`` for each tag whose value differs;
* ``GET registered-models/alias`` and ``POST registered-models/alias`` when the alias is missing or points elsewhere.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible_collections.mlops.platform.plugins.module_utils.mlflow_registry import MlflowRegistryError

API = "/api/2.0/mlflow"
GET_MODEL = API + "/registered-models/get"
CREATE_MODEL = API + "/registered-models/create"
SEARCH_VERSIONS = API + "/model-versions/search"
CREATE_VERSION = API + "/model-versions/create"
GET_VERSION = API + "/model-versions/get"
SET_VERSION_TAG = API + "/model-versions/set-tag"
ALIAS = API + "/registered-models/alias"
READY, PENDING, FAILED_REGISTRATION = "READY", "PENDING_REGISTRATION", "FAILED_REGISTRATION"
ALIAS_RE = re.compile(r"^[A-Za-z0-9_-]+$")
PAGE_SIZE = 200


def _missing(status, body):
    """True for MLflow's "does not exist" answers (404, RESOURCE_DOES_NOT_EXIST, or 400 "... not found")."""
    code = body.get("error_code") if isinstance(body, dict) else None
    message = (body.get("message") if isinstance(body, dict) else "") or ""
    return status == 404 or code == "RESOURCE_DOES_NOT_EXIST" or (status == 400 and bool(re.search(r"not found", message, re.I)))


def _error(status, body, what, server):
    code = message = None
    if isinstance(body, dict):
        code, message = body.get("error_code"), body.get("message")
    if status in (401, 403):
        return MlflowRegistryError(
            "MLflow server %s refused the request to %s (HTTP %d%s): check the username and password (or token), and that "
            "the user may edit the registered model" % (server, what, status, " " + code if code else ""))
    return MlflowRegistryError("MLflow server %s answered HTTP %d to %s%s" % (
        server, status, what, ": %s%s" % (code + " " if code else "", message) if message or code else ""))


class Registry(object):
    """The REST calls, with errors turned into MlflowRegistryError naming the server and the step."""

    def __init__(self, http, server=""):
        self.http = http
        self.server = server

    def call(self, method, path, what, params=None, body=None, allow_missing=False):
        status, answer = self.http(method, path, params=params, body=body)
        if status >= 400:
            if allow_missing and _missing(status, answer):
                return None
            raise _error(status, answer, what, self.server)
        if answer is None:
            answer = {}
        if not isinstance(answer, dict):
            raise MlflowRegistryError("MLflow server %s answered %s with something that is not a JSON object" % (self.server, what))
        return answer

    def model(self, name):
        found = self.call("GET", GET_MODEL, "read registered model %r" % name, params={"name": name}, allow_missing=True)
        return None if found is None else found.get("registered_model") or {}

    def versions_with_source(self, name, source):
        """Versions of ``name`` whose source is ``source`` (a trailing slash does not count), newest first."""
        quote = "'" if "'" not in name else '"'
        params = {"filter": "name=%s%s%s" % (quote, name, quote), "max_results": PAGE_SIZE}
        found, token, pages = [], None, 0
        while True:
            query = dict(params)
            if token:
                query["page_token"] = token
            page = self.call("GET", SEARCH_VERSIONS, "search the versions of registered model %r" % name, params=query)
            for version in page.get("model_versions") or []:
                if version.get("name") == name and same_source(version.get("source"), source):
                    found.append(version)
            token = page.get("next_page_token")
            pages += 1
            if not token or pages > 1000:
                break
        return sorted(found, key=lambda v: int(v.get("version") or 0), reverse=True)

    def get_version(self, name, version):
        return self.call("GET", GET_VERSION, "read version %s of registered model %r" % (version, name),
                         params={"name": name, "version": str(version)}).get("model_version") or {}

    def alias_version(self, name, alias):
        found = self.call("GET", ALIAS, "read alias %r of registered model %r" % (alias, name),
                          params={"name": name, "alias": alias}, allow_missing=True)
        if found is None:
            return None
        return str((found.get("model_version") or {}).get("version") or "") or None


def same_source(one, other):
    """Sources compare equal regardless of one trailing slash."""
    if not isinstance(one, str) or not isinstance(other, str):
        return False
    return one.rstrip("/") == other.rstrip("/")


def _tags_of(version):
    return dict((t.get("key"), t.get("value")) for t in version.get("tags") or [] if isinstance(t, dict))


def validate_request(name, source, alias=None, tags=None):
    """An error message for invalid arguments, else None."""
    if not isinstance(name, str) or not name.strip():
        return "name: the registered model's name must be a non-empty string"
    if "'" in name and '"' in name:
        return "name: a registered model name cannot contain both quote characters"
    if not isinstance(source, str) or not source.strip():
        return "source: the artifact URI of the model must be a non-empty string"
    if alias is not None:
        if not ALIAS_RE.match(alias):
            return "alias: %r is not an alias (letters, digits, '_' and '-')" % (alias,)
        if re.match(r"^v\d+$", alias, re.I) or alias.lower() == "latest":
            return "alias: %r is reserved by MLflow (latest and v<number> name versions)" % (alias,)
    for key in (tags or {}):
        if not isinstance(key, str) or not key:
            return "tags: keys must be non-empty strings"
    return None


def register_model_version(http, name, source, run_id=None, alias=None, tags=None, description=None, check_mode=False,
                           server="", ready_timeout=300, sleep=time.sleep, clock=time.monotonic):
    """Make sure a version of registered model ``name`` with ``source`` exists, with ``tags`` and ``alias``.

    Returns a dict: ``changed``, ``actions`` (what was or would be done), ``name``, ``version`` (None when check mode
    would create it), ``source``, ``run_id``, ``status``, ``alias``, ``model_uri``.
    """
    error = validate_request(name, source, alias, tags)
    if error:
        raise MlflowRegistryError(error)
    tags = dict((str(k), str(v)) for k, v in (tags or {}).items())
    registry = Registry(http, server)
    actions = []
    version = None
    model = registry.model(name)
    if model is None:
        actions.append("create registered model %s" % name)
        if not check_mode:
            registry.call("POST", CREATE_MODEL, "create registered model %r" % name, body={"name": name})
    else:
        existing = registry.versions_with_source(name, source)
        if existing:
            version = existing[0]
    if version is None:
        actions.append("create a version of %s from %s" % (name, source))
        if not check_mode:
            body = {"name": name, "source": source}
            if run_id:
                body["run_id"] = run_id
            if description:
                body["description"] = description
            if tags:
                body["tags"] = [{"key": k, "value": tags[k]} for k in sorted(tags)]
            created = registry.call("POST", CREATE_VERSION, "create a version of registered model %r" % name, body=body)
            version = created.get("model_version") or {}
            if not version.get("version"):
                raise MlflowRegistryError("MLflow server %s created a version of %r but did not say which" % (server, name))
            version = wait_ready(registry, name, version, ready_timeout, sleep, clock)
    else:
        have = _tags_of(version)
        for key in sorted(tags):
            if have.get(key) != tags[key]:
                actions.append("set tag %s on version %s" % (key, version["version"]))
                if not check_mode:
                    registry.call("POST", SET_VERSION_TAG, "tag version %s of %r" % (version["version"], name),
                                  body={"name": name, "version": str(version["version"]), "key": key, "value": tags[key]})
    number = str(version["version"]) if version and version.get("version") else None
    if alias:
        current = registry.alias_version(name, alias) if model is not None else None
        if current != number or number is None:
            actions.append("point alias %s at version %s" % (alias, number or "(new)"))
            if not check_mode:
                registry.call("POST", ALIAS, "set alias %r of registered model %r" % (alias, name),
                              body={"name": name, "alias": alias, "version": number})
    return {
        "changed": bool(actions),
        "actions": actions,
        "name": name,
        "version": number,
        "source": (version or {}).get("source", source),
        "run_id": (version or {}).get("run_id") or run_id or None,
        "status": (version or {}).get("status"),
        "alias": alias,
        "model_uri": "models:/%s/%s" % (name, number) if number else None,
    }


def wait_ready(registry, name, version, timeout, sleep=time.sleep, clock=time.monotonic, interval=1.0):
    """Poll a new version until it is READY; raise when registration failed or ``timeout`` passed."""
    deadline = clock() + timeout
    current = version
    while True:
        status = current.get("status") or READY
        if status == READY:
            return current
        if status == FAILED_REGISTRATION:
            raise MlflowRegistryError("version %s of registered model %r failed to register: %s" % (
                current.get("version"), name, current.get("status_message") or "no message"))
        if clock() >= deadline:
            raise MlflowRegistryError("version %s of registered model %r is still %s after %ss" % (
                current.get("version"), name, status, timeout))
        sleep(interval)
        current = registry.get_version(name, current["version"])
