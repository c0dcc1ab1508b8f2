# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The site playbook with the `local` inventory on a testbed nobody else has touched, counted in its
API audit log:

1. an invalid spec fails before any change, naming the field;
2. ``site.yml --check --diff`` reports what it would change and makes no mutating API request.

The converge, the changed=0 rerun, verify.yml and uninstall (keep, then purge) run in the molecule
scenario ``site`` on the shared testbed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from audit import AuditLog, format_requests
from private_testbed import PrivateTestbed

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
INVENTORY = os.path.join(ROOT, "inventories", "local", "hosts.yml")
TESTBED_CACHE = os.environ.get("MLOPS_TESTBED_CACHE", os.path.expanduser("~/.cache/mlops-testbed"))
RECAP_RE = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    testbed = PrivateTestbed(tmp_path_factory.mktemp("site-testbed"))
    testbed.up()
    yield testbed
    testbed.down()


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
