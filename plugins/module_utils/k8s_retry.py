# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retry policy for Kubernetes API requests: which errors are transient, and how long to wait.

Pure (no I/O of its own): the clock, the sleep and the random source are parameters.

Transient, retried with exponential backoff and jitter, or after the server's ``Retry-After``:

* HTTP 429 (too many requests; ``Retry-After`` honoured, capped), 500, 502, 503, 504;
* connection resets, refused or aborted connections, broken pipes, timeouts, TLS streams cut short, and
  the urllib3 / http.client wrappers of those (found anywhere in the exception's cause chain).

Everything else fails at once: 400, 401, 403, 404, 409, 410, 422, certificate errors, programming errors.
Only idempotent requests (reads) should be retried blindly; callers decide which calls they wrap.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random
import re
import socket
import time

try:
    from email.utils import parsedate_to_datetime
except ImportError:  # pragma: no cover - Python 2 is not supported by the collection
    parsedate_to_datetime = None

TRANSIENT_STATUS = frozenset([429, 500, 502, 503, 504])

# Exception classes of the standard library that mean "the connection broke, try again".
_TRANSIENT_BUILTINS = (ConnectionResetError, ConnectionAbortedError, ConnectionRefusedError, BrokenPipeError,
                       TimeoutError, socket.timeout)

# urllib3 and http.client wrappers, matched by name so that this module imports neither.
_TRANSIENT_NAMES = frozenset([
    "ProtocolError", "ReadTimeoutError", "ConnectTimeoutError", "NewConnectionError", "TimeoutError",
    "IncompleteRead", "RemoteDisconnected", "SSLEOFError", "SSLZeroReturnError", "ResponseNotReady",
    "BadStatusLine",
])
# Wrappers that are transient only if what they wrap is (``MaxRetryError.reason``).
_WRAPPER_NAMES = frozenset(["MaxRetryError"])
# Never transient, whatever they wrap.
_PERMANENT_NAMES = frozenset(["SSLCertVerificationError", "CertificateError", "LocationValueError"])


class RetryPolicy(object):
    """Exponential backoff with jitter, bounded by a number of attempts and a total delay.

    The delay before retry ``n`` (1-based) is ``min(cap, base * factor ** (n - 1))``, scaled by a random
    factor in ``[1 - jitter, 1 + jitter]`` so that many clients do not retry in step; a ``Retry-After``
    from the server replaces it, capped at ``max_retry_after``. No retry starts once the delays would
    exceed ``max_total_delay`` seconds in all.
    """

    def __init__(self, attempts=8, base=0.5, factor=2.0, cap=8.0, jitter=0.5, max_retry_after=30.0,
                 max_total_delay=120.0, rng=None):
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        if base < 0 or cap < 0 or factor < 1:
            raise ValueError("base and cap must be >= 0 and factor >= 1")
        if not 0 <= jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        self.attempts = attempts
        self.base = base
        self.factor = factor
        self.cap = cap
        self.jitter = jitter
        self.max_retry_after = max_retry_after
        self.max_total_delay = max_total_delay
        self.rng = rng or random.random

    def backoff(self, retry):
        """Seconds to wait before retry number ``retry`` (1-based), jitter included."""
        raw = min(self.cap, self.base * self.factor ** (retry - 1))
        spread = 1.0 + self.jitter * (2.0 * self.rng() - 1.0)
        return max(0.0, raw * spread)

    def delay(self, retry, retry_after=None):
        """The server's Retry-After (capped) if it gave one, else the backoff."""
        if retry_after is not None:
            return max(0.0, min(float(retry_after), self.max_retry_after))
        return self.backoff(retry)


NO_RETRY = RetryPolicy(attempts=1)


def parse_retry_after(value, now=None):
    """Seconds from a ``Retry-After`` header value (delta-seconds or an HTTP date); None if unusable."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    if parsedate_to_datetime is None:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def _header(headers, name):
    if not headers:
        return None
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter(name)
    if value is None:
        value = getter(name.lower())
    return value


def status_of(exc):
    """The HTTP status an exception carries (``.status``), else None."""
    status = getattr(exc, "status", None)
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def _causes(exc):
    """The exception, then what it wraps: urllib3's ``reason``, ``__cause__``, ``__context__``."""
    seen = []
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
        todo.append(getattr(current, "__cause__", None))
        todo.append(getattr(current, "__context__", None))
    return seen


def classify(exc):
    """``(transient, retry_after, reason)`` for an exception raised by a Kubernetes API call."""
    status = status_of(exc)
    if status is not None:
        if status in TRANSIENT_STATUS:
            retry_after = getattr(exc, "retry_after", None)
            if retry_after is None:
                retry_after = parse_retry_after(_header(getattr(exc, "headers", None), "Retry-After"))
            return True, retry_after, "HTTP %d" % status
        return False, None, "HTTP %d" % status
    for cause in _causes(exc):
        name = type(cause).__name__
        if name in _PERMANENT_NAMES:
            return False, None, name
        if name in _WRAPPER_NAMES:
            continue
        if isinstance(cause, _TRANSIENT_BUILTINS) or name in _TRANSIENT_NAMES:
            return True, None, name
    return False, None, type(exc).__name__


def is_transient(exc):
    return classify(exc)[0]


def call_with_retry(func, policy=None, sleep=time.sleep, on_retry=None):
    """Call ``func()``; retry transient errors under ``policy``; re-raise the last error.

    ``on_retry(retry_number, delay, exc, reason)`` is called before each wait (for logs and counters).
    A non-transient error is raised at once, on the first attempt.
    """
    policy = policy or RetryPolicy()
    waited = 0.0
    retry = 0
    while True:
        try:
            return func()
        except Exception as exc:  # pylint: disable=broad-except
            transient, retry_after, reason = classify(exc)
            retry += 1
            if not transient or retry >= policy.attempts:
                raise
            wait = policy.delay(retry, retry_after)
            if waited + wait > policy.max_total_delay:
                raise
            if on_retry is not None:
                on_retry(retry, wait, exc, reason)
            sleep(wait)
            waited += wait


# --------------------------------------------------------------------------- failed task results

# Texts of transient failures as kubernetes.core, the kubernetes client, urllib3, helm (client-go) and this
# collection's modules word them. Matched case-insensitively.
_TRANSIENT_TEXTS = (
    "too many requests", "service unavailable", "internal server error", "bad gateway", "gateway timeout",
    "connection reset", "connection refused", "connection aborted", "remotedisconnected", "broken pipe",
    "max retries exceeded", "read timed out", "connect timeout", "i/o timeout", "tls handshake timeout",
    "eof occurred in violation of protocol", "unexpected eof", "http2: server sent goaway",
    "the server is currently unable to handle the request", "the server has received too many requests",
    "etcdserver: request timed out", "etcdserver: leader changed",
)
_STATUS_PATTERNS = (
    re.compile(r'"code"\s*:\s*(\d{3})'),        # a Kubernetes Status object in the message
    re.compile(r"\bHTTP (\d{3})\b"),            # this collection's modules: "HTTP 403: ..."
    re.compile(r"^\((\d{3})\)", re.MULTILINE),  # str(kubernetes.client ApiException): "(503)\nReason: ..."
    re.compile(r"\bstatus code (\d{3})\b", re.IGNORECASE),
)


def statuses_in(text):
    """Every HTTP status code a failure message quotes, in order."""
    found = []
    for pattern in _STATUS_PATTERNS:
        found.extend(int(code) for code in pattern.findall(text or ""))
    return found


def classify_message(text):
    """``(transient, reason)`` for the message of a failed Kubernetes or Helm operation.

    A quoted status decides first: any 4xx other than 429 makes the failure permanent (it will not go
    away by itself); 429 or 5xx make it transient. Without a status, known texts of transient failures
    (connection resets, timeouts, throttling) make it transient. Anything else is permanent.
    """
    text = text or ""
    statuses = statuses_in(text)
    permanent = [s for s in statuses if 400 <= s < 500 and s not in TRANSIENT_STATUS]
    if permanent:
        return False, "HTTP %d" % permanent[0]
    transient = [s for s in statuses if s in TRANSIENT_STATUS]
    if transient:
        return True, "HTTP %d" % transient[0]
    lowered = text.lower()
    for needle in _TRANSIENT_TEXTS:
        if needle in lowered:
            return True, needle
    return False, "not a known transient failure"


def result_is_transient_failure(result):
    """True for a registered task result that failed for a transient reason (see classify_message)."""
    if not isinstance(result, dict) or not result.get("failed"):
        return False
    parts = [result.get("msg"), result.get("reason"), result.get("stderr"), result.get("error")]
    status = result.get("status")
    if isinstance(status, int) or (isinstance(status, str) and status.isdigit()):
        parts.append("HTTP %s" % status)
    text = "\n".join(str(p) for p in parts if p not in (None, ""))
    return classify_message(text)[0]


# Evictions the API server refuses for a while, as kubernetes.core.k8s_drain quotes the Status message (without
# its code): 403 in a namespace that is being deleted (the namespace controller deletes the pod soon), and 429
# while a PodDisruptionBudget allows no disruption (it allows one once a replacement pod is ready).
_DRAIN_RETRY_TEXTS = ("because it is being terminated", "namespaceterminating",
                      "would violate the pod's disruption budget")


def result_is_retryable_drain_failure(result):
    """True for a failed drain that trying again can finish.

    That is a transient failure (see :func:`result_is_transient_failure`), an eviction refused with 429
    because a PodDisruptionBudget allows no disruption now, or an eviction refused with 403 because the
    pod's namespace is being deleted: the pod goes away with its namespace.
    """
    if result_is_transient_failure(result):
        return True
    if not isinstance(result, dict) or not result.get("failed"):
        return False
    lowered = str(result.get("msg") or "").lower()
    return any(text in lowered for text in _DRAIN_RETRY_TEXTS)


def batch_entries(result):
    """The per-definition entries of what one ``kubernetes.core.k8s`` run registered, in order.

    With several definitions the module returns them under ``result.results``; with a single definition
    the entry is the result itself. A skipped or absent result has none.
    """
    if not isinstance(result, dict) or result.get("skipped"):
        return []
    inner = result.get("result")
    if isinstance(inner, dict) and isinstance(inner.get("results"), list):
        return list(inner["results"])
    return [result]


def failed_definitions(definitions, result):
    """The definitions whose apply failed inside one ``kubernetes.core.k8s`` run with ``continue_on_error``.

    ``definitions`` is the list the task was given; ``result`` is what it registered (see
    :func:`batch_entries`). An entry that carries ``error`` failed. A skipped or absent result means nothing
    was applied, so every definition is returned; entries that cannot be matched to the definitions (a
    different count) are an error.
    """
    definitions = list(definitions or [])
    if not isinstance(result, dict) or result.get("skipped") or not definitions:
        return definitions
    entries = batch_entries(result)
    if len(entries) != len(definitions):
        raise ValueError("the registered result has %d entries for %d definitions" % (len(entries), len(definitions)))
    return [definition for definition, entry in zip(definitions, entries)
            if isinstance(entry, dict) and entry.get("error")]
