# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark mlops.platform.gpu_readiness on the local testbed and print the figures.

(a) Detection latency. gpu-1 gets the ``gpu-allocatable-zero`` fault; two playbooks start side by side and
    wait for both GPU nodes to be allocatable: one with ``mlops.platform.gpu_readiness`` (``wait: true``, API
    watches), one with ``kubernetes.core.k8s_info`` + ``until`` (``delay: 5``). The fault is then removed. The
    reference instant is when the benchmark's own watch sees gpu-1 allocatable in the API; each playbook
    records ``now()`` in the task right after its wait task, so both carry the same per-task overhead.

(b) Scale. The testbed is restarted with ``tests/testbed/pools/scale-1000.yaml`` (1,000 simulated GPU nodes);
    one ``gpu_readiness`` check runs (its ``api_requests`` and the kube-apiserver's request counters are
    reported), then a playbook that calls ``kubernetes.core.k8s_info`` once per node.
    Afterwards the default pools are restored.

Usage: python benchmarks/bench_gpu_readiness.py [--runs N] [--skip-latency] [--skip-scale] [--per-node-limit N]
The testbed is found like the tests find it (MLOPS_TESTBED_KUBECONFIG, else ``testbed.py up``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TESTBED = os.path.join(ROOT, "tests", "testbed", "testbed.py")
CHART = os.path.join(ROOT, "tests", "testbed", "charts", "gpu-operator")
DEFAULT_POOLS = os.path.join(ROOT, "tests", "testbed", "pools", "default.yaml")
SCALE_POOLS = os.path.join(ROOT, "tests", "testbed", "pools", "scale-1000.yaml")
FAULTS = "testbed.mlops.platform/faults"
FAULTY = "gpu-1"
SELECTOR = "accelerator=nvidia-gpu"


def log(msg):
    print("[bench] %s" % msg, flush=True)


def testbed_up(pools=None):
    external = os.environ.get("MLOPS_TESTBED_KUBECONFIG")
    if external:
        return external
    cmd = [sys.executable, TESTBED, "up"] + (["--pools", pools] if pools else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=900)
    return proc.stdout.strip().splitlines()[-1]


def ansible_env(kubeconfig):
    env = dict(os.environ)
    env.update(
        K8S_AUTH_KUBECONFIG=kubeconfig,
        KUBECONFIG=kubeconfig,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
    )
    return env


def api_client(kubeconfig):
    from kubernetes import config

    return config.new_client_from_config(config_file=kubeconfig)


def ensure_operator(kubeconfig, env):
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        items = client.CustomObjectsApi(api_client(kubeconfig)).list_cluster_custom_object("nvidia.com", "v1", "clusterpolicies")["items"]
    except ApiException as err:
        if err.status != 404:
            raise
        items = []
    if not items:
        log("installing the gpu-operator stand-in chart")
        subprocess.run(["helm", "upgrade", "--install", "gpu-operator", CHART, "--namespace", "gpu-operator", "--create-namespace",
                        "--kubeconfig", kubeconfig], env=env, check=True, capture_output=True, timeout=300)


def set_fault(kubeconfig, node, fault):
    from kubernetes import client

    client.CoreV1Api(api_client(kubeconfig)).patch_node(node, {"metadata": {"annotations": {FAULTS: fault}}})


def allocatable(node):
    return int((node.status.allocatable or {}).get("nvidia.com/gpu", "0"))


def wait_node(kubeconfig, name, predicate, timeout):
    """Watch one node until predicate(node) holds; return the wall-clock time it was seen."""
    from kubernetes import client, watch

    core = client.CoreV1Api(api_client(kubeconfig))
    node = core.read_node(name)
    if predicate(node):
        return time.time()
    deadline = time.time() + timeout
    while time.time() < deadline:
        stream = watch.Watch()
        for event in stream.stream(core.list_node, field_selector="metadata.name=%s" % name,
                                   resource_version=node.metadata.resource_version, timeout_seconds=10):
            if predicate(event["object"]):
                seen = time.time()
                stream.stop()
                return seen
            node = event["object"]
    raise RuntimeError("node %s did not reach the wanted state within %ss" % (name, timeout))


def write_playbook(tasks, directory, name):
    play = [{"name": name, "hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}]
    path = os.path.join(directory, name + ".yml")
    with open(path, "w") as handle:
        yaml.safe_dump(play, handle, sort_keys=False)
    return path


def run_playbook(path, env, extra_vars=None, timeout=900):
    cmd = ["ansible-playbook", "-i", "localhost,", "-e", "ansible_python_interpreter=%s" % sys.executable, path]
    for key, value in (extra_vars or {}).items():
        cmd += ["-e", "%s=%s" % (key, value)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stamp_task(out):
    return {"name": "Record the time", "ansible.builtin.copy": {
        "content": "{{ {'done': now(utc=true).timestamp(), 'result': result} | to_json }}", "dest": out}}


def latency(kubeconfig, env, runs, workdir):
    ensure_operator(kubeconfig, env)
    module_out = os.path.join(workdir, "module.json")
    loop_out = os.path.join(workdir, "loop.json")
    module_pb = write_playbook([
        {"name": "Wait with gpu_readiness", "mlops.platform.gpu_readiness": {
            "label_selectors": [SELECTOR], "min_nodes": 2, "wait": True, "timeout": 120, "check_operator": False},
         "register": "result"},
        stamp_task(module_out),
    ], workdir, "latency-module")
    loop_pb = write_playbook([
        {"name": "Wait with k8s_info until", "kubernetes.core.k8s_info": {"kind": "Node", "label_selectors": [SELECTOR]},
         "register": "result", "retries": 24, "delay": 5,
         "until": "(result.resources | map(attribute='status.allocatable') | map('ansible.builtin.dict2items') | flatten"
                  " | selectattr('key', 'equalto', 'nvidia.com/gpu') | map(attribute='value') | map('int')"
                  " | select('gt', 0) | list | length) >= 2"},
        stamp_task(loop_out),
    ], workdir, "latency-loop")
    rows = []
    for run in range(runs):
        for path in (module_out, loop_out):
            if os.path.exists(path):
                os.unlink(path)
        set_fault(kubeconfig, FAULTY, "gpu-allocatable-zero")
        wait_node(kubeconfig, FAULTY, lambda n: allocatable(n) == 0, 60)
        procs = [run_playbook(module_pb, env), run_playbook(loop_pb, env)]
        # Let both playbooks reach their wait (ansible start-up takes a few seconds on a busy machine),
        # and vary the phase relative to the 5 s loop between runs.
        time.sleep(8 + 1.3 * run)
        removed = time.time()
        seen = [None]
        watcher = threading.Thread(target=lambda: seen.__setitem__(0, wait_node(kubeconfig, FAULTY, lambda n: allocatable(n) > 0, 60)))
        watcher.start()
        set_fault(kubeconfig, FAULTY, None)
        watcher.join()
        outputs = [p.communicate(timeout=300)[0] for p in procs]
        for proc, output in zip(procs, outputs):
            if proc.returncode != 0:
                raise RuntimeError("playbook failed:\n%s" % output)
        with open(module_out) as handle:
            module = json.load(handle)
        with open(loop_out) as handle:
            loop = json.load(handle)
        row = {
            "run": run + 1,
            "agent_reaction": seen[0] - removed,
            "module_latency": module["done"] - seen[0],
            "loop_latency": loop["done"] - seen[0],
            "module_api_requests": module["result"].get("api_requests"),
            "loop_attempts": loop["result"].get("attempts"),
        }
        rows.append(row)
        template = ("run %d: node allocatable %.3fs after fault removal; gpu_readiness returned +%.3fs, "
                    "k8s_info/until +%.3fs (%s API requests vs %s k8s_info attempts)")
        log(template % (row["run"], row["agent_reaction"], row["module_latency"], row["loop_latency"],
                        row["module_api_requests"], row["loop_attempts"]))
    return rows


def apiserver_counts(kubeconfig):
    """kube-apiserver request counters for nodes, by verb (from /metrics)."""
    sys.path.insert(0, os.path.join(ROOT, ".collections"))
    from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import ApiTransport

    text = ApiTransport(api_client(kubeconfig)).request_text("/metrics")
    counts = {}
    pattern = re.compile(r'^apiserver_request_total\{(.*)\} ([0-9.e+]+)$')
    for line in text.splitlines():
        match = pattern.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if labels.get("resource") != "nodes" or labels.get("subresource"):
            continue
        counts[labels.get("verb")] = counts.get(labels.get("verb"), 0) + float(match.group(2))
    return counts


def delta(before, after):
    return dict((verb, int(after.get(verb, 0) - before.get(verb, 0))) for verb in ("GET", "LIST", "WATCH") if after.get(verb, 0) - before.get(verb, 0))


def scale(env_factory, per_node_limit, workdir):
    log("restarting the testbed with %s" % SCALE_POOLS)
    kubeconfig = testbed_up(SCALE_POOLS)
    env = env_factory(kubeconfig)
    ensure_operator(kubeconfig, env)
    from kubernetes import client

    core = client.CoreV1Api(api_client(kubeconfig))
    deadline = time.time() + 600
    while True:
        names = [n.metadata.name for n in core.list_node(label_selector=SELECTOR).items]
        if len(names) >= 1000 or time.time() > deadline:
            break
        time.sleep(2)
    log("%d GPU nodes registered; waiting for the operator roll-out to settle" % len(names))
    settle_pb = write_playbook([
        {"name": "Wait for a steady state", "mlops.platform.gpu_readiness": {
            "label_selectors": [SELECTOR], "min_nodes": 900, "wait": True, "timeout": 900, "fail_on_not_ready": False},
         "register": "result"},
        stamp_task(os.path.join(workdir, "settle.json")),
    ], workdir, "scale-settle")
    proc = run_playbook(settle_pb, env)
    proc.communicate(timeout=1000)
    out = os.path.join(workdir, "scale-module.json")
    module_pb = write_playbook([
        {"name": "Check 1,000 GPU nodes", "mlops.platform.gpu_readiness": {
            "label_selectors": [SELECTOR], "min_nodes": 900, "fail_on_not_ready": False}, "register": "result"},
        stamp_task(out),
    ], workdir, "scale-module")
    before = apiserver_counts(kubeconfig)
    started = time.time()
    proc = run_playbook(module_pb, env)
    output = proc.communicate(timeout=900)[0]
    wall = time.time() - started
    after = apiserver_counts(kubeconfig)
    if proc.returncode != 0:
        raise RuntimeError(output)
    with open(out) as handle:
        module = json.load(handle)["result"]
    figures = {
        "nodes": module["total_nodes"], "ready_nodes": module["ready_nodes"], "module_elapsed": module["elapsed"],
        "module_playbook_wall": wall, "module_api_requests": module["api_requests"], "module_apiserver_node_requests": delta(before, after),
    }
    log("gpu_readiness over %d nodes: %d ready, %.2fs in the module, %.2fs playbook wall time, %d API requests "
        "(apiserver node requests %s)" % (module["total_nodes"], module["ready_nodes"], module["elapsed"], wall,
                                          module["api_requests"], figures["module_apiserver_node_requests"]))
    sample = sorted(names)[:per_node_limit]
    loop_pb = write_playbook([
        {"name": "One k8s_info per node", "kubernetes.core.k8s_info": {"kind": "Node", "name": "{{ item }}"},
         "loop": "{{ lookup('ansible.builtin.file', nodes_file) | from_json }}", "register": "result"},
    ], workdir, "scale-loop")
    nodes_file = os.path.join(workdir, "nodes.json")
    with open(nodes_file, "w") as handle:
        json.dump(sample, handle)
    before = apiserver_counts(kubeconfig)
    started = time.time()
    proc = run_playbook(loop_pb, env, {"nodes_file": nodes_file})
    output = proc.communicate(timeout=3600)[0]
    loop_wall = time.time() - started
    after = apiserver_counts(kubeconfig)
    if proc.returncode != 0:
        raise RuntimeError(output[-3000:])
    figures.update(loop_nodes=len(sample), loop_playbook_wall=loop_wall, loop_apiserver_node_requests=delta(before, after))
    log("k8s_info loop over %d nodes: %.2fs playbook wall time (apiserver node requests %s)"
        % (len(sample), loop_wall, figures["loop_apiserver_node_requests"]))
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3, help="latency runs (default 3)")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--per-node-limit", type=int, default=1000, help="nodes the per-node k8s_info loop visits")
    parser.add_argument("--keep-scale", action="store_true", help="leave the testbed on the scale pools")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="bench-gpu-readiness-")
    summary = {}
    if not args.skip_latency:
        kubeconfig = testbed_up(DEFAULT_POOLS)
        env = ansible_env(kubeconfig)
        try:
            rows = latency(kubeconfig, env, args.runs, workdir)
        finally:
            set_fault(kubeconfig, FAULTY, None)
        summary["latency"] = {
            "runs": rows,
            "module_median_s": statistics.median(r["module_latency"] for r in rows),
            "loop_median_s": statistics.median(r["loop_latency"] for r in rows),
            "module_max_s": max(r["module_latency"] for r in rows),
            "loop_max_s": max(r["loop_latency"] for r in rows),
        }
    if not args.skip_scale:
        try:
            summary["scale"] = scale(ansible_env, args.per_node_limit, workdir)
        finally:
            if not args.keep_scale and not os.environ.get("MLOPS_TESTBED_KUBECONFIG"):
                log("restoring the default pools")
                testbed_up(DEFAULT_POOLS)
    print("\n== gpu_readiness benchmark")
    if "latency" in summary:
        lat = summary["latency"]
        print("detection latency after gpu-1 became allocatable (median / max over %d runs):" % len(lat["runs"]))
        print("  mlops.platform.gpu_readiness wait (watch) : %.3f s / %.3f s" % (lat["module_median_s"], lat["module_max_s"]))
        print("  kubernetes.core.k8s_info until, delay 5   : %.3f s / %.3f s" % (lat["loop_median_s"], lat["loop_max_s"]))
    if "scale" in summary:
        sc = summary["scale"]
        print("readiness check over %d GPU nodes:" % sc["nodes"])
        print("  gpu_readiness: %.2f s in the module, %.2f s playbook, %d API requests, apiserver node requests %s"
              % (sc["module_elapsed"], sc["module_playbook_wall"], sc["module_api_requests"], sc["module_apiserver_node_requests"]))
        print("  per-node k8s_info loop over %d nodes: %.2f s playbook, apiserver node requests %s"
              % (sc["loop_nodes"], sc["loop_playbook_wall"], sc["loop_apiserver_node_requests"]))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
