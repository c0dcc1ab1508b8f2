#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render many realistic GPU pod specs and print how long it took.

Usage: python benchmarks/bench_gpu_pod_spec.py [--count 10000] [--repeat 3]

Run from the collection root. The collection is imported from ./.collections (made by `make bootstrap`) or,
when this checkout already sits at .../ansible_collections/mlops/platform, from the directory above it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _import_collection():
    candidates = [os.path.join(ROOT, ".collections")]
    parts = ROOT.split(os.sep)
    if len(parts) > 3 and parts[-3] == "ansible_collections":
        candidates.append(os.sep.join(parts[:-3]))
    for path in candidates:
        if os.path.isdir(os.path.join(path, "ansible_collections", "mlops", "platform")):
            sys.path.insert(0, path)
            break
    from ansible_collections.mlops.platform.plugins.module_utils import gpu_pod_spec  # pylint: disable=import-outside-toplevel
    return gpu_pod_spec


def workload(count):
    """``count`` (spec, kwargs) pairs shaped like what the roles render: Jobs, notebooks and serving pods."""
    products = [["NVIDIA-A100-SXM4-80GB"], ["NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-NVL"], ["Tesla-T4"], None]
    migs = [None, None, "1g.10gb", "3g.40gb", "1g.10gb+me"]
    cases = []
    for i in range(count):
        spec = {
            "restartPolicy": "Never",
            "serviceAccountName": "trainer",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 100},
            "containers": [
                {"name": "trainer", "image": "registry.example.com/ml/trainer:2.%d" % (i % 7),
                 "args": ["--epochs", str(i % 50), "--data", "/data/shard-%d" % i],
                 "env": [{"name": "RUN_ID", "value": "run-%d" % i}, {"name": "NCCL_DEBUG", "value": "WARN"}],
                 "resources": {"requests": {"cpu": "4", "memory": "32Gi"}, "limits": {"memory": "32Gi"}},
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "log-shipper", "image": "registry.example.com/ops/fluent-bit:3.1",
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
            ],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "datasets"}}],
        }
        if i % 3 == 0:
            spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
        if i % 4 == 0:
            spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["westeurope-1"]}]},
                {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["westeurope-2"]}]}]}}}
        kwargs = {"gpus": 1 + i % 4, "container": "trainer", "mig_profile": migs[i % len(migs)], "spot": i % 2 == 0,
                  "gpu_products": products[i % len(products)], "shm_size": "16Gi" if i % 2 else None,
                  "priority_class": "gpu-batch" if i % 5 == 0 else None}
        cases.append((spec, kwargs))
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10000, help="pod specs per run (default 10000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best and the mean are printed (default 3)")
    args = parser.parse_args()

    module = _import_collection()
    cases = workload(args.count)
    timings = []
    for _run in range(args.repeat):
        start = time.perf_counter()
        for spec, kwargs in cases:
            module.render_gpu_pod_spec(spec, **kwargs)
        timings.append(time.perf_counter() - start)
    best = min(timings)
    mean = sum(timings) / len(timings)
    print("render_gpu_pod_spec: %d pod specs per run, %d runs, Python %s on %s" % (
        args.count, args.repeat, platform.python_version(), platform.machine()))
    print("best run: %.3f s total, %.1f us per spec" % (best, best / args.count * 1e6))
    print("mean run: %.3f s total, %.1f us per spec" % (mean, mean / args.count * 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
