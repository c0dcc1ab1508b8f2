#!/usr/bin/env python
# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local Kubernetes testbed: a real control plane on 127.0.0.1 with simulated GPU nodes.

    testbed.py up [--pools FILE] [--no-agent]   start (idempotent); prints the kubeconfig path last
    testbed.py status                           report; prints the kubeconfig path last; rc 1 if down
    testbed.py down [--keep-data]               stop everything this tool started, by PID

Components: etcd, kube-apiserver, kube-controller-manager and kube-scheduler (v1.20.2, built by
build-binaries.sh and cached outside the repository), plus the node agent (node_agent.py), which
registers simulated nodes and plays kubelet and GPU operator.

Environment:
    MLOPS_TESTBED_CACHE   binaries live in $MLOPS_TESTBED_CACHE/bin (default ~/.cache/mlops-testbed)
    MLOPS_TESTBED_STATE   certificates, kubeconfigs, data, logs, PIDs (default $MLOPS_TESTBED_CACHE/state)
    MLOPS_TESTBED_PORT    kube-apiserver port (default 16443); the other components use the next five
    MLOPS_TESTBED_POOLS   node agent pool configuration (default tests/testbed/pools/default.yaml)
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("MLOPS_TESTBED_CACHE", os.path.expanduser("~/.cache/mlops-testbed"))
BIN = os.path.join(CACHE, "bin")
STATE = os.environ.get("MLOPS_TESTBED_STATE", os.path.join(CACHE, "state"))
PORT = int(os.environ.get("MLOPS_TESTBED_PORT", "16443"))
DEFAULT_POOLS = os.environ.get("MLOPS_TESTBED_POOLS", os.path.join(HERE, "pools", "default.yaml"))

PORTS = {
    "apiserver": PORT,
    "etcd-client": PORT + 1,
    "etcd-peer": PORT + 2,
    "controller-manager": PORT + 3,
    "scheduler": PORT + 4,
    "kubelet": PORT + 5,
}
# Start order; `down` stops them in reverse.
COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "node-agent"]
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"


def log(msg):
    sys.stderr.write("[testbed] %s\n" % msg)
    sys.stderr.flush()


def path(*parts):
    return os.path.join(STATE, *parts)


# --------------------------------------------------------------------------------------------
# PKI: one CA, a serving certificate for kube-apiserver and a client certificate per identity.
# --------------------------------------------------------------------------------------------

IDENTITIES = {
    # file stem: (common name, organisations)
    "admin": ("testbed-admin", ["system:masters"]),
    "controller-manager": ("system:kube-controller-manager", []),
    "scheduler": ("system:kube-scheduler", []),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ["system:masters"]),
    # The agent plays every kubelet and the GPU operator, so it needs wide rights.
    "node-agent": ("testbed-node-agent", ["system:masters"]),
}


def _write_private(file_path, data):
    fd = os.open(file_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def ensure_pki():
    """Create the CA and certificates once; later starts reuse them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    pki = path("pki")
    if os.path.exists(os.path.join(pki, "complete")):
        if _pki_current(pki):
            return
        # Made by an earlier version without key identifiers, which Python 3.13's default TLS
        # verification (VERIFY_X509_STRICT) refuses: stop what runs on it and issue a new one.
        log("the PKI in %s lacks key identifiers (refused by strict X.509 verification): re-issuing it" % pki)
        for name in reversed(COMPONENTS):
            stop_process(name)
        shutil.rmtree(pki)
    os.makedirs(pki, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    pem = serialization.Encoding.PEM
    private_format = serialization.PrivateFormat.TraditionalOpenSSL

    def new_key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def save_key(stem, key):
        _write_private(os.path.join(pki, stem + ".key"), key.private_bytes(pem, private_format, serialization.NoEncryption()))

    ca_key = new_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlops-platform-testbed-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    save_key("ca", ca_key)
    with open(os.path.join(pki, "ca.crt"), "wb") as handle:
        handle.write(ca_cert.public_bytes(pem))

    def issue(stem, common_name, orgs, server=False):
        key = new_key()
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attrs)).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if server:
            names = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                     "kubernetes.default.svc.cluster.local"]
            sans = [x509.DNSName(n) for n in names]
            sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", SERVICE_IP)]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            builder = builder.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            builder = builder.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        save_key(stem, key)
        with open(os.path.join(pki, stem + ".crt"), "wb") as handle:
            handle.write(cert.public_bytes(pem))

    issue("apiserver", "kube-apiserver", [], server=True)
    for stem, (common_name, orgs) in IDENTITIES.items():
        issue(stem, common_name, orgs)

    sa_key = new_key()
    save_key("sa", sa_key)
    with open(os.path.join(pki, "sa.pub"), "wb") as handle:
        handle.write(sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo))
    with open(os.path.join(pki, "complete"), "w") as handle:
        handle.write("ok\n")


def _pki_current(pki):
    """True when the CA certificate carries the key identifiers strict X.509 verification requires."""
    from cryptography import x509

    try:
        with open(os.path.join(pki, "ca.crt"), "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
        cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    return True


def kubeconfig_path(stem="admin"):
    return path("kubeconfig") if stem == "admin" else path("kubeconfig-%s" % stem)


def write_kubeconfigs():
    """One kubeconfig per identity; the admin one is the testbed's public kubeconfig."""
    pki = path("pki")
    server = "https://127.0.0.1:%d" % PORTS["apiserver"]
    for stem in IDENTITIES:
        if stem == "apiserver-kubelet-client":
            continue
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "mlops-testbed", "cluster": {
                "server": server, "certificate-authority": os.path.join(pki, "ca.crt")}}],
            "users": [{"name": stem, "user": {
                "client-certificate": os.path.join(pki, stem + ".crt"),
                "client-key": os.path.join(pki, stem + ".key")}}],
            "contexts": [{"name": "mlops-testbed", "context": {"cluster": "mlops-testbed", "user": stem}}],
            "current-context": "mlops-testbed",
        }
        # JSON is valid YAML, and needs no YAML library here.
        _write_private(kubeconfig_path(stem), json.dumps(config, indent=2).encode())


# --------------------------------------------------------------------------------------------
# Processes, tracked by PID plus the kernel's start time so a recycled PID is never signalled.
# --------------------------------------------------------------------------------------------

def _proc_start_time(pid):
    """The kernel's start time of a live process; None if it is gone or a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def read_pid(name):
    try:
        with open(path("pids", name + ".pid")) as handle:
            pid_text, started = handle.read().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    return pid if _proc_start_time(pid) == started else None


def start_process(name, argv, env=None):
    os.makedirs(path("pids"), exist_ok=True)
    os.makedirs(path("logs"), exist_ok=True)
    with open(path("logs", name + ".log"), "ab") as logfile:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logfile, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env, cwd=STATE)
    with open(path("pids", name + ".pid"), "w") as handle:
        handle.write("%d %s\n" % (proc.pid, _proc_start_time(proc.pid)))
    return proc.pid


def stop_process(name, timeout=15.0):
    pid = read_pid(name)
    pid_file = path("pids", name + ".pid")
    if pid is None:
        if os.path.exists(pid_file):
            os.unlink(pid_file)
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and read_pid(name) is not None:
        _reap(pid)
        time.sleep(0.1)
    if read_pid(name) is not None:
        log("%s (pid %d) ignored SIGTERM; killing" % (name, pid))
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        time.sleep(0.2)
        _reap(pid)
    os.unlink(pid_file)
    return True


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def log_tail(name, lines=25):
    try:
        with open(path("logs", name + ".log"), errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------------------------
# The API server, over HTTPS with the admin client certificate.
# --------------------------------------------------------------------------------------------

def _ssl_context():
    pki = path("pki")
    context = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    context.load_cert_chain(os.path.join(pki, "admin.crt"), os.path.join(pki, "admin.key"))
    return context


def api_get(api_path, timeout=5.0):
    url = "https://127.0.0.1:%d%s" % (PORTS["apiserver"], api_path)
    with urllib.request.urlopen(url, context=_ssl_context(), timeout=timeout) as response:
        return response.status, response.read()


def api_ready():
    try:
        status, _body = api_get("/readyz", timeout=2.0)
        return status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def wait_for(predicate, timeout, what, component):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if component and read_pid(component) is None:
            raise SystemExit("%s exited while waiting for %s:\n%s" % (component, what, log_tail(component)))
        time.sleep(0.1)
    raise SystemExit("timed out after %ss waiting for %s:\n%s" % (timeout, what, log_tail(component) if component else ""))


def etcd_ready():
    try:
        url = "http://127.0.0.1:%d/health" % PORTS["etcd-client"]
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return json.loads(response.read()).get("health") == "true"
    except (urllib.error.URLError, OSError, ValueError):
        return False


def default_service_account_exists():
    try:
        status, _body = api_get("/api/v1/namespaces/default/serviceaccounts/default")
        return status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


# --------------------------------------------------------------------------------------------
# Component command lines
# --------------------------------------------------------------------------------------------

def binary(name):
    found = os.path.join(BIN, name)
    if not os.access(found, os.X_OK):
        raise SystemExit("%s not found in %s: run tests/testbed/build-binaries.sh (make testbed-binaries)" % (name, BIN))
    return found


def etcd_argv():
    client = "http://127.0.0.1:%d" % PORTS["etcd-client"]
    peer = "http://127.0.0.1:%d" % PORTS["etcd-peer"]
    return [
        binary("etcd"), "--name=testbed", "--data-dir=%s" % path("etcd"),
        "--listen-client-urls=%s" % client, "--advertise-client-urls=%s" % client,
        "--listen-peer-urls=%s" % peer, "--initial-advertise-peer-urls=%s" % peer,
        "--initial-cluster=testbed=%s" % peer, "--initial-cluster-state=new",
        "--listen-metrics-urls=", "--log-level=warn", "--logger=zap",
        "--quota-backend-bytes=4294967296", "--snapshot-count=50000",
    ]


def apiserver_argv():
    pki = path("pki")
    return [
        binary("kube-apiserver"),
        "--etcd-servers=http://127.0.0.1:%d" % PORTS["etcd-client"],
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
        "--secure-port=%d" % PORTS["apiserver"], "--insecure-port=0",
        "--tls-cert-file=%s/apiserver.crt" % pki, "--tls-private-key-file=%s/apiserver.key" % pki,
        "--client-ca-file=%s/ca.crt" % pki,
        "--kubelet-client-certificate=%s/apiserver-kubelet-client.crt" % pki,
        "--kubelet-client-key=%s/apiserver-kubelet-client.key" % pki,
        "--kubelet-preferred-address-types=InternalIP",
        "--authorization-mode=Node,RBAC",
        "--service-account-key-file=%s/sa.pub" % pki,
        "--service-account-signing-key-file=%s/sa.key" % pki,
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-cluster-ip-range=%s" % SERVICE_CIDR,
        "--allow-privileged=true",
        "--max-requests-inflight=1000", "--max-mutating-requests-inflight=500",
        "--event-ttl=15m", "--profiling=false", "--v=1",
    ]


def _component_argv(name, identity, port_name):
    """What kube-controller-manager and kube-scheduler share: identity, loopback serving, no leader election."""
    kubeconfig = kubeconfig_path(identity)
    return [
        binary(name),
        "--kubeconfig=%s" % kubeconfig,
        "--authentication-kubeconfig=%s" % kubeconfig, "--authorization-kubeconfig=%s" % kubeconfig,
        "--bind-address=127.0.0.1", "--secure-port=%d" % PORTS[port_name], "--port=0",
        "--leader-elect=false", "--kube-api-qps=200", "--kube-api-burst=400", "--profiling=false", "--v=1",
    ]


def controller_manager_argv():
    pki = path("pki")
    return _component_argv("kube-controller-manager", "controller-manager", "controller-manager") + [
        "--controllers=*,-nodeipam,-nodelifecycle",
        "--service-account-private-key-file=%s/sa.key" % pki, "--root-ca-file=%s/ca.crt" % pki,
        "--use-service-account-credentials=true",
        "--cluster-signing-cert-file=%s/ca.crt" % pki, "--cluster-signing-key-file=%s/ca.key" % pki,
        "--cluster-name=mlops-testbed",
    ]


def scheduler_argv():
    return _component_argv("kube-scheduler", "scheduler", "scheduler")


def agent_argv(pools):
    return [
        sys.executable, os.path.join(HERE, "node_agent.py"),
        "--kubeconfig=%s" % kubeconfig_path("node-agent"),
        "--config=%s" % pools,
        "--kubelet-port=%d" % PORTS["kubelet"],
        "--cert-dir=%s" % path("agent-pki"),
        "--volume-dir=%s" % path("volumes"),
        "--ready-file=%s" % path("agent.ready"),
    ]


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------

def ensure_binaries():
    if not os.path.exists(os.path.join(BIN, "SHA256SUMS")) or not os.access(os.path.join(BIN, "kube-apiserver"), os.X_OK):
        log("control-plane binaries missing: building them (first use only)")
        subprocess.run(["bash", os.path.join(HERE, "build-binaries.sh")], check=True)
    else:
        subprocess.run(["bash", os.path.join(HERE, "build-binaries.sh")], check=True, stderr=subprocess.DEVNULL)


def _missing_module(name):
    import importlib.util

    return importlib.util.find_spec(name) is None


def agent_pools_file():
    try:
        with open(path("agent.pools")) as handle:
            return handle.read().strip()
    except OSError:
        return None


def start_agent(pools, timeout):
    if not os.path.exists(os.path.join(HERE, "node_agent.py")):
        log("node agent not present; nodes will not be simulated")
        return
    missing = [name for name in ("kubernetes", "yaml", "cryptography") if _missing_module(name)]
    if missing:
        raise SystemExit("the node agent needs the Python packages %s in %s: run it with the project's virtualenv "
                         "(.venv/bin/python, set up by `make bootstrap`)" % (", ".join(missing), sys.executable))
    ready_file = path("agent.ready")
    if os.path.exists(ready_file):
        os.unlink(ready_file)
    ensure_ports_free("node-agent")
    start_process("node-agent", agent_argv(pools))
    with open(path("agent.pools"), "w") as handle:
        handle.write(pools + "\n")
    wait_for(lambda: os.path.exists(ready_file), timeout, "the node agent to register its nodes", "node-agent")


# The ports each component binds, checked before it starts so that a clash with another
# testbed (or anything else) fails clearly instead of being mistaken for our own component.
COMPONENT_PORTS = {
    "etcd": ("etcd-client", "etcd-peer"),
    "kube-apiserver": ("apiserver",),
    "kube-controller-manager": ("controller-manager",),
    "kube-scheduler": ("scheduler",),
    "node-agent": ("kubelet",),
}


def ensure_ports_free(component):
    for port_name in COMPONENT_PORTS[component]:
        port = PORTS[port_name]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # As the components themselves do: connections of a previous run lingering in TIME_WAIT must
        # not count as "in use"; a live listener still does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit("cannot start %s: 127.0.0.1:%d is already in use by another process "
                             "(set MLOPS_TESTBED_PORT to move the testbed's ports)" % (component, port))
        finally:
            sock.close()


def cmd_up(args):
    started = time.monotonic()
    pools = os.path.abspath(args.pools or DEFAULT_POOLS)
    ensure_binaries()
    os.makedirs(STATE, exist_ok=True)
    ensure_pki()
    write_kubeconfigs()
    fresh = []

    if read_pid("etcd") is None:
        ensure_ports_free("etcd")
        start_process("etcd", etcd_argv())
        fresh.append("etcd")
    wait_for(etcd_ready, 60, "etcd health", "etcd")

    if read_pid("kube-apiserver") is None:
        ensure_ports_free("kube-apiserver")
        start_process("kube-apiserver", apiserver_argv())
        fresh.append("kube-apiserver")
    wait_for(api_ready, 120, "kube-apiserver /readyz", "kube-apiserver")

    for name, argv in (("kube-controller-manager", controller_manager_argv()), ("kube-scheduler", scheduler_argv())):
        if read_pid(name) is None:
            ensure_ports_free(name)
            start_process(name, argv)
            fresh.append(name)
    wait_for(default_service_account_exists, 60, "the default service account", "kube-controller-manager")

    if args.no_agent:
        if stop_process("node-agent"):
            log("stopped the node agent (--no-agent)")
    elif read_pid("node-agent") is None or agent_pools_file() != pools:
        if stop_process("node-agent"):
            log("restarting the node agent with %s" % pools)
        start_agent(pools, args.agent_timeout)
        fresh.append("node-agent")

    elapsed = time.monotonic() - started
    if fresh:
        log("started %s in %.1fs" % (", ".join(fresh), elapsed))
    else:
        log("already running (checked in %.1fs)" % elapsed)
    print(kubeconfig_path())
    return 0


def cmd_status(_args):
    running = True
    for name in COMPONENTS:
        pid = read_pid(name)
        if pid is None and name == "node-agent" and not os.path.exists(path("pids", "node-agent.pid")):
            print("%-24s not started" % name)
            continue
        print("%-24s %s" % (name, "running (pid %d)" % pid if pid else "DOWN"))
        running = running and pid is not None
    if os.path.exists(path("pki", "complete")) and api_ready():
        try:
            _status, body = api_get("/api/v1/nodes?limit=500")
            items = json.loads(body).get("items", [])
            gpu = sum(1 for n in items if int(n.get("status", {}).get("allocatable", {}).get("nvidia.com/gpu", "0")) > 0)
            more = " (first page)" if json.loads(body).get("metadata", {}).get("continue") else ""
            print("%-24s %d%s, %d with allocatable nvidia.com/gpu" % ("nodes", len(items), more, gpu))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            print("%-24s unknown (%s)" % ("nodes", exc))
        print("%-24s %s" % ("pools", agent_pools_file() or "-"))
    else:
        running = False
        print("%-24s not answering" % "kube-apiserver /readyz")
    print(kubeconfig_path())
    return 0 if running else 1


def cmd_down(args):
    stopped = [name for name in reversed(COMPONENTS) if stop_process(name)]
    if not args.keep_data:
        for stale in ("etcd", "agent.ready", "agent.pools"):
            target = path(stale)
            if os.path.isdir(target):
                shutil.rmtree(target)
            elif os.path.exists(target):
                os.unlink(target)
    log("stopped %s" % (", ".join(stopped) if stopped else "nothing (was not running)"))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the testbed (idempotent)")
    up.add_argument("--pools", help="node agent pool configuration (YAML)")
    up.add_argument("--no-agent", action="store_true", help="run the control plane only")
    up.add_argument("--agent-timeout", type=float, default=float(os.environ.get("MLOPS_TESTBED_AGENT_TIMEOUT", "600")),
                    help="seconds to wait for the node agent's nodes to be Ready")
    sub.add_parser("status", help="show what runs; last line is the kubeconfig path")
    down = sub.add_parser("down", help="stop everything started by `up`")
    down.add_argument("--keep-data", action="store_true", help="keep etcd's data for the next start")
    args = parser.parse_args(argv)
    return {"up": cmd_up, "status": cmd_status, "down": cmd_down}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
