# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ApiTransport retries reads that fail transiently, sends writes once, and fails fast on 4xx."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.mlops.platform.plugins.module_utils.k8s_retry import RetryPolicy
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import ApiError, ApiTransport, list_all


class FakeRaw(object):
    def __init__(self, status, body, headers=None):
        self.status = status
        self.data = json.dumps(body).encode()
        self.headers = headers or {}


class FakeResponse(object):
    def __init__(self, raw):
        self.response = raw


class ScriptedClient(object):
    """Shaped like kubernetes>=31's ApiClient; answers from a script (status, body[, headers]) or raises."""

    def __init__(self, *script):
        self.script = list(script)
        self.sent = []

    def param_serialize(self, method, resource_path, query_params, header_params, body, auth_settings):
        return method, resource_path, header_params, body, None

    def call_api(self, method, url, header_params=None, body=None, post_params=None, _request_timeout=None):
        self.sent.append((method, url))
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return FakeResponse(FakeRaw(*step))


FAST = RetryPolicy(base=0, jitter=0)
OK = (200, {"items": [{"metadata": {"name": "a"}}], "metadata": {"resourceVersion": "5"}})


def test_get_is_retried_through_transient_errors():
    client = ScriptedClient((503, {"message": "busy"}), (429, {"message": "slow"}, {"Retry-After": "0"}),
                            ConnectionResetError(104, "reset"), OK)
    transport = ApiTransport(client, retry_policy=FAST)
    items, version = list_all(transport, "/api/v1/nodes")
    assert [i["metadata"]["name"] for i in items] == ["a"] and version == "5"
    assert transport.retries == 3
    assert transport.requests == 4


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_get_fails_fast_on_client_errors(status):
    client = ScriptedClient((status, {"message": "nodes is forbidden"}), OK)
    transport = ApiTransport(client, retry_policy=FAST)
    with pytest.raises(ApiError) as caught:
        transport.request("GET", "/api/v1/nodes")
    assert caught.value.status == status and "nodes is forbidden" in str(caught.value)
    assert transport.requests == 1 and transport.retries == 0


def test_writes_are_sent_once():
    client = ScriptedClient((503, {"message": "busy"}), (201, {}))
    transport = ApiTransport(client, retry_policy=FAST)
    with pytest.raises(ApiError) as caught:
        transport.request("POST", "/apis/batch/v1/namespaces/d/jobs", body={"metadata": {"name": "j"}})
    assert caught.value.status == 503
    assert transport.requests == 1 and transport.retries == 0


def test_retries_are_bounded():
    client = ScriptedClient(*[(503, {"message": "down %d" % n}) for n in range(5)])
    transport = ApiTransport(client, retry_policy=RetryPolicy(attempts=3, base=0, jitter=0))
    with pytest.raises(ApiError) as caught:
        transport.request("GET", "/api/v1/nodes")
    assert "down 2" in str(caught.value)
    assert transport.requests == 3 and transport.retries == 2


def test_a_429_carries_its_retry_after_header():
    client = ScriptedClient((429, {"message": "slow"}, {"Retry-After": "4"}))
    transport = ApiTransport(client, retry_policy=RetryPolicy(attempts=1))
    with pytest.raises(ApiError) as caught:
        transport.request("GET", "/api/v1/nodes")
    assert caught.value.headers == {"Retry-After": "4"}
