# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real, authenticated MLflow server for tests, started exactly as the mlflow role renders it.

The server is the MLflow release the role deploys, from PyPI, in its own virtualenv
(``$MLOPS_TESTBED_CACHE/mlflow-venv-<version>``, made by ``scripts/bootstrap.d/mlflow-contract.sh``).
Its backend store is a PostgreSQL cluster started here from Debian's ``postgresql`` binaries, its
artifact store moto's S3 server; everything listens on 127.0.0.1 only and is stopped at the end.

The command line, the environment and the basic-auth file come from the role's render step
(``mlflow_server_command``, ``mlflow_server_env``, ``mlflow_auth_config``) for an external
PostgreSQL and an S3 store. Only what must differ outside a pod is changed: ``--host``/``--port``
(loopback and a free port instead of 0.0.0.0:5000) and ``MLFLOW_AUTH_CONFIG_PATH`` (a temporary file
instead of the Secret's mount). ``$(VAR)`` references are expanded from the environment as the
kubelet expands them. Before the server starts, the role's migration scripts
(``mlflow_upgrade_scripts``) create both schemas, as the role's Jobs do before a first install.

Use it from any test module::

    from mlflow_server import mlflow_server  # noqa: F401  (the fixture)

    def test_something(mlflow_server):
        result = mlflow_server.run_client(SCRIPT, "arg")   # SCRIPT runs in MLflow's virtualenv
"""

from __future__ import annotations

import base64
import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from ansible_collections.mlops.platform.plugins.module_utils.mlflow_chart import expand_env_refs
from upstream import render_role_values


MLFLOW_VERSION = "3.15.1"
CACHE = os.environ.get("MLOPS_TESTBED_CACHE", os.path.expanduser("~/.cache/mlops-testbed"))
MLFLOW_VENV = os.path.join(CACHE, "mlflow-venv-%s" % MLFLOW_VERSION)
START_TIMEOUT = 600.0
STEP_TIMEOUT = 120.0
ADMIN = "admin"
BUCKET = "mlflow"
DB_USER = "mlflow"


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _require(path, what):
    if not os.path.exists(path):
        pytest.fail("%s missing: %s does not exist; run scripts/bootstrap.d/mlflow-contract.sh (make bootstrap)" % (what, path))
    return path


def _pg_bin(name):
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/%s" % name))
    if not found:
        pytest.fail("PostgreSQL server binary %s not found under /usr/lib/postgresql/*/bin; "
                    "run scripts/bootstrap.d/mlflow-contract.sh" % name)
    return found[-1]


def _wait(predicate, timeout, what, interval=0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


def _stop(proc, timeout=30.0):
    """Stop a process started with start_new_session=True, its whole group, within ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


class PostgresCluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (password auth over TCP), run as ``postgres`` under root."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "pg")
        self.data = os.path.join(self.dir, "data")
        self.port = _free_port()
        self.password = secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")
        self.as_user = []
        self.log = os.path.join(self.dir, "server.log")

    def _run(self, *argv, **kwargs):
        return subprocess.run(self.as_user + list(argv), check=True, capture_output=True, text=True, timeout=STEP_TIMEOUT, **kwargs)

    def psql(self, sql, database="postgres"):
        # The statement goes on stdin, never on the command line (it may carry a password).
        return self._run(_pg_bin("psql"), "-h", self.dir, "-p", str(self.port), "-U", "postgres", "-d", database,
                         "-v", "ON_ERROR_STOP=1", "-At", input=sql + "\n").stdout

    def start(self):
        os.makedirs(self.dir)
        if os.geteuid() == 0:  # postgres refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run(_pg_bin("initdb"), "-D", self.data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
                  "--encoding=UTF8", "--no-sync")
        self._run(_pg_bin("pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", str(int(STEP_TIMEOUT)),
                  "-o", "-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off" % (self.port, self.dir), "start")
        self.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (DB_USER, self.password))
        return self

    def stop(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            subprocess.run(self.as_user + [_pg_bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop"],
                           check=False, capture_output=True, timeout=90)


class MotoS3:
    """moto's S3 server on 127.0.0.1."""

    def __init__(self, workdir):
        self.port = _free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.log = os.path.join(workdir, "moto.log")
        self.proc = None

    def start(self):
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
                [_require(os.path.join(MLFLOW_VENV, "bin", "moto_server"), "moto"), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _wait(lambda: self.proc.poll() is not None or _http_status(self.endpoint + "/moto-api/") == 200, 60, "moto's S3 server")
        if self.proc.poll() is not None:
            raise AssertionError("moto's S3 server exited with %s; see %s" % (self.proc.poll(), self.log))
        return self

    def stop(self):
        _stop(self.proc)


def _http_status(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # nosec - loopback test server
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


class MlflowServer:
    """The running server and everything a client needs to talk to it."""

    def __init__(self, workdir, postgres, s3, rendered):
        self.workdir = workdir
        self.postgres = postgres
        self.s3 = s3
        self.rendered = rendered
        self.port = _free_port()
        self.uri = "http://127.0.0.1:%d" % self.port
        self.username = ADMIN
        self.password = rendered["admin_password"]
        self.bucket = BUCKET
        self.python = os.path.join(MLFLOW_VENV, "bin", "python")
        self.log = os.path.join(workdir, "mlflow-server.log")
        self.proc = None
        self.env = None
        self.argv = None

    def base_env(self):
        """The role's server environment, with the auth file where this process can read it."""
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        env["PATH"] = os.path.join(MLFLOW_VENV, "bin") + os.pathsep + env.get("PATH", "/usr/bin:/bin")
        env.update({k: str(v) for k, v in self.rendered["env"].items()})
        ini = os.path.join(self.workdir, "basic_auth.ini")
        with open(ini, "w", encoding="utf-8") as handle:
            handle.write(self.rendered["auth_config"])
        os.chmod(ini, 0o600)
        env["MLFLOW_AUTH_CONFIG_PATH"] = ini
        return env

    def run_script(self, script, timeout=STEP_TIMEOUT):
        """Run one of the role's Job scripts with ``sh`` and the server environment, as the Job does."""
        return subprocess.run(["sh", "-c", script], env=self.env, capture_output=True, text=True, timeout=timeout, check=False)

    def start(self):
        self.env = self.base_env()
        for name in ("tracking", "auth"):
            done = self.run_script(self.rendered["upgrade_scripts"][name])
            if done.returncode != 0:
                raise AssertionError("the role's %s migration script failed (rc %s):\n%s\n%s" % (
                    name, done.returncode, done.stdout[-3000:], done.stderr[-3000:]))
        argv = [expand_env_refs(arg, self.env) for arg in self.rendered["command"]]
        argv = ["--host=127.0.0.1" if a.startswith("--host=") else "--port=%d" % self.port if a.startswith("--port=") else a for a in argv]
        argv[0] = os.path.join(MLFLOW_VENV, "bin", argv[0])
        self.argv = argv
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, env=self.env, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                         start_new_session=True)
        try:
            _wait(lambda: self._exited() or _http_status(self.uri + "/health") == 200, START_TIMEOUT, "the MLflow server")
            if self.proc.poll() is not None:
                raise TimeoutError("the MLflow server exited")
        except TimeoutError as exc:
            raise AssertionError("%s; exit code %s; server log:\n%s" % (exc, self.proc.poll(), self.log_tail())) from exc
        return self

    def _exited(self):
        return self.proc.poll() is not None

    def log_tail(self, size=6000):
        with open(self.log, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-size:]

    def client_env(self, authenticated=True):
        env = {k: v for k, v in self.env.items() if not k.startswith(("PG", "MLFLOW_AUTH", "MLFLOW_FLASK"))}
        env["MLFLOW_TRACKING_URI"] = self.uri
        if authenticated:
            env["MLFLOW_TRACKING_USERNAME"] = self.username
            env["MLFLOW_TRACKING_PASSWORD"] = self.password
        return env

    def rest(self, path, **params):
        """GET a REST API 2.0 endpoint as the admin; return (status, body)."""
        url = "%s/api/2.0/mlflow/%s?%s" % (self.uri, path, urllib.parse.urlencode(params))
        token = base64.b64encode(("%s:%s" % (self.username, self.password)).encode()).decode()
        request = urllib.request.Request(url, headers={"Authorization": "Basic " + token})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # nosec - loopback test server
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def run_client(self, script, *args, authenticated=True, timeout=900):
        """Run a Python ``script`` in MLflow's virtualenv against the server; return its last stdout line as JSON."""
        done = subprocess.run([self.python, "-c", script] + [str(a) for a in args], env=self.client_env(authenticated),
                              cwd=self.workdir, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError("client script failed (rc %s):\n%s\n%s\nserver log:\n%s" % (
                done.returncode, done.stdout[-3000:], done.stderr[-4000:], self.log_tail(3000)))
        return json.loads(done.stdout.strip().splitlines()[-1])

    def stop(self):
        _stop(self.proc)


def render_for(postgres, s3, admin_password):
    """The role's rendering for an external PostgreSQL and an S3 store, as one dict."""
    role_vars = {
        "mlflow_namespace": "mlflow",
        "mlflow_database_mode": "external",
        "mlflow_postgres_external": {"host": "127.0.0.1", "port": postgres.port, "user": DB_USER,
                                     "password": postgres.password, "sslmode": "disable"},
        "mlflow_artifacts_mode": "s3",
        "mlflow_artifacts_bucket": BUCKET,
        "mlflow_s3": {"endpoint_url": s3.endpoint, "region": "us-east-1",
                      "access_key_id": "contract-test-key", "secret_access_key": secrets.token_hex(16)},
        "mlflow_auth_admin_password": admin_password,
        # One worker: uvicorn then runs without its supervisor, which restarts workers that miss a
        # 5-second heartbeat, as they do on a loaded test machine (a pod has its own CPU).
        "mlflow_workers": 1,
        # What the role's credentials step reads from (or first writes to) the Secret <release>-credentials.
        "__mlflow_credentials": {"flask-secret-key": secrets.token_hex(24)},
    }
    expression = ("{'command': mlflow_server_command, 'env': mlflow_server_env, 'auth_config': mlflow_auth_config, "
                  "'upgrade_scripts': mlflow_upgrade_scripts, 'values': mlflow_release_values, "
                  "'tracking_uri': mlflow_tracking_uri}")
    rendered = render_role_values("mlflow", role_vars, fact=expression)
    rendered["admin_password"] = admin_password
    return rendered


@contextlib.contextmanager
def running_mlflow_server():
    """A running MLflow server (role-rendered command line) with PostgreSQL and S3, stopped on exit.

    Shared by the ``mlflow_server`` fixture and ``scripts/demo_registry.py`` (the demo's registry)."""
    _require(os.path.join(MLFLOW_VENV, "bin", "mlflow"), "MLflow %s virtualenv" % MLFLOW_VERSION)
    workdir = tempfile.mkdtemp(prefix="mlflow-contract-")
    os.chmod(workdir, 0o755)
    postgres = PostgresCluster(workdir)
    s3 = MotoS3(workdir)
    server = None
    try:
        postgres.start()
        for database in ("mlflow", "mlflow_auth"):
            postgres.psql("CREATE DATABASE %s OWNER %s" % (database, DB_USER))
        s3.start()
        rendered = render_for(postgres, s3, "contract-" + secrets.token_urlsafe(12))
        server = MlflowServer(workdir, postgres, s3, rendered)
        done = subprocess.run(
            [server.python, "-c", "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1]).create_bucket(Bucket=sys.argv[2])",
             s3.endpoint, BUCKET],
            env=dict(os.environ, AWS_ACCESS_KEY_ID=rendered["env"]["AWS_ACCESS_KEY_ID"],
                     AWS_SECRET_ACCESS_KEY=rendered["env"]["AWS_SECRET_ACCESS_KEY"], AWS_DEFAULT_REGION="us-east-1"),
            capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False)
        if done.returncode != 0:
            raise RuntimeError("creating the bucket failed: %s" % done.stderr[-2000:])
        server.start()
        yield server
    finally:
        if server is not None:
            server.stop()
        s3.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_server():
    """A running MLflow server (role-rendered command line) with PostgreSQL and S3; stopped afterwards."""
    with running_mlflow_server() as server:
        yield server
