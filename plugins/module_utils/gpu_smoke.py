# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure pieces of the GPU smoke test: Job manifests per node and the per-node verdict."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re

from ansible_collections.mlops.platform.plugins.module_utils.gpu_pod_spec import render_gpu_pod_spec

DEFAULT_IMAGE = "nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0"
PASS_MARKER = "Test PASSED"
RUN_LABEL = "mlops.platform/gpu-smoke-run"
NODE_LABEL = "mlops.platform/gpu-smoke-node"
CONTAINER_NAME = "vectoradd"
_NAME_RE = re.compile(r"[^a-z0-9-]+")


def job_name(node_name, run_id):
    """A DNS-1123 Job name unique per node and run (<= 63 characters)."""
    clean = _NAME_RE.sub("-", node_name.lower()).strip("-") or "node"
    digest = hashlib.sha256(node_name.encode("utf-8")).hexdigest()[:6]
    prefix = "gpu-smoke-"
    suffix = "-%s-%s" % (digest, run_id)
    room = 63 - len(prefix) - len(suffix)
    return prefix + clean[:room].strip("-") + suffix


def render_job(node_name, run_id, namespace, image=DEFAULT_IMAGE, gpus=1, mig_profile=None, tolerations=None,
               spot=False, command=None, active_deadline=None, priority_class=None, labels=None):
    """Job manifest that runs the CUDA sample once on ``node_name``.

    The pod spec comes from render_gpu_pod_spec (GPU limit, GPU tolerations); it is pinned with
    ``nodeName`` so the scheduler is bypassed and the node is tested even if it is cordoned away
    from normal scheduling decisions, and the default node selector is dropped in favour of
    ``kubernetes.io/hostname``.
    """
    container = {"name": CONTAINER_NAME, "image": image}
    if command:
        container["command"] = list(command)
    base = {"restartPolicy": "Never", "containers": [container]}
    spec = render_gpu_pod_spec(
        base,
        gpus=gpus,
        container=CONTAINER_NAME,
        mig_profile=mig_profile,
        node_selector={"kubernetes.io/hostname": node_name},
        tolerations=tolerations,
        spot=spot,
        priority_class=priority_class,
    )
    spec["nodeName"] = node_name
    if active_deadline:
        spec["activeDeadlineSeconds"] = int(active_deadline)
    meta_labels = {RUN_LABEL: run_id, NODE_LABEL: _NAME_RE.sub("-", node_name.lower())[:63].strip("-")}
    meta_labels.update(labels or {})
    job_spec = {
        "backoffLimit": 0,
        "template": {"metadata": {"labels": dict(meta_labels)}, "spec": spec},
    }
    if active_deadline:
        job_spec["activeDeadlineSeconds"] = int(active_deadline)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(node_name, run_id), "namespace": namespace, "labels": meta_labels},
        "spec": job_spec,
    }


def job_finished(job):
    """'Complete', 'Failed' or None from a Job's status conditions."""
    status = (job or {}).get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return cond["type"]
    return None


def _terminated(pod):
    for cstat in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        if cstat.get("name") == CONTAINER_NAME or len(((pod.get("status") or {}).get("containerStatuses") or [])) == 1:
            return (cstat.get("state") or {}).get("terminated") or (cstat.get("lastState") or {}).get("terminated")
    return None


def _waiting_reason(pod):
    for cstat in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        waiting = (cstat.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return waiting["reason"] + (": " + waiting["message"] if waiting.get("message") else "")
    for cond in ((pod or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return "unschedulable: %s" % (cond.get("message") or cond.get("reason"))
    return None


def node_verdict(node_name, job, pod, log_text, timed_out=False, timeout=None):
    """Per-node smoke test result."""
    result = {
        "node": node_name,
        "job": ((job or {}).get("metadata") or {}).get("name"),
        "pod": ((pod or {}).get("metadata") or {}).get("name"),
        "passed": False,
        "job_status": job_finished(job),
        "phase": ((pod or {}).get("status") or {}).get("phase"),
        "exit_code": None,
        "log_passed": bool(log_text and PASS_MARKER in log_text),
        "log_tail": "\n".join((log_text or "").strip().splitlines()[-5:]),
        "reasons": [],
    }
    term = _terminated(pod)
    if term is not None:
        result["exit_code"] = term.get("exitCode")
    reasons = result["reasons"]
    if job is None:
        reasons.append("Job was not created")
    elif timed_out:
        detail = _waiting_reason(pod) if pod else "no pod created"
        reasons.append("timed out after %ss waiting for the Job (pod phase %s%s)"
                       % (timeout, result["phase"] or "none", ", " + detail if detail else ""))
    if pod is None and job is not None and not timed_out:
        reasons.append("no pod found for the Job")
    if result["job_status"] == "Failed":
        conds = [c for c in ((job.get("status") or {}).get("conditions") or []) if c.get("type") == "Failed"]
        why = (conds[0].get("reason") or "") if conds else ""
        reasons.append("Job failed" + (" (%s)" % why if why else ""))
    if result["phase"] not in (None, "Succeeded") and not timed_out:
        reasons.append("pod phase is %s" % result["phase"])
    if result["exit_code"] not in (None, 0):
        reasons.append("container exited with code %s" % result["exit_code"])
    if pod is not None and result["phase"] in ("Succeeded", "Failed") and not result["log_passed"]:
        reasons.append("log does not contain %r" % PASS_MARKER)
    result["passed"] = (
        not reasons and result["job_status"] == "Complete" and result["phase"] == "Succeeded"
        and result["exit_code"] in (None, 0) and result["log_passed"]
    )
    if not result["passed"] and not reasons:
        reasons.append("Job did not complete")
    return result
