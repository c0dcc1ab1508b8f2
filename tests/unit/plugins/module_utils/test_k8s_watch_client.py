# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The API client comes from kubernetes.core's public get_api_client (plugins/module_utils/k8s_watch.py).

A small HTTP server on loopback plays the API server, so the whole path is real: kubernetes.core's auth
resolution, its discovery, then this collection's counted requests.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
from ansible_collections.mlops.platform.plugins.module_utils import k8s_watch

TOKEN = "unit-test-token"


class FakeModule(object):
    """What kubernetes.core's get_api_client reads from a module: params, check_mode, requires."""

    check_mode = False
    server_side_dry_run = False

    def __init__(self, **params):
        self.params = params

    def requires(self, *args, **kwargs):  # pylint: disable=unused-argument
        return None


class _Handler(BaseHTTPRequestHandler):
    seen = []

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass

    def do_GET(self):  # pylint: disable=invalid-name
        self.seen.append((self.path, self.headers.get("Authorization")))
        path = self.path.split("?", 1)[0]
        bodies = {
            "/version": {"major": "1", "minor": "20", "gitVersion": "v1.20.2"},
            "/api": {"kind": "APIVersions", "versions": ["v1"]},
            "/apis": {"kind": "APIGroupList", "groups": []},
            "/api/v1/nodes": {"kind": "NodeList", "metadata": {"resourceVersion": "7"}, "items": [{"metadata": {"name": "gpu-0"}}]},
        }
        body = bodies.get(path)
        data = json.dumps(body if body is not None else {"kind": "Status", "message": "not found"}).encode()
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def api_server(monkeypatch, tmp_path):
    # kubernetes.core keeps its discovery cache in the temporary directory: keep this test's there.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _Handler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_transport_uses_kubernetes_core_auth_and_counts_only_its_own_requests(api_server):
    module = FakeModule(host=api_server, api_key=TOKEN, validate_certs=False)
    transport = k8s_watch.api_transport_from_module(module)
    discovery = list(_Handler.seen)
    items, resource_version = k8s_watch.list_all(transport, "/api/v1/nodes")
    assert [n["metadata"]["name"] for n in items] == ["gpu-0"] and resource_version == "7"
    assert transport.requests == 1
    listed = [entry for entry in _Handler.seen if entry not in discovery]
    assert listed == [("/api/v1/nodes?limit=500", "Bearer " + TOKEN)]
    # The configuration is kubernetes.core's: the same host and credentials get_api_client hands out.
    assert transport.api_client.configuration.host == get_api_client(module).client.client.configuration.host


def test_configuration_errors_read_as_kubernetes_core_errors(tmp_path):
    missing = str(tmp_path / "no-such-kubeconfig")
    module = FakeModule(kubeconfig=missing)
    with pytest.raises(CoreException) as ours:
        k8s_watch.api_transport_from_module(module)
    with pytest.raises(CoreException) as theirs:
        get_api_client(module)
    assert str(ours.value) == str(theirs.value)
    assert str(ours.value).startswith("Could not create API client:")
