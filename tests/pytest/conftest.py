# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures for tests that run against the local testbed.

* ``testbed`` (session): a running testbed. If one is already up it is reused and left running;
  otherwise it is started and stopped again when the session ends (set MLOPS_TESTBED_KEEP=1 to
  keep it). ``MLOPS_TESTBED_KUBECONFIG`` points the tests at another cluster instead.
* ``k8s`` (session): a kubernetes ``ApiClient`` for that cluster.
* ``namespace`` (function): a fresh namespace per test, deleted afterwards.
* ``namespaces`` (session): wait for a terminating namespace to go, or delete one and wait.
* ``release_ns`` (function): a fresh namespace name, not created; deleted afterwards if a test made it.
* ``ansible_env`` (session): environment for running ansible-playbook against the testbed with
  this collection importable by its FQCN.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from waiting import poll_until

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TESTBED = os.path.join(ROOT, "tests", "testbed", "testbed.py")
TESTBED_CACHE = os.environ.get("MLOPS_TESTBED_CACHE", os.path.expanduser("~/.cache/mlops-testbed"))


class Testbed:
    """A running cluster: where its kubeconfig is and whether this session started it."""

    def __init__(self, kubeconfig, started):
        self.kubeconfig = kubeconfig
        self.started = started

    def run(self, *args, check=True):
        """Run a testbed.py sub-command and return its completed process."""
        return subprocess.run([sys.executable, TESTBED] + list(args), check=check, capture_output=True, text=True)

    def up(self, pools=None):
        """(Re)start the node agent with another pool configuration; returns the kubeconfig path."""
        args = ["up"] + (["--pools", pools] if pools else [])
        return self.run(*args).stdout.strip().splitlines()[-1]


def _last_line(text):
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


@pytest.fixture(scope="session")
def testbed():
    external = os.environ.get("MLOPS_TESTBED_KUBECONFIG")
    if external:
        yield Testbed(external, started=False)
        return
    status = subprocess.run([sys.executable, TESTBED, "status"], capture_output=True, text=True, check=False)
    already_running = status.returncode == 0
    proc = subprocess.run([sys.executable, TESTBED, "up"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail("testbed did not start:\n%s\n%s" % (proc.stdout, proc.stderr))
    bed = Testbed(_last_line(proc.stdout), started=not already_running)
    yield bed
    if bed.started and os.environ.get("MLOPS_TESTBED_KEEP") != "1":
        subprocess.run([sys.executable, TESTBED, "down"], check=False)


@pytest.fixture(scope="session")
def k8s(testbed):
    from kubernetes import config

    return config.new_client_from_config(config_file=testbed.kubeconfig)


@pytest.fixture
def namespace(k8s):
    from kubernetes import client

    core = client.CoreV1Api(k8s)
    name = "t-%s" % uuid.uuid4().hex[:10]
    core.create_namespace({"metadata": {"name": name, "labels": {"mlops.platform/test": "true"}}})
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="session")
def ansible_env(testbed):
    env = dict(os.environ)
    venv_bin = os.path.dirname(sys.executable)
    env.update(
        K8S_AUTH_KUBECONFIG=testbed.kubeconfig,
        KUBECONFIG=testbed.kubeconfig,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        # The virtualenv's tools, then the testbed's binaries (helm among them).
        PATH=os.pathsep.join([venv_bin, os.path.join(TESTBED_CACHE, "bin"), env.get("PATH", "")]),
    )
    return env


def _namespace_phase(k8s, name):
    """``Active``, ``Terminating``, or None when the namespace does not exist."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        return client.CoreV1Api(k8s).read_namespace(name).status.phase
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def _wait_namespace_settled(k8s, name, timeout=180.0):
    """Block while namespace ``name`` is terminating, e.g. after an earlier test's clean-up.

    Creating objects in a terminating namespace is refused by the API server, so tests that share a
    fixed namespace (the GPU operator's) call this before installing into it.
    """
    poll_until(lambda: _namespace_phase(k8s, name) != "Terminating", timeout, "namespace %s to finish terminating" % name, 0.5)


def _delete_namespace_and_wait(k8s, name, timeout=180.0):
    """Delete a namespace and wait until it is gone, so the next test finds a clean cluster."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        client.CoreV1Api(k8s).delete_namespace(name, propagation_policy="Background")
    except ApiException as err:
        if err.status != 404:
            raise
    poll_until(lambda: _namespace_phase(k8s, name) is None, timeout, "namespace %s to be deleted" % name, 0.5)


class NamespaceTools:
    """Helpers for tests that share a fixed namespace (such as the GPU operator's)."""

    def __init__(self, k8s):
        self._k8s = k8s

    def phase(self, name):
        return _namespace_phase(self._k8s, name)

    def wait_settled(self, name, timeout=180.0):
        _wait_namespace_settled(self._k8s, name, timeout)

    def delete_and_wait(self, name, timeout=180.0):
        _delete_namespace_and_wait(self._k8s, name, timeout)


@pytest.fixture(scope="session")
def namespaces(k8s):
    return NamespaceTools(k8s)


@pytest.fixture
def release_ns(namespaces):
    """A fresh namespace name for a test to install into; deleted (and waited for) afterwards if it was made."""
    ns = "rel-%s" % uuid.uuid4().hex[:8]
    yield ns
    if namespaces.phase(ns) is not None:
        namespaces.delete_and_wait(ns, 300)
