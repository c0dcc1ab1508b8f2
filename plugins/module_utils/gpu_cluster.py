# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glue between the API (k8s_watch) and the pure verdicts (gpu_readiness).

Used by the gpu_readiness and gpu_node_info modules; takes a transport so it can run against a fake.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.mlops.platform.plugins.module_utils.gpu_readiness import (
    GpuReadinessError,
    evaluate,
    parse_label_selector,
    state_signature,
    summarize,
    validate_resource,
)
from ansible_collections.mlops.platform.plugins.module_utils.gpu_vocabulary import (
    CLUSTERPOLICY_PATH,
    DEFAULT_LABEL_SELECTORS,
    DEFAULT_OPERATOR_NAMESPACE,
    GPU_RESOURCE,
)
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import (
    DEFAULT_PAGE_SIZE,
    Informer,
    watch_until,
)


def check_argument_spec(**extra):
    """The options gpu_readiness and gpu_node_info share, plus ``extra`` (the caller adds the auth options)."""
    spec = dict(
        label_selectors=dict(type="list", elements="str", default=list(DEFAULT_LABEL_SELECTORS)),
        min_nodes=dict(type="int", default=1),
        require_all_nodes=dict(type="bool", default=False),
        gpus_per_node=dict(type="int"),
        resource=dict(type="str", default=GPU_RESOURCE),
        check_operator=dict(type="bool", default=True),
        operator_namespace=dict(type="str", default=DEFAULT_OPERATOR_NAMESPACE),
        page_size=dict(type="int", default=DEFAULT_PAGE_SIZE),
    )
    spec.update(extra)
    return spec


def validate_check_params(params):
    """Return an error message for invalid values of the shared options (and ``timeout`` if given), else None."""
    try:
        validate_resource(params["resource"])
    except GpuReadinessError as err:
        return str(err)
    for selector in params.get("label_selectors") or []:
        try:
            requirements = parse_label_selector(selector)
        except GpuReadinessError as err:
            return "label_selectors: %s" % err
        if any(not key for key, dummy_op, dummy_values in requirements):
            return "label_selectors: %r has a requirement without a label key" % (selector,)
    if params["min_nodes"] < 0:
        return "min_nodes must be >= 0"
    if params.get("gpus_per_node") is not None and params["gpus_per_node"] < 1:
        return "gpus_per_node must be >= 1"
    if params.get("timeout") is not None and params["timeout"] < 0:
        return "timeout must be >= 0"
    if params["page_size"] < 1:
        return "page_size must be >= 1"
    return None


def verdict_message(result):
    """One line: the ready summary, or the problems per node."""
    if result["ready"]:
        return "GPU cluster ready: %d of %d selected node(s) ready" % (result["ready_nodes"], result["total_nodes"])
    return summarize(result)


def build_informers(transport, label_selectors, check_operator=True, operator_namespace=DEFAULT_OPERATOR_NAMESPACE,
                    page_size=DEFAULT_PAGE_SIZE, watch_timeout=60):
    """One informer per node label selector, plus ClusterPolicies, DaemonSets and Pods of the operator."""
    informers = []
    selectors = list(label_selectors) if label_selectors else [""]
    for index, selector in enumerate(selectors):
        query = {"labelSelector": selector} if selector else {}
        informers.append(Informer("nodes-%d" % index, transport, "/api/v1/nodes", query,
                                  page_size=page_size, watch_timeout=watch_timeout))
    if check_operator:
        informers.append(Informer("clusterpolicies", transport, CLUSTERPOLICY_PATH,
                                  page_size=page_size, watch_timeout=watch_timeout))
        informers.append(Informer("daemonsets", transport, "/apis/apps/v1/namespaces/%s/daemonsets" % operator_namespace,
                                  page_size=page_size, watch_timeout=watch_timeout))
        informers.append(Informer("pods", transport, "/api/v1/namespaces/%s/pods" % operator_namespace,
                                  page_size=page_size, watch_timeout=watch_timeout))
    return informers


def verdict_from(informers, params):
    """Evaluate the pure verdict over the informers' caches."""
    nodes = {}
    clusterpolicies, daemonsets, pods = [], [], []
    for informer in informers:
        items = informer.items()
        if informer.key.startswith("nodes-"):
            for node in items or []:
                nodes[(node.get("metadata") or {}).get("name")] = node
        elif informer.key == "clusterpolicies":
            clusterpolicies = items
        elif informer.key == "daemonsets":
            daemonsets = items or []
        elif informer.key == "pods":
            pods = items or []
    return evaluate(
        list(nodes.values()),
        clusterpolicies=clusterpolicies,
        daemonsets=daemonsets,
        pods=pods,
        resource=params.get("resource") or GPU_RESOURCE,
        min_nodes=params.get("min_nodes", 1),
        gpus_per_node=params.get("gpus_per_node"),
        check_operator=params.get("check_operator", True),
        operator_namespace=params.get("operator_namespace") or DEFAULT_OPERATOR_NAMESPACE,
        require_all_nodes=params.get("require_all_nodes", False),
    )


def _progress_entry(start, verdict, clock):
    return {
        "elapsed": round(clock() - start, 3),
        "ready": verdict["ready"],
        "ready_nodes": verdict["ready_nodes"],
        "total_nodes": verdict["total_nodes"],
        "problems": verdict["problems"][:10],
        "problem_count": len(verdict["problems"]),
    }


def run_check(transport, params, clock=time.monotonic, log=None):
    """Check once, or (params['wait']) watch until ready or timeout.

    Returns a dict: the verdict plus ``elapsed``, ``timed_out``, ``progress`` and ``api_requests``.
    """
    start = clock()
    informers = build_informers(
        transport,
        params.get("label_selectors"),
        check_operator=params.get("check_operator", True),
        operator_namespace=params.get("operator_namespace") or DEFAULT_OPERATOR_NAMESPACE,
        page_size=params.get("page_size") or DEFAULT_PAGE_SIZE,
    )
    progress = []
    last = [None]

    def record(verdict):
        signature = state_signature(verdict)
        if signature != last[0]:
            last[0] = signature
            entry = _progress_entry(start, verdict, clock)
            progress.append(entry)
            if log is not None:
                log("gpu readiness after %.3fs: ready=%s ready_nodes=%d/%d problems=%d" % (
                    entry["elapsed"], entry["ready"], entry["ready_nodes"], entry["total_nodes"], entry["problem_count"]))

    timed_out = False
    # Initial lists happen here, in the calling thread, so that API errors surface at once.
    for informer in informers:
        informer.relist()
    verdict = verdict_from(informers, params)
    record(verdict)
    if params.get("wait") and not verdict["ready"]:
        deadline = start + float(params.get("timeout") or 0)

        def _evaluate():
            result = verdict_from(informers, params)
            return result["ready"], result

        done, latest = watch_until(informers, _evaluate, deadline, on_change=record, clock=clock)
        verdict = latest or verdict
        timed_out = not done
    result = dict(verdict)
    result["elapsed"] = round(clock() - start, 3)
    result["timed_out"] = timed_out
    result["progress"] = progress
    result["api_requests"] = getattr(transport, "requests", None)
    errors = [i.last_error for i in informers if i.last_error]
    if errors:
        result["watch_errors"] = errors
    return result
