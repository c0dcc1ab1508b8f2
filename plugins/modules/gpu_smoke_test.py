#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gpu_smoke_test
short_description: Run a CUDA vectorAdd Job on every selected GPU node and report per-node pass or fail
version_added: 0.1.0
author:
  - mlops.platform maintainers (!UNKNOWN)
description:
  - Creates one Kubernetes Job per selected GPU node that runs the CUDA C(vectorAdd) sample, pinned to the node
    with C(nodeName). The pod spec is rendered like any other GPU workload of the collection (GPU limit,
    GPU tolerations, optional MIG profile and spot toleration).
  - Waits for the Jobs with an API watch, then reads each pod's phase, container exit code and log; a node passes
    when its Job completed, the pod succeeded with exit code 0 and the log contains C(Test PASSED).
  - Deletes its Jobs afterwards (C(propagationPolicy=Background), plus the Jobs' pods) unless O(cleanup=false).
options:
  label_selectors:
    description:
      - Label selectors that pick the GPU nodes to test. A node matching any of them is selected.
    type: list
    elements: str
    default: ["accelerator=nvidia-gpu"]
  nodes:
    description:
      - Only test these node names (they must also match O(label_selectors)).
    type: list
    elements: str
  skip_not_ready:
    description:
      - Skip selected nodes whose C(Ready) condition is not C(True) or that are cordoned; they are reported with
        C(skipped=true) and count as failures.
    type: bool
    default: true
  namespace:
    description:
      - Namespace to create the Jobs in. It must exist.
    type: str
    default: default
  image:
    description:
      - Container image of the CUDA vectorAdd sample. Override it to use a mirror in an air-gapped registry.
    type: str
    default: nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0
  command:
    description:
      - Command to run instead of the image entrypoint.
    type: list
    elements: str
  gpus:
    description:
      - Number of GPUs (or MIG devices) each Job requests.
    type: int
    default: 1
  mig_profile:
    description:
      - Request a MIG device of this profile (for example V(1g.10gb)) instead of a whole GPU.
    type: str
  tolerations:
    description:
      - Extra tolerations for the smoke test pods (the C(nvidia.com/gpu) toleration is always added).
    type: list
    elements: dict
  spot:
    description:
      - Add the toleration for AKS spot node pools.
    type: bool
    default: false
  priority_class:
    description:
      - PriorityClass of the smoke test pods.
    type: str
  timeout:
    description:
      - Seconds to wait for all Jobs to finish. Jobs still running then are reported as failed.
    type: int
    default: 300
  cleanup:
    description:
      - Delete the Jobs and their pods when done.
    type: bool
    default: true
  fail_on_error:
    description:
      - Fail the task when any node does not pass.
    type: bool
    default: true
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - mlops.platform.attributes
  - mlops.platform.attributes.EPHEMERAL
requirements:
  - kubernetes >= 24.2.0
notes:
  - Needs C(create), C(list), C(watch) and C(delete) on Jobs, C(list) and C(delete) on Pods and C(get) on
    C(pods/log) in O(namespace), and C(list) on Nodes.
  - The default image is pulled from C(nvcr.io); nodes without access to it need O(image) pointing to a mirror.
seealso:
  - module: mlops.platform.gpu_readiness
  - module: mlops.platform.gpu_node_info
"""

EXAMPLES = r"""
- name: Run vectorAdd on every GPU node
  mlops.platform.gpu_smoke_test:
    namespace: gpu-smoke
  register: smoke

- name: Use a mirrored image, test the spot pool and keep the Jobs for inspection
  mlops.platform.gpu_smoke_test:
    label_selectors:
      - kubernetes.azure.com/scalesetpriority=spot
    spot: true
    image: registry.example.com/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0
    cleanup: false
    fail_on_error: false
  register: spot_smoke

- name: Show failing nodes
  ansible.builtin.debug:
    msg: "{{ spot_smoke.results | rejectattr('passed') | map(attribute='node') | list }}"
"""

RETURN = r"""
passed:
  description: True when every selected node passed.
  returned: always
  type: bool
  sample: true
passed_nodes:
  description: Names of the nodes that passed.
  returned: always
  type: list
  elements: str
  sample: ["gpu-0", "gpu-1"]
failed_nodes:
  description: Names of the nodes that failed or were skipped.
  returned: always
  type: list
  elements: str
  sample: []
results:
  description: One entry per selected node.
  returned: always
  type: list
  elements: dict
  contains:
    node:
      description: Node name.
      type: str
      returned: always
      sample: gpu-0
    job:
      description: Name of the Job (planned name in check mode, null when skipped).
      type: str
      returned: always
      sample: gpu-smoke-gpu-0-1a2b3c-4d5e6f
    pod:
      description: Name of the Job's pod, null when none was created.
      type: str
      returned: always
      sample: gpu-smoke-gpu-0-1a2b3c-4d5e6f-x7k2p
    passed:
      description: The Job completed, the pod succeeded with exit code 0 and the log contains C(Test PASSED).
      type: bool
      returned: always
      sample: true
    skipped:
      description: The node was not tested (not ready or cordoned, see O(skip_not_ready)).
      type: bool
      returned: always
      sample: false
    job_status:
      description: V(Complete), V(Failed) or null when the Job did not finish.
      type: str
      returned: always
      sample: Complete
    phase:
      description: Pod phase.
      type: str
      returned: always
      sample: Succeeded
    exit_code:
      description: Exit code of the sample container, null when it did not terminate.
      type: int
      returned: always
      sample: 0
    log_passed:
      description: The pod log contains C(Test PASSED).
      type: bool
      returned: always
      sample: true
    log_tail:
      description: Last lines of the pod log.
      type: str
      returned: always
      sample: "Copy output data from the CUDA device to the host memory\nTest PASSED\nDone"
    reasons:
      description: Why the node did not pass.
      type: list
      elements: str
      returned: always
      sample: ["container exited with code 1", "log does not contain 'Test PASSED'"]
run_id:
  description: Identifier of this run, also the value of the C(mlops.platform/gpu-smoke-run) label on its Jobs.
  returned: always
  type: str
  sample: 4d5e6f
namespace:
  description: Namespace the Jobs ran in.
  returned: always
  type: str
  sample: default
cleaned_up:
  description: Whether the Jobs and pods were deleted.
  returned: always
  type: bool
  sample: true
cleanup_errors:
  description: Errors met while deleting the Jobs and pods (the objects named there may remain).
  returned: always
  type: list
  elements: str
  sample: []
elapsed:
  description: Seconds the module ran.
  returned: always
  type: float
  sample: 12.5
api_requests:
  description: Number of API requests made.
  returned: always
  type: int
  sample: 11
msg:
  description: Summary.
  returned: always
  type: str
  sample: "GPU smoke test passed on 2 of 2 node(s)"
"""

import time
import uuid

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.mlops.platform.plugins.module_utils.gpu_pod_spec import GpuSpecError
from ansible_collections.mlops.platform.plugins.module_utils.gpu_readiness import (
    DEFAULT_LABEL_SELECTORS,
    node_condition,
)
from ansible_collections.mlops.platform.plugins.module_utils.gpu_smoke import (
    DEFAULT_IMAGE,
    RUN_LABEL,
    job_finished,
    node_verdict,
    render_job,
)
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import (
    ApiError,
    Informer,
    api_transport_from_module,
    list_all,
    wait_for,
)


def argument_spec():
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
    spec.update(AUTH_ARG_SPEC)
    return spec


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


def run_smoke(transport, params, run_id, check_mode=False, clock=time.monotonic):
    """Create, wait for, judge and clean up the smoke Jobs. Returns the module result (without msg)."""
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
    manifests = dict(
        (name, render_job(
            name, run_id, namespace, image=params["image"], gpus=params["gpus"], mig_profile=params.get("mig_profile"),
            tolerations=params.get("tolerations"), spot=params["spot"], command=params.get("command"),
            active_deadline=params["timeout"] + 60, priority_class=params.get("priority_class"),
        ))
        for name in to_run
    )
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
            finished = {}
            if created:
                informer = Informer("jobs", transport, jobs_path, {"labelSelector": selector})
                deadline = start + params["timeout"]

                def _all_done():
                    jobs = dict((j["metadata"]["name"], j) for j in informer.items() or [])
                    finished.clear()
                    finished.update(jobs)
                    return all(job_finished(jobs.get(c["metadata"]["name"])) for c in created.values()), jobs

                informer.relist()
                if not _all_done()[0]:
                    wait_for([informer], _all_done, deadline, clock=clock)
            pods, dummy = list_all(transport, pods_path, {"labelSelector": selector}) if created else ([], None)
            pods_by_job = {}
            for pod in pods:
                job_label = (pod["metadata"].get("labels") or {}).get("job-name")
                owner = [r.get("name") for r in pod["metadata"].get("ownerReferences") or [] if r.get("kind") == "Job"]
                key = owner[0] if owner else job_label
                pods_by_job.setdefault(key, []).append(pod)
            for name in to_run:
                if name not in created:
                    results.append(node_verdict(name, None, None, ""))
                    continue
                jname = created[name]["metadata"]["name"]
                job = finished.get(jname) or created[name]
                candidates = sorted(pods_by_job.get(jname, []), key=lambda p: p["metadata"].get("creationTimestamp") or "")
                pod = candidates[-1] if candidates else None
                log_text = ""
                if pod is not None and (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    try:
                        log_text = transport.request_text("%s/%s/log" % (pods_path, pod["metadata"]["name"]),
                                                          {"container": "vectoradd"})
                    except ApiError as err:
                        log_text = ""
                        pod.setdefault("status", {})["logError"] = str(err)
                timed_out = job_finished(job) is None
                entry = node_verdict(name, job, pod, log_text, timed_out=timed_out, timeout=params["timeout"])
                entry["skipped"] = False
                if pod is not None and (pod.get("status") or {}).get("logError"):
                    entry["reasons"].append("could not read the log: %s" % pod["status"]["logError"])
                results.append(entry)
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


def summary(result, check_mode=False):
    tested = len(result["results"])
    if check_mode:
        planned = [r["node"] for r in result["results"] if not r["skipped"]]
        return "check mode: nothing created; would run a GPU smoke Job on %d node(s): %s" % (len(planned), ", ".join(planned))
    if not tested:
        return "no node matched the label selectors"
    if result["passed"]:
        return "GPU smoke test passed on %d of %d node(s)" % (len(result["passed_nodes"]), tested)
    details = "; ".join("%s: %s" % (r["node"], ", ".join(r["reasons"])) for r in result["results"] if not r["passed"])
    return "GPU smoke test failed on %d of %d node(s): %s" % (len(result["failed_nodes"]), tested, details)


def main():
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    if params["timeout"] < 1:
        module.fail_json(msg="timeout must be >= 1")
    if params["gpus"] < 1:
        module.fail_json(msg="gpus must be >= 1")
    run_id = uuid.uuid4().hex[:6]
    try:
        transport = api_transport_from_module(module)
        result = run_smoke(transport, params, run_id, check_mode=module.check_mode)
    except GpuSpecError as err:
        module.fail_json(msg="invalid smoke test pod spec: %s" % err)
        return
    except ApiError as err:
        module.fail_json(msg="Kubernetes API error during the GPU smoke test (run %s): %s" % (run_id, err),
                         changed=getattr(err, "changed", False))
        return
    except Exception as err:  # pylint: disable=broad-except
        module.fail_from_exception(err)
        return
    result["msg"] = summary(result, module.check_mode)
    if result["cleanup_errors"]:
        result["msg"] += "; cleanup failed: " + "; ".join(result["cleanup_errors"])
    if not result["results"] and not module.check_mode:
        module.fail_json(**result)
    if not result["passed"] and params["fail_on_error"] and not module.check_mode:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
