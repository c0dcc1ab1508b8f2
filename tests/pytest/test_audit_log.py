# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The testbed's audit log and the helpers that read it (tests/pytest/audit.py)."""

from __future__ import annotations

import base64
import subprocess
import sys
import uuid

import pytest

from audit import AuditLog, ArgvSampler, Request, format_requests, is_system_user
from waiting import poll_until


def test_mutations_since_a_mark_name_user_verb_resource_and_object(testbed, k8s, namespace):
    from kubernetes import client

    log = AuditLog.for_kubeconfig(testbed.kubeconfig)
    assert log.exists(), log.path
    core = client.CoreV1Api(k8s)
    mark = log.mark()
    name = "audited-%s" % uuid.uuid4().hex[:6]
    core.list_namespaced_config_map(namespace)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": name}})
    core.patch_namespaced_config_map(name, namespace, {"data": {"a": "b"}})
    core.delete_namespaced_config_map(name, namespace)
    mine = [r for r in log.mutations_since(mark) if r.name == name]
    assert [(r.user, r.verb, r.resource, r.namespace, r.code) for r in mine] == [
        ("testbed-admin", "create", "configmaps", namespace, 201),
        ("testbed-admin", "patch", "configmaps", namespace, 200),
        ("testbed-admin", "delete", "configmaps", namespace, 200),
    ], format_requests(mine)
    # Reads are in the log but are not mutations.
    reads = [r for r in log.requests_since(mark) if r.verb == "list" and r.namespace == namespace]
    assert reads and not any(r.mutating for r in reads)


def test_a_fresh_mark_sees_nothing_of_the_past(testbed, k8s, namespace):
    from kubernetes import client

    log = AuditLog.for_kubeconfig(testbed.kubeconfig)
    client.CoreV1Api(k8s).create_namespaced_config_map(namespace, {"metadata": {"name": "before-mark"}})
    mark = log.mark()
    assert not [r for r in log.mutations_since(mark) if r.name == "before-mark"]


def test_the_testbeds_own_actors_are_left_out_by_default(testbed):
    log = AuditLog.for_kubeconfig(testbed.kubeconfig)
    mark = log.mark()
    # The node agent renews node leases and pod status continuously: wait until it has written something.
    poll_until(lambda: any(r.user == "testbed-node-agent" and r.mutating for r in log.requests_since(mark)), 120,
               "a mutating request by the node agent")
    assert all(not is_system_user(r.user) for r in log.mutations_since(mark))
    assert any(is_system_user(r.user) for r in log.mutations_since(mark, include_system=True))


def test_secret_data_never_reaches_the_audit_log(testbed, k8s, namespace):
    from kubernetes import client

    log = AuditLog.for_kubeconfig(testbed.kubeconfig)
    canary = "canary-%s" % uuid.uuid4().hex
    mark = log.mark()
    core = client.CoreV1Api(k8s)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "s"}, "stringData": {"password": canary}})
    assert base64.b64decode(core.read_namespaced_secret("s", namespace).data["password"]).decode() == canary
    events = log.events_since(mark)
    assert any((e.get("objectRef") or {}).get("resource") == "secrets" for e in events)
    with open(log.path) as handle:
        text = handle.read()
    assert canary not in text
    assert base64.b64encode(canary.encode()).decode() not in text
    assert all(e.get("level") == "Metadata" for e in events)


def test_request_from_event_includes_subresource_and_group():
    event = {"verb": "patch", "user": {"username": "u"}, "requestURI": "/apis/apps/v1/x",
             "objectRef": {"resource": "deployments", "subresource": "status", "apiGroup": "apps", "namespace": "n",
                           "name": "d"}, "responseStatus": {"code": 200}}
    request = Request.from_event(event)
    assert request.resource == "deployments/status.apps"
    assert request.mutating
    assert str(request) == "u patch deployments/status.apps n/d -> 200"


@pytest.mark.parametrize("uri, mutating", [
    ("/api/v1/namespaces?dryRun=All", False),
    ("/api/v1/namespaces/n/configmaps?fieldManager=x&dryRun=All", False),
    ("/api/v1/namespaces/n/configmaps?dryRun=Allx", True),
    ("/api/v1/namespaces", True),
])
def test_a_server_side_dry_run_is_not_a_mutation(uri, mutating):
    event = {"verb": "create", "user": {"username": "u"}, "requestURI": uri,
             "objectRef": {"resource": "namespaces", "name": "n"}, "responseStatus": {"code": 201}}
    request = Request.from_event(event)
    assert request.mutating is mutating and request.dry_run is (not mutating)


def test_argv_sampler_finds_a_canary_on_a_command_line_and_only_then():
    canary = "canary-%s" % uuid.uuid4().hex
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    with ArgvSampler([canary]) as clean:
        proc = subprocess.Popen(sleeper + ["--user=nobody"])
        try:
            first = clean.samples
            poll_until(lambda: clean.samples >= first + 2, 60, "two samples while the clean process runs")
        finally:
            proc.kill()
            proc.wait()
    assert not clean.hits
    with ArgvSampler([canary]) as dirty:
        proc = subprocess.Popen(sleeper + ["--password=" + canary])
        try:
            poll_until(lambda: dirty.hits, 60, "the sampler to see the canary")
        finally:
            proc.kill()
            proc.wait()
    assert canary in dirty.hits[0][1] and dirty.hits[0][0] == canary
