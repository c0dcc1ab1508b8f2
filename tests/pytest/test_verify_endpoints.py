# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""verify.yml's endpoint checks (playbooks/tasks/verify_endpoints.yml) against a local Hub API and model server.

The stand-in answers what the tasks ask of a JupyterHub REST API (create a user, spawn the user's default server
with ``user_options``, read the user's servers, stop the server) and of a KServe v1 predictor
(``POST /v1/models/<name>:predict``). A server becomes ready after a few reads, counted, not timed; one profile can
be made to never start. The tasks run in a small play with the variables verify.yml gives them.

What this does not exercise: a real Hub (its authenticator, KubeSpawner, the profile list it renders), real
scheduling on GPU nodes, and a real model server behind an ingress.
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import subprocess
import sys
import threading

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TASKS = os.path.join(ROOT, "playbooks", "tasks", "verify_endpoints.yml")
TOKEN = "canary-hub-token-" + secrets.token_hex(8)


class HubStandin(object):
    """JupyterHub REST API and a model predictor on loopback, recording every request."""

    def __init__(self, never_ready=(), reads_until_ready=2):
        self.never_ready = set(never_ready)
        self.reads_until_ready = reads_until_ready
        self.users = {}
        self.requests = []
        self.lock = threading.Lock()
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return json.loads(raw) if raw else None

            def _answer(self, status, body=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method):
                body = self._body()
                auth = self.headers.get("Authorization", "")
                with standin.lock:
                    standin.requests.append({"method": method, "path": self.path, "body": body, "auth": auth})
                    status, answer = standin.route(method, self.path, body, auth)
                self._answer(status, answer)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def route(self, method, path, body, auth):
        parts = path.split("?")[0].strip("/").split("/")
        if parts[:2] == ["v1", "models"] and method == "POST" and parts[-1].endswith(":predict"):
            if not (isinstance(body, dict) and isinstance(body.get("instances"), list)):
                return 400, {"error": "instances expected"}
            return 200, {"predictions": [0] * len(body["instances"])}
        if parts[:3] != ["hub", "api", "users"] or len(parts) < 4:
            return 404, {"message": "not found"}
        if auth != "token %s" % TOKEN:
            return 403, {"message": "forbidden"}
        name = parts[3]
        user = self.users.get(name)
        if len(parts) == 4 and method == "POST":
            if user is not None:
                return 409, {"message": "user %s already exists" % name}
            self.users[name] = {"server": None}
            return 201, {"name": name}
        if user is None:
            return 404, {"message": "no such user %s" % name}
        if len(parts) == 4 and method == "GET":
            server = user["server"]
            servers = {}
            if server is not None:
                server["reads"] += 1
                ready = server["profile"] not in self.never_ready and server["reads"] > self.reads_until_ready
                servers[""] = {"name": "", "ready": ready, "pending": None if ready else "spawn",
                               "user_options": {"profile": server["profile"]}}
            return 200, {"name": name, "servers": servers}
        if len(parts) == 5 and parts[4] == "server" and method == "POST":
            if user["server"] is not None:
                return 400, {"message": "%s is already running" % name}
            profile = (body or {}).get("profile")
            if not profile:
                return 400, {"message": "no profile in user_options"}
            user["server"] = {"profile": profile, "reads": 0}
            return 202, None
        if len(parts) == 5 and parts[4] == "server" and method == "DELETE":
            if user["server"] is None:
                return 400, {"message": "%s is not running" % name}
            user["server"] = None
            return 204, None
        return 404, {"message": "not found"}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def run_tasks(tmp_path, hub, profiles, isvcs):
    play = [{
        "name": "verify endpoints", "hosts": "localhost", "gather_facts": False, "connection": "local",
        "vars": {
            "mlops_site_steps": ["jupyterhub", "kserve"], "mlops_verify_checks": [],
            "mlops_verify_hub_url": hub.url + "/", "mlops_verify_hub_user": "mlops-verify",
            "mlops_verify_hub_token": TOKEN, "mlops_verify_timeout": 6, "mlops_verify_poll_delay": 1,
            "mlops_verify_model_request": {"instances": [[1.0, 2.0, 3.0, 4.0]]},
            "jupyterhub_profiles": profiles, "__mlops_verify_isvcs": {"resources": isvcs},
        },
        "tasks": [
            {"name": "the endpoint checks", "ansible.builtin.include_tasks": TASKS},
            {"name": "write the checks", "ansible.builtin.copy": {
                "content": "{{ mlops_verify_checks | to_json }}", "dest": str(tmp_path / "checks.json"), "mode": "0600"}},
        ],
    }]
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(play))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-vvv", str(playbook)], capture_output=True, text=True, check=False, timeout=600,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert TOKEN not in proc.stdout + proc.stderr, "the Hub token shows in the -vvv output"
    return json.loads((tmp_path / "checks.json").read_text())


PROFILES = [
    {"name": "CPU only", "cpu": 2, "memory": "4Gi"},
    {"name": "GPU small", "gpus": 1},
    {"name": "A100 x2", "gpus": 2},
]


def test_a_server_per_gpu_profile_and_a_call_per_model(tmp_path):
    with HubStandin() as hub:
        isvcs = [{"metadata": {"name": "iris", "namespace": "models"}, "status": {"url": hub.url}},
                 {"metadata": {"name": "pending", "namespace": "models"}, "status": {}}]
        checks = run_tasks(tmp_path, hub, PROFILES, isvcs)
        requests = list(hub.requests)
    spawns = [(r["path"], r["body"]) for r in requests if r["method"] == "POST" and r["path"].endswith("/server")]
    # One test user per GPU profile, each spawning its default server with the profile's slug.
    assert spawns == [("/hub/api/users/mlops-verify-gpu-small/server", {"profile": "gpu-small"}),
                      ("/hub/api/users/mlops-verify-a100-x2/server", {"profile": "a100-x2"})]
    assert not [r for r in requests if "/hub/" in r["path"] and r["auth"] != "token %s" % TOKEN]
    stops = [r["path"] for r in requests if r["method"] == "DELETE"]
    assert stops == ["/hub/api/users/mlops-verify-gpu-small/server", "/hub/api/users/mlops-verify-a100-x2/server"]
    calls = [r for r in requests if r["path"].startswith("/v1/models/")]
    assert [(r["path"], r["body"]) for r in calls] == [("/v1/models/iris:predict", {"instances": [[1.0, 2.0, 3.0, 4.0]]})]
    by_name = {c["name"]: c for c in checks}
    assert by_name["test server for GPU profile gpu-small"]["status"] == "passed"
    assert by_name["test server for GPU profile a100-x2"]["status"] == "passed"
    assert by_name["call models/iris"]["status"] == "passed", by_name
    assert len(checks) == 3, checks


def test_a_server_that_never_starts_is_a_failed_check_and_is_stopped(tmp_path):
    with HubStandin(never_ready={"a100-x2"}) as hub:
        checks = run_tasks(tmp_path, hub, PROFILES, [])
        requests = list(hub.requests)
    by_name = {c["name"]: c for c in checks}
    assert by_name["test server for GPU profile gpu-small"]["status"] == "passed"
    failed = by_name["test server for GPU profile a100-x2"]
    assert failed["status"] == "failed" and "not ready after 6 s" in failed["message"], failed
    assert "/hub/api/users/mlops-verify-a100-x2/server" in [r["path"] for r in requests if r["method"] == "DELETE"]
    # The wait polled a bounded number of times (timeout / delay), not forever.
    polls = [r for r in requests if r["method"] == "GET" and r["path"] == "/hub/api/users/mlops-verify-a100-x2"]
    assert 1 <= len(polls) <= 7, len(polls)


def test_a_rerun_after_an_interrupted_verify_reuses_the_users_and_servers(tmp_path):
    with HubStandin() as hub:
        hub.users["mlops-verify-gpu-small"] = {"server": {"profile": "gpu-small", "reads": 5}}
        checks = run_tasks(tmp_path, hub, PROFILES[:2], [])
    assert [c["status"] for c in checks] == ["passed"], checks


@pytest.mark.parametrize("profiles", [[], [{"name": "CPU only"}]])
def test_no_gpu_profile_spawns_nothing(tmp_path, profiles):
    with HubStandin() as hub:
        checks = run_tasks(tmp_path, hub, profiles, [])
        assert not [r for r in hub.requests if r["method"] != "GET"]
    assert checks == []
