# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The whole platform's life on a testbed nobody else touches, with the `local` inventory, measured in
the API server's audit log. In order:

1. an invalid spec fails before any change, naming the field;
2. ``site.yml --check --diff`` reports what it would change and makes no mutating request;
3. ``site.yml`` at ``-vvv`` converges through the fault proxy (429 with Retry-After and slow answers on
   10 % of the requests), with a canary value in every option the roles' argument specs mark ``no_log``
   and in the spec's secret field: no canary in the output, on any process command line or in any
   audited request URI, and no object created twice;
4. a second ``site.yml`` without faults reports changed=0;
5. ``verify.yml`` passes and writes its JSON and JUnit reports;
6. ``uninstall.yml`` (at ``-vvv``, canaries again) keeps every PersistentVolumeClaim;
7. ``uninstall.yml -e mlops_purge=true`` removes them and says what it removed.

The figures each step measures are printed on ``RELIABILITY`` lines (docs/reliability.md).
"""

from __future__ import annotations

import collections
import glob
import json
import os
import re
import secrets
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
import yaml
from kubernetes import client, config

from audit import ArgvSampler, AuditLog, format_requests
from fault_proxy import FaultPlan, FaultProxy
from private_testbed import PrivateTestbed
from waiting import poll_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
INVENTORY = os.path.join(ROOT, "inventories", "local", "hosts.yml")
TESTBED_CACHE = os.environ.get("MLOPS_TESTBED_CACHE", os.path.expanduser("~/.cache/mlops-testbed"))
RECAP_RE = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
DATA_NAMESPACES = ("mlflow", "jupyterhub")
FAULT_RATE = float(os.environ.get("MLOPS_SITE_FAULT_RATE", "0.10"))
# The kinds every Kubernetes client is expected to ride out: throttling (429 with Retry-After, which
# client-go in Helm and urllib3 honour, and the roles' retries cover for writes) and slow answers.
# With 503s and connection resets in the mix a Helm install fails: see docs/reliability.md.
FAULT_MIX = {"throttle": 1, "slow": 1}


def no_log_options(spec_options, prefix=()):
    """Paths (tuples of keys) of every option marked no_log in an argument spec, nested ones included."""
    found = []
    for name, option in (spec_options or {}).items():
        path = prefix + (name,)
        if option.get("no_log"):
            found.append(path)
        found.extend(no_log_options(option.get("options"), path))
    return found


def canary_vars():
    """Extra vars with a distinct canary in every no_log option of every role, and the spec's secret."""
    extra, canaries = {}, []
    for spec_file in sorted(glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml"))):
        with open(spec_file, encoding="utf-8") as handle:
            options = (yaml.safe_load(handle)["argument_specs"]["main"].get("options")) or {}
        for path in no_log_options(options):
            value = "canary%s" % secrets.token_hex(8)
            canaries.append(value)
            node = extra
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value
    # The local spec's secret field reads this variable (inventories/local/.../platform.yml).
    extra["vault_jupyterhub_dummy_password"] = value = "canary%s" % secrets.token_hex(8)
    canaries.append(value)
    return extra, canaries


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    testbed = PrivateTestbed(tmp_path_factory.mktemp("site-testbed"))
    testbed.up()
    yield testbed
    testbed.down()


@pytest.fixture(scope="module")
def api(bed):
    return config.new_client_from_config(config_file=bed.kubeconfig)


def run_playbook(bed, playbook, *args, kubeconfig=None):
    env = dict(os.environ, MLOPS_KUBECONFIG=kubeconfig or bed.kubeconfig, MLOPS_TESTBED_STATE=bed.state,
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.path.join(TESTBED_CACHE, "bin"),
                                     os.environ.get("PATH", "")]))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY,
           os.path.join(ROOT, "playbooks", playbook)] + list(args)
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def recap(output):
    match = RECAP_RE.search(output)
    assert match, "no play recap in:\n" + output[-3000:]
    ok, changed, unreachable, failed = (int(g) for g in match.groups())
    return {"ok": ok, "changed": changed, "unreachable": unreachable, "failed": failed}


def changed_tasks(output):
    """The task headers of the tasks that reported a change, for a failure message."""
    lines, task, found = output.splitlines(), None, []
    for line in lines:
        if line.startswith("TASK ["):
            task = line
        elif line.startswith("changed:") and task:
            found.append(task)
    return "\n".join(found)[-4000:]


def pvcs(api):
    return sorted("%s/%s %s" % (p.metadata.namespace, p.metadata.name, p.metadata.uid)
                  for p in client.CoreV1Api(api).list_persistent_volume_claim_for_all_namespaces().items
                  if p.metadata.namespace in DATA_NAMESPACES)


@pytest.fixture(scope="module")
def canaries():
    return canary_vars()


def write_extra_vars(tmp_path, extra):
    path = tmp_path / "canaries.yml"
    path.write_text(yaml.safe_dump(extra))
    return "@%s" % path


def test_invalid_spec_fails_before_any_change_and_names_the_field(bed, tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("mlops_platform_spec:\n  gpu: {enabled: true, minNodes: 3, maxNodes: 1}\n")
    log = AuditLog.for_kubeconfig(bed.kubeconfig)
    mark = log.mark()
    rc, out, _seconds = run_playbook(bed, "site.yml", "-e", "@%s" % bad)
    assert rc != 0
    assert "gpu.maxNodes: must be >= gpu.minNodes" in out, out[-3000:]
    assert not log.mutations_since(mark)


def test_check_mode_on_a_fresh_testbed_changes_nothing(bed):
    log = AuditLog.for_kubeconfig(bed.kubeconfig)
    mark = log.mark()
    rc, out, seconds = run_playbook(bed, "site.yml", "--check", "--diff")
    assert rc == 0, out[-6000:]
    would = recap(out)["changed"]
    assert would > 0, "check mode should report what it would change"
    changes = log.mutations_since(mark)
    requests = log.requests_since(mark)
    dry_runs = [r for r in requests if r.dry_run]
    print("\nRELIABILITY site --check --diff on a fresh testbed: %d task(s) would change, %d API requests "
          "(%d server-side dry runs), %d mutating, %.0fs" % (would, len(requests), len(dry_runs), len(changes), seconds))
    assert not changes, format_requests(changes)


def test_site_converges_under_faults_without_leaking_a_secret(bed, canaries, tmp_path):
    extra, values = canaries
    log = AuditLog.for_kubeconfig(bed.kubeconfig)
    proxy = FaultProxy(FaultPlan(rate=FAULT_RATE, mix=FAULT_MIX, seed=7), state_dir=bed.state,
                       api_port=bed.port, stats_file=str(tmp_path / "stats.json"))
    proxied = proxy.write_kubeconfig(str(tmp_path / "kubeconfig-faults"))
    proxy.start()
    mark = log.mark()
    try:
        with ArgvSampler(values) as sampler:
            rc, out, seconds = run_playbook(bed, "site.yml", "-vvv", "-e", write_extra_vars(tmp_path, extra),
                                            kubeconfig=proxied)
    finally:
        proxy.stop()
    stats = proxy.stats_snapshot()
    print("\nRELIABILITY site at %d%% faults: rc %d, %s, %.0fs; canaries %d, ps samples %d"
          % (FAULT_RATE * 100, rc, json.dumps(stats, sort_keys=True), seconds, len(values), sampler.samples))
    assert rc == 0, out[-10000:]
    leaked = sorted(v for v in values if v in out)
    assert not leaked, "canaries in the -vvv output: %s" % leaked
    assert not sampler.hits, "canaries on command lines: %s" % sampler.hits[:3]
    assert sampler.samples > 10
    in_uris = log.secret_values_in_uris(mark, values)
    assert not in_uris, format_requests(in_uris)
    created = collections.Counter((r.resource, r.namespace, r.name) for r in log.requests_since(mark)
                                  if r.verb == "create" and r.code == 201 and r.name)
    twice = [key for key, count in created.items() if count > 1]
    assert not twice, "created more than once: %s" % twice


def test_rerun_without_faults_changes_nothing(bed, canaries, tmp_path):
    extra = canaries[0]
    rc, out, seconds = run_playbook(bed, "site.yml", "-e", write_extra_vars(tmp_path, extra))
    assert rc == 0, out[-8000:]
    print("\nRELIABILITY site rerun: changed=%d, %.0fs" % (recap(out)["changed"], seconds))
    assert recap(out)["changed"] == 0, changed_tasks(out)


def test_verify_passes_and_writes_both_reports(bed, canaries, tmp_path):
    extra = canaries[0]
    rc, out, _seconds = run_playbook(bed, "verify.yml", "-e", write_extra_vars(tmp_path, extra),
                                     "-e", "mlops_verify_report_dir=%s" % tmp_path)
    assert rc == 0, out[-6000:]
    report = json.loads((tmp_path / "verify-report.json").read_text())
    assert report["ok"] and report["failed"] == 0, report
    passed = {c["component"] for c in report["checks"] if c["status"] == "passed"}
    assert {"gpu", "gpu_operator", "mlflow", "jupyterhub", "kserve", "security"} <= passed, report
    suite = ET.parse(str(tmp_path / "verify-report.xml")).getroot().find("testsuite")
    assert int(suite.get("tests")) == report["total"] and suite.get("failures") == "0"


def test_uninstall_keeps_the_data_then_purge_removes_it(bed, api, canaries, tmp_path):
    extra, values = canaries
    before = pvcs(api)
    assert any(p.startswith("mlflow/") for p in before), before
    with ArgvSampler(values) as sampler:
        rc, out, _seconds = run_playbook(bed, "uninstall.yml", "-vvv", "-e", write_extra_vars(tmp_path, extra))
    assert rc == 0, out[-8000:]
    assert not sorted(v for v in values if v in out), "canaries in the uninstall output"
    assert not sampler.hits, sampler.hits[:3]
    after = pvcs(api)
    print("\nRELIABILITY uninstall without purge: %d of %d claims kept" % (len(set(before) & set(after)), len(before)))
    assert after == before
    rc, out, _seconds = run_playbook(bed, "uninstall.yml", "-e", write_extra_vars(tmp_path, extra), "-e", "mlops_purge=true")
    assert rc == 0, out[-8000:]
    poll_until(lambda: not pvcs(api), timeout=300, what="the purge removes the platform's claims")
    names = {n.metadata.name for n in client.CoreV1Api(api).list_namespace().items}
    print("\nRELIABILITY uninstall with purge: %d claims left, data namespaces left: %s"
          % (len(pvcs(api)), sorted(names & set(DATA_NAMESPACES))))
    for claim in before:
        assert claim.split()[0].split("/")[1] in out, "the purge does not say it removed %s" % claim
