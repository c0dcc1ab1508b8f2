# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A pinned chart version bump keeps the data, for the charts that hold data (real helm binary).

For each role whose chart owns user data (JupyterHub: the hub database and the users' home claims;
MLflow: the database and the artifact claims) the role installs the stand-in chart at an older version,
a user claim is planted where the component would make one, and the role runs again with the chart at
the version the collection pins (``plugins/module_utils/pins.py``), as a version bump in the pins does.
Afterwards the release is at revision 2 with the pinned chart, every claim keeps its UID and its bound
volume, and a further run reports ``changed=0``.

The charts are copies of the stand-ins in a temporary directory; only their ``Chart.yaml`` version
differs. The GPU operator, KServe and dcgm-exporter charts own no claims; their upgrades are covered by
the roles' own tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CACHE = os.environ.get("MLOPS_TESTBED_CACHE", os.path.expanduser("~/.cache/mlops-testbed"))
HELM = os.path.join(CACHE, "bin", "helm")
sys.path.insert(0, os.path.join(ROOT, "plugins", "module_utils"))

from pins import CHARTS  # noqa: E402  (the collection's pins, read as plain data)

CASES = {
    "jupyterhub": {
        "chart": "jupyterhub", "pin": "jupyterhub", "old": "4.3.5", "release": "jupyterhub",
        "vars": lambda ns: {"jupyterhub_namespace": ns, "mlops_allow_dummy_auth": True, "jupyterhub_auth_type": "dummy",
                            "jupyterhub_allow_all": True},
        "ref_var": "jupyterhub_chart_ref",
        # The claim KubeSpawner makes for a user's home (zero-to-jupyterhub names and labels).
        "user_claim": {"name": "claim-alice", "labels": {"app": "jupyterhub", "component": "singleuser-storage",
                                                         "hub.jupyter.org/username": "alice"}},
    },
    "mlflow": {
        "chart": "mlflow", "pin": "mlflow", "old": "1.11.4", "release": "mlflow",
        "vars": lambda ns: {"mlflow_namespace": ns, "mlflow_node_selector": {"kubernetes.io/hostname": "system-1"},
                            "mlflow_artifacts_mode": "pvc", "mlflow_artifacts_storage_size": "1Gi",
                            "mlflow_postgres_storage_size": "1Gi", "mlflow_backup_storage_size": "1Gi",
                            "mlflow_timeout": 300, "mlflow_job_timeout": 240},
        "ref_var": "mlflow_chart_ref",
        "user_claim": None,
    },
}


def chart_copy(tmp, name, version):
    """A copy of the stand-in chart ``name`` whose Chart.yaml says ``version``."""
    target = os.path.join(tmp, "%s-%s" % (name, version), name)
    shutil.copytree(os.path.join(ROOT, "tests", "testbed", "charts", name), target)
    path = os.path.join(target, "Chart.yaml")
    with open(path, encoding="utf-8") as handle:
        chart = yaml.safe_load(handle)
    chart["version"] = version
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(chart, handle)
    return target


def run_role(ansible_env, testbed, role, role_vars, tmp):
    play = [{
        "name": role, "hosts": "localhost", "gather_facts": False, "connection": "local",
        "module_defaults": {
            "group/kubernetes.core.k8s": {"kubeconfig": testbed.kubeconfig},
            "group/kubernetes.core.helm": {"kubeconfig": testbed.kubeconfig, "binary_path": HELM},
            "mlops.platform.helm_release_recover": {"kubeconfig": testbed.kubeconfig},
        },
        "roles": [{"role": "mlops.platform.%s" % role}],
    }]
    tag = uuid.uuid4().hex[:6]
    playbook = os.path.join(tmp, "play-%s.yml" % tag)
    varsfile = os.path.join(tmp, "vars-%s.json" % tag)
    with open(playbook, "w", encoding="utf-8") as handle:
        yaml.safe_dump(play, handle)
    with open(varsfile, "w", encoding="utf-8") as handle:
        json.dump(role_vars, handle)
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           playbook, "-e", "@" + varsfile], capture_output=True, text=True, env=ansible_env,
                          check=False, timeout=1800)


def helm_release(kubeconfig, name, ns):
    proc = subprocess.run([HELM, "list", "-n", ns, "-a", "-o", "json", "--kubeconfig", kubeconfig],
                          capture_output=True, text=True, check=True)
    found = [r for r in json.loads(proc.stdout) if r["name"] == name]
    assert len(found) == 1, proc.stdout
    return found[0]


def claims(core, ns):
    """``{name: (uid, bound volume)}`` of the namespace's claims."""
    return {p.metadata.name: (p.metadata.uid, p.spec.volume_name)
            for p in core.list_namespaced_persistent_volume_claim(ns).items}


def recap_changed(stdout):
    line = [x for x in stdout.splitlines() if x.startswith("localhost") and "changed=" in x]
    assert line, stdout[-3000:]
    return int(line[-1].split("changed=")[1].split()[0])


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_pinned_chart_bump_keeps_the_data(case, testbed, k8s, ansible_env, release_ns, tmp_path):
    from kubernetes import client

    core = client.CoreV1Api(k8s)
    spec = CASES[case]
    pinned = CHARTS[spec["pin"]]["version"]
    assert spec["old"] != pinned, "the older version must differ from the pin"
    old_chart = chart_copy(str(tmp_path), spec["chart"], spec["old"])
    new_chart = chart_copy(str(tmp_path), spec["chart"], pinned)
    role_vars = spec["vars"](release_ns)

    proc = run_role(ansible_env, testbed, case, dict(role_vars, **{spec["ref_var"]: old_chart}), str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    release = helm_release(testbed.kubeconfig, spec["release"], release_ns)
    assert (release["chart"], release["revision"], release["status"]) == (
        "%s-%s" % (spec["chart"], spec["old"]), "1", "deployed")

    if spec["user_claim"]:
        claim = spec["user_claim"]
        core.create_namespaced_persistent_volume_claim(release_ns, {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim["name"], "labels": claim["labels"]},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    before = claims(core, release_ns)
    assert before, "the chart's role made no claim to keep"

    proc = run_role(ansible_env, testbed, case, dict(role_vars, **{spec["ref_var"]: new_chart}), str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    release = helm_release(testbed.kubeconfig, spec["release"], release_ns)
    assert (release["chart"], release["revision"], release["status"]) == (
        "%s-%s" % (spec["chart"], pinned), "2", "deployed")
    after = claims(core, release_ns)
    print("\nRELIABILITY %s chart %s -> %s: %d of %d claims kept (same UID and volume)"
          % (case, spec["old"], pinned, len([n for n in before if after.get(n) == before[n]]), len(before)))
    assert after == before

    proc = run_role(ansible_env, testbed, case, dict(role_vars, **{spec["ref_var"]: new_chart}), str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert recap_changed(proc.stdout) == 0, proc.stdout[-4000:]
