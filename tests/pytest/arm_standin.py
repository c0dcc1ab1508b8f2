# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A local HTTPS stand-in for the parts of Azure Resource Manager that the gpu_nodepool role's AKS tasks use.

It listens on 127.0.0.1 with a server certificate signed by a CA it generates (clients trust it through
``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE``), and serves:

* ``GET /metadata/endpoints`` -- the ARM cloud metadata document that azure-cli-core reads when
  ``ARM_CLOUD_METADATA_URL`` is set; its ``resourceManager`` is this server, so the cloud it describes can be chosen
  with ``cloud_environment``;
* ``GET /msi/token`` -- an App Service style managed-identity token endpoint (``IDENTITY_ENDPOINT``; the caller must
  send the ``X-IDENTITY-HEADER`` secret), which hands out an opaque bearer token;
* the agentPools API of ``Microsoft.ContainerService/managedClusters/<cluster>``: GET (404 when absent), PUT (the
  body is stored; 201 on create, 200 on update, with an ``Azure-AsyncOperation`` header, as AKS answers), DELETE
  (202 with ``Azure-AsyncOperation`` and ``Location``, or 204 when absent), the operation status and location URLs
  those headers name, and GET of the managed cluster itself.

Provisioning is asynchronous as in AKS, but counted in reads instead of time: after a PUT the pool is
``Creating``/``Updating`` (and its operation ``InProgress``) for ``provisioning_reads`` reads of the pool or the
operation, then ``Succeeded`` (or ``Failed`` for a pool named in ``fail_provisioning``). Deletion too: after a
DELETE the pool is still there, ``Deleting``, for ``deletion_reads`` reads, then gone (404).

Every ARM call must carry the bearer token (401 otherwise). Every request is recorded (method, path, api-version,
parsed JSON body, whether it was authorised) in ``requests`` for tests to assert on.

What it does not model: AAD (no OpenID discovery, no client-secret flow), provisioning that takes time or
creates nodes, validation of the body against the
agentPools schema, what AKS derives on its own beyond the spot taint and label, RBAC, throttling, and any other
resource provider.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import secrets
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

METADATA_PATH = "/metadata/endpoints"
TOKEN_PATH = "/msi/token"
CLOUD_NAME = "MlopsStandinCloud"
LOCATION = "standinlocation"
SPOT_TAINT = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"
SPOT_LABEL = ("kubernetes.azure.com/scalesetpriority", "spot")

_POOL = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/microsoft\.containerservice/"
    r"managedclusters/(?P<cluster>[^/]+)(?:/agentpools/(?P<pool>[^/]+))?/?$", re.IGNORECASE)
_OPERATION = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/microsoft\.containerservice/locations/[^/]+/"
    r"(?P<kind>operations|operationresults)/(?P<id>[^/]+)/?$", re.IGNORECASE)


def make_certificates(directory):
    """A CA and a server certificate for 127.0.0.1/localhost under ``directory``; returns (ca, cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlops.platform ARM stand-in CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tuple(os.path.join(str(directory), name) for name in ("ca.pem", "server.pem", "server.key"))
    with open(paths[0], "wb") as handle:
        handle.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths[2], "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return paths


class ArmStandin:
    """The server and its state: pools by (subscription, resource group, cluster, pool), all lower-cased."""

    def __init__(self, directory, identity_header, clusters=(("rg-ml", "aks-ml"),)):
        self.ca, cert, key = make_certificates(directory)
        self.identity_header = identity_header
        self.token = "standin-token-" + secrets.token_hex(16)
        self.clusters = {(rg.lower(), name.lower()) for rg, name in clusters}
        self.pools = {}
        self.provisioning_reads = 2
        self.deletion_reads = 2
        self._deleting = {}
        self.fail_provisioning = set()
        self._pending = {}
        self._operations = {}
        self.requests = []
        self._lock = threading.Lock()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="arm-standin", daemon=True)

    # lifecycle -------------------------------------------------------------------------------------------------
    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=30)

    # what the tests read and set -------------------------------------------------------------------------------
    @property
    def resource_manager(self):
        return self.url + "/"

    @property
    def metadata_url(self):
        return self.url + METADATA_PATH + "?api-version=2022-09-01"

    @property
    def identity_endpoint(self):
        return self.url + TOKEN_PATH

    def recorded(self, method=None, path_contains=None):
        with self._lock:
            found = list(self.requests)
        return [r for r in found if (method is None or r["method"] == method)
                and (path_contains is None or path_contains.lower() in r["path"].lower())]

    def mutating(self):
        return [r for r in self.recorded() if r["method"] in ("PUT", "PATCH", "POST", "DELETE")]

    def clear(self):
        with self._lock:
            self.requests.clear()

    def seed_pool(self, subscription, resource_group, cluster, name, properties):
        """Put a pool in place as if it had been created earlier (no request is recorded)."""
        with self._lock:
            self.pools[self._key(subscription, resource_group, cluster, name)] = self._resource(
                subscription, resource_group, cluster, name, properties)

    def pool(self, subscription, resource_group, cluster, name):
        with self._lock:
            found = self.pools.get(self._key(subscription, resource_group, cluster, name))
        return json.loads(json.dumps(found)) if found else None

    # internals -------------------------------------------------------------------------------------------------
    def _advance(self, key):
        """One read of a pool (or of its operation) while it provisions; returns the operation status."""
        with self._lock:
            if key in self._deleting:
                self._deleting[key] -= 1
                if self._deleting[key] <= 0:
                    del self._deleting[key]
                    self.pools.pop(key, None)
            if key in self._pending:
                self._pending[key] -= 1
                if self._pending[key] <= 0:
                    del self._pending[key]
                    state = "Failed" if key[3] in self.fail_provisioning else "Succeeded"
                    self.pools[key]["properties"]["provisioningState"] = state
            if key in self._pending or key in self._deleting:
                return "InProgress"
            pool = self.pools.get(key)
            return pool["properties"]["provisioningState"] if pool else "Succeeded"

    @staticmethod
    def _key(subscription, resource_group, cluster, name):
        return tuple(part.lower() for part in (subscription, resource_group, cluster, name))

    @staticmethod
    def _resource(subscription, resource_group, cluster, name, properties):
        props = json.loads(json.dumps(properties))
        if props.get("scaleSetPriority") == "Spot":
            # What AKS adds to a spot pool by itself.
            if SPOT_TAINT not in (props.get("nodeTaints") or []):
                props["nodeTaints"] = list(props.get("nodeTaints") or []) + [SPOT_TAINT]
            props["nodeLabels"] = dict(props.get("nodeLabels") or {}, **{SPOT_LABEL[0]: SPOT_LABEL[1]})
            props.setdefault("spotMaxPrice", -1)
        props["provisioningState"] = "Succeeded"
        props.setdefault("powerState", {"code": "Running"})
        return {
            "id": "/subscriptions/%s/resourcegroups/%s/providers/Microsoft.ContainerService/managedClusters/%s/"
                  "agentPools/%s" % (subscription, resource_group, cluster, name),
            "name": name,
            "type": "Microsoft.ContainerService/managedClusters/agentPools",
            "properties": props,
        }

    def _record(self, entry):
        with self._lock:
            self.requests.append(entry)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A client that goes away mid-connection (a module process ending while an SDK poller still runs) is normal.
        pass


def _error(code, message):
    return {"error": {"code": code, "message": message}}


def _handler(standin):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "arm-standin/1"

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin
            pass

        def _reply(self, status, body=None, headers=None):
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-ms-request-id", str(uuid.uuid4()))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if data:
                self.wfile.write(data)

        def _handle(self):
            split = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(split.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            authorised = self.headers.get("Authorization") == "Bearer " + standin.token
            standin._record({
                "method": self.command, "path": split.path, "api_version": query.get("api-version"),
                "query": query, "body": body, "authorised": authorised, "time": time.time(),
            })
            if split.path == METADATA_PATH:
                return self._metadata()
            if split.path == TOKEN_PATH:
                return self._token(query)
            if not authorised:
                return self._reply(401, _error("AuthenticationFailed", "missing or unknown bearer token"),
                                   {"WWW-Authenticate": 'Bearer authorization_uri="%s"' % standin.url})
            if not query.get("api-version"):
                return self._reply(400, _error("MissingApiVersionParameter", "api-version is required"))
            match = _OPERATION.match(split.path)
            if match and self.command == "GET":
                key = standin._operations.get(match.group("id"))
                status = standin._advance(key) if key else "Succeeded"
                if match.group("kind").lower() == "operationresults":
                    return self._reply(204 if status != "InProgress" else 202, None, {"Retry-After": "1"})
                return self._reply(200, {"id": split.path, "name": match.group("id"), "status": status,
                                         "startTime": "2026-01-01T00:00:00Z"}, {"Retry-After": "1"})
            match = _POOL.match(split.path)
            if not match:
                return self._reply(404, _error("InvalidResourceType", "the stand-in does not serve %s" % split.path))
            sub, rg, cluster, pool = (match.group(k) for k in ("sub", "rg", "cluster", "pool"))
            if (rg.lower(), cluster.lower()) not in standin.clusters:
                return self._reply(404, _error("ResourceNotFound", "managed cluster %s/%s not found" % (rg, cluster)))
            if pool is None:
                if self.command != "GET":
                    return self._reply(405, _error("MethodNotAllowed", "the stand-in only reads clusters"))
                return self._reply(200, self._cluster(sub, rg, cluster))
            return self._pool(sub, rg, cluster, pool, body, query)

        def _metadata(self):
            base = standin.url
            cloud = {
                "name": CLOUD_NAME,
                "portal": base + "/portal",
                "resourceManager": standin.resource_manager,
                "authentication": {
                    "loginEndpoint": base + "/login/",
                    "audiences": [standin.resource_manager],
                    "tenant": "common",
                    "identityProvider": "AAD",
                },
                "media": base + "/media",
                "graphAudience": base + "/graph/",
                "graph": base + "/graph/",
                "suffixes": {"keyVaultDns": "vault.standin.invalid", "storage": "core.standin.invalid",
                             "acrLoginServer": "azurecr.standin.invalid", "sqlServerHostname": "database.standin.invalid"},
                "batch": base + "/batch/",
                "microsoftGraphResourceId": base + "/graph/",
                "sqlManagement": base + "/sql/",
                "gallery": base + "/gallery/",
                "activeDirectoryDataLake": base + "/datalake/",
                "appInsightsResourceId": base + "/appinsights/",
                "appInsightsTelemetryChannelResourceId": base + "/appinsightschannel/",
                "attestationResourceId": base + "/attestation/",
                "synapseAnalyticsResourceId": base + "/synapse/",
                "logAnalyticsResourceId": base + "/loganalytics/",
                "ossrDbmsResourceId": base + "/ossrdbms/",
            }
            return self._reply(200, [cloud])

        def _token(self, query):
            if self.headers.get("X-IDENTITY-HEADER") != standin.identity_header:
                return self._reply(401, {"error": "invalid_request", "error_description": "bad identity header"})
            resource = query.get("resource", "")
            return self._reply(200, {
                "access_token": standin.token,
                "expires_on": str(int(time.time()) + 3600),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": query.get("client_id", "standin-identity"),
            })

        def _cluster(self, sub, rg, cluster):
            return {
                "id": "/subscriptions/%s/resourcegroups/%s/providers/Microsoft.ContainerService/managedClusters/%s"
                      % (sub, rg, cluster),
                "name": cluster, "type": "Microsoft.ContainerService/ManagedClusters", "location": LOCATION,
                "properties": {"provisioningState": "Succeeded", "kubernetesVersion": "1.31.2",
                               "agentPoolProfiles": [dict(p["properties"], name=p["name"])
                                                     for k, p in sorted(standin.pools.items())
                                                     if k[:3] == (sub.lower(), rg.lower(), cluster.lower())]},
            }

        def _operation_headers(self, sub, key):
            operation = str(uuid.uuid4())
            standin._operations[operation] = key
            base = "%s/subscriptions/%s/providers/Microsoft.ContainerService/locations/%s" % (standin.url, sub, LOCATION)
            return {
                "Azure-AsyncOperation": "%s/operations/%s?api-version=2025-10-01" % (base, operation),
                "Location": "%s/operationresults/%s?api-version=2025-10-01" % (base, operation),
                "Retry-After": "1",
            }

        def _pool(self, sub, rg, cluster, name, body, query):
            key = standin._key(sub, rg, cluster, name)
            if self.command == "GET":
                standin._advance(key)
            with standin._lock:
                current = standin.pools.get(key)
            if self.command == "GET":
                if current is None:
                    return self._reply(404, _error("NotFound", "agent pool %s not found" % name))
                return self._reply(200, current)
            if self.command == "PUT":
                if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
                    return self._reply(400, _error("InvalidRequestContent", "the body needs a properties object"))
                if key in standin._deleting:
                    return self._reply(409, _error("OperationNotAllowed", "agent pool %s is being deleted" % name))
                driver = ((body["properties"].get("gpuProfile") or {}).get("driver")) or "Install"
                if current is not None:
                    was = ((current["properties"].get("gpuProfile") or {}).get("driver")) or "Install"
                    if was != driver:
                        return self._reply(400, _error("PropertyChangeNotAllowed",
                                                       "gpuProfile.driver cannot be changed from %s to %s" % (was, driver)))
                resource = standin._resource(sub, rg, cluster, name, body["properties"])
                resource["properties"]["provisioningState"] = "Updating" if current is not None else "Creating"
                with standin._lock:
                    standin.pools[key] = resource
                    if standin.provisioning_reads > 0:
                        standin._pending[key] = standin.provisioning_reads
                    else:
                        resource["properties"]["provisioningState"] = "Succeeded"
                return self._reply(200 if current is not None else 201, resource, self._operation_headers(sub, key))
            if self.command == "DELETE":
                if current is None:
                    return self._reply(204)
                with standin._lock:
                    standin._pending.pop(key, None)
                    if standin.deletion_reads > 0:
                        current["properties"]["provisioningState"] = "Deleting"
                        standin._deleting.setdefault(key, standin.deletion_reads)
                    else:
                        standin.pools.pop(key, None)
                return self._reply(202, None, self._operation_headers(sub, key))
            return self._reply(405, _error("MethodNotAllowed", "%s is not served" % self.command))

        do_GET = do_PUT = do_DELETE = do_PATCH = do_POST = do_HEAD = _handle  # noqa: N815

    return Handler
