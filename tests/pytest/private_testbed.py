# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A testbed of a test's own: its own state directory and ports, started fresh and stopped after.

Tests that need a cluster nobody else has touched (a check-mode run counted in the audit log, a whole
platform installed and removed) use one; the rest share the session testbed from conftest.py.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TESTBED = os.path.join(ROOT, "tests", "testbed", "testbed.py")


def free_port_block(size=6):
    """A base port such that base .. base+size-1 are all free on 127.0.0.1."""
    for _attempt in range(50):
        base = random.randint(20000, 40000)
        sockets = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free block of %d ports" % size)


class PrivateTestbed:
    """``up()`` starts it in ``state`` on a free port block and returns its kubeconfig; ``down()`` stops it."""

    def __init__(self, state):
        self.state = str(state)
        self.port = free_port_block()
        self.env = dict(os.environ, MLOPS_TESTBED_STATE=self.state, MLOPS_TESTBED_PORT=str(self.port))
        self.kubeconfig = None

    def run(self, *args, check=True):
        return subprocess.run([sys.executable, TESTBED] + list(args), env=self.env, capture_output=True,
                              text=True, check=check)

    def up(self):
        proc = self.run("up", check=False)
        if proc.returncode != 0:
            raise RuntimeError("private testbed did not start:\n%s\n%s" % (proc.stdout, proc.stderr))
        self.kubeconfig = proc.stdout.strip().splitlines()[-1]
        return self.kubeconfig

    def down(self):
        self.run("down", check=False)
