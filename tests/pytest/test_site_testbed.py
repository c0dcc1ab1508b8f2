# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole platform on a testbed of its own: the site, verify and uninstall playbooks with the
`local` inventory, as `make demo` runs them.

In order, on one fresh testbed:
1. an invalid spec fails before any change, naming the field;
2. ``site.yml --check --diff`` reports changes and makes no mutating API request (the audit log);
3. ``site.yml`` converges, and a second run reports changed=0;
4. ``verify.yml`` passes and writes a JSON and a JUnit report;
5. ``uninstall.yml`` keeps every PersistentVolumeClaim; with ``mlops_purge=true`` they go, with the
   namespaces that held them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from kubernetes import client, config

from audit import AuditLog, format_requests
from private_testbed import PrivateTestbed
from waiting import poll_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
INVENTORY = os.path.join(ROOT, "inventories", "local", "hosts.yml")
TESTBED_CACHE = os.environ.get("MLOPS_TESTBED_CACHE", os.path.expanduser("~/.cache/mlops-testbed"))
RECAP_RE = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
PLATFORM_NAMESPACES_WITH_DATA = ("mlflow", "jupyterhub")


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    testbed = PrivateTestbed(tmp_path_factory.mktemp("site-testbed"))
    testbed.up()
    yield testbed
    testbed.down()


@pytest.fixture(scope="module")
def api(bed):
    return config.new_client_from_config(config_file=bed.kubeconfig)


def run_playbook(bed, playbook, *args):
    env = dict(os.environ, MLOPS_KUBECONFIG=bed.kubeconfig, MLOPS_TESTBED_STATE=bed.state,
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.path.join(TESTBED_CACHE, "bin"),
                                     os.environ.get("PATH", "")]))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY,
           os.path.join(ROOT, "playbooks", playbook)] + list(args)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def recap(output):
    match = RECAP_RE.search(output)
    assert match, "no play recap in:\n" + output[-3000:]
    ok, changed, unreachable, failed = (int(g) for g in match.groups())
    return {"ok": ok, "changed": changed, "unreachable": unreachable, "failed": failed}


def mutations(bed, mark):
    return AuditLog.for_kubeconfig(bed.kubeconfig).mutations_since(mark)


def pvcs(api):
    return sorted("%s/%s" % (p.metadata.namespace, p.metadata.name)
                  for p in client.CoreV1Api(api).list_persistent_volume_claim_for_all_namespaces().items
                  if p.metadata.namespace in PLATFORM_NAMESPACES_WITH_DATA)


def test_invalid_spec_fails_before_any_change_and_names_the_field(bed, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("mlops_platform_spec:\n  gpu: {enabled: true, minNodes: 3, maxNodes: 1}\n")
    log = AuditLog.for_kubeconfig(bed.kubeconfig)
    mark = log.mark()
    rc, out = run_playbook(bed, "site.yml", "-e", "@%s" % bad)
    assert rc != 0
    assert "gpu.maxNodes: must be >= gpu.minNodes" in out, out[-3000:]
    assert not mutations(bed, mark)


def test_check_mode_on_a_fresh_testbed_changes_nothing(bed):
    log = AuditLog.for_kubeconfig(bed.kubeconfig)
    mark = log.mark()
    rc, out = run_playbook(bed, "site.yml", "--check", "--diff")
    assert rc == 0, out[-6000:]
    assert recap(out)["changed"] > 0, "check mode should report what it would change"
    changes = mutations(bed, mark)
    assert not changes, format_requests(changes)


def test_site_converges_then_reruns_without_change(bed):
    rc, out = run_playbook(bed, "site.yml")
    assert rc == 0, out[-8000:]
    assert recap(out)["changed"] > 0
    assert "seconds_per_step" in out
    rc, out = run_playbook(bed, "site.yml")
    assert rc == 0, out[-8000:]
    assert recap(out)["changed"] == 0, "\n".join(line for line in out.splitlines() if line.startswith("changed:"))[-6000:]


def test_verify_passes_and_writes_both_reports(bed, tmp_path):
    rc, out = run_playbook(bed, "verify.yml", "-e", "mlops_verify_report_dir=%s" % tmp_path)
    assert rc == 0, out[-6000:]
    report = json.loads((tmp_path / "verify-report.json").read_text())
    assert report["ok"] and report["failed"] == 0 and report["passed"] >= 5, report
    components = {c["component"] for c in report["checks"] if c["status"] == "passed"}
    assert {"gpu", "gpu_operator", "mlflow", "jupyterhub", "kserve"} <= components, report
    suite = ET.parse(str(tmp_path / "verify-report.xml")).getroot().find("testsuite")
    assert int(suite.get("tests")) == report["total"] and suite.get("failures") == "0"


def test_uninstall_keeps_the_data_and_purge_removes_it(bed, api):
    before = pvcs(api)
    assert any(p.startswith("mlflow/") for p in before) and before, before
    rc, out = run_playbook(bed, "uninstall.yml")
    assert rc == 0, out[-6000:]
    assert pvcs(api) == before
    rc, out = run_playbook(bed, "uninstall.yml", "-e", "mlops_purge=true")
    assert rc == 0, out[-6000:]
    core = client.CoreV1Api(api)
    poll_until(lambda: not pvcs(api), timeout=180, what="the purge removes the platform's claims")
    remaining = {n.metadata.name for n in core.list_namespace().items}
    assert not remaining & set(PLATFORM_NAMESPACES_WITH_DATA), remaining
