# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which API errors are transient, how long the backoff waits, and that retries are bounded."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import email.utils
import http.client
import socket
import ssl

import pytest

from ansible_collections.mlops.platform.plugins.module_utils.k8s_retry import (
    batch_entries,
    failed_definitions,
    NO_RETRY,
    RetryPolicy,
    call_with_retry,
    classify,
    is_transient,
    parse_retry_after,
)
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import ApiError, GoneError


class StatusError(Exception):
    """Shaped like kubernetes.client.exceptions.ApiException: status and headers."""

    def __init__(self, status, headers=None):
        super(StatusError, self).__init__("HTTP %s" % status)
        self.status = status
        self.headers = headers


class ProtocolError(Exception):
    """Named like urllib3's."""


class MaxRetryError(Exception):
    """Named like urllib3's: the real cause is in ``reason``."""

    def __init__(self, reason):
        super(MaxRetryError, self).__init__("max retries: %s" % reason)
        self.reason = reason


class ReadTimeoutError(Exception):
    """Named like urllib3's."""


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses(status):
    assert is_transient(ApiError(status, "x"))
    assert is_transient(StatusError(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 422])
def test_client_errors_fail_fast(status):
    transient, retry_after, reason = classify(ApiError(status, "x"))
    assert not transient and retry_after is None and reason == "HTTP %d" % status


def test_gone_is_not_a_retry_case():
    assert not is_transient(GoneError())


def test_retry_after_from_header_and_from_attribute():
    assert classify(StatusError(429, {"Retry-After": "7"}))[1] == 7.0
    assert classify(StatusError(503, {"retry-after": "2"}))[1] == 2.0
    err = ApiError(429, "slow down")
    err.retry_after = 3
    assert classify(err)[1] == 3
    assert classify(StatusError(429))[1] is None


@pytest.mark.parametrize("exc", [
    ConnectionResetError(104, "Connection reset by peer"),
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionAbortedError(),
    BrokenPipeError(),
    socket.timeout("timed out"),
    TimeoutError(),
    http.client.RemoteDisconnected("Remote end closed connection without response"),
    http.client.IncompleteRead(b"partial"),
    ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
    ProtocolError("Connection aborted."),
    ReadTimeoutError("read timed out"),
    MaxRetryError(ProtocolError("Connection aborted.")),
])
def test_connection_failures_are_transient(exc):
    assert is_transient(exc)


def test_cause_chain_is_followed():
    try:
        try:
            raise ConnectionResetError(104, "reset")
        except ConnectionResetError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert classify(outer) == (True, None, "ConnectionResetError")


@pytest.mark.parametrize("exc", [
    ValueError("bad"),
    KeyError("items"),
    ssl.SSLCertVerificationError(1, "certificate verify failed"),
    MaxRetryError(ssl.SSLCertVerificationError(1, "certificate verify failed")),
    MaxRetryError(ValueError("no")),
])
def test_other_errors_are_permanent(exc):
    assert not is_transient(exc)


def test_parse_retry_after_forms():
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    now = 1_000_000_000.0
    date = email.utils.formatdate(now + 12, usegmt=True)
    assert parse_retry_after(date, now=now) == pytest.approx(12, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0


def test_backoff_grows_exponentially_up_to_the_cap_without_jitter():
    policy = RetryPolicy(base=0.5, factor=2, cap=4, jitter=0)
    assert [policy.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


@pytest.mark.parametrize("draw, expected", [(0.0, 0.5), (0.5, 1.0), (1.0, 1.5)])
def test_jitter_spreads_the_delay(draw, expected):
    policy = RetryPolicy(base=1.0, jitter=0.5, rng=lambda: draw)
    assert policy.backoff(1) == pytest.approx(expected)


def test_retry_after_replaces_backoff_and_is_capped():
    policy = RetryPolicy(base=0.5, jitter=0, max_retry_after=10)
    assert policy.delay(1, retry_after=3) == 3
    assert policy.delay(1, retry_after=300) == 10
    assert policy.delay(3, retry_after=None) == 2.0


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"base": -1}, {"factor": 0.5}, {"jitter": 2}])
def test_policy_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


class Flaky(object):
    """Raises the given errors in turn, then returns 'ok'."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_transient_errors_are_retried_until_success_with_the_policys_delays():
    sleeps, retries = [], []
    func = Flaky(ApiError(503, "x"), ConnectionResetError(), ApiError(500, "y"))
    policy = RetryPolicy(base=1, jitter=0)
    result = call_with_retry(func, policy, sleep=sleeps.append, on_retry=lambda *a: retries.append(a[3]))
    assert result == "ok"
    assert func.calls == 4
    assert sleeps == [1, 2, 4]
    assert retries == ["HTTP 503", "ConnectionResetError", "HTTP 500"]


def test_retry_after_of_a_429_is_what_is_waited():
    sleeps = []
    throttled = StatusError(429, {"Retry-After": "3"})
    assert call_with_retry(Flaky(throttled), RetryPolicy(base=1, jitter=0), sleep=sleeps.append) == "ok"
    assert sleeps == [3.0]


@pytest.mark.parametrize("status", [403, 404, 409, 422])
def test_permanent_errors_are_raised_on_the_first_attempt(status):
    sleeps = []
    func = Flaky(ApiError(status, "no"))
    with pytest.raises(ApiError) as caught:
        call_with_retry(func, RetryPolicy(), sleep=sleeps.append)
    assert caught.value.status == status
    assert func.calls == 1 and sleeps == []


def test_attempts_bound_the_retries():
    sleeps = []
    func = Flaky(*[ApiError(503, str(n)) for n in range(10)])
    with pytest.raises(ApiError) as caught:
        call_with_retry(func, RetryPolicy(attempts=4, base=0.1, jitter=0), sleep=sleeps.append)
    assert func.calls == 4
    assert len(sleeps) == 3
    assert str(caught.value) == "HTTP 503: 3"


def test_total_delay_bounds_the_retries():
    sleeps = []
    func = Flaky(*[ApiError(503, str(n)) for n in range(10)])
    with pytest.raises(ApiError):
        call_with_retry(func, RetryPolicy(attempts=10, base=1, factor=2, cap=100, jitter=0, max_total_delay=5),
                        sleep=sleeps.append)
    # 1 + 2 = 3 s waited; the next wait (4 s) would pass 5 s in all.
    assert sleeps == [1, 2]
    assert func.calls == 3


def test_no_retry_policy_calls_once():
    func = Flaky(ApiError(503, "x"))
    with pytest.raises(ApiError):
        call_with_retry(func, NO_RETRY, sleep=lambda s: None)
    assert func.calls == 1


def _ns(name):
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def test_failed_definitions_matches_entries_to_definitions_in_order():
    defs = [_ns("a"), _ns("b"), _ns("c")]
    result = {"changed": True, "result": {"results": [
        {"changed": True, "result": defs[0]},
        {"changed": False, "result": {}, "error": {"msg": "Failed to patch object: (503)", "status": 503}},
        {"changed": False, "result": defs[2]},
    ]}}
    assert failed_definitions(defs, result) == [defs[1]]


def test_failed_definitions_with_one_definition_reads_the_result_itself():
    assert failed_definitions([_ns("a")], {"changed": False, "result": _ns("a")}) == []
    assert failed_definitions([_ns("a")], {"changed": False, "result": {}, "error": {"msg": "reset"}}) == [_ns("a")]


def test_failed_definitions_when_nothing_ran_returns_everything():
    defs = [_ns("a"), _ns("b")]
    assert failed_definitions(defs, {"skipped": True, "changed": False}) == defs
    assert failed_definitions(defs, None) == defs
    assert failed_definitions([], {"changed": False}) == []


def test_failed_definitions_refuses_entries_it_cannot_match():
    with pytest.raises(ValueError, match="1 entries for 2 definitions"):
        failed_definitions([_ns("a"), _ns("b")], {"result": {"results": [{"result": {}}]}})
    with pytest.raises(ValueError, match="1 entries for 2 definitions"):
        failed_definitions([_ns("a"), _ns("b")], {"result": _ns("a")})


def test_batch_entries_of_one_many_and_no_definitions():
    one = {"changed": True, "result": _ns("a")}
    assert batch_entries(one) == [one]
    many = {"changed": False, "result": {"results": [{"result": _ns("a")}, {"result": {}, "error": {"msg": "x"}}]}}
    assert batch_entries(many) == many["result"]["results"]
    assert batch_entries({"skipped": True, "changed": False}) == []
    assert batch_entries(None) == []
