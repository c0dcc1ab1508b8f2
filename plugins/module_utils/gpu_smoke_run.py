# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Orchestration of the GPU smoke test: glue between the API (k8s_watch) and the pure pieces (gpu_smoke).

Selects the nodes, creates one Job per node, waits for them with a watch, judges each node and cleans up.
Used by the gpu_smoke_test module; takes a transport so it runs against a fake in unit tests.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time
import uuid

from ansible_collections.mlops.platform.plugins.module_utils.gpu_readiness import node_condition
from ansible_collections.mlops.platform.plugins.module_utils.gpu_smoke import (
    CONTAINER_NAME,
    DEFAULT_IMAGE,
    RUN_LABEL,
    job_finished,
    node_verdict,
    render_job,
)
from ansible_collections.mlops.platform.plugins.module_utils.gpu_vocabulary import DEFAULT_LABEL_SELECTORS
from ansible_collections.mlops.platform.plugins.module_utils.k8s_values import GpuSpecError
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import (
    ApiError,
    Informer,
    list_all,
    watch_until,
)

# Job name and labels of the run that validate_smoke_params renders to check the pod-spec options.
_PROBE_NODE = "validation-node"
_PROBE_RUN_ID = "000000"


def smoke_argument_spec(**extra):
    """The gpu_smoke_test options, plus ``extra`` (the caller adds the auth options)."""
    spec = dict(
        label_selectors=dict(type="list", elements="str", default=list(DEFAULT_LABEL_SELECTORS)),
        nodes=dict(type="list", elements="str"),
        skip_not_ready=dict(type="bool", default=True),
        namespace=dict(type="str", default="default"),
        image=dict(type="str", default=DEFAULT_IMAGE),
        command=dict(type="list", elements="str"),
        gpus=dict(type="int", default=1),
        mig_profile=dict(type="str"),
        tolerations=dict(type="list", elements="dict"),
        spot=dict(type="bool", default=False),
        priority_class=dict(type="str"),
        timeout=dict(type="int", default=300),
        cleanup=dict(type="bool", default=True),
        fail_on_error=dict(type="bool", default=True),
    )
    spec.update(extra)
    return spec


def new_run_id():
    """A short random identifier of one smoke run (the value of the run label on its Jobs)."""
    return uuid.uuid4().hex[:6]


def render_node_job(node_name, run_id, params):
    """The smoke Job for one node, from the module options."""
    return render_job(
        node_name, run_id, params["namespace"], image=params["image"], gpus=params["gpus"],
        mig_profile=params.get("mig_profile"), tolerations=params.get("tolerations"), spot=params["spot"],
        command=params.get("command"), active_deadline=params["timeout"] + 60,
        priority_class=params.get("priority_class"),
    )


def validate_smoke_params(params):
    """Return an error message for invalid option values, else None. Makes no API request."""
    if params["timeout"] < 1:
        return "timeout must be >= 1"
    if params["gpus"] < 1:
        return "gpus must be >= 1"
    try:
        render_node_job(_PROBE_NODE, _PROBE_RUN_ID, params)
    except GpuSpecError as err:
        return "invalid smoke test pod spec: %s" % err
    return None


def select_nodes(transport, label_selectors, names=None):
    """Nodes matching any selector (one paginated list per selector), optionally restricted to names."""
    found = {}
    for selector in label_selectors or [""]:
        query = {"labelSelector": selector} if selector else {}
        items, dummy = list_all(transport, "/api/v1/nodes", query)
        for node in items:
            found[node["metadata"]["name"]] = node
    if names:
        found = dict((k, v) for k, v in found.items() if k in names)
    return [found[k] for k in sorted(found)]


def node_skip_reason(node):
    """Why a node is not tested (NotReady or cordoned), else None."""
    cond = node_condition(node, "Ready")
    if not cond or cond.get("status") != "True":
        return "node NotReady: not tested"
    if (node.get("spec") or {}).get("unschedulable"):
        return "node is cordoned: not tested"
    return None


def _skipped(name, reason):
    return {"node": name, "job": None, "pod": None, "passed": False, "skipped": True, "job_status": None,
            "phase": None, "exit_code": None, "log_passed": False, "log_tail": "", "reasons": [reason]}


def cleanup(transport, jobs_path, pods_path, selector, created):
    """Delete the Jobs (Background propagation) and their pods; return (all deleted, error messages)."""
    errors = []
    for job in created.values():
        try:
            transport.request("DELETE", "%s/%s" % (jobs_path, job["metadata"]["name"]), query={"propagationPolicy": "Background"})
        except ApiError as err:
            if err.status != 404:
                errors.append("Job %s: %s" % (job["metadata"]["name"], err))
    try:
        transport.request("DELETE", pods_path, query={"labelSelector": selector})
    except ApiError as err:
        if err.status != 404:
            errors.append("pods %s: %s" % (selector, err))
    return not errors, errors


def _watch_jobs_until_finished(transport, jobs_path, selector, created, deadline, clock):
    """Watch the run's Jobs until every created one has finished or ``deadline``; return them by name."""
    finished = {}
    informer = Informer("jobs", transport, jobs_path, {"labelSelector": selector})

    def _all_done():
        jobs = dict((j["metadata"]["name"], j) for j in informer.items() or [])
        finished.clear()
        finished.update(jobs)
        return all(job_finished(jobs.get(c["metadata"]["name"])) for c in created.values()), jobs

    informer.relist()
    if not _all_done()[0]:
        watch_until([informer], _all_done, deadline, clock=clock)
    return finished


def _pods_by_job(transport, pods_path, selector):
    pods, dummy = list_all(transport, pods_path, {"labelSelector": selector})
    by_job = {}
    for pod in pods:
        job_label = (pod["metadata"].get("labels") or {}).get("job-name")
        owner = [r.get("name") for r in pod["metadata"].get("ownerReferences") or [] if r.get("kind") == "Job"]
        by_job.setdefault(owner[0] if owner else job_label, []).append(pod)
    return by_job


def _judge_node(transport, pods_path, name, created_job, finished, pods_by_job, timeout):
    jname = created_job["metadata"]["name"]
    job = finished.get(jname) or created_job
    candidates = sorted(pods_by_job.get(jname, []), key=lambda p: p["metadata"].get("creationTimestamp") or "")
    pod = candidates[-1] if candidates else None
    log_text = ""
    log_error = None
    if pod is not None and (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        try:
            log_text = transport.request_text("%s/%s/log" % (pods_path, pod["metadata"]["name"]),
                                              {"container": CONTAINER_NAME})
        except ApiError as err:
            log_error = str(err)
    entry = node_verdict(name, job, pod, log_text, timed_out=job_finished(job) is None, timeout=timeout)
    entry["skipped"] = False
    if log_error:
        entry["reasons"].append("could not read the log: %s" % log_error)
    return entry


def run_smoke(transport, params, run_id, check_mode=False, clock=time.monotonic):
    """Create, wait for, judge and clean up the smoke Jobs. Returns the module result (without msg).

    An ApiError raised on the way carries ``changed`` (whether some Job was created); the Jobs created so far
    are cleaned up anyway when ``params['cleanup']``.
    """
    start = clock()
    namespace = params["namespace"]
    jobs_path = "/apis/batch/v1/namespaces/%s/jobs" % namespace
    pods_path = "/api/v1/namespaces/%s/pods" % namespace
    selector = "%s=%s" % (RUN_LABEL, run_id)
    nodes = select_nodes(transport, params["label_selectors"], params.get("nodes"))
    results, to_run = [], []
    for node in nodes:
        name = node["metadata"]["name"]
        reason = node_skip_reason(node) if params["skip_not_ready"] else None
        if reason:
            results.append(_skipped(name, reason))
        else:
            to_run.append(name)
    manifests = dict((name, render_node_job(name, run_id, params)) for name in to_run)
    changed = False
    cleaned = False
    cleanup_errors = []
    if check_mode:
        for name in to_run:
            entry = node_verdict(name, None, None, "")
            entry.update(job=manifests[name]["metadata"]["name"], skipped=False,
                         reasons=["check mode: Job not created"])
            results.append(entry)
        changed = bool(to_run)
    else:
        created = {}
        try:
            for name in to_run:
                created[name] = transport.request("POST", jobs_path, body=manifests[name])
                changed = True
            finished, pods_by_job = {}, {}
            if created:
                finished = _watch_jobs_until_finished(transport, jobs_path, selector, created,
                                                      start + params["timeout"], clock)
                pods_by_job = _pods_by_job(transport, pods_path, selector)
            for name in to_run:
                if name not in created:
                    results.append(node_verdict(name, None, None, ""))
                    continue
                results.append(_judge_node(transport, pods_path, name, created[name], finished, pods_by_job,
                                           params["timeout"]))
        except ApiError as err:
            err.changed = changed
            raise
        finally:
            if params["cleanup"] and created:
                cleaned, cleanup_errors = cleanup(transport, jobs_path, pods_path, selector, created)
    results.sort(key=lambda r: r["node"])
    passed_nodes = [r["node"] for r in results if r["passed"]]
    failed_nodes = [r["node"] for r in results if not r["passed"]]
    return {
        "changed": changed,
        "passed": bool(results) and not failed_nodes and not check_mode,
        "passed_nodes": passed_nodes,
        "failed_nodes": failed_nodes,
        "results": results,
        "run_id": run_id,
        "namespace": namespace,
        "cleaned_up": cleaned,
        "cleanup_errors": cleanup_errors,
        "elapsed": round(clock() - start, 3),
        "api_requests": getattr(transport, "requests", None),
    }


def smoke_message(result, check_mode=False):
    """One line: what was (or in check mode would be) tested, and why nodes failed; cleanup errors last."""
    tested = len(result["results"])
    if check_mode:
        planned = [r["node"] for r in result["results"] if not r["skipped"]]
        msg = "check mode: nothing created; would run a GPU smoke Job on %d node(s): %s" % (len(planned), ", ".join(planned))
    elif not tested:
        msg = "no node matched the label selectors"
    elif result["passed"]:
        msg = "GPU smoke test passed on %d of %d node(s)" % (len(result["passed_nodes"]), tested)
    else:
        details = "; ".join("%s: %s" % (r["node"], ", ".join(r["reasons"])) for r in result["results"] if not r["passed"])
        msg = "GPU smoke test failed on %d of %d node(s): %s" % (len(result["failed_nodes"]), tested, details)
    if result["cleanup_errors"]:
        msg += "; cleanup failed: " + "; ".join(result["cleanup_errors"])
    return msg
