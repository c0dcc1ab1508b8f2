# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure pieces of the GPU training Job: the options, the manifest, what to do with an existing Job, and verdicts.

The pod spec comes from ``render_gpu_pod_spec`` (the implementation behind the ``gpu_pod_spec`` filter), so a
training Job gets exactly the GPU limit, tolerations, node selector, affinity and MIG resource names any other GPU
workload of the collection gets. Nothing here talks to a cluster; gpu_training_run.py does.

Idempotence: the rendered manifest is stored, as canonical JSON, in the annotation ``SPEC_ANNOTATION`` of the Job
it creates. An existing Job whose stored manifest equals the one rendered now is left alone; any other existing
Job with the name is "different" (a Job's pod template is immutable, so it can only be replaced).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
from datetime import datetime, timezone

from ansible_collections.mlops.platform.plugins.module_utils.gpu_pod_spec import render_gpu_pod_spec
from ansible_collections.mlops.platform.plugins.module_utils.k8s_values import (
    GpuSpecError,
    check_dns1123_label,
    check_dns1123_subdomain,
    cpu_quantity,
    memory_quantity,
    string_map,
)

CONTAINER_NAME = "trainer"
MANAGED_BY = "mlops.platform.gpu_training_job"
JOB_LABEL = "mlops.platform/training-job"
SPEC_ANNOTATION = "mlops.platform/training-job-spec"
DEFAULT_PRIORITY_CLASS = "ml-training"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"

_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?Z$")

PENDING, RUNNING, SUCCEEDED, FAILED = "pending", "running", "succeeded", "failed"
FINISHED = (SUCCEEDED, FAILED)

# Actions of plan_action.
CREATE, UNCHANGED, REPLACE, CONFLICT, DELETE, ABSENT = "create", "unchanged", "replace", "conflict", "delete", "absent"


def training_argument_spec(**extra):
    """The gpu_training_job options, plus ``extra`` (the caller adds the auth options)."""
    spec = dict(
        name=dict(type="str", required=True),
        namespace=dict(type="str", default="default"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        image=dict(type="str"),
        command=dict(type="list", elements="str"),
        args=dict(type="list", elements="str"),
        gpus=dict(type="int", default=1),
        mig_profile=dict(type="str"),
        gpu_products=dict(type="list", elements="str"),
        node_selector=dict(type="dict"),
        tolerations=dict(type="list", elements="dict"),
        spot=dict(type="bool", default=False),
        shm_size=dict(type="str"),
        cpu=dict(type="str"),
        memory=dict(type="str"),
        env=dict(type="dict", default={}),
        mlflow_tracking_uri=dict(type="str"),
        mlflow_experiment_name=dict(type="str"),
        # The name of a Secret, not a secret.
        mlflow_credentials_secret=dict(type="str", no_log=False),
        data_volumes=dict(type="list", elements="dict", default=[], options=dict(
            claim_name=dict(type="str", required=True),
            mount_path=dict(type="str", required=True),
            read_only=dict(type="bool", default=False),
            name=dict(type="str"),
        )),
        priority_class_name=dict(type="str", default=DEFAULT_PRIORITY_CLASS),
        backoff_limit=dict(type="int", default=0),
        active_deadline_seconds=dict(type="int"),
        ttl=dict(type="int"),
        labels=dict(type="dict", default={}),
        service_account=dict(type="str"),
        restricted=dict(type="bool", default=True),
        replace=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        timeout=dict(type="int", default=3600),
        log_lines=dict(type="int", default=20),
    )
    spec.update(extra)
    return spec


def _container_env(params):
    """The container's env list: the ``env`` dict sorted by name, then the MLflow wiring (which wins)."""
    env = dict((str(k), str(v)) for k, v in (params.get("env") or {}).items())
    if params.get("mlflow_tracking_uri"):
        env[TRACKING_URI_ENV] = params["mlflow_tracking_uri"]
    if params.get("mlflow_experiment_name"):
        env[EXPERIMENT_ENV] = params["mlflow_experiment_name"]
    result = [{"name": key, "value": env[key]} for key in sorted(env)]
    secret = params.get("mlflow_credentials_secret")
    if secret:
        for var, key in ((USERNAME_ENV, "username"), (PASSWORD_ENV, "password")):
            result.append({"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    return result


def _volumes(params):
    volumes, mounts, seen = [], [], set()
    for index, item in enumerate(params.get("data_volumes") or []):
        where = "data_volumes[%d]" % index
        check_dns1123_subdomain(item.get("claim_name"), where + ".claim_name")
        name = item.get("name") or "data-%d" % index
        check_dns1123_label(name, where + ".name")
        if name in seen:
            raise GpuSpecError("%s.name: volume name %r is used twice" % (where, name))
        seen.add(name)
        path = item.get("mount_path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise GpuSpecError("%s.mount_path: expected an absolute path, got %r" % (where, path))
        volumes.append({"name": name, "persistentVolumeClaim": {"claimName": item["claim_name"],
                                                                "readOnly": bool(item.get("read_only"))}})
        mounts.append({"name": name, "mountPath": path, "readOnly": bool(item.get("read_only"))})
    return volumes, mounts


def _resources(params):
    wanted = {}
    if params.get("cpu"):
        wanted["cpu"] = cpu_quantity(params["cpu"], "cpu")[0]
    if params.get("memory"):
        wanted["memory"] = memory_quantity(params["memory"], "memory")[0]
    if not wanted:
        return None
    return {"requests": dict(wanted), "limits": dict(wanted)}


def job_labels(params):
    """Labels of the Job and its pods: the user's, then the collection's own (which win)."""
    labels = string_map(params.get("labels") or {}, "labels")
    labels = dict(labels)
    labels.update({"app.kubernetes.io/managed-by": MANAGED_BY, JOB_LABEL: params["name"]})
    return labels


def render_training_job(params):
    """The ``batch/v1`` Job for the module options. Raises GpuSpecError naming the offending option."""
    check_dns1123_label(params.get("name"), "name")
    check_dns1123_label(params.get("namespace"), "namespace")
    if not params.get("image"):
        raise GpuSpecError("image: required with state=present")
    gpus = params.get("gpus", 1)
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise GpuSpecError("gpus: expected an integer >= 0, got %r" % (gpus,))
    for option in ("backoff_limit", "active_deadline_seconds", "ttl"):
        value = params.get(option)
        if value is not None and value < (1 if option == "active_deadline_seconds" else 0):
            raise GpuSpecError("%s: must be >= %d, got %r" % (option, 1 if option == "active_deadline_seconds" else 0, value))
    if params.get("mig_profile") and gpus == 0:
        raise GpuSpecError("mig_profile: needs gpus >= 1")
    priority = params.get("priority_class_name") or None
    if priority is not None:
        check_dns1123_subdomain(priority, "priority_class_name")
    if params.get("service_account"):
        check_dns1123_subdomain(params["service_account"], "service_account")
    if params.get("mlflow_credentials_secret"):
        check_dns1123_subdomain(params["mlflow_credentials_secret"], "mlflow_credentials_secret")
    labels = job_labels(params)
    volumes, mounts = _volumes(params)

    container = {"name": CONTAINER_NAME, "image": params["image"]}
    if params.get("command"):
        container["command"] = list(params["command"])
    if params.get("args"):
        container["args"] = list(params["args"])
    env = _container_env(params)
    if env:
        container["env"] = env
    resources = _resources(params)
    if resources:
        container["resources"] = resources
    if mounts:
        container["volumeMounts"] = mounts
    pod = {"restartPolicy": "Never", "containers": [container]}
    if volumes:
        pod["volumes"] = volumes
    if params.get("service_account"):
        pod["serviceAccountName"] = params["service_account"]
    else:
        pod["automountServiceAccountToken"] = False
    if params.get("restricted", True):
        pod["securityContext"] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
        container["securityContext"] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    if gpus == 0:
        if params.get("node_selector"):
            pod["nodeSelector"] = dict(string_map(params["node_selector"], "node_selector"))
        if priority:
            pod["priorityClassName"] = priority
    else:
        pod = render_gpu_pod_spec(
            pod, gpus=gpus, container=CONTAINER_NAME, mig_profile=params.get("mig_profile"),
            node_selector=params.get("node_selector"), tolerations=params.get("tolerations"),
            spot=bool(params.get("spot")), gpu_products=params.get("gpu_products"), shm_size=params.get("shm_size"),
            priority_class=priority)
    job_spec = {"backoffLimit": params.get("backoff_limit", 0),
                "template": {"metadata": {"labels": dict(labels)}, "spec": pod}}
    if params.get("active_deadline_seconds"):
        job_spec["activeDeadlineSeconds"] = params["active_deadline_seconds"]
    if params.get("ttl") is not None:
        job_spec["ttlSecondsAfterFinished"] = params["ttl"]
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": params["name"], "namespace": params["namespace"], "labels": labels},
        "spec": job_spec,
    }
    manifest["metadata"]["annotations"] = {SPEC_ANNOTATION: canonical(manifest)}
    return manifest


def canonical(manifest):
    """Canonical JSON of a manifest, without the spec annotation."""
    body = json.loads(json.dumps(manifest))
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    annotations.pop(SPEC_ANNOTATION, None)
    if "annotations" in body.get("metadata", {}) and not annotations:
        del body["metadata"]["annotations"]
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def stored_manifest(job):
    """The manifest this module stored on an existing Job, or None (not ours, or unreadable)."""
    text = (((job or {}).get("metadata") or {}).get("annotations") or {}).get(SPEC_ANNOTATION)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def same_spec(job, desired):
    """True when the existing Job was created from exactly the manifest rendered now."""
    stored = (((job or {}).get("metadata") or {}).get("annotations") or {}).get(SPEC_ANNOTATION)
    return stored is not None and stored == desired["metadata"]["annotations"][SPEC_ANNOTATION]


def plan_action(existing, desired, state, replace=False):
    """What to do: CREATE, UNCHANGED, REPLACE or CONFLICT for state=present; DELETE or ABSENT for state=absent."""
    if state == "absent":
        return DELETE if existing else ABSENT
    if not existing:
        return CREATE
    if same_spec(existing, desired):
        return UNCHANGED
    return REPLACE if replace else CONFLICT


def conflict_message(existing, namespace, name):
    """Why a different existing Job is not replaced."""
    state = job_state(existing)
    ours = stored_manifest(existing) is not None
    return ("Job %s/%s already exists (%s) with a different spec%s; a Job's pod template is immutable, so it can only be "
            "replaced: set replace=true to delete it and create the new one, or choose another name"
            % (namespace, name, state, "" if ours else ", and it was not created by this module"))


def diff_for(existing, desired, state):
    """``{'before', 'after'}`` for --diff: the stored manifest of the existing Job, and what is wanted."""
    before = {}
    if existing:
        before = stored_manifest(existing)
        if before is None:
            before = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
                "name": existing["metadata"]["name"], "namespace": existing["metadata"].get("namespace")},
                "spec": existing.get("spec") or {}}
    after = {}
    if state == "present" and desired is not None:
        after = json.loads(canonical(desired))
    return {"before": before, "after": after}


# ---------------------------------------------------------------------------------------------- verdicts


def job_condition(job, kind):
    """The True condition of ``kind`` ('Complete' or 'Failed') of a Job, or None."""
    for cond in ((job or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


def job_state(job, pod=None):
    """succeeded / failed from the Job's conditions; else running when a pod runs (or the Job counts one active)."""
    if job_condition(job, "Complete"):
        return SUCCEEDED
    if job_condition(job, "Failed"):
        return FAILED
    if pod is not None and ((pod.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed")):
        return RUNNING
    return PENDING


def newest_pod(pods):
    """The most recently created pod, or None."""
    pods = [p for p in pods or [] if p]
    if not pods:
        return None
    return sorted(pods, key=lambda p: ((p.get("metadata") or {}).get("creationTimestamp") or "",
                                       (p.get("metadata") or {}).get("name") or ""))[-1]


def parse_time(text):
    """An RFC 3339 time of the API (``2026-01-02T03:04:05Z``) as an aware datetime, or None."""
    if not text:
        return None
    match = _TIME_RE.match(text)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def finished_at(job):
    """When the Job finished: completionTime, else the Failed condition's transition time."""
    status = (job or {}).get("status") or {}
    if status.get("completionTime"):
        return status["completionTime"]
    failed = job_condition(job, "Failed")
    return (failed or {}).get("lastTransitionTime")


def duration_seconds(job, now=None):
    """Seconds from the Job's startTime to its end (or ``now`` while it runs); None before it started."""
    start = parse_time(((job or {}).get("status") or {}).get("startTime"))
    if start is None:
        return None
    end = parse_time(finished_at(job)) or now
    if end is None:
        return None
    return max(0, int(round((end - start).total_seconds())))


def history_progress(job, pod=None):
    """Progress of a Job found already finished, from the timestamps the API recorded."""
    entries = []
    created = ((job or {}).get("metadata") or {}).get("creationTimestamp")
    if created:
        entries.append({"state": PENDING, "time": created, "source": "status"})
    started = ((pod or {}).get("status") or {}).get("startTime") or ((job or {}).get("status") or {}).get("startTime")
    state = job_state(job, pod)
    if started and state in (RUNNING, SUCCEEDED, FAILED):
        entries.append({"state": RUNNING, "time": started, "source": "status"})
    if state in FINISHED:
        entries.append({"state": state, "time": finished_at(job), "source": "status"})
    return entries


def _terminated(pod):
    for cstat in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        if cstat.get("name") == CONTAINER_NAME:
            return (cstat.get("state") or {}).get("terminated") or (cstat.get("lastState") or {}).get("terminated")
    return None


def pod_problem(pod):
    """Why a pod does not run or did not succeed: waiting reason, unschedulable message, or exit code."""
    if pod is None:
        return None
    status = pod.get("status") or {}
    term = _terminated(pod)
    if term is not None and term.get("exitCode") not in (None, 0):
        why = " (%s)" % term["reason"] if term.get("reason") else ""
        return "container %s exited with code %s%s" % (CONTAINER_NAME, term.get("exitCode"), why)
    for cstat in status.get("containerStatuses") or []:
        waiting = (cstat.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason") and waiting["reason"] not in ("ContainerCreating", "PodInitializing"):
            detail = ": " + waiting["message"] if waiting.get("message") else ""
            return "container %s waiting: %s%s" % (cstat.get("name"), waiting["reason"], detail)
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return "unschedulable: %s" % (cond.get("message") or cond.get("reason"))
    if status.get("phase") == "Failed" and status.get("reason"):
        return "pod failed: %s%s" % (status["reason"], ": " + status["message"] if status.get("message") else "")
    return None


def failure_reason(job, pod, events=None):
    """One line: why the Job failed (its Failed condition, the pod's problem, warning events)."""
    parts = []
    cond = job_condition(job, "Failed")
    if cond:
        parts.append("%s%s" % (cond.get("reason") or "Failed", ": " + cond["message"] if cond.get("message") else ""))
    problem = pod_problem(pod)
    if problem:
        node = (pod.get("spec") or {}).get("nodeName")
        parts.append("pod %s%s: %s" % ((pod.get("metadata") or {}).get("name"), " on node %s" % node if node else "", problem))
    warnings = warning_events(events)
    if warnings:
        parts.append("warning events: " + "; ".join(warnings))
    return "; ".join(parts) or "the Job did not finish"


def warning_events(events, limit=5):
    """Distinct messages of Warning events, newest last, at most ``limit``."""
    seen = []
    for event in sorted(events or [], key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or ""):
        if event.get("type") != "Warning":
            continue
        text = "%s: %s" % (event.get("reason"), event.get("message"))
        if text not in seen:
            seen.append(text)
    return seen[-limit:]


def log_tail(text, lines):
    """The last ``lines`` lines of a log, as a list of strings."""
    if lines <= 0 or not text:
        return []
    return text.rstrip("\n").splitlines()[-lines:]


def validate_training_params(params):
    """An error message for invalid options, else None. Makes no API request."""
    if params.get("timeout") is not None and params["timeout"] < 1:
        return "timeout must be >= 1"
    if params.get("log_lines") is not None and params["log_lines"] < 0:
        return "log_lines must be >= 0"
    try:
        check_dns1123_label(params.get("name"), "name")
        check_dns1123_label(params.get("namespace"), "namespace")
        if params.get("state", "present") == "present":
            render_training_job(params)
    except GpuSpecError as err:
        return "invalid training Job: %s" % err
    return None


def summary(result):
    """One line for the module's ``msg``."""
    where = "%s/%s" % (result.get("namespace"), result.get("job"))
    action = result.get("action")
    if action in (DELETE, ABSENT):
        return "Job %s %s" % (where, "deleted" if action == DELETE else "is absent")
    verb = {CREATE: "created", REPLACE: "replaced", UNCHANGED: "unchanged"}.get(action, action)
    text = "Job %s %s; status %s" % (where, verb, result.get("status"))
    if result.get("duration_seconds") is not None:
        text += " after %ss" % result["duration_seconds"]
    if result.get("node"):
        text += " on node %s" % result["node"]
    if result.get("reason"):
        text += ": %s" % result["reason"]
    return text
