# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark the site playbook on a fresh testbed of its own and print the figures.

A first run of ``playbooks/site.yml -i inventories/local`` installs the whole platform; a second run
must change nothing. Printed: both wall times, the second as a share of the first (the target is under
40 %), each run's changed count, and the per-step seconds from the site's summary.

Usage: python benchmarks/bench_site.py [--runs N]   (N reruns after the first install; default 1)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "pytest"))

from private_testbed import PrivateTestbed  # noqa: E402  (the tests' helper, shared on purpose)

RECAP_RE = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", re.M)
STEPS_RE = re.compile(r'"seconds_per_step": \{([^}]*)\}')


def site(kubeconfig, state):
    env = dict(os.environ, MLOPS_KUBECONFIG=kubeconfig, MLOPS_TESTBED_STATE=state, ANSIBLE_NOCOLOR="1")
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
           os.path.join(ROOT, "inventories", "local", "hosts.yml"), os.path.join(ROOT, "playbooks", "site.yml")]
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    recap = RECAP_RE.search(proc.stdout)
    if proc.returncode != 0 or not recap:
        sys.exit("site.yml failed (rc=%d):\n%s" % (proc.returncode, (proc.stdout + proc.stderr)[-4000:]))
    steps = STEPS_RE.search(proc.stdout)
    return elapsed, int(recap.group(2)), " ".join((steps.group(1) if steps else "").split())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-site-") as state:
        bed = PrivateTestbed(state)
        kubeconfig = bed.up()
        try:
            first, changed, steps = site(kubeconfig, state)
            print("site, first run (installs the platform): %7.1f s  changed=%d" % (first, changed))
            print("  seconds per step: %s" % steps)
            for index in range(args.runs):
                again, changed, steps = site(kubeconfig, state)
                print("site, rerun %d:                          %7.1f s  changed=%d  (%.0f %% of the first run)"
                      % (index + 1, again, changed, 100.0 * again / first))
                print("  seconds per step: %s" % steps)
        finally:
            bed.down()


if __name__ == "__main__":
    main()
