"""Simulated container logs and the small HTTPS server the API server proxies ``pods/log`` to."""

import datetime
import ipaddress
import logging
import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Mapping, Optional
from urllib.parse import parse_qs, unquote, urlparse

from .model import parse_time, rfc3339
from .pods import is_job_pod

LOG = logging.getLogger('node_agent.logs')


def job_log(phase: str, product: str, node: str) -> str:
    """A vectorAdd-like log for a Job pod in ``phase``: PASSED once Succeeded, FAILED once Failed, partial while running."""
    lines = ['[Vector addition of 50000 elements] on %s (%s)' % (product or 'no GPU', node)]
    if phase == 'Failed':
        lines += ['Failed to allocate device vector A (error code CUDA-capable device(s) is/are busy or unavailable)!',
                  'Test FAILED']
        return '\n'.join(lines) + '\n'
    lines += ['Copy input data from the host memory to the CUDA device',
              'CUDA kernel launch with 196 blocks of 256 threads']
    if phase == 'Succeeded':
        lines += ['Copy output data from the CUDA device to the host memory', 'Test PASSED', 'Done']
    return '\n'.join(lines) + '\n'


def container_log(pod: Mapping, container: str, product: str) -> Optional[str]:
    """The log of ``container`` in ``pod``, or None when the pod has no such container."""
    spec = pod.get('spec') or {}
    names = [c.get('name') for c in (spec.get('containers') or []) + (spec.get('initContainers') or [])]
    if container not in names:
        return None
    node = spec.get('nodeName', '')
    phase = (pod.get('status') or {}).get('phase', 'Pending')
    if is_job_pod(pod) and container in [c.get('name') for c in spec.get('containers') or []]:
        return job_log(phase, product, node)
    meta = pod.get('metadata', {})
    return 'container %s of pod %s/%s started on node %s\n' % (container, meta.get('namespace'), meta.get('name'), node)


def apply_options(text: str, query: Mapping[str, list], started: Optional[str]) -> str:
    """Honour the ``timestamps``, ``tailLines`` and ``limitBytes`` query options of the kubelet log endpoint."""
    lines = text.splitlines(True)
    if query.get('tailLines'):
        count = int(query['tailLines'][0])
        lines = lines[-count:] if count > 0 else []
    if query.get('timestamps', ['false'])[0] == 'true':
        stamp = started or rfc3339(datetime.datetime.now(datetime.timezone.utc))
        lines = ['%s %s' % (stamp.replace('Z', '.000000000Z'), line) for line in lines]
    result = ''.join(lines)
    if query.get('limitBytes'):
        result = result.encode()[:int(query['limitBytes'][0])].decode(errors='ignore')
    return result


def ensure_certificate(cert_dir: str) -> tuple:
    """Create (once) a self-signed serving certificate for 127.0.0.1 in ``cert_dir``; return (cert path, key path)."""
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel

    cert_path, key_path = os.path.join(cert_dir, 'kubelet.crt'), os.path.join(cert_dir, 'kubelet.key')
    if os.path.exists(cert_path) and os.path.exists(key_path):
        return cert_path, key_path
    os.makedirs(cert_dir, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'testbed-kubelet')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName('localhost'), x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    with open(key_path, 'wb') as handle:
        os.chmod(key_path, 0o600)
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with open(cert_path, 'wb') as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _handler_class(lookup: Callable[[str, str, str], Optional[tuple]]):
    class Handler(BaseHTTPRequestHandler):
        """Serves ``/containerLogs/<namespace>/<pod>/<container>`` and a health check."""

        protocol_version = 'HTTP/1.1'

        def do_GET(self):  # pylint: disable=invalid-name
            """Answer a log or health request."""
            url = urlparse(self.path)
            parts = [unquote(p) for p in url.path.split('/') if p]
            if parts in (['healthz'], ['readyz']):
                self._reply(200, 'ok')
                return
            if len(parts) != 4 or parts[0] != 'containerLogs':
                self._reply(404, 'not found\n')
                return
            found = lookup(parts[1], parts[2], parts[3])
            if found is None:
                self._reply(404, 'container %s not found in pod %s/%s\n' % (parts[3], parts[1], parts[2]))
                return
            text, started = found
            self._reply(200, apply_options(text, parse_qs(url.query), started))

        def _reply(self, code: int, text: str):
            data = text.encode()
            self.send_response(code)
            self.send_header('Content-Type', 'text/plain')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin
            LOG.debug('kubelet endpoint: ' + format, *args)
    return Handler


class LogServer:
    """HTTPS kubelet log endpoint on 127.0.0.1:``port``; ``lookup(ns, pod, container)`` returns (text, startTime) or None."""

    def __init__(self, port: int, cert_dir: str, lookup: Callable[[str, str, str], Optional[tuple]], host: str = '127.0.0.1'):
        cert, key = ensure_certificate(cert_dir)
        self.server = ThreadingHTTPServer((host, port), _handler_class(lookup))
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name='log-server', daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful when constructed with port 0)."""
        return self.server.server_address[1]

    def start(self):
        """Serve in a background thread."""
        self.thread.start()

    def stop(self):
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def pod_start(pod: Mapping) -> Optional[str]:
    """The pod's startTime, if any, in API form."""
    started = parse_time((pod.get('status') or {}).get('startTime'))
    return rfc3339(started) if started else None
