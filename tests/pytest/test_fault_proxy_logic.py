# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fault proxy's decision logic, without sockets: rates, mixes, seeds, exemptions, counters."""

from __future__ import annotations

import json
from collections import Counter

import pytest


import fault_proxy
from fault_proxy import FaultPlan, Stats, parse_mix, status_body


def decisions(plan, count, method="GET", path="/api/v1/nodes"):
    return [plan.decide(method, path) for dummy in range(count)]


def test_rate_zero_never_faults():
    assert set(decisions(FaultPlan(rate=0.0, seed=3), 2000)) == {None}


def test_rate_one_always_faults():
    assert None not in decisions(FaultPlan(rate=1.0, seed=3), 500)


def test_same_seed_same_sequence_other_seed_other_sequence():
    first = decisions(FaultPlan(rate=0.3, seed=42), 400)
    again = decisions(FaultPlan(rate=0.3, seed=42), 400)
    other = decisions(FaultPlan(rate=0.3, seed=43), 400)
    assert first == again
    assert first != other


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.5])
def test_rate_is_honoured_over_many_requests(rate):
    count = 20000
    hits = sum(1 for d in decisions(FaultPlan(rate=rate, seed=7), count) if d)
    # Binomial: the bound is over 6 standard deviations wide, so the test cannot flake.
    sigma = (count * rate * (1 - rate)) ** 0.5
    assert abs(hits - count * rate) < 6 * sigma


def test_mix_weights_are_honoured_and_zero_weight_never_picked():
    plan = FaultPlan(rate=1.0, mix={"throttle": 3, "reset": 1, "slow": 0}, seed=5)
    counts = Counter(decisions(plan, 20000))
    assert set(counts) == {"throttle", "reset"}
    share = counts["throttle"] / 20000.0
    assert abs(share - 0.75) < 6 * (0.75 * 0.25 / 20000) ** 0.5


def test_default_mix_covers_the_four_kinds_the_suite_measures():
    counts = Counter(decisions(FaultPlan(rate=1.0, seed=1), 4000))
    assert set(counts) == {"throttle", "unavailable", "reset", "slow"}


def test_control_paths_and_exempt_paths_are_never_faulted_and_do_not_shift_the_sequence():
    plan = FaultPlan(rate=1.0, seed=9, exempt=[r"^/version"])
    assert plan.decide("GET", "/__proxy/stats") is None
    assert plan.decide("GET", "/version?timeout=32s") is None
    reference = FaultPlan(rate=1.0, seed=9)
    assert plan.decide("GET", "/api") == reference.decide("GET", "/api")


def test_methods_restrict_faults():
    plan = FaultPlan(rate=1.0, seed=2, methods=["post", "PATCH"])
    assert plan.decide("GET", "/api/v1/nodes") is None
    assert plan.decide("POST", "/api/v1/namespaces") is not None
    assert plan.decide("PATCH", "/api/v1/nodes/a") is not None


@pytest.mark.parametrize("path, watch", [
    ("/api/v1/nodes?watch=true&resourceVersion=5", True),
    ("/api/v1/nodes?resourceVersion=5&watch=1", True),
    ("/api/v1/watch/nodes", True),
    ("/api/v1/nodes?limit=500", False),
    ("/api/v1/namespaces/watch", False),
])
def test_watch_detection(path, watch):
    assert FaultPlan.is_watch(path) is watch


def test_watch_requests_can_be_spared():
    plan = FaultPlan(rate=1.0, seed=2, watch=False)
    assert plan.decide("GET", "/api/v1/nodes?watch=true") is None
    assert plan.decide("GET", "/api/v1/nodes") is not None


@pytest.mark.parametrize("text, expected", [
    ("throttle=2,reset=1", {"throttle": 2.0, "reset": 1.0}),
    ("unavailable", {"unavailable": 1.0}),
    (" slow = 0.5 , reset_after=1 ", {"slow": 0.5, "reset_after": 1.0}),
    ("", {}),
])
def test_parse_mix(text, expected):
    assert parse_mix(text) == expected


@pytest.mark.parametrize("text, message", [
    ("boom=1", "unknown fault kind 'boom'"),
    ("reset=x", "weight of reset must be a number"),
    ("reset=-1", "weight of reset must be >= 0"),
    ("reset=0,slow=0", "at least one fault kind"),
])
def test_parse_mix_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        parse_mix(text)


@pytest.mark.parametrize("kwargs, message", [
    ({"rate": 1.5}, "rate must be between 0 and 1"),
    ({"rate": -0.1}, "rate must be between 0 and 1"),
    ({"rate": 0.5, "mix": {"reset": 0}}, "needs a mix with a weight"),
    ({"mix": {"nope": 1}}, "unknown fault kind"),
])
def test_plan_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FaultPlan(**kwargs)


def test_stats_count_per_kind_and_method():
    stats = Stats()
    for method in ("GET", "GET", "POST"):
        stats.count_request(method)
    stats.count_fault("throttle")
    stats.count_fault("throttle")
    stats.count_fault("reset")
    stats.count_forwarded()
    snap = stats.snapshot()
    assert snap["requests"] == 3
    assert snap["by_method"] == {"GET": 2, "POST": 1}
    assert snap["injected"]["throttle"] == 2
    assert snap["injected"]["reset"] == 1
    assert snap["injected"]["slow"] == 0
    assert snap["injected_total"] == 3
    assert snap["forwarded"] == 1


def test_status_body_is_a_kubernetes_status():
    body = json.loads(status_body(429, "TooManyRequests", "slow down", retry_after=3))
    assert body["kind"] == "Status" and body["code"] == 429 and body["reason"] == "TooManyRequests"
    assert body["details"] == {"retryAfterSeconds": 3}
    assert "details" not in json.loads(status_body(503, "ServiceUnavailable", "x"))


def test_kinds_are_documented_in_the_module_help():
    for kind in fault_proxy.KINDS:
        assert kind in fault_proxy.__doc__
