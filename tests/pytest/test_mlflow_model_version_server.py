# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mlops.platform.mlflow_model_version module against a real MLflow server (mlflow_server.py: the release the
platform deploys, basic auth on, PostgreSQL and S3 behind it).

Each case runs the module through ansible-playbook and checks the registry afterwards over MLflow's REST API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import yaml

from mlflow_server import BUCKET, mlflow_server  # noqa: F401  pylint: disable=unused-import
from upstream import ROOT


def run_module(server, tmp_path, args, check=False, password=None):
    """Run the module once; return (rc, result dict or None, output)."""
    out = tmp_path / ("result-%s.json" % uuid.uuid4().hex[:6])
    module_args = dict(tracking_uri=server.uri, username=server.username, password=password or server.password, **args)
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Register", "hosts": "localhost", "gather_facts": False, "connection": "local",
        "tasks": [
            {"name": "Register the version", "mlops.platform.mlflow_model_version": module_args, "register": "registered"},
            {"name": "Keep the result", "ansible.builtin.copy": {"content": "{{ registered | to_json }}", "dest": str(out), "mode": "0600"},
             "check_mode": False},
        ]}]))
    venv_bin = os.path.dirname(sys.executable)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", PATH=os.pathsep.join([venv_bin, os.environ.get("PATH", "")]))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        env.pop(name, None)
    argv = [os.path.join(venv_bin, "ansible-playbook"), "-i", "localhost,", str(playbook)] + (["--check"] if check else [])
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=600)
    result = json.loads(out.read_text()) if out.exists() else None
    return proc.returncode, result, proc.stdout + proc.stderr


def versions(server, name):
    status, body = server.rest("model-versions/search", filter="name='%s'" % name)
    assert status == 200, body
    return body.get("model_versions") or []


def test_registers_once_then_reports_the_same_version_unchanged(mlflow_server, tmp_path):
    server = mlflow_server
    name = "mv-%s" % uuid.uuid4().hex[:8]
    source = "s3://%s/models/%s/run-1" % (BUCKET, name)
    args = {"name": name, "source": source, "alias": "champion", "tags": {"trained_by": "ansible"}}

    rc, planned, output = run_module(server, tmp_path, args, check=True)
    assert rc == 0, output[-3000:]
    assert planned["changed"] and planned["version"] is None
    assert server.rest("registered-models/get", name=name)[0] == 404, "check mode created the registered model"

    rc, first, output = run_module(server, tmp_path, args)
    assert rc == 0, output[-3000:]
    assert first["changed"] and first["version"] == "1" and first["model_uri"] == "models:/%s/1" % name
    assert first["status"] == "READY" and first["alias"] == "champion"
    found = versions(server, name)
    assert [(v["version"], v["source"]) for v in found] == [("1", source)]
    assert {t["key"]: t["value"] for t in found[0].get("tags") or []} == {"trained_by": "ansible"}
    status, alias = server.rest("registered-models/alias", name=name, alias="champion")
    assert status == 200 and alias["model_version"]["version"] == "1"
    status, download = server.rest("model-versions/get-download-uri", name=name, version="1")
    assert status == 200 and download["artifact_uri"] == source

    rc, again, output = run_module(server, tmp_path, dict(args, source=source + "/"))
    assert rc == 0, output[-3000:]
    assert not again["changed"] and again["version"] == "1" and again["actions"] == []
    assert len(versions(server, name)) == 1


def test_a_new_source_is_a_new_version_and_the_alias_moves(mlflow_server, tmp_path):
    server = mlflow_server
    name = "mv-%s" % uuid.uuid4().hex[:8]
    base = {"name": name, "alias": "champion"}
    assert run_module(server, tmp_path, dict(base, source="s3://%s/m/%s/a" % (BUCKET, name)))[0] == 0

    rc, planned, output = run_module(server, tmp_path, dict(base, source="s3://%s/m/%s/b" % (BUCKET, name)), check=True)
    assert rc == 0 and planned["changed"] and planned["version"] is None, output[-3000:]
    assert len(versions(server, name)) == 1, "check mode created a version"

    rc, second, output = run_module(server, tmp_path, dict(base, source="s3://%s/m/%s/b" % (BUCKET, name), tags={"stage": "candidate"}))
    assert rc == 0 and second["changed"] and second["version"] == "2", output[-3000:]
    assert server.rest("registered-models/alias", name=name, alias="champion")[1]["model_version"]["version"] == "2"

    rc, retag, output = run_module(server, tmp_path, dict(base, source="s3://%s/m/%s/b" % (BUCKET, name), tags={"stage": "approved"}))
    assert rc == 0 and retag["changed"] and retag["version"] == "2", output[-3000:]
    assert retag["actions"] == ["set tag stage on version 2"]
    tags = {t["key"]: t["value"] for t in versions(server, name)[0].get("tags") or []}
    assert [v["version"] for v in versions(server, name) if {t["key"]: t["value"] for t in v.get("tags") or []}.get("stage") == "approved"] == ["2"], tags


def test_wrong_password_is_refused_with_a_clear_message_and_no_secret(mlflow_server, tmp_path):
    server = mlflow_server
    name = "mv-%s" % uuid.uuid4().hex[:8]
    rc, _result, output = run_module(server, tmp_path, {"name": name, "source": "s3://%s/m/x" % BUCKET}, password="wrong-password-987")
    assert rc != 0
    assert "refused the request" in output and "HTTP 401" in output, output[-3000:]
    assert "wrong-password-987" not in output and server.password not in output
    assert server.rest("registered-models/get", name=name)[0] == 404
