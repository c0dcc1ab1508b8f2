# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The testbed tool's own contract: idempotent up, status, and a down that leaves nothing behind.

These tests start a second, private testbed (own state directory and ports) so that they never
disturb the shared one the other tests use.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from private_testbed import free_port_block

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TESTBED = os.path.join(ROOT, "tests", "testbed", "testbed.py")
POOLS = os.path.join(ROOT, "tests", "testbed", "pools", "default.yaml")


def _processes_mentioning(text):
    """PIDs of live processes whose command line contains ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(entry) != os.getpid():
            found.append((int(entry), cmdline))
    return found


@pytest.fixture(scope="module")
def private_bed(tmp_path_factory):
    state = str(tmp_path_factory.mktemp("testbed-state"))
    port = free_port_block()
    env = dict(os.environ, MLOPS_TESTBED_STATE=state, MLOPS_TESTBED_PORT=str(port))

    def run(*args, check=True):
        return subprocess.run([sys.executable, TESTBED] + list(args), env=env, capture_output=True, text=True, check=check)

    yield state, port, run
    run("down", check=False)


def test_up_is_idempotent_and_prints_the_kubeconfig_last(private_bed):
    state, port, run = private_bed
    first = run("up", "--pools", POOLS)
    kubeconfig = first.stdout.strip().splitlines()[-1]
    assert kubeconfig == os.path.join(state, "kubeconfig")
    with open(kubeconfig) as handle:
        config = json.load(handle)
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:%d" % port

    pids_before = sorted(os.listdir(os.path.join(state, "pids")))
    second = run("up", "--pools", POOLS)
    assert second.stdout.strip().splitlines()[-1] == kubeconfig
    assert "already running" in second.stderr
    assert sorted(os.listdir(os.path.join(state, "pids"))) == pids_before


def test_status_reports_components_and_nodes(private_bed):
    state, _port, run = private_bed
    status = run("status")
    lines = status.stdout.strip().splitlines()
    assert lines[-1] == os.path.join(state, "kubeconfig")
    for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "node-agent"):
        assert any(line.startswith(component) and "running" in line for line in lines), status.stdout
    nodes = [line for line in lines if line.startswith("nodes")]
    assert nodes and "with allocatable nvidia.com/gpu" in nodes[0]


def test_client_certificate_is_required(private_bed):
    """The API server must refuse anonymous requests for resources: auth is real."""
    import ssl
    import urllib.error
    import urllib.request

    state, port, _run = private_bed
    context = ssl.create_default_context(cafile=os.path.join(state, "pki", "ca.crt"))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen("https://127.0.0.1:%d/api/v1/secrets" % port, context=context, timeout=5)
    assert refused.value.code in (401, 403)


def test_down_stops_everything_it_started(private_bed):
    state, _port, run = private_bed
    assert _processes_mentioning(state), "the private testbed should be running before down"
    run("down")
    assert _processes_mentioning(state) == []
    assert run("status", check=False).returncode == 1
    # A second down is harmless.
    assert "nothing" in run("down").stderr


def test_up_refuses_ports_held_by_another_process(tmp_path):
    """A port clash must fail clearly, never adopt someone else's process as ours."""
    base = free_port_block()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", base + 1))  # etcd's client port
    squatter.listen(1)
    try:
        env = dict(os.environ, MLOPS_TESTBED_STATE=str(tmp_path), MLOPS_TESTBED_PORT=str(base))
        proc = subprocess.run([sys.executable, TESTBED, "up", "--no-agent"], env=env, capture_output=True, text=True, check=False)
    finally:
        squatter.close()
    assert proc.returncode != 0
    assert "127.0.0.1:%d is already in use" % (base + 1) in proc.stderr
    assert _processes_mentioning(str(tmp_path)) == []


SCALE_POOLS = os.path.join(ROOT, "tests", "testbed", "pools", "scale-1000.yaml")


def test_a_thousand_node_configuration_comes_up(tmp_path):
    """The 1,000-GPU-node pool configuration registers every node, Ready, through the real API server.

    The time it takes is printed (run with -s to see it) and recorded in docs/testbed.md; it is
    never asserted.
    """
    import yaml
    from kubernetes import client, config

    with open(SCALE_POOLS) as handle:
        pools = yaml.safe_load(handle)["pools"]
    expected = sum(pool["count"] for pool in pools)
    expected_gpu = sum(pool["count"] for pool in pools if pool.get("gpus_per_node"))
    assert expected_gpu >= 1000

    base = free_port_block()
    env = dict(os.environ, MLOPS_TESTBED_STATE=str(tmp_path), MLOPS_TESTBED_PORT=str(base))
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, TESTBED, "up", "--pools", SCALE_POOLS], env=env,
                              capture_output=True, text=True, check=False, timeout=900)
        elapsed = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr[-3000:]
        with open(os.path.join(str(tmp_path), "agent.ready")) as handle:
            agent_report = json.load(handle)

        api = client.CoreV1Api(config.new_client_from_config(config_file=proc.stdout.strip().splitlines()[-1]))
        nodes, token = [], None
        while True:
            page = api.list_node(limit=250, _continue=token)
            nodes.extend(page.items)
            token = page.metadata._continue
            if not token:
                break
        ready = [n for n in nodes if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])]
        with_gpus = [n for n in nodes if int((n.status.allocatable or {}).get("nvidia.com/gpu", "0")) > 0
                     or any(k.startswith("nvidia.com/mig-") for k in (n.status.allocatable or {}))]
        assert len(nodes) == expected
        assert len(ready) == expected
        assert len(with_gpus) == expected_gpu
        print("\n%d nodes (%d with GPUs) Ready: testbed up in %.1fs, agent report %s" % (len(nodes), len(with_gpus), elapsed, agent_report))
    finally:
        subprocess.run([sys.executable, TESTBED, "down"], env=env, capture_output=True, check=False)
    assert _processes_mentioning(str(tmp_path)) == []
