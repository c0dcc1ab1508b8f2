# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugins/module_utils/mlflow_register.py against a fake MLflow registry that keeps state like the real one."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.mlops.platform.plugins.module_utils import mlflow_register as mr
from ansible_collections.mlops.platform.plugins.module_utils.mlflow_registry import MlflowRegistryError


class FakeMlflow(object):
    """Registered models, versions and aliases in memory; answers like MLflow 3 (404 RESOURCE_DOES_NOT_EXIST etc.)."""

    def __init__(self, page_size=2, pending_polls=0, auth_status=None):
        self.models = {}
        self.aliases = {}
        self.calls = []
        self.page_size = page_size
        self.pending_polls = pending_polls
        self.auth_status = auth_status

    def writes(self):
        return [c for c in self.calls if c[0] == "POST"]

    def __call__(self, method, path, params=None, body=None):
        self.calls.append((method, path, dict(params or {}), body))
        if self.auth_status:
            return self.auth_status, {"error_code": "PERMISSION_DENIED"} if self.auth_status == 403 else None
        params = params or {}
        if path == mr.GET_MODEL:
            if params["name"] not in self.models:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Registered Model with name=%s not found" % params["name"]}
            return 200, {"registered_model": {"name": params["name"]}}
        if path == mr.CREATE_MODEL:
            self.models[body["name"]] = []
            return 200, {"registered_model": {"name": body["name"]}}
        if path == mr.SEARCH_VERSIONS:
            name = params["filter"].split("=", 1)[1].strip("'\"")
            versions = list(reversed(self.models.get(name, [])))
            start = int(params.get("page_token") or 0)
            page = versions[start:start + self.page_size]
            answer = {"model_versions": [dict(v, status="READY") for v in page]}
            if start + self.page_size < len(versions):
                answer["next_page_token"] = str(start + self.page_size)
            return 200, answer
        if path == mr.CREATE_VERSION:
            if body["name"] not in self.models:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "not found"}
            version = {"name": body["name"], "version": str(len(self.models[body["name"]]) + 1), "source": body["source"],
                       "run_id": body.get("run_id", ""), "tags": body.get("tags", []),
                       "status": "PENDING_REGISTRATION" if self.pending_polls else "READY"}
            self.models[body["name"]].append(version)
            return 200, {"model_version": dict(version)}
        if path == mr.GET_VERSION:
            version = self.models[params["name"]][int(params["version"]) - 1]
            if self.pending_polls:
                self.pending_polls -= 1
            else:
                version["status"] = "READY"
            return 200, {"model_version": dict(version)}
        if path == mr.SET_VERSION_TAG:
            version = self.models[body["name"]][int(body["version"]) - 1]
            version["tags"] = [t for t in version["tags"] if t["key"] != body["key"]] + [{"key": body["key"], "value": body["value"]}]
            return 200, {}
        if path == mr.ALIAS and method == "GET":
            key = (params["name"], params["alias"])
            if key not in self.aliases:
                return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "Registered model alias %s not found." % params["alias"]}
            return 200, {"model_version": {"version": self.aliases[key]}}
        if path == mr.ALIAS and method == "POST":
            self.aliases[(body["name"], body["alias"])] = body["version"]
            return 200, {}
        return 500, {"message": "unexpected %s %s" % (method, path)}


def register(fake, **kwargs):
    kwargs.setdefault("name", "fraud")
    kwargs.setdefault("source", "s3://mlflow/models/fraud/1")
    return mr.register_model_version(fake, server="https://mlflow.example.com", sleep=lambda s: None, **kwargs)


def test_first_run_creates_model_version_and_alias_then_nothing():
    fake = FakeMlflow()
    first = register(fake, alias="champion", tags={"epochs": 10}, run_id="r1")
    assert first["changed"] and first["version"] == "1" and first["model_uri"] == "models:/fraud/1"
    assert first["actions"] == ["create registered model fraud", "create a version of fraud from s3://mlflow/models/fraud/1",
                                "point alias champion at version 1"]
    created = [c for c in fake.calls if c[1] == mr.CREATE_VERSION][0][3]
    assert created == {"name": "fraud", "source": "s3://mlflow/models/fraud/1", "run_id": "r1", "tags": [{"key": "epochs", "value": "10"}]}
    writes = len(fake.writes())
    again = register(fake, source="s3://mlflow/models/fraud/1/", alias="champion", tags={"epochs": 10})
    assert not again["changed"] and again["version"] == "1" and again["actions"] == []
    assert len(fake.writes()) == writes


def test_check_mode_only_reads_and_says_what_it_would_do():
    fake = FakeMlflow()
    planned = register(fake, alias="champion", check_mode=True)
    assert planned["changed"] and planned["version"] is None and planned["model_uri"] is None
    assert len(planned["actions"]) == 3 and fake.writes() == [] and fake.models == {}


def test_existing_source_is_found_across_pages_and_the_newest_wins():
    fake = FakeMlflow(page_size=1)
    for source in ("s3://b/a", "s3://b/target", "s3://b/c", "s3://b/target"):
        fake.models.setdefault("fraud", [])
        fake.models["fraud"].append({"name": "fraud", "version": str(len(fake.models["fraud"]) + 1), "source": source, "tags": []})
    found = register(fake, source="s3://b/target")
    assert not found["changed"] and found["version"] == "4"
    assert len([c for c in fake.calls if c[1] == mr.SEARCH_VERSIONS]) == 4


def test_tags_and_alias_are_corrected_on_the_existing_version():
    fake = FakeMlflow()
    register(fake, alias="champion", tags={"stage": "candidate"})
    register(fake, source="s3://other")
    fake.aliases[("fraud", "champion")] = "2"
    fixed = register(fake, alias="champion", tags={"stage": "approved"})
    assert fixed["actions"] == ["set tag stage on version 1", "point alias champion at version 1"]
    assert fake.aliases[("fraud", "champion")] == "1"


def test_a_new_version_is_waited_for_until_ready():
    fake = FakeMlflow(pending_polls=2)
    result = register(fake)
    assert result["status"] == "READY"
    assert len([c for c in fake.calls if c[1] == mr.GET_VERSION]) == 3


def test_a_version_that_stays_pending_times_out():
    fake = FakeMlflow(pending_polls=1000)
    ticks = iter(range(0, 100000, 10))
    with pytest.raises(MlflowRegistryError, match="still PENDING_REGISTRATION after 30s"):
        mr.register_model_version(fake, "fraud", "s3://x", ready_timeout=30, sleep=lambda s: None, clock=lambda: next(ticks))


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_say_so(status):
    with pytest.raises(MlflowRegistryError) as info:
        register(FakeMlflow(auth_status=status))
    assert "refused the request" in str(info.value) and "HTTP %d" % status in str(info.value)


def test_other_errors_name_the_step():
    def broken(method, path, params=None, body=None):
        if path == mr.GET_MODEL:
            return 200, {"registered_model": {"name": "fraud"}}
        return 500, {"error_code": "INTERNAL_ERROR", "message": "database is locked"}
    with pytest.raises(MlflowRegistryError) as info:
        register(broken)
    assert "answered HTTP 500 to search the versions of registered model 'fraud': INTERNAL_ERROR database is locked" in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"name": ""}, "name:"),
    ({"source": " "}, "source:"),
    ({"alias": "v3"}, "reserved"),
    ({"alias": "latest"}, "reserved"),
    ({"alias": "bad alias"}, "is not an alias"),
])
def test_bad_arguments_are_refused_before_any_request(kwargs, message):
    fake = FakeMlflow()
    with pytest.raises(MlflowRegistryError, match=message):
        register(fake, **kwargs)
    assert fake.calls == []
