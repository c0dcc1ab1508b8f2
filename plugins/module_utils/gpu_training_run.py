# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GPU training Job against the API: glue between k8s_watch / k8s_retry and the pure pieces (gpu_training).

Used by the gpu_training_job module; takes a transport (k8s_watch's interface) so it runs against a fake.
Reads go through the transport, which retries transient failures; the writes here (create, delete) are
retried through k8s_retry too, because each is safe to repeat: a create that the server carried out before
the connection broke answers 409 on the retry and is recognised by its stored spec, a repeated delete 404.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time
from datetime import datetime, timezone

from ansible_collections.mlops.platform.plugins.module_utils.gpu_training import (
    ABSENT,
    CONFLICT,
    CONTAINER_NAME,
    CREATE,
    DELETE,
    FAILED,
    FINISHED,
    REPLACE,
    UNCHANGED,
    conflict_message,
    diff_for,
    duration_seconds,
    failure_reason,
    history_progress,
    job_state,
    log_tail,
    newest_pod,
    plan_action,
    render_training_job,
    same_spec,
)
from ansible_collections.mlops.platform.plugins.module_utils.k8s_retry import RetryPolicy, call_with_retry
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import ApiError, Informer, list_all, watch_until


class TrainingJobError(Exception):
    """A failure the module reports with the partial result gathered so far."""

    def __init__(self, message, result):
        super(TrainingJobError, self).__init__(message)
        self.result = result


def _now():
    return datetime.now(timezone.utc)


def _stamp(when):
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class TrainingRun(object):
    """One invocation of the module: plan, apply, wait and judge."""

    def __init__(self, transport, params, check_mode=False, clock=time.monotonic, now=_now, write_policy=None, sleep=time.sleep):
        self.transport = transport
        self.params = params
        self.check_mode = check_mode
        self.clock = clock
        self.now = now
        self.write_policy = write_policy or RetryPolicy()
        self.sleep = sleep
        self.namespace = params["namespace"]
        self.name = params["name"]
        self.jobs_path = "/apis/batch/v1/namespaces/%s/jobs" % self.namespace
        self.job_path = "%s/%s" % (self.jobs_path, self.name)
        self.pods_path = "/api/v1/namespaces/%s/pods" % self.namespace
        self.start = clock()
        self.progress = []
        self.write_retries = 0

    # -- API helpers
    def _write(self, func):
        def count(*dummy):
            self.write_retries += 1
        return call_with_retry(func, self.write_policy, sleep=self.sleep, on_retry=count)

    def get_job(self):
        try:
            return self.transport.request("GET", self.job_path)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def pods_of(self, job):
        uid = ((job or {}).get("metadata") or {}).get("uid")
        if not uid:
            return []
        pods, dummy = list_all(self.transport, self.pods_path, {"labelSelector": "controller-uid=%s" % uid})
        return pods

    def events_of(self, names):
        found = []
        for name in names:
            try:
                items, dummy = list_all(self.transport, "/api/v1/namespaces/%s/events" % self.namespace,
                                        {"fieldSelector": "involvedObject.name=%s" % name})
            except ApiError:
                continue
            found.extend(items)
        return found

    def priority_class_problem(self):
        """A message when the PriorityClass is missing (pods would be refused); None when present or not checkable."""
        name = self.params.get("priority_class_name")
        if not name:
            return None
        try:
            self.transport.request("GET", "/apis/scheduling.k8s.io/v1/priorityclasses/%s" % name)
        except ApiError as err:
            if err.status == 404:
                return ("PriorityClass %r does not exist, so the Job's pods would be refused; create it (the platform_base "
                        "role does) or set priority_class_name to another class or to an empty string" % name)
            return None  # e.g. 403: no right to read cluster-scoped classes; the pods will tell
        return None

    def delete_job(self):
        def send():
            try:
                self.transport.request("DELETE", self.job_path, query={"propagationPolicy": "Background"})
            except ApiError as err:
                if err.status != 404:
                    raise
        self._write(send)

    def create_job(self, manifest):
        def send():
            try:
                return self.transport.request("POST", self.jobs_path, body=manifest)
            except ApiError as err:
                if err.status == 409:
                    existing = self.get_job()
                    if existing is not None and same_spec(existing, manifest):
                        return existing  # our own create, carried out before a retried request
                raise
        return self._write(send)

    def wait_gone(self, uid, deadline):
        """Watch until no Job of the name with ``uid`` exists (a replaced Job must be gone before the new one)."""
        informer = Informer("job", self.transport, self.jobs_path, {"fieldSelector": "metadata.name=%s" % self.name})

        def gone():
            items = informer.items() or []
            return not any((j.get("metadata") or {}).get("uid") == uid for j in items), None

        informer.relist()
        if gone()[0]:
            return True
        done, dummy = watch_until([informer], gone, deadline, clock=self.clock)
        return done

    # -- progress
    def record(self, state):
        if self.progress and self.progress[-1]["state"] == state:
            return
        self.progress.append({"state": state, "time": _stamp(self.now()), "elapsed": round(self.clock() - self.start, 3),
                              "source": "watch"})

    def wait_finished(self, job, deadline):
        """Watch the Job and its pods until it finished or ``deadline``; returns (job, pod, finished)."""
        uid = job["metadata"]["uid"]
        jobs = Informer("job", self.transport, self.jobs_path, {"fieldSelector": "metadata.name=%s" % self.name})
        pods = Informer("pods", self.transport, self.pods_path, {"labelSelector": "controller-uid=%s" % uid})
        latest = {"job": job, "pod": None}

        def evaluate():
            mine = [j for j in jobs.items() or [] if (j.get("metadata") or {}).get("uid") == uid]
            if mine:
                latest["job"] = mine[0]
            latest["pod"] = newest_pod(pods.items() or [])
            state = job_state(latest["job"], latest["pod"])
            self.record(state)
            return state in FINISHED or not mine, state

        jobs.relist()
        pods.relist()
        done, dummy = evaluate()
        if not done:
            done, dummy = watch_until([jobs, pods], evaluate, deadline, clock=self.clock)
        return latest["job"], latest["pod"], job_state(latest["job"], latest["pod"]) in FINISHED

    def read_log(self, pod):
        if pod is None or self.params["log_lines"] <= 0:
            return [], None
        if (pod.get("status") or {}).get("phase") not in ("Running", "Succeeded", "Failed"):
            return [], None
        try:
            text = self.transport.request_text("%s/%s/log" % (self.pods_path, pod["metadata"]["name"]),
                                               {"container": CONTAINER_NAME, "tailLines": self.params["log_lines"]})
        except ApiError as err:
            return [], "could not read the log of pod %s: %s" % (pod["metadata"]["name"], err)
        return log_tail(text, self.params["log_lines"]), None

    # -- the run
    def base_result(self, action, desired, existing):
        result = {
            "changed": action in (CREATE, REPLACE, DELETE),
            "action": action,
            "job": self.name,
            "namespace": self.namespace,
            "status": None,
            "duration_seconds": None,
            "pod": None,
            "node": None,
            "log_tail": [],
            "progress": self.progress,
            "reason": None,
            "manifest": desired,
        }
        if self.params.get("_diff"):
            result["diff"] = diff_for(existing, desired, self.params["state"])
        return result

    def judge(self, result, job, pod, finished, timed_out=False):
        state = job_state(job, pod)
        result["status"] = state if state in FINISHED else ("running" if state == "running" else "pending")
        result["duration_seconds"] = duration_seconds(job, self.now())
        result["pod"] = ((pod or {}).get("metadata") or {}).get("name")
        result["node"] = ((pod or {}).get("spec") or {}).get("nodeName")
        result["log_tail"], log_error = self.read_log(pod)
        if log_error:
            result["log_error"] = log_error
        if state == FAILED or timed_out:
            names = [self.name] + ([result["pod"]] if result["pod"] else [])
            reason = failure_reason(job, pod, self.events_of(names))
            if timed_out:
                reason = "timed out after %ss waiting for the Job (status %s); %s" % (self.params["timeout"], result["status"], reason)
            result["reason"] = reason
        return result

    def run(self):
        params = self.params
        desired = render_training_job(params) if params["state"] == "present" else None
        existing = self.get_job()
        action = plan_action(existing, desired, params["state"], params.get("replace", False))
        result = self.base_result(action, desired, existing)
        deadline = self.start + params["timeout"]
        if action == CONFLICT:
            result.update(changed=False, status=job_state(existing))
            raise TrainingJobError(conflict_message(existing, self.namespace, self.name), result)
        if action in (DELETE, ABSENT):
            if action == DELETE and not self.check_mode:
                self.delete_job()
                if params["wait"] and not self.wait_gone(existing["metadata"]["uid"], deadline):
                    raise TrainingJobError("Job %s/%s was deleted but still exists after %ss" % (self.namespace, self.name, params["timeout"]), result)
            return result
        if action in (CREATE, REPLACE):
            problem = self.priority_class_problem()
            if problem:
                result["changed"] = False
                raise TrainingJobError(problem, result)
        if self.check_mode:
            if action == UNCHANGED:
                pod = newest_pod(self.pods_of(existing))
                self.progress.extend(history_progress(existing, pod))
                return self.judge(result, existing, pod, job_state(existing, pod) in FINISHED)
            result["status"] = None
            return result
        if action == REPLACE:
            self.delete_job()
            if not self.wait_gone(existing["metadata"]["uid"], deadline):
                raise TrainingJobError("the old Job %s/%s is still there %ss after it was deleted" % (self.namespace, self.name, params["timeout"]), result)
            existing = None
        if action in (CREATE, REPLACE):
            try:
                job = self.create_job(desired)
            except ApiError as err:
                err.changed = action == REPLACE
                raise
            self.record("pending")
        else:
            job = existing
        pod = newest_pod(self.pods_of(job))
        if action == UNCHANGED and job_state(job, pod) in FINISHED:
            self.progress.extend(history_progress(job, pod))
            return self.judge(result, job, pod, True)
        if not params["wait"]:
            self.record(job_state(job, pod))
            return self.judge(result, job, pod, False)
        try:
            job, pod, finished = self.wait_finished(job, deadline)
        except ApiError as err:
            err.changed = result["changed"]
            raise
        return self.judge(result, job, pod, finished, timed_out=not finished)
