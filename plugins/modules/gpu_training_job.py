#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gpu_training_job
short_description: Run a GPU training Job on Kubernetes, wait for it and report its outcome and log
version_added: 0.4.0
author:
  - mlops.platform maintainers (!UNKNOWN)
description:
  - Submits a C(batch/v1) Job whose pod spec is rendered by the same code as the P(mlops.platform.gpu_pod_spec#filter)
    filter (GPU or MIG resource limit, tolerations for the GPU taint, GPU node selector and product affinity,
    shared memory, PriorityClass), with MLflow wired in through C(MLFLOW_TRACKING_URI) and C(MLFLOW_EXPERIMENT_NAME).
  - Idempotent. The rendered manifest is stored in the Job's annotation C(mlops.platform/training-job-spec); an
    existing Job created from the same manifest is left alone (C(changed=false)), whether it runs or has finished.
    A Job's pod template is immutable, so an existing Job with a different spec is deleted and created again only
    with O(replace=true); otherwise the task fails and says so.
  - With O(wait=true) it watches the Job and its pod until the Job completes or fails, records the transitions in
    RV(progress), and returns the pod, its node, the duration and the last O(log_lines) lines of the pod's log.
    A failed Job (or a timeout) fails the task with the reason (the Job's C(Failed) condition, the container's exit
    code, an unschedulable pod's scheduler message, warning events) and the log tail.
  - Before creating a Job it checks that the PriorityClass exists, because the API server refuses pods that name a
    missing one.
  - Transient API errors (HTTP 429, 5xx, broken connections) are retried with backoff.
options:
  name:
    description: Name of the Job (a DNS-1123 label).
    type: str
    required: true
  namespace:
    description: Namespace of the Job. It must exist.
    type: str
    default: default
  state:
    description:
      - V(present) creates the Job (or leaves an identical one alone); V(absent) deletes it and its pods.
    type: str
    choices: [present, absent]
    default: present
  image:
    description: Training image, with a pinned tag or digest. Required with O(state=present).
    type: str
  command:
    description: Command of the training container (replaces the image entrypoint).
    type: list
    elements: str
  args:
    description: Arguments of the training container.
    type: list
    elements: str
  gpus:
    description:
      - GPUs (or MIG devices of O(mig_profile)) the container requests. V(0) is a CPU job without GPU placement.
    type: int
    default: 1
  mig_profile:
    description: Request C(nvidia.com/mig-<profile>) devices (for example V(1g.10gb)) instead of whole GPUs.
    type: str
  gpu_products:
    description: Require nodes whose C(nvidia.com/gpu.product) label is one of these (node affinity).
    type: list
    elements: str
  node_selector:
    description:
      - Node selector of the pod. When unset, GPU jobs select the collection's default GPU node label.
    type: dict
  tolerations:
    description: Extra tolerations (the toleration of the C(nvidia.com/gpu) taint is always added for GPU jobs).
    type: list
    elements: dict
  spot:
    description: Tolerate the AKS spot node pool taint.
    type: bool
    default: false
  shm_size:
    description: Mount a memory-backed C(emptyDir) of this size at C(/dev/shm) (PyTorch data loaders need it).
    type: str
  cpu:
    description: CPU request and limit of the training container, for example V(4) or V(500m).
    type: str
  memory:
    description: Memory request and limit of the training container, for example V(16Gi).
    type: str
  env:
    description: Environment variables of the training container (name to value).
    type: dict
    default: {}
  mlflow_tracking_uri:
    description: MLflow tracking server the job logs to, set as C(MLFLOW_TRACKING_URI) (it wins over O(env)).
    type: str
  mlflow_experiment_name:
    description: MLflow experiment, set as C(MLFLOW_EXPERIMENT_NAME).
    type: str
  mlflow_credentials_secret:
    description:
      - Name of a Secret in O(namespace) with the keys C(username) and C(password), exposed to the container as
        C(MLFLOW_TRACKING_USERNAME) and C(MLFLOW_TRACKING_PASSWORD). The credentials never pass through the module.
    type: str
  data_volumes:
    description: PersistentVolumeClaims to mount into the training container.
    type: list
    elements: dict
    default: []
    suboptions:
      claim_name:
        description: Name of the claim.
        type: str
        required: true
      mount_path:
        description: Absolute mount path.
        type: str
        required: true
      read_only:
        description: Mount read-only.
        type: bool
        default: false
      name:
        description: Volume name in the pod; C(data-<index>) when unset.
        type: str
  priority_class_name:
    description:
      - PriorityClass of the pod. The platform creates V(ml-training); an empty string sets none.
    type: str
    default: ml-training
  backoff_limit:
    description: Retries of a failed pod before the Job fails.
    type: int
    default: 0
  active_deadline_seconds:
    description: Kubernetes stops the Job after this many seconds (C(DeadlineExceeded)).
    type: int
  ttl:
    description: C(ttlSecondsAfterFinished); the Job is deleted this long after it finished (then a rerun creates it again).
    type: int
  labels:
    description: Extra labels of the Job and its pods.
    type: dict
    default: {}
  service_account:
    description:
      - Service account of the pod. When unset, no service account token is mounted.
    type: str
  restricted:
    description:
      - Run under the Pod Security Standard C(restricted) (non-root, no privilege escalation, all capabilities
        dropped, C(RuntimeDefault) seccomp). Turn off only for images that must run as root.
    type: bool
    default: true
  replace:
    description:
      - Delete an existing Job with a different spec (running or finished) and create the new one.
    type: bool
    default: false
  wait:
    description:
      - Wait until the Job completes or fails (O(state=present)), or until it is gone (O(state=absent)).
    type: bool
    default: true
  timeout:
    description: Seconds to wait.
    type: int
    default: 3600
  log_lines:
    description: How many lines of the pod's log to return in RV(log_tail).
    type: int
    default: 20
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - mlops.platform.attributes
requirements:
  - kubernetes >= 24.2.0
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: Nothing is created or deleted; the result says what would be done, and the manifest that would be submitted.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The manifest the existing Job was created from, and the one rendered now.
notes:
  - Needs C(get), C(list), C(watch), C(create) and C(delete) on Jobs, C(list) and C(watch) on Pods, C(get) on
    C(pods/log) and C(list) on Events in O(namespace), and C(get) on PriorityClasses (without it the check is skipped).
seealso:
  - module: mlops.platform.gpu_smoke_test
  - module: mlops.platform.mlflow_model_version
"""

EXAMPLES = r"""
- name: Fine-tune on two A100s, logging to MLflow
  mlops.platform.gpu_training_job:
    name: fraud-train
    namespace: ml-jobs
    image: registry.example.com/ml/fraud-trainer:1.4.2
    command: [python, train.py]
    args: [--epochs, "10"]
    gpus: 2
    gpu_products: [NVIDIA-A100-SXM4-80GB]
    cpu: "8"
    memory: 64Gi
    shm_size: 8Gi
    mlflow_tracking_uri: http://mlflow.mlflow.svc:5000
    mlflow_experiment_name: fraud
    mlflow_credentials_secret: mlflow-client
    data_volumes:
      - claim_name: fraud-data
        mount_path: /data
        read_only: true
    timeout: 7200
  register: training

- name: Show how it went
  ansible.builtin.debug:
    msg: "{{ training.status }} in {{ training.duration_seconds }}s on {{ training.node }}: {{ training.log_tail | last }}"

- name: Run again with a new image (the finished Job is replaced)
  mlops.platform.gpu_training_job:
    name: fraud-train
    namespace: ml-jobs
    image: registry.example.com/ml/fraud-trainer:1.4.3
    replace: true

- name: Remove the Job and its pods
  mlops.platform.gpu_training_job:
    name: fraud-train
    namespace: ml-jobs
    state: absent
"""

RETURN = r"""
action:
  description: V(create), V(replace), V(unchanged), V(delete) or V(absent) (what was, or in check mode would be, done).
  returned: always
  type: str
  sample: create
job:
  description: Name of the Job.
  returned: always
  type: str
  sample: fraud-train
namespace:
  description: Namespace of the Job.
  returned: always
  type: str
  sample: ml-jobs
status:
  description:
    - V(succeeded), V(failed), V(running) or V(pending); null when nothing exists (absent, or check mode before creation).
  returned: always
  type: str
  sample: succeeded
duration_seconds:
  description: Seconds from the Job's start to its end (or to now while it runs).
  returned: always
  type: int
  sample: 1843
pod:
  description: Name of the Job's (newest) pod.
  returned: always
  type: str
  sample: fraud-train-x7k2p
node:
  description: Node the pod ran on.
  returned: always
  type: str
  sample: gpu-0
log_tail:
  description: The last O(log_lines) lines of the pod's log (empty before the pod started).
  returned: always
  type: list
  elements: str
  sample: ["epoch 10/10 loss=0.0123", "model written to s3://models/fraud/7"]
progress:
  description:
    - The Job's states as seen, oldest first. C(source) is V(watch) for transitions this run observed, V(status) for
      timestamps the API recorded for a Job that had finished before.
  returned: always
  type: list
  elements: dict
  sample:
    - {state: pending, time: "2026-01-01T10:00:00Z", elapsed: 0.21, source: watch}
    - {state: running, time: "2026-01-01T10:00:02Z", elapsed: 1.9, source: watch}
    - {state: succeeded, time: "2026-01-01T10:30:45Z", elapsed: 1845.0, source: watch}
reason:
  description: Why the Job failed or did not finish in time; null otherwise.
  returned: always
  type: str
  sample: "BackoffLimitExceeded: Job has reached the specified backoff limit; pod fraud-train-x7k2p on node gpu-1: container trainer exited with code 1 (Error)"
manifest:
  description: The Job manifest rendered from the options (null with O(state=absent)).
  returned: always
  type: dict
api_requests:
  description: Number of API requests made.
  returned: always
  type: int
  sample: 9
msg:
  description: Summary.
  returned: always
  type: str
  sample: "Job ml-jobs/fraud-train created; status succeeded after 1843s on node gpu-0"
"""

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.mlops.platform.plugins.module_utils.gpu_training import (
    FAILED,
    summary,
    training_argument_spec,
    validate_training_params,
)
from ansible_collections.mlops.platform.plugins.module_utils.gpu_training_run import TrainingJobError, TrainingRun
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import api_transport_from_module, run_on_api


def argument_spec():
    spec = training_argument_spec()
    spec.update(AUTH_ARG_SPEC)
    return spec


def main():
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = dict(module.params, _diff=module._diff)
    holder = {}

    def work(transport):
        holder["transport"] = transport
        try:
            return TrainingRun(transport, params, check_mode=module.check_mode).run()
        except TrainingJobError as err:
            err.result["api_requests"] = getattr(transport, "requests", None)
            module.fail_json(msg="%s" % err, **err.result)
        return None

    result = run_on_api(module, params, validate_training_params, api_transport_from_module, work,
                        "Kubernetes API error for training Job %s/%s: %%s" % (params["namespace"], params["name"]))
    result["api_requests"] = getattr(holder.get("transport"), "requests", None)
    result["msg"] = summary(result)
    if module.check_mode and result["action"] in ("create", "replace", "delete"):
        result["msg"] = "check mode: nothing changed; would %s Job %s/%s" % (result["action"], params["namespace"], params["name"])
    if not module.check_mode and (result["status"] == FAILED or result.get("reason")):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
