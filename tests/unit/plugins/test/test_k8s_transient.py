# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The k8s_transient test on failure results shaped as kubernetes.core, helm and this collection report them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.mlops.platform.plugins.module_utils.k8s_retry import classify_message, statuses_in
from ansible_collections.mlops.platform.plugins.test import k8s_transient as plugin
from ansible_collections.mlops.platform.plugins.test.k8s_transient import k8s_transient

STATUS_503 = ('Failed to create object: b\'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
              '"message":"injected fault: service unavailable","reason":"ServiceUnavailable","code":503}\'')
STATUS_422 = ('Failed to create object: b\'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
              '"message":"ConfigMap \\"x\\" is invalid","reason":"Invalid","code":422}\'')


@pytest.mark.parametrize("result", [
    {"failed": True, "msg": STATUS_503, "reason": "Service Unavailable"},
    {"failed": True, "msg": "Kubernetes API error while checking GPU readiness: HTTP 429: slow down"},
    {"failed": True, "msg": "(504)\nReason: Gateway Timeout\nHTTP response headers: ..."},
    {"failed": True, "msg": "Failed to get client due to HTTPSConnectionPool(host='127.0.0.1', port=6443): Max retries "
                            "exceeded with url: /version (Caused by ProtocolError('Connection aborted.', "
                            "ConnectionResetError(104, 'Connection reset by peer')))"},
    {"failed": True, "msg": "Failure when executing Helm command. Exited 1.",
     "stderr": "Error: Kubernetes cluster unreachable: Get \"https://127.0.0.1:6443/version\": read tcp: "
               "connection reset by peer"},
    {"failed": True, "msg": "x", "stderr": "Error: the server has received too many requests and has asked us to try "
                                           "again later"},
    {"failed": True, "msg": "Error", "status": 502},
])
def test_transient_failures(result):
    assert k8s_transient(result) is True


@pytest.mark.parametrize("result", [
    {"failed": False, "changed": True},
    {"changed": False},
    {"failed": True, "msg": STATUS_422, "reason": "Unprocessable Entity"},
    {"failed": True, "msg": "Kubernetes API error while gathering GPU facts: HTTP 403: nodes is forbidden"},
    {"failed": True, "msg": "(409)\nReason: Conflict"},
    {"failed": True, "msg": "min_nodes must be >= 0"},
    {"failed": True, "msg": "Failure when executing Helm command. Exited 1.",
     "stderr": "Error: INSTALLATION FAILED: values don't meet the specifications of the schema(s)"},
    {"failed": True, "msg": "Resource creation timed out"},
    {"failed": True, "msg": "(404)\nReason: Not Found, after a read timed out"},
    "not a result",
    None,
])
def test_permanent_failures_and_non_failures(result):
    assert k8s_transient(result) is False


def test_statuses_in_finds_every_form():
    assert statuses_in('HTTP 503: x; {"code": 429};\n(500)\nReason') == [429, 503, 500]


def test_a_permanent_status_wins_over_transient_words():
    assert classify_message("HTTP 403: connection reset was not the problem") == (False, "HTTP 403")


def test_registered_as_jinja_tests():
    assert plugin.TestModule().tests() == {"k8s_transient": k8s_transient, "k8s_drain_retryable": plugin.k8s_drain_retryable}


TERMINATING = ('Failed to delete pod t-1/work-5d9 due to: pods "work-5d9" is forbidden: unable to create new content in '
               'namespace t-1 because it is being terminated')
PDB = "Failed to delete pod ml/serve-7f due to: Cannot evict pod as it would violate the pod's disruption budget."


@pytest.mark.parametrize("result", [
    {"failed": True, "msg": TERMINATING},
    {"failed": True, "msg": PDB},
    {"failed": True, "msg": STATUS_503},
    {"failed": True, "msg": "Failed to list pod from node gpu-1 due to: Gateway Timeout", "status": 504},
])
def test_drain_failures_that_a_retry_can_finish(result):
    assert plugin.k8s_drain_retryable(result) is True


@pytest.mark.parametrize("result", [
    {"changed": True, "msg": TERMINATING},
    {"failed": False, "msg": PDB},
    {"failed": True, "msg": "Pod deletion errors: cannot delete Pods not managed by ReplicationController, ReplicaSet, "
                            "Job, DaemonSet or StatefulSet (use option force set to yes): ml/debug."},
    {"failed": True, "msg": "Pod deletion errors: cannot delete Pods with local storage: ml/cache."},
    {"failed": True, "msg": "Node gpu-9 not found."},
    {"failed": True, "msg": 'Failed to delete pod ml/x due to: pods "x" is forbidden: User "ci" cannot create resource '
                            '"pods/eviction"'},
    {"skipped": True},
    None,
])
def test_drain_failures_that_need_a_decision(result):
    assert plugin.k8s_drain_retryable(result) is False
