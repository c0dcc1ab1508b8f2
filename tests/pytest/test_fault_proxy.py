# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fault proxy against the testbed: every fault kind reaches a real Kubernetes client.

Each test sets the proxy to fault every request (rate 1) with one kind, so what the client sees can
only come from that kind; the proxy's counters must agree.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from audit import AuditLog
from faults import fault_proxy  # noqa: F401  pylint: disable=unused-import
from waiting import poll_until


@pytest.fixture
def proxied(fault_proxy):  # noqa: F811  pylint: disable=redefined-outer-name
    """A CoreV1Api through the proxy (no faults until the test asks), and the proxy."""
    from kubernetes import client, config

    fault_proxy.configure(rate=0.0, seed=1)
    api_client = config.new_client_from_config(config_file=fault_proxy.kubeconfig)
    yield client.CoreV1Api(api_client), fault_proxy
    fault_proxy.configure(rate=0.0)
    api_client.close()


def injected(proxy, kind):
    return proxy.stats_snapshot()["injected"][kind]


def test_no_faults_passes_requests_through(proxied, k8s):
    from kubernetes import client

    api, proxy = proxied
    before = proxy.stats_snapshot()["forwarded"]
    names = sorted(n.metadata.name for n in api.list_node().items)
    assert names == sorted(n.metadata.name for n in client.CoreV1Api(k8s).list_node().items)
    assert proxy.stats_snapshot()["forwarded"] > before
    assert proxy.stats_snapshot()["injected_total"] == 0


def test_throttle_reaches_the_client_as_429_with_retry_after(proxied):
    from kubernetes.client.exceptions import ApiException

    api, proxy = proxied
    proxy.configure(rate=1.0, mix={"throttle": 1}, retry_after=2)
    with pytest.raises(ApiException) as caught:
        api.list_node()
    assert caught.value.status == 429
    assert caught.value.headers["Retry-After"] == "2"
    assert '"reason": "TooManyRequests"' in caught.value.body
    assert injected(proxy, "throttle") >= 1


def test_unavailable_reaches_the_client_as_503(proxied):
    from kubernetes.client.exceptions import ApiException

    api, proxy = proxied
    proxy.configure(rate=1.0, mix={"unavailable": 1})
    with pytest.raises(ApiException) as caught:
        api.list_namespace()
    assert caught.value.status == 503
    assert injected(proxy, "unavailable") >= 1


def _chain(exc):
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = getattr(exc, "reason", None) or exc.__cause__ or exc.__context__
    return seen


def test_reset_reaches_the_client_as_a_connection_reset(proxied):
    api, proxy = proxied
    proxy.configure(rate=1.0, mix={"reset": 1})
    before = injected(proxy, "reset")
    with pytest.raises(Exception) as caught:  # urllib3 wraps it: MaxRetryError / ProtocolError
        api.list_node(_request_timeout=30)
    chain = _chain(caught.value)
    assert any(isinstance(e, ConnectionResetError) or "reset" in str(e).lower() for e in chain), chain
    # urllib3 retries a reset GET on its own before giving up: every attempt was reset.
    assert injected(proxy, "reset") > before


def test_slow_delays_then_answers(proxied):
    api, proxy = proxied
    proxy.configure(rate=1.0, mix={"slow": 1}, slow_seconds=1.5)
    started = time.monotonic()
    nodes = api.list_node().items
    # A lower bound only: the proxy sleeps at least this long before it forwards.
    assert time.monotonic() - started >= 1.5
    assert nodes
    assert injected(proxy, "slow") >= 1


def test_reset_after_forwarding_applies_the_request_but_loses_the_response(proxied, k8s, namespace, testbed):
    from kubernetes import client

    api, proxy = proxied
    log = AuditLog.for_kubeconfig(testbed.kubeconfig)
    mark = log.mark()
    name = "reset-after-%s" % uuid.uuid4().hex[:6]
    proxy.configure(rate=1.0, mix={"reset_after": 1}, methods=["POST"])
    with pytest.raises(Exception):
        api.create_namespaced_config_map(namespace, {"metadata": {"name": name}, "data": {"k": "v"}})
    proxy.configure(rate=0.0, methods=[])
    assert client.CoreV1Api(k8s).read_namespaced_config_map(name, namespace).data == {"k": "v"}
    creates = [r for r in log.mutations_since(mark) if r.verb == "create" and r.name == name]
    assert len(creates) == 1, creates
    assert injected(proxy, "reset_after") == 1


def test_watch_streams_events_through_the_proxy(proxied, k8s, namespace):
    from kubernetes import client, watch

    api, _proxy = proxied
    name = "watched-%s" % uuid.uuid4().hex[:6]
    seen = []
    stream = watch.Watch()

    def consume():
        for event in stream.stream(api.list_namespaced_config_map, namespace, timeout_seconds=60):
            seen.append((event["type"], event["object"].metadata.name))
            if event["object"].metadata.name == name:
                stream.stop()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    # Create only once the watch is open, so the event must arrive over the proxied stream.
    time.sleep(1.0)
    client.CoreV1Api(k8s).create_namespaced_config_map(namespace, {"metadata": {"name": name}})
    poll_until(lambda: ("ADDED", name) in seen, 60, "the ADDED event through the proxy")
    thread.join(timeout=60)


def test_stats_endpoint_serves_the_counters(proxied):
    import json
    import urllib.request

    api, proxy = proxied
    proxy.configure(rate=1.0, mix={"unavailable": 1})
    for dummy in range(3):
        with pytest.raises(Exception):
            api.list_node()
    request = urllib.request.Request(proxy.url + "/__proxy/stats")
    with urllib.request.urlopen(request, context=proxy.upstream_context, timeout=30) as response:
        served = json.loads(response.read())
    assert served["injected"]["unavailable"] >= 3
    assert served["injected"] == proxy.stats_snapshot()["injected"]
    assert served["config"]["mix"] == {"unavailable": 1}
