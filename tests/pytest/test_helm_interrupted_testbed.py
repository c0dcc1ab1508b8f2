# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs killed in the middle of a Helm install or upgrade, and the next run recovering (real helm binary).

The jupyterhub role (stand-in chart) is the cheapest chart-based role with a PVC. To hold Helm's ``wait`` open, the
CPU nodes (``node-type=system``, where the hub and the proxy run) get the node agent's ``not-ready`` fault: their
pods stay unscheduled. A run is killed (SIGKILL, its whole process tree: Ansible's workers start sessions of their
own, so the playbook's process group alone would leave the worker and helm running) once the release's revision
record says ``pending-install``/``pending-upgrade``. Helm then refuses the release ("another operation ... is in
progress"); the fault is lifted and the role run again: it says what it recovered and converges.

* interrupted install: recovery removes revision 1's record, the install adopts the objects; a recent pending
  revision (``stale_after`` large) is left alone with a failure saying another run may be active, and check mode
  says what it would do and deletes nothing;
* interrupted upgrade: recovery removes revision 2's record, the upgrade proceeds from revision 1, the PVC keeps
  its UID, and a further run reports no change;
* failed first install (Helm's wait runs out): the release stays ``failed`` with its objects (no ``--atomic``
  rollback), and the next run upgrades it (revision 1 becomes superseded), keeping the objects' UIDs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid

import pytest
import yaml

from waiting import poll_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STAND_IN = os.path.join(ROOT, "tests", "testbed", "charts", "jupyterhub")
CACHE = os.environ.get("MLOPS_TESTBED_CACHE", os.path.expanduser("~/.cache/mlops-testbed"))
HELM = os.path.join(CACHE, "bin", "helm")
FAULTS = "testbed.mlops.platform/faults"
RELEASE = "jupyterhub"
PENDING_ERROR = "another operation (install/upgrade/rollback) is in progress"

ROLE_VARS = {
    "mlops_allow_dummy_auth": True, "jupyterhub_auth_type": "dummy", "jupyterhub_allow_all": True,
    "jupyterhub_chart_ref": STAND_IN, "jupyterhub_helm_timeout": "20m0s", "jupyterhub_wait_timeout": 600,
}

pytestmark = pytest.mark.skipif(not os.path.exists(HELM), reason="the testbed's helm binary is not built")


def flat(text):
    return " ".join(text.split())


def write_play(tmp, testbed, extra):
    play = [{
        "name": "jupyterhub role", "hosts": "localhost", "gather_facts": False, "connection": "local",
        "module_defaults": {
            "group/kubernetes.core.k8s": {"kubeconfig": testbed.kubeconfig},
            "group/kubernetes.core.helm": {"kubeconfig": testbed.kubeconfig, "binary_path": HELM},
            "mlops.platform.helm_release_recover": {"kubeconfig": testbed.kubeconfig},
        },
        "roles": [{"role": "mlops.platform.jupyterhub"}],
    }]
    playbook = os.path.join(tmp, "play-%s.yml" % uuid.uuid4().hex[:6])
    varsfile = playbook.replace(".yml", "-vars.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        yaml.safe_dump(play, handle)
    with open(varsfile, "w", encoding="utf-8") as handle:
        yaml.safe_dump(dict(ROLE_VARS, **extra), handle)
    return [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", playbook,
            "-e", "@" + varsfile]


def run_role(ansible_env, testbed, extra):
    with tempfile.TemporaryDirectory() as tmp:
        return subprocess.run(write_play(tmp, testbed, extra), capture_output=True, text=True, env=ansible_env,
                              check=False)


# --------------------------------------------------------------------------- processes


def _children():
    """``{ppid: [pid, ...]}`` of every process, from /proc."""
    tree = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as handle:
                stat = handle.read().decode("utf-8", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def descendants(pid):
    tree = _children()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def _signal(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def kill_tree(proc):
    """SIGKILL a run and every process under it, as a closed laptop or a cancelled job would.

    The tree is frozen first (SIGSTOP until no new process appears), so nothing escapes by forking meanwhile.
    Returns the pids that were killed.
    """
    frozen = []
    while True:
        pids = [p for p in descendants(proc.pid) if p not in frozen]
        if not pids:
            break
        _signal(pids, signal.SIGSTOP)
        frozen.extend(pids)
    _signal(frozen, signal.SIGKILL)
    proc.wait(timeout=60)
    poll_until(lambda: not [p for p in frozen if _alive(p)], 60, "the killed processes to be gone", 0.2)
    return frozen


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            state = handle.read().decode("utf-8", "replace")
    except OSError:
        return False
    return state[state.rfind(")") + 2:].split()[0] != "Z"


# --------------------------------------------------------------------------- cluster


def records(core, ns):
    """``[(revision, status), ...]`` of the release's revision records, oldest first (from their labels)."""
    secrets = core.list_namespaced_secret(ns, label_selector="owner=helm,name=%s" % RELEASE).items
    return sorted((int(s.metadata.labels["version"]), s.metadata.labels["status"]) for s in secrets)


def helm_refuses(kubeconfig, ns):
    """Whether the real helm refuses an upgrade now (a dry run: it changes nothing either way)."""
    proc = subprocess.run([HELM, "upgrade", "--install", RELEASE, STAND_IN, "-n", ns, "--dry-run",
                           "--kubeconfig", kubeconfig], capture_output=True, text=True, check=False)
    return proc.returncode != 0 and PENDING_ERROR in proc.stderr


def _tainted_not_ready(node):
    return any(t.key == "node.kubernetes.io/not-ready" for t in node.spec.taints or [])


@contextlib.contextmanager
def cpu_nodes_held(core):
    """The node agent's ``not-ready`` fault on the CPU nodes while the block runs: their new pods stay Pending."""
    nodes = [n.metadata.name for n in core.list_node(label_selector="node-type=system").items]
    assert nodes, "the testbed has no node-type=system nodes"
    before = {n: (core.read_node(n).metadata.annotations or {}).get(FAULTS) for n in nodes}
    try:
        for name in nodes:
            faults = ",".join(f for f in [before[name], "not-ready"] if f)
            core.patch_node(name, {"metadata": {"annotations": {FAULTS: faults}}})
        poll_until(lambda: all(_tainted_not_ready(core.read_node(n)) for n in nodes), 120,
                   "the CPU nodes to be tainted not-ready", 0.5)
        yield nodes
    finally:
        for name in nodes:
            core.patch_node(name, {"metadata": {"annotations": {FAULTS: before[name]}}})
        poll_until(lambda: not any(_tainted_not_ready(core.read_node(n)) for n in nodes), 120,
                   "the CPU nodes to be ready again", 0.5)


def start_until(ansible_env, testbed, tmp, extra, core, apps, ns, wanted):
    """Start the role, wait until the newest revision record is ``wanted`` and the hub Deployment exists, kill it."""
    log = open(os.path.join(tmp, "killed-run.log"), "w", encoding="utf-8")
    proc = subprocess.Popen(write_play(tmp, testbed, extra), stdout=log, stderr=subprocess.STDOUT, env=ansible_env,
                            start_new_session=True)
    try:
        def reached():
            if proc.poll() is not None:
                with open(log.name, encoding="utf-8") as handle:
                    pytest.fail("the run ended before it could be interrupted:\n" + handle.read()[-4000:])
            recs = records(core, ns) if ns in [n.metadata.name for n in core.list_namespace().items] else []
            hub = [d for d in apps.list_namespaced_deployment(ns).items if d.metadata.name == "hub"] if recs else []
            return recs and recs[-1][1] == wanted and hub
        poll_until(reached, 600, "release %s/%s to be %s" % (ns, RELEASE, wanted), 0.2)
    finally:
        if proc.poll() is None:
            kill_tree(proc)
        log.close()
    return proc


def recover_adhoc(ansible_env, testbed, ns, *args):
    """Run the module on its own; returns (failed, result)."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-c", "local",
           "-m", "mlops.platform.helm_release_recover",
           "-a", json.dumps({"release_name": RELEASE, "release_namespace": ns, "kubeconfig": testbed.kubeconfig,
                             "stale_after": int(dict(a.split("=", 1) for a in args if "=" in a).get("stale_after", 0))})]
    cmd += [a for a in args if a.startswith("--")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ansible_env, check=False)
    text = proc.stdout
    assert "localhost | " in text, text + proc.stderr
    head, dummy, body = text[text.index("localhost | "):].partition("=> ")
    return "FAILED" in head, json.loads(body[:body.rindex("}") + 1])


@pytest.fixture
def clients(k8s):
    from kubernetes import client

    return client.CoreV1Api(k8s), client.AppsV1Api(k8s)


def test_interrupted_install_is_recovered(testbed, clients, ansible_env, release_ns, tmp_path):
    core, apps = clients
    ns = release_ns
    with cpu_nodes_held(core):
        start_until(ansible_env, testbed, str(tmp_path), {"jupyterhub_namespace": ns}, core, apps, ns,
                    "pending-install")
    assert records(core, ns) == [(1, "pending-install")]
    assert helm_refuses(testbed.kubeconfig, ns), "helm should refuse a release left pending-install"

    # A pending revision younger than stale_after is left alone, and the module says why.
    failed, result = recover_adhoc(ansible_env, testbed, ns, "stale_after=86400")
    assert failed and result["refused"] and not result["changed"]
    assert "another run may still be working on it, so it was left alone" in result["msg"]
    assert records(core, ns) == [(1, "pending-install")]

    # Check mode says what it would do and deletes nothing.
    failed, result = recover_adhoc(ansible_env, testbed, ns, "--check", "--diff")
    assert not failed and result["changed"] and not result["recovered"]
    assert "would remove that revision's record" in result["msg"]
    assert records(core, ns) == [(1, "pending-install")]

    proc = run_role(ansible_env, testbed, {"jupyterhub_namespace": ns})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert ("release %s/%s was left pending-install at revision 1 by an interrupted run; removed that revision's "
            "record, no earlier revision is left, so the next install adopts" % (ns, RELEASE)) in flat(proc.stdout)
    assert records(core, ns) == [(1, "deployed")]
    ready = apps.read_namespaced_deployment("hub", ns).status.ready_replicas
    assert ready == 1


def test_interrupted_upgrade_is_recovered_and_keeps_volumes(testbed, clients, ansible_env, release_ns, tmp_path):
    core, apps = clients
    ns = release_ns
    proc = run_role(ansible_env, testbed, {"jupyterhub_namespace": ns})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert records(core, ns) == [(1, "deployed")]
    claims = {p.metadata.name: p.metadata.uid for p in core.list_namespaced_persistent_volume_claim(ns).items}
    assert "hub-db-dir" in claims

    changed = {"jupyterhub_namespace": ns,
               "jupyterhub_release_overrides": {"hub": {"nodeSelector": {"node-type": "system"}}}}
    with cpu_nodes_held(core):
        start_until(ansible_env, testbed, str(tmp_path), changed, core, apps, ns, "pending-upgrade")
    assert records(core, ns) == [(1, "deployed"), (2, "pending-upgrade")]
    assert helm_refuses(testbed.kubeconfig, ns), "helm should refuse a release left pending-upgrade"

    proc = run_role(ansible_env, testbed, changed)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert ("release %s/%s was left pending-upgrade at revision 2 by an interrupted run; removed that revision's "
            "record, Helm continues from revision 1 (deployed)" % (ns, RELEASE)) in flat(proc.stdout)
    assert records(core, ns) == [(1, "superseded"), (2, "deployed")]
    hub = apps.read_namespaced_deployment("hub", ns)
    assert hub.spec.template.spec.node_selector == {"node-type": "system"}
    assert hub.status.ready_replicas == 1
    after = {p.metadata.name: p.metadata.uid for p in core.list_namespaced_persistent_volume_claim(ns).items}
    assert after == claims

    # Nothing pending any more: the next run changes nothing.
    proc = run_role(ansible_env, testbed, changed)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "changed=0" in proc.stdout, proc.stdout[-3000:]
    assert records(core, ns) == [(1, "superseded"), (2, "deployed")]


def test_a_failed_first_install_is_continued_not_rolled_back(testbed, clients, ansible_env, release_ns, tmp_path):
    # A first install runs without --atomic (the release has no deployed revision): when it fails, its
    # objects stay and the next attempt upgrades the failed revision. With --atomic, Helm would uninstall
    # them through the same API that just failed, and an uninstall cut short leaves "uninstalling", on
    # which `helm upgrade --install` answers "has no deployed releases".
    core, apps = clients
    ns = release_ns
    failing = {"jupyterhub_namespace": ns, "jupyterhub_helm_timeout": "20s", "mlops_k8s_retries": 1}
    with cpu_nodes_held(core):
        proc = run_role(ansible_env, testbed, failing)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert records(core, ns) == [(1, "failed")], proc.stdout[-3000:]
    hub_uid = apps.read_namespaced_deployment("hub", ns).metadata.uid
    claims = {p.metadata.name: p.metadata.uid for p in core.list_namespaced_persistent_volume_claim(ns).items}
    assert "hub-db-dir" in claims

    proc = run_role(ansible_env, testbed, {"jupyterhub_namespace": ns})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    # The upgrade proceeded from the failed revision (Helm then marks it superseded).
    assert records(core, ns) == [(1, "superseded"), (2, "deployed")]
    hub = apps.read_namespaced_deployment("hub", ns)
    assert hub.metadata.uid == hub_uid and hub.status.ready_replicas == 1
    after = {p.metadata.name: p.metadata.uid for p in core.list_namespaced_persistent_volume_claim(ns).items}
    assert after == claims
