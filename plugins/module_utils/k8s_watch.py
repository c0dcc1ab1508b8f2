# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Paginated lists and resourceVersion-based watches over the raw Kubernetes REST API.

The code talks to a small *transport* interface so that it can be tested with a fake:

``transport.request(method, path, query=None, body=None)`` returns the decoded JSON body and raises
:class:`ApiError` (with ``.status``) on HTTP errors; ``transport.watch(path, query)`` returns an
iterator of decoded watch events plus a ``close()`` method.  Every call counts as one API request.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import socket
import threading
import time

try:
    import queue
except ImportError:  # pragma: no cover - Python 2 is not supported by the collection
    import Queue as queue  # type: ignore

from ansible_collections.mlops.platform.plugins.module_utils.k8s_retry import RetryPolicy, call_with_retry

try:
    from kubernetes.client.exceptions import ApiException
    HAS_KUBERNETES = True
except ImportError:
    ApiException = Exception
    HAS_KUBERNETES = False

DEFAULT_PAGE_SIZE = 500


class ApiError(Exception):
    """HTTP error from the API server."""

    def __init__(self, status, message=""):
        super(ApiError, self).__init__("HTTP %s: %s" % (status, message))
        self.status = status
        self.message = message


class GoneError(ApiError):
    """410 Gone: the resourceVersion is too old; the caller must re-list."""

    def __init__(self, message="resourceVersion too old"):
        super(GoneError, self).__init__(410, message)


def list_all(transport, path, query=None, page_size=DEFAULT_PAGE_SIZE):
    """List a collection with limit/continue pagination.

    Returns ``(items, resource_version)``.  One request per page; if the continue token expires
    (410) the list restarts once from scratch without a token.
    """
    items = []
    base = dict(query or {})
    base["limit"] = page_size
    token = None
    restarted = False
    resource_version = None
    while True:
        params = dict(base)
        if token:
            params["continue"] = token
        try:
            body = transport.request("GET", path, query=params)
        except ApiError as err:
            if err.status == 410 and token and not restarted:
                restarted = True
                items, token = [], None
                continue
            raise
        items.extend(body.get("items") or [])
        meta = body.get("metadata") or {}
        resource_version = meta.get("resourceVersion") or resource_version
        token = meta.get("continue")
        if not token:
            return items, resource_version


class Informer(object):
    """Keeps a cache of one collection current: list, then watch from the list's resourceVersion.

    Runs in its own thread (``start``) and pushes ``(key, 'synced'|'event')`` notifications into a
    shared queue whenever its cache changes.  On 410 Gone (or an ERROR event with code 410) it
    re-lists; when a watch ends normally (server timeout) it resumes from the last resourceVersion.
    If the collection does not exist (404, e.g. a CRD not installed yet) the cache is ``None`` and
    the list is retried every ``missing_retry`` seconds.
    """

    def __init__(self, key, transport, path, query=None, notify=None, page_size=DEFAULT_PAGE_SIZE,
                 watch_timeout=60, missing_retry=2.0, error_retry=1.0):
        self.key = key
        self.transport = transport
        self.path = path
        self.query = dict(query or {})
        self.notify = notify
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.missing_retry = missing_retry
        self.error_retry = error_retry
        self.objects = {}
        self.missing = False
        self.synced = False
        self.resource_version = None
        self.relists = 0
        self.watches = 0
        self.last_error = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stream = None
        self._thread = None

    # -- cache access
    def items(self):
        """Snapshot of the cached objects, or None if the collection is not served."""
        with self._lock:
            if self.missing:
                return None
            return list(self.objects.values())

    @staticmethod
    def _obj_key(obj):
        meta = obj.get("metadata") or {}
        return (meta.get("namespace") or "", meta.get("name") or "")

    def _notify(self, kind):
        if self.notify is not None:
            self.notify.put((self.key, kind))

    # -- one step at a time (used by the thread loop and by tests)
    def relist(self):
        try:
            items, rv = list_all(self.transport, self.path, self.query, self.page_size)
        except ApiError as err:
            if err.status == 404:
                with self._lock:
                    self.missing = True
                    self.objects = {}
                    self.synced = True
                self._notify("synced")
                return False
            raise
        with self._lock:
            self.missing = False
            self.objects = dict((self._obj_key(o), o) for o in items)
            self.resource_version = rv
            self.synced = True
        self.relists += 1
        self._notify("synced")
        return True

    def apply_event(self, event):
        """Apply one watch event to the cache. Raises GoneError on a 410 ERROR event."""
        etype = event.get("type")
        obj = event.get("object") or {}
        if etype == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise GoneError(obj.get("message") or "watch expired")
            raise ApiError(code or 500, obj.get("message") or "watch error")
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if etype == "BOOKMARK":
            if rv:
                self.resource_version = rv
            return
        with self._lock:
            if etype in ("ADDED", "MODIFIED"):
                self.objects[self._obj_key(obj)] = obj
            elif etype == "DELETED":
                self.objects.pop(self._obj_key(obj), None)
            if rv:
                self.resource_version = rv
        self._notify("event")

    def watch_once(self, timeout=None):
        """Run one watch request from the current resourceVersion until it ends."""
        params = dict(self.query)
        params["watch"] = "true"
        params["resourceVersion"] = self.resource_version
        params["allowWatchBookmarks"] = "true"
        params["timeoutSeconds"] = int(max(1, timeout if timeout is not None else self.watch_timeout))
        self.watches += 1
        stream = self.transport.watch(self.path, params)
        self._stream = stream
        try:
            if self._stop.is_set():
                return
            for event in stream:
                if self._stop.is_set():
                    return
                self.apply_event(event)
        finally:
            self._stream = None
            try:
                stream.close()
            except Exception:  # pylint: disable=broad-except
                pass

    def run(self):
        need_list = not self.synced
        while not self._stop.is_set():
            try:
                if need_list:
                    if not self.relist():
                        self._stop.wait(self.missing_retry)
                        continue
                    need_list = False
                self.watch_once()
            except GoneError:
                need_list = True
            except ApiError as err:
                self.last_error = str(err)
                need_list = True
                self._stop.wait(self.error_retry)
            except Exception as err:  # pylint: disable=broad-except
                # Connection reset, read timeout...: resume from the last resourceVersion.
                if self._stop.is_set():
                    return
                self.last_error = "%s: %s" % (type(err).__name__, err)
                need_list = self.resource_version is None
                self._stop.wait(self.error_retry)

    def start(self):
        self._thread = threading.Thread(target=self.run, name="watch-%s" % self.key)
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self):
        """Ask the thread to stop; unblock a running watch without waiting for it."""
        self._stop.set()
        stream = self._stream
        abort = getattr(stream, "abort", None)
        if abort is not None:
            try:
                abort()
            except Exception:  # pylint: disable=broad-except
                pass


def watch_until(informers, evaluate, deadline, on_change=None, clock=time.monotonic, events=None):
    """Start informers, re-evaluate on every change, return the first truthy verdict or the last one.

    ``evaluate()`` returns ``(done, verdict)``; ``on_change(verdict)`` is called on every evaluation.
    Informers that have already listed (``synced``) go straight to watching. Evaluation starts once every
    informer has synced and then happens once per burst of notifications (never on a timer).
    Returns ``(done, verdict)``; ``verdict`` is None if some collection could not be listed in time.
    """
    events = events if events is not None else queue.Queue()
    for informer in informers:
        informer.notify = events
        informer.start()
    verdict = None
    done = False
    dirty = True
    try:
        while True:
            if dirty and all(i.synced for i in informers):
                dirty = False
                done, verdict = evaluate()
                if on_change is not None:
                    on_change(verdict)
                if done:
                    break
            remaining = deadline - clock()
            if remaining <= 0:
                break
            try:
                events.get(timeout=min(remaining, 1.0))
            except queue.Empty:
                continue
            dirty = True
            # Drain whatever else is already queued so that a burst is evaluated once.
            while True:
                try:
                    events.get_nowait()
                except queue.Empty:
                    break
    finally:
        for informer in informers:
            informer.stop()
    return done, verdict


# --------------------------------------------------------------------------- real transport


class _WatchStream(object):
    def __init__(self, response):
        self.response = response
        self._closed = False

    def __iter__(self):
        buf = b""
        for chunk in self.response.stream(amt=None, decode_content=False):
            if self._closed:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line = line.strip()
                if line:
                    yield json.loads(line.decode("utf-8"))
        if buf.strip():
            yield json.loads(buf.decode("utf-8"))

    def abort(self):
        """Called from another thread: shut the socket down so the blocked read returns at once.

        Closing the response from another thread would block on the reader's buffer lock until the
        next event or the server-side timeout arrives.
        """
        self._closed = True
        connection = getattr(self.response, "_connection", None) or getattr(self.response, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)

    def close(self):
        self._closed = True
        try:
            self.response.release_conn()
        except Exception:  # pylint: disable=broad-except
            pass
        try:
            self.response.close()
        except Exception:  # pylint: disable=broad-except
            pass


class ApiTransport(object):
    """Transport over a ``kubernetes.client.ApiClient`` (auth handled by its configuration).

    Counts every request in ``self.requests`` (thread-safe) and per method in ``self.by_method``.
    Reads (GET: lists, gets, logs, opening a watch) that fail transiently are retried under
    ``retry_policy`` (k8s_retry); each retry is counted in ``self.retries``. Writes are sent once.
    """

    def __init__(self, api_client, request_timeout=30, retry_policy=None):
        self.api_client = api_client
        self.request_timeout = request_timeout
        self.retry_policy = retry_policy or RetryPolicy()
        self.requests = 0
        self.retries = 0
        self.by_method = {}
        self._lock = threading.Lock()

    def _count_retry(self, *dummy):
        with self._lock:
            self.retries += 1

    def _read(self, func):
        return call_with_retry(func, self.retry_policy, on_retry=self._count_retry)

    def _count(self, method):
        with self._lock:
            self.requests += 1
            self.by_method[method] = self.by_method.get(method, 0) + 1

    def _call(self, method, path, query, body, timeout, accept="application/json"):
        """Send one request; return the raw urllib3 response (not preloaded)."""
        self._count(method)
        params = [(k, v) for k, v in sorted((query or {}).items()) if v is not None]
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = "application/json"
        client = self.api_client
        try:
            if hasattr(client, "param_serialize"):
                # kubernetes >= 31: serialise first, call_api() then only sends.
                method_, url, headers, body_, post = client.param_serialize(
                    method=method, resource_path=path, query_params=params, header_params=headers, body=body,
                    auth_settings=["BearerToken"],
                )
                response = client.call_api(method_, url, header_params=headers, body=body_, post_params=post,
                                           _request_timeout=timeout)
                raw = response.response
            else:
                raw = client.call_api(
                    path, method, query_params=params, header_params=headers, body=body,
                    auth_settings=["BearerToken"], _preload_content=False, _request_timeout=timeout,
                    _return_http_data_only=True,
                )
        except ApiException as err:
            self._raise(getattr(err, "status", None) or 500, getattr(err, "body", None) or getattr(err, "reason", "") or str(err),
                        getattr(err, "headers", None))
        if not 200 <= raw.status < 300:
            self._raise(raw.status, raw.data, getattr(raw, "headers", None))
        return raw

    @staticmethod
    def _raise(status, message, headers=None):
        if isinstance(message, bytes):
            message = message.decode("utf-8", "replace")
        try:
            message = json.loads(message).get("message", message)
        except (ValueError, AttributeError, TypeError):
            pass
        if status == 410:
            raise GoneError(message)
        err = ApiError(status, message)
        err.headers = headers
        raise err

    def request(self, method, path, query=None, body=None):
        def send():
            return self._call(method, path, query, body, self.request_timeout).data

        data = self._read(send) if method == "GET" else send()
        if not data:
            return {}
        return json.loads(data.decode("utf-8"))

    def request_text(self, path, query=None):
        data = self._read(lambda: self._call("GET", path, query, None, self.request_timeout, accept="*/*").data)
        return (data or b"").decode("utf-8", "replace")

    def watch(self, path, query):
        timeout = (query or {}).get("timeoutSeconds") or 60
        return _WatchStream(self._read(lambda: self._call("GET", path, query, None, (10, float(timeout) + 10))))


def api_client_from_module(module):
    """The ``kubernetes.client.ApiClient`` kubernetes.core builds from its auth options (module params / K8S_AUTH_*).

    Goes through kubernetes.core's public ``get_api_client``, so configuration and auth errors are its own
    ``CoreException("Could not create API client: ...")``. Its dynamic client is used only for the ApiClient
    it wraps: the lists and watches here go through :class:`ApiTransport`. Building that dynamic client reads
    kubernetes.core's discovery cache (a file in the temporary directory); only when that cache is cold does it
    make its discovery requests (``/version`` and ``/apis``), which ``api_requests`` does not count.
    """
    # pylint: disable=import-outside-toplevel
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client

    return get_api_client(module).client.client


def api_transport_from_module(module, request_timeout=30):
    """An :class:`ApiTransport` over :func:`api_client_from_module`. Raises kubernetes.core's CoreException."""
    return ApiTransport(api_client_from_module(module), request_timeout=request_timeout)


def run_on_api(module, params, validate, transport_from_module, work, failure):
    """The frame every GPU module runs in; returns ``work(transport)``.

    ``validate(params)`` returns an error message for invalid inputs, and the module fails with it before any
    API request. Then the transport is built with ``transport_from_module(module)`` (the module passes its own
    reference, so unit tests can swap in a fake API). An :class:`ApiError` fails the module with
    ``failure % error`` and the error's ``changed`` (set by work that created something first); any other error,
    kubernetes.core's CoreException for a bad configuration included, fails it with that error's own message.
    """
    error = validate(params)
    if error:
        module.fail_json(msg=error)
    try:
        return work(transport_from_module(module))
    except ApiError as err:
        module.fail_json(msg=failure % err, changed=getattr(err, "changed", False))
    except Exception as err:  # pylint: disable=broad-except
        module.fail_from_exception(err)
    return None
