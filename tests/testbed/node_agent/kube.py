"""Minimal API machinery on raw JSON: a REST client, list+watch informers with a cache, and a de-duplicating work queue."""

import heapq
import json
import logging
import threading
import time
from collections import deque
from typing import Callable, Dict, List, Optional
from urllib.parse import urlencode

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

LOG = logging.getLogger('node_agent.kube')
MERGE_PATCH = 'application/merge-patch+json'


class ApiError(Exception):
    """An API request failed with an HTTP status."""

    def __init__(self, status: int, method: str, path: str, body: str):
        super().__init__('%s %s -> HTTP %d: %s' % (method, path, status, body[:300]))
        self.status = status


class Rest:
    """Raw JSON access to the API server, using the kubernetes client only for kubeconfig and TLS setup."""

    def __init__(self, kubeconfig: str, pool_size: int = 32):
        configuration = k8s_client.Configuration()
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        configuration.connection_pool_maxsize = pool_size
        self.host = configuration.host.rstrip('/')
        self.pool = k8s_client.ApiClient(configuration).rest_client.pool_manager
        self.headers = {'Accept': 'application/json'}
        token = configuration.get_api_key_with_prefix('authorization') or configuration.get_api_key_with_prefix('BearerToken')
        if token:
            self.headers['Authorization'] = token

    def _url(self, path: str, params: Optional[dict]) -> str:
        return self.host + path + ('?' + urlencode(params) if params else '')

    def request(self, method: str, path: str, body=None, params: Optional[dict] = None, content_type: str = 'application/json',
                timeout: float = 30.0):
        """Send a request and return the decoded JSON answer; raise ApiError for HTTP errors."""
        headers = dict(self.headers)
        data = None
        if body is not None:
            headers['Content-Type'] = content_type
            data = json.dumps(body).encode()
        response = self.pool.request(method, self._url(path, params), body=data, headers=headers,
                                     timeout=urllib3.Timeout(connect=5.0, read=timeout), retries=False)
        if response.status >= 400:
            raise ApiError(response.status, method, path, response.data.decode(errors='replace'))
        return json.loads(response.data) if response.data else None

    def get(self, path: str, params: Optional[dict] = None):
        """GET a resource or list."""
        return self.request('GET', path, params=params)

    def create(self, path: str, body: dict):
        """POST a new object into a collection."""
        return self.request('POST', path, body)

    def replace(self, path: str, body: dict):
        """PUT an object."""
        return self.request('PUT', path, body)

    def patch(self, path: str, body: dict):
        """JSON merge-patch an object."""
        return self.request('PATCH', path, body, content_type=MERGE_PATCH)

    def delete(self, path: str, body: Optional[dict] = None, missing_ok: bool = True):
        """DELETE an object; a 404 is ignored unless ``missing_ok`` is false."""
        try:
            return self.request('DELETE', path, body)
        except ApiError as exc:
            if exc.status == 404 and missing_ok:
                return None
            raise

    def watch_lines(self, path: str, params: dict, timeout: float):
        """Yield the decoded events of a watch request until the server ends it."""
        response = self.pool.request('GET', self._url(path, dict(params, watch='1')), headers=self.headers, preload_content=False,
                                     timeout=urllib3.Timeout(connect=5.0, read=timeout), retries=False)
        try:
            if response.status >= 400:
                raise ApiError(response.status, 'WATCH', path, response.read().decode(errors='replace'))
            buffer = b''
            for chunk in response.stream(65536):
                buffer += chunk
                while b'\n' in buffer:
                    line, buffer = buffer.split(b'\n', 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            response.release_conn()


def object_key(obj: dict) -> str:
    """``namespace/name`` for namespaced objects, ``name`` otherwise."""
    meta = obj.get('metadata', {})
    return '%s/%s' % (meta['namespace'], meta['name']) if meta.get('namespace') else meta['name']


Handler = Callable[[str, Optional[dict], Optional[dict]], None]


class Informer:
    """Keeps a cache of one resource in sync by list+watch and calls ``handler(event, old, new)`` for every change.

    ``missing_ok`` tolerates a resource type that does not exist (yet): the cache is emptied and the list retried.
    """

    def __init__(self, rest: Rest, path: str, handler: Handler, params: Optional[dict] = None, name: str = 'informer',
                 missing_ok: bool = False, stop: Optional[threading.Event] = None):
        self.rest, self.path, self.handler, self.params = rest, path, handler, dict(params or {})
        self.name, self.missing_ok = name, missing_ok
        self.stop = stop or threading.Event()
        self.synced = threading.Event()
        self._lock = threading.Lock()
        self._cache: Dict[str, dict] = {}
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self):
        """Start the background list+watch loop."""
        self._thread.start()

    def get(self, key: str) -> Optional[dict]:
        """The cached object under ``key``."""
        with self._lock:
            return self._cache.get(key)

    def items(self) -> List[dict]:
        """A snapshot of the cached objects."""
        with self._lock:
            return list(self._cache.values())

    def _apply(self, event: str, obj: dict):
        key = object_key(obj)
        with self._lock:
            old = self._cache.get(key)
            if event == 'DELETED':
                self._cache.pop(key, None)
            else:
                self._cache[key] = obj
        self.handler(event, old, None if event == 'DELETED' else obj)

    def _relist(self) -> Optional[str]:
        try:
            listing = self.rest.get(self.path, self.params)
        except ApiError as exc:
            if exc.status == 404 and self.missing_ok:
                for obj in self.items():
                    self._apply('DELETED', obj)
                self.synced.set()
                return None
            raise
        fresh = {object_key(obj): obj for obj in listing.get('items') or []}
        for key, obj in list(self._cache.items()):
            if key not in fresh:
                self._apply('DELETED', obj)
        for key, obj in fresh.items():
            old = self.get(key)
            if old is None or old['metadata'].get('resourceVersion') != obj['metadata'].get('resourceVersion'):
                self._apply('ADDED' if old is None else 'MODIFIED', obj)
        self.synced.set()
        return listing['metadata'].get('resourceVersion')

    def _watch(self, version: str) -> None:
        params = dict(self.params, resourceVersion=version, allowWatchBookmarks='true', timeoutSeconds='240')
        while not self.stop.is_set():
            for event in self.rest.watch_lines(self.path, params, timeout=300):
                kind, obj = event.get('type'), event.get('object') or {}
                if kind == 'ERROR':
                    LOG.debug('%s: watch error %s, relisting', self.name, obj.get('message'))
                    return
                params['resourceVersion'] = obj.get('metadata', {}).get('resourceVersion', params['resourceVersion'])
                if kind in ('ADDED', 'MODIFIED', 'DELETED'):
                    self._apply(kind, obj)
                if self.stop.is_set():
                    return

    def _run(self):
        while not self.stop.is_set():
            try:
                version = self._relist()
                if version is None:
                    self.stop.wait(2.0)
                    continue
                self._watch(version)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                if not self.stop.is_set():
                    LOG.warning('%s: %s; retrying', self.name, exc)
                    self.stop.wait(1.0)


class WorkQueue:
    """A queue of keys: a key queued many times is processed once, never by two workers at the same time."""

    def __init__(self):
        self._cond = threading.Condition()
        self._queue = deque()
        self._queued = set()
        self._processing = set()
        self._again = set()
        self._delayed = []
        self._closed = False

    def add(self, key: str):
        """Queue ``key`` now."""
        with self._cond:
            if key in self._processing:
                self._again.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._queue.append(key)
                self._cond.notify()

    def add_after(self, key: str, delay: float):
        """Queue ``key`` in ``delay`` seconds."""
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            heapq.heappush(self._delayed, (time.monotonic() + delay, key))
            self._cond.notify()

    def _promote_due(self) -> Optional[float]:
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            key = heapq.heappop(self._delayed)[1]
            if key in self._processing:
                self._again.add(key)
            elif key not in self._queued:
                self._queued.add(key)
                self._queue.append(key)
        return self._delayed[0][0] - now if self._delayed else None

    def get(self) -> Optional[str]:
        """Block until a key is due and return it; None once the queue is shut down."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                wait = self._promote_due()
                if self._queue:
                    key = self._queue.popleft()
                    self._queued.discard(key)
                    self._processing.add(key)
                    return key
                self._cond.wait(wait if wait is not None else 1.0)

    def done(self, key: str):
        """Mark ``key`` processed; it is queued again if it was added meanwhile."""
        with self._cond:
            self._processing.discard(key)
            if key in self._again:
                self._again.discard(key)
                self._queued.add(key)
                self._queue.append(key)
                self._cond.notify()

    def shutdown(self):
        """Wake all workers and make ``get`` return None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self):
        with self._cond:
            return len(self._queue) + len(self._delayed)


def start_workers(queue: WorkQueue, work: Callable[[str], None], count: int, name: str) -> List[threading.Thread]:
    """Run ``work(key)`` for queued keys on ``count`` threads; a failing key is retried a second later."""
    def loop():
        while True:
            key = queue.get()
            if key is None:
                return
            try:
                work(key)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                LOG.warning('%s %s: %s; retrying', name, key, exc)
                queue.add_after(key, 1.0)
            finally:
                queue.done(key)
    threads = [threading.Thread(target=loop, name='%s-%d' % (name, i), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads
