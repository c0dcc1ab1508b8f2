#!/usr/bin/env python
# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A fault-injection HTTPS proxy on loopback in front of the testbed's kube-apiserver.

    fault_proxy.py serve [--port N] [--rate 0.1] [--mix throttle=1,unavailable=1,reset=1,slow=1] [--seed 1]

Clients connect to it with a kubeconfig it writes (``<state>/kubeconfig-fault-proxy``): the testbed CA
as the cluster CA, and the admin client certificate, which the proxy requires. It terminates TLS with a
certificate signed by the testbed CA, forwards every request to the API server with the admin client
certificate (impersonation headers pass through, so a test can act as a user without rights), streams
chunked responses (watches, logs) as they arrive, and, for a fraction ``rate`` of requests, injects a
fault instead, picked from the weighted ``mix``:

    throttle      HTTP 429 with ``Retry-After`` (seconds: --retry-after)
    unavailable   HTTP 503, no Retry-After
    reset         the connection is reset (TCP RST) after the request is read; it never reaches the API server
    reset_after   the request reaches the API server, then the connection is reset before the response
    slow          the response is delayed by --slow-seconds, then forwarded

Decisions come from a seeded random generator, so a seed gives the same sequence of decisions. The
counts of requests and injected faults are served as JSON at ``GET /__proxy/stats`` and written to
``--stats-file``; ``PUT /__proxy/config`` with a JSON body changes rate, mix, seed at run time.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import random
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import http.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("MLOPS_TESTBED_CACHE", os.path.expanduser("~/.cache/mlops-testbed"))
STATE = os.environ.get("MLOPS_TESTBED_STATE", os.path.join(CACHE, "state"))
API_PORT = int(os.environ.get("MLOPS_TESTBED_PORT", "16443"))

KINDS = ("throttle", "unavailable", "reset", "reset_after", "slow")
DEFAULT_MIX = {"throttle": 1, "unavailable": 1, "reset": 1, "slow": 1}
CONTROL_PREFIX = "/__proxy/"
ADMIN_CN = "testbed-admin"
HOP_BY_HOP = frozenset([
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length",
])


# --------------------------------------------------------------------------------------------
# Pure decision logic (unit-tested without sockets)
# --------------------------------------------------------------------------------------------

def parse_mix(text):
    """``"throttle=2,reset=1"`` -> ``{"throttle": 2, "reset": 1}``; a bare kind counts 1."""
    mix = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        kind, _sep, weight = part.partition("=")
        kind = kind.strip()
        if kind not in KINDS:
            raise ValueError("unknown fault kind %r (known: %s)" % (kind, ", ".join(KINDS)))
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError("weight of %s must be a number, got %r" % (kind, weight))
        if value < 0:
            raise ValueError("weight of %s must be >= 0, got %s" % (kind, value))
        mix[kind] = value
    if mix and not any(mix.values()):
        raise ValueError("at least one fault kind needs a weight > 0")
    return mix


class FaultPlan:
    """Which request gets which fault: a seeded, thread-safe sequence of decisions.

    ``decide(method, path)`` draws once per eligible request: with probability ``rate`` a fault kind
    picked by weight from ``mix``, else None. Paths matching ``exempt`` (regular expressions) and the
    proxy's own control paths are never faulted and draw nothing, so they do not shift the sequence.
    ``methods`` (if given) restricts faults to those HTTP methods; ``watch`` False spares watch requests.
    """

    def __init__(self, rate=0.0, mix=None, seed=0, exempt=(), methods=None, watch=True):
        if not 0.0 <= float(rate) <= 1.0:
            raise ValueError("rate must be between 0 and 1, got %r" % (rate,))
        self.rate = float(rate)
        self.mix = dict(DEFAULT_MIX if mix is None else mix)
        unknown = [k for k in self.mix if k not in KINDS]
        if unknown:
            raise ValueError("unknown fault kind(s): %s" % ", ".join(unknown))
        if self.rate > 0 and not any(w > 0 for w in self.mix.values()):
            raise ValueError("a rate above 0 needs a mix with a weight > 0")
        self.seed = seed
        self.exempt = [re.compile(p) for p in exempt]
        self.methods = set(m.upper() for m in methods) if methods else None
        self.watch = watch
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    @staticmethod
    def is_watch(path):
        query = path.partition("?")[2]
        return bool(re.search(r"(^|&)watch=(true|1)(&|$)", query)) or "/watch/" in path.partition("?")[0]

    def eligible(self, method, path):
        if path.startswith(CONTROL_PREFIX):
            return False
        if any(p.search(path) for p in self.exempt):
            return False
        if self.methods is not None and method.upper() not in self.methods:
            return False
        if not self.watch and self.is_watch(path):
            return False
        return True

    def _pick(self, draw):
        kinds = [k for k in KINDS if self.mix.get(k, 0) > 0]
        total = sum(self.mix[k] for k in kinds)
        point = draw * total
        for kind in kinds:
            point -= self.mix[kind]
            if point < 0:
                return kind
        return kinds[-1]

    def decide(self, method, path):
        if not self.eligible(method, path):
            return None
        with self._lock:
            hit = self._random.random() < self.rate
            draw = self._random.random()
        return self._pick(draw) if hit else None


class Stats:
    """Thread-safe counters: requests seen, forwarded, and faults injected per kind."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests = 0
        self.forwarded = 0
        self.upstream_errors = 0
        self.injected = dict((k, 0) for k in KINDS)
        self.by_method = {}

    def count_request(self, method):
        with self._lock:
            self.requests += 1
            self.by_method[method] = self.by_method.get(method, 0) + 1

    def count_fault(self, kind):
        with self._lock:
            self.injected[kind] += 1

    def count_forwarded(self):
        with self._lock:
            self.forwarded += 1

    def count_upstream_error(self):
        with self._lock:
            self.upstream_errors += 1

    def snapshot(self):
        with self._lock:
            return {
                "requests": self.requests,
                "forwarded": self.forwarded,
                "upstream_errors": self.upstream_errors,
                "injected": dict(self.injected),
                "injected_total": sum(self.injected.values()),
                "by_method": dict(self.by_method),
            }


def status_body(code, reason, message, retry_after=None):
    """A Kubernetes ``Status`` object as the API server sends with an error."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    if retry_after is not None:
        body["details"] = {"retryAfterSeconds": int(retry_after)}
    return json.dumps(body).encode()


# --------------------------------------------------------------------------------------------
# PKI and kubeconfig
# --------------------------------------------------------------------------------------------

def _pki(state, *parts):
    return os.path.join(state, "pki", *parts)


def ensure_serving_cert(state=None):
    """A serving certificate for 127.0.0.1/localhost signed by the testbed CA (made once)."""
    state = state or STATE
    cert_path, key_path = _pki(state, "fault-proxy.crt"), _pki(state, "fault-proxy.key")
    if os.path.exists(cert_path) and os.path.exists(key_path):
        return cert_path, key_path
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    with open(_pki(state, "ca.crt"), "rb") as handle:
        ca_cert = x509.load_pem_x509_certificate(handle.read())
    with open(_pki(state, "ca.key"), "rb") as handle:
        ca_key = serialization.load_pem_private_key(handle.read(), password=None)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "testbed-fault-proxy")]))
        .issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def write_kubeconfig(port, target=None, user="admin", state=None):
    """A kubeconfig that points at the proxy, with the testbed CA and a testbed client certificate."""
    state = state or STATE
    target = target or os.path.join(state, "kubeconfig-fault-proxy")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "mlops-testbed-faults", "cluster": {
            "server": "https://127.0.0.1:%d" % port, "certificate-authority": _pki(state, "ca.crt")}}],
        "users": [{"name": user, "user": {
            "client-certificate": _pki(state, user + ".crt"), "client-key": _pki(state, user + ".key")}}],
        "contexts": [{"name": "mlops-testbed-faults", "context": {"cluster": "mlops-testbed-faults", "user": user}}],
        "current-context": "mlops-testbed-faults",
    }
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(config, handle, indent=2)
    return target


# --------------------------------------------------------------------------------------------
# The proxy
# --------------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "testbed-fault-proxy"
    # Long-running requests (watches) wait for data for a long time; no read timeout on the client side.
    timeout = None

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        if self.server.proxy.verbose:
            sys.stderr.write("[fault-proxy] %s\n" % (format % args))

    # -- every method goes the same way
    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self):
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return None

    def _send_simple(self, code, body, extra_headers=None, content_type="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self):
        """Drop the connection with a TCP RST: SO_LINGER on with a zero timeout, then close."""
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        raw = self.connection
        try:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            # Under TLS, close the underlying socket without a close_notify: the peer sees a reset.
            sock = socket.socket(fileno=raw.detach()) if isinstance(raw, ssl.SSLSocket) else raw
            sock.close()
        except OSError:
            pass

    def _control(self, body):
        proxy = self.server.proxy
        if self.path.startswith(CONTROL_PREFIX + "stats"):
            self._send_simple(200, json.dumps(proxy.stats_snapshot()).encode())
        elif self.path.startswith(CONTROL_PREFIX + "config") and self.command in ("PUT", "POST"):
            try:
                proxy.configure(**json.loads(body or b"{}"))
            except (TypeError, ValueError) as err:
                self._send_simple(400, json.dumps({"error": str(err)}).encode())
                return
            self._send_simple(200, json.dumps(proxy.config()).encode())
        elif self.path.startswith(CONTROL_PREFIX + "config"):
            self._send_simple(200, json.dumps(proxy.config()).encode())
        else:
            self._send_simple(404, b'{"error": "unknown control path"}')

    def _handle(self):
        proxy = self.server.proxy
        body = self._read_body()
        if self.path.startswith(CONTROL_PREFIX):
            self._control(body)
            return
        proxy.stats.count_request(self.command)
        fault = proxy.plan.decide(self.command, self.path)
        if fault is not None:
            proxy.stats.count_fault(fault)
            proxy.write_stats()
        if fault == "throttle":
            retry = proxy.retry_after
            self._send_simple(429, status_body(429, "TooManyRequests", "injected fault: too many requests, retry after %ss"
                                               % retry, retry_after=retry), {"Retry-After": str(retry)})
            return
        if fault == "unavailable":
            self._send_simple(503, status_body(503, "ServiceUnavailable", "injected fault: service unavailable"))
            return
        if fault == "reset":
            self._reset()
            return
        if fault == "slow":
            time.sleep(proxy.slow_seconds)
        self._forward(body, reset_after=(fault == "reset_after"))

    def _upstream(self):
        conn = getattr(self, "_upstream_conn", None)
        if conn is None:
            proxy = self.server.proxy
            conn = http.client.HTTPSConnection(proxy.upstream_host, proxy.upstream_port, context=proxy.upstream_context,
                                               timeout=proxy.upstream_timeout)
            self._upstream_conn = conn
        return conn

    def _drop_upstream(self):
        conn = getattr(self, "_upstream_conn", None)
        self._upstream_conn = None
        if conn is not None:
            conn.close()

    def _forward(self, body, reset_after=False):
        proxy = self.server.proxy
        headers = dict((k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP)
        if body is not None:
            headers["Content-Length"] = str(len(body))
        watching = FaultPlan.is_watch(self.path) or "follow=true" in self.path
        for attempt in (1, 2):
            conn = self._upstream()
            if watching:
                # A watch may stay open for its whole timeoutSeconds with no data.
                conn.timeout = None
                if conn.sock is not None:
                    conn.sock.settimeout(None)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                break
            except (http.client.HTTPException, OSError):
                # A kept-alive upstream connection the server has closed: reconnect once.
                self._drop_upstream()
                if attempt == 2:
                    proxy.stats.count_upstream_error()
                    self._send_simple(502, status_body(502, "BadGateway", "fault proxy: API server unreachable"))
                    return
        proxy.stats.count_forwarded()
        if reset_after:
            response.read()
            self._drop_upstream()
            self._reset()
            return
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        length = response.getheader("Content-Length")
        chunked = length is None and self.command != "HEAD" and response.status not in (204, 304)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif length is not None:
            self.send_header("Content-Length", length)
        self.end_headers()
        try:
            if chunked:
                while True:
                    data = response.read1(65536)
                    if not data:
                        break
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.write(response.read())
            self.wfile.flush()
        except OSError:
            # The client went away (a stopped watch): drop both sides.
            self.close_connection = True
            self._drop_upstream()
            return
        if response.will_close:
            self._drop_upstream()
        if watching:
            self._drop_upstream()

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        self._drop_upstream()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, proxy):
        self.proxy = proxy
        super().__init__(address, _Handler)

    def get_request(self):
        sock, addr = super().get_request()
        # TLS handshake in the handler thread (server-side wrap is lazy), never in the accept loop.
        return self.proxy.server_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request, client_address):
        try:
            request.settimeout(30)
            request.do_handshake()
            request.settimeout(None)
        except (ssl.SSLError, OSError):
            return
        cert = request.getpeercert() or {}
        common_names = [v for rdn in cert.get("subject", ()) for (k, v) in rdn if k == "commonName"]
        if self.proxy.client_cn and self.proxy.client_cn not in common_names:
            # Only the admin identity may use the proxy: it forwards with the admin's rights.
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        if self.proxy.verbose:
            super().handle_error(request, client_address)


class FaultProxy:
    """The proxy: ``start()`` serves in a background thread, ``stop()`` ends it."""

    def __init__(self, plan=None, port=0, retry_after=1, slow_seconds=2.0, stats_file=None, verbose=False,
                 state_dir=None, api_port=None, upstream_timeout=120, client_cn=ADMIN_CN):
        self.state = state_dir or STATE
        self.plan = plan or FaultPlan()
        self.stats = Stats()
        self.retry_after = int(retry_after)
        self.slow_seconds = float(slow_seconds)
        self.stats_file = stats_file
        self.verbose = verbose
        self.client_cn = client_cn
        self.upstream_host = "127.0.0.1"
        self.upstream_port = api_port or API_PORT
        self.upstream_timeout = upstream_timeout
        self.upstream_context = ssl.create_default_context(cafile=_pki(self.state, "ca.crt"))
        self.upstream_context.load_cert_chain(_pki(self.state, "admin.crt"), _pki(self.state, "admin.key"))
        cert, key = ensure_serving_cert(self.state)
        self.server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_context.load_cert_chain(cert, key)
        self.server_context.load_verify_locations(_pki(self.state, "ca.crt"))
        self.server_context.verify_mode = ssl.CERT_REQUIRED
        self.server_context.set_alpn_protocols(["http/1.1"])
        self._server = _Server(("127.0.0.1", port), self)
        self.port = self._server.server_address[1]
        self._thread = None
        self._stats_lock = threading.Lock()

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def config(self):
        return {"rate": self.plan.rate, "mix": self.plan.mix, "seed": self.plan.seed, "retry_after": self.retry_after,
                "slow_seconds": self.slow_seconds}

    def configure(self, rate=None, mix=None, seed=None, retry_after=None, slow_seconds=None, methods=None, watch=None):
        """Replace the plan (same exemptions); a new seed restarts the sequence."""
        if isinstance(mix, str):
            mix = parse_mix(mix)
        old = self.plan
        self.plan = FaultPlan(rate=old.rate if rate is None else rate, mix=old.mix if mix is None else mix,
                              seed=old.seed if seed is None else seed, exempt=[p.pattern for p in old.exempt],
                              methods=old.methods if methods is None else methods,
                              watch=old.watch if watch is None else watch)
        if retry_after is not None:
            self.retry_after = int(retry_after)
        if slow_seconds is not None:
            self.slow_seconds = float(slow_seconds)

    def stats_snapshot(self):
        snap = self.stats.snapshot()
        snap["config"] = self.config()
        return snap

    def write_stats(self):
        if not self.stats_file:
            return
        with self._stats_lock:
            tmp = self.stats_file + ".tmp"
            with open(tmp, "w") as handle:
                json.dump(self.stats_snapshot(), handle, indent=2)
            os.replace(tmp, self.stats_file)

    def write_kubeconfig(self, target=None):
        return write_kubeconfig(self.port, target, state=self.state)

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.write_stats()


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve in the foreground until interrupted")
    serve.add_argument("--port", type=int, default=0, help="listen port on 127.0.0.1 (default: any free port)")
    serve.add_argument("--rate", type=float, default=0.1, help="fraction of requests that get a fault (0..1)")
    serve.add_argument("--mix", default="throttle=1,unavailable=1,reset=1,slow=1", help="weighted fault kinds")
    serve.add_argument("--seed", type=int, default=1)
    serve.add_argument("--retry-after", type=int, default=1, help="Retry-After seconds of injected 429s")
    serve.add_argument("--slow-seconds", type=float, default=2.0, help="delay of a slow response")
    serve.add_argument("--exempt", action="append", default=[], help="regular expression of paths never faulted")
    serve.add_argument("--methods", help="comma-separated HTTP methods to fault (default: all)")
    serve.add_argument("--no-watch-faults", action="store_true", help="never fault watch requests")
    serve.add_argument("--kubeconfig", help="where to write the kubeconfig (default <state>/kubeconfig-fault-proxy)")
    serve.add_argument("--stats-file", default=None, help="JSON counters, rewritten on every fault and at exit")
    serve.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    plan = FaultPlan(rate=args.rate, mix=parse_mix(args.mix), seed=args.seed, exempt=args.exempt,
                     methods=args.methods.split(",") if args.methods else None, watch=not args.no_watch_faults)
    proxy = FaultProxy(plan, port=args.port, retry_after=args.retry_after, slow_seconds=args.slow_seconds,
                       stats_file=args.stats_file or os.path.join(STATE, "fault-proxy-stats.json"), verbose=args.verbose)
    kubeconfig = proxy.write_kubeconfig(args.kubeconfig)
    proxy.write_stats()
    sys.stderr.write("[fault-proxy] %s -> https://127.0.0.1:%d, rate %s, mix %s, seed %s\n"
                     % (proxy.url, proxy.upstream_port, plan.rate, plan.mix, plan.seed))
    print(kubeconfig, flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        proxy._server.serve_forever()  # pylint: disable=protected-access
    except KeyboardInterrupt:
        pass
    finally:
        proxy._server.server_close()  # pylint: disable=protected-access
        proxy.write_stats()
    return 0


if __name__ == "__main__":
    sys.exit(main())
