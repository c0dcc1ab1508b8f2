#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gpu_readiness
short_description: Check (and optionally wait) until the GPU nodes and the NVIDIA GPU operator can run GPU work
version_added: 0.1.0
author:
  - mlops.platform maintainers (!UNKNOWN)
description:
  - Lists the GPU nodes selected by O(label_selectors) and, when O(check_operator=true), the NVIDIA GPU operator
    ClusterPolicy and the operand DaemonSets and pods in O(operator_namespace), then derives a verdict per node
    (Ready condition, cordon, GPU capacity versus allocatable, GPU Feature Discovery labels, MIG strategy,
    time-slicing replicas, operand pods on the node) and for the operator.
  - Lists are paginated, so the number of API requests grows with the number of pages, never with the number of
    nodes. The number of requests made is returned in RV(api_requests).
  - With O(wait=true) the module watches Nodes, ClusterPolicies, DaemonSets and Pods (resourceVersion-based watches
    that re-list on C(410 Gone)) and re-evaluates the verdict on every event, so it returns as soon as the cluster is
    ready instead of polling at a fixed interval. Each change of the verdict while waiting is returned in
    RV(progress); with C(ANSIBLE_DEBUG) enabled they are also written to the module debug log (system log of the
    target).
  - When the cluster is not ready and O(fail_on_not_ready=true) the task fails with a message that summarises the
    problems per node, and still returns every fact.
  - Use M(mlops.platform.gpu_node_info) to gather the same facts without ever failing.
options:
  wait:
    description:
      - Wait until the cluster is ready or O(timeout) expires, using API watches.
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait when O(wait=true).
    type: int
    default: 600
  fail_on_not_ready:
    description:
      - Fail the task when the cluster is not ready (after waiting, if O(wait=true)).
    type: bool
    default: true
extends_documentation_fragment:
  - mlops.platform.gpu_nodes
  - mlops.platform.gpu_nodes.CHECK
  - kubernetes.core.k8s_auth_options
  - mlops.platform.attributes
  - mlops.platform.attributes.READ_ONLY
requirements:
  - kubernetes >= 24.2.0
notes:
  - Needs C(list) and C(watch) on Nodes and, with O(check_operator=true), on C(clusterpolicies.nvidia.com) and on
    DaemonSets and Pods in O(operator_namespace).
seealso:
  - module: mlops.platform.gpu_node_info
  - module: mlops.platform.gpu_smoke_test
"""

EXAMPLES = r"""
- name: Fail fast unless at least two GPU nodes and the GPU operator are ready
  mlops.platform.gpu_readiness:
    min_nodes: 2
    gpus_per_node: 4

- name: Wait up to 15 minutes for a freshly scaled GPU pool
  mlops.platform.gpu_readiness:
    label_selectors:
      - node-type=ai
    wait: true
    timeout: 900
  register: gpu

- name: Show how the verdict evolved while waiting
  ansible.builtin.debug:
    var: gpu.progress

- name: Check MIG capacity on a mixed-strategy pool without failing the play
  mlops.platform.gpu_readiness:
    resource: nvidia.com/mig-1g.10gb
    fail_on_not_ready: false
  register: mig

- name: Report the problems found
  ansible.builtin.debug:
    var: mig.problems
  when: not mig.ready
"""

RETURN = r"""
ready:
  description: Whether at least O(min_nodes) selected nodes are healthy (all with O(require_all_nodes)) and the operator is ready.
  returned: always
  type: bool
  sample: true
ready_nodes:
  description: Number of selected nodes without problems.
  returned: always
  type: int
  sample: 2
total_nodes:
  description: Number of nodes selected by O(label_selectors).
  returned: always
  type: int
  sample: 2
nodes:
  description: One entry per selected node, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Node name.
      type: str
      returned: always
      sample: gpu-0
    ok:
      description: True when the node has no problems.
      type: bool
      returned: always
      sample: true
    ready:
      description: The node's C(Ready) condition is C(True).
      type: bool
      returned: always
      sample: true
    schedulable:
      description: The node is not cordoned.
      type: bool
      returned: always
      sample: true
    resource:
      description: The resource that was checked (O(resource)).
      type: str
      returned: always
      sample: nvidia.com/gpu
    capacity:
      description: Capacity of O(resource) on the node, null when not advertised.
      type: int
      returned: always
      sample: 4
    allocatable:
      description: Allocatable count of O(resource) on the node, null when not advertised.
      type: int
      returned: always
      sample: 4
    mig_resources:
      description: Allocatable count per C(nvidia.com/mig-*) resource.
      type: dict
      returned: always
      sample: {"nvidia.com/mig-1g.10gb": 7}
    product:
      description: GPU product from the C(nvidia.com/gpu.product) label.
      type: str
      returned: always
      sample: NVIDIA-A100-SXM4-80GB
    memory_mib:
      description: GPU memory in MiB from the C(nvidia.com/gpu.memory) label.
      type: int
      returned: always
      sample: 81920
    gpu_count:
      description: Physical GPU count from the C(nvidia.com/gpu.count) label.
      type: int
      returned: always
      sample: 4
    driver:
      description: NVIDIA driver version from the C(nvidia.com/cuda.driver*) labels.
      type: str
      returned: always
      sample: 550.90.07
    cuda:
      description: CUDA runtime version from the C(nvidia.com/cuda.runtime*) labels.
      type: str
      returned: always
      sample: "12.4"
    mig_strategy:
      description: MIG strategy from the C(nvidia.com/mig.strategy) label (V(none), V(single), V(mixed)).
      type: str
      returned: always
      sample: none
    mig_config_state:
      description: MIG manager state from the C(nvidia.com/mig.config.state) label.
      type: str
      returned: always
      sample: success
    sharing_replicas:
      description: Time-slicing replicas per GPU from the C(nvidia.com/gpu.replicas) label.
      type: int
      returned: always
      sample: 1
    sharing_strategy:
      description: GPU sharing strategy from the C(nvidia.com/gpu.sharing-strategy) label.
      type: str
      returned: always
      sample: time-slicing
    taints:
      description: Node taints as C(key=value:effect).
      type: list
      elements: str
      returned: always
      sample: ["nvidia.com/gpu=true:NoSchedule"]
    spot:
      description: The node belongs to a spot (preemptible) pool.
      type: bool
      returned: always
      sample: false
    problems:
      description: Human-readable reasons why the node cannot run GPU work.
      type: list
      elements: str
      returned: always
      sample: ["allocatable nvidia.com/gpu=0 but capacity=4"]
    hints:
      description: Informational notes that are not problems (taints that need tolerations, spot eviction, time-slicing).
      type: list
      elements: str
      returned: always
      sample: ["taint nvidia.com/gpu=true:NoSchedule: GPU pods need a matching toleration"]
operator:
  description: GPU operator verdict.
  returned: always
  type: dict
  contains:
    checked:
      description: Whether the operator was checked (O(check_operator)).
      type: bool
      returned: always
      sample: true
    ready:
      description: ClusterPolicy ready and every operand DaemonSet fully ready (true when not checked).
      type: bool
      returned: always
      sample: true
    clusterpolicy:
      description: Name of the active ClusterPolicy.
      type: str
      returned: always
      sample: cluster-policy
    state:
      description: C(status.state) of the active ClusterPolicy.
      type: str
      returned: always
      sample: ready
    namespace:
      description: Operator namespace that was inspected.
      type: str
      returned: always
      sample: gpu-operator
    daemonsets:
      description: Roll-out of each DaemonSet in the operator namespace (name, desired, ready, available, updated).
      type: list
      elements: dict
      returned: always
      sample: [{"name": "nvidia-device-plugin-daemonset", "desired": 2, "ready": 2, "available": 2, "updated": 2}]
    problems:
      description: Operator-level problems.
      type: list
      elements: str
      returned: always
      sample: ["ClusterPolicy cluster-policy state is notReady (expected ready)"]
problems:
  description: Every problem, prefixed with C(operator) or the node name, plus a C(min_nodes) shortfall if any.
  returned: always
  type: list
  elements: str
  sample: ["gpu-1: node NotReady (KubeletNotReady)", "only 1 of 2 selected GPU node(s) ready, min_nodes=2"]
elapsed:
  description: Seconds the module spent checking and waiting.
  returned: always
  type: float
  sample: 3.214
timed_out:
  description: True when O(wait=true) and the timeout expired before the cluster was ready.
  returned: always
  type: bool
  sample: false
progress:
  description:
    - Verdict changes in time order, each with C(elapsed) seconds, C(ready), C(ready_nodes), C(total_nodes),
      C(problem_count) and the first ten C(problems). One entry without O(wait).
  returned: always
  type: list
  elements: dict
  sample: [{"elapsed": 0.05, "ready": false, "ready_nodes": 1, "total_nodes": 2, "problem_count": 1,
            "problems": ["gpu-1: allocatable nvidia.com/gpu=0 but capacity=4"]}]
api_requests:
  description: Number of API requests made (list pages plus watch requests).
  returned: always
  type: int
  sample: 4
msg:
  description: Summary of the verdict; when not ready, the problems per node.
  returned: always
  type: str
  sample: "GPU cluster ready: 2 of 2 selected node(s) ready"
watch_errors:
  description: Last error seen by each watch that hit one (connection resets, permission errors).
  returned: when a watch hit an error
  type: list
  elements: str
  sample: ["ApiError: HTTP 403: pods is forbidden"]
"""

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.mlops.platform.plugins.module_utils.gpu_cluster import (
    check_argument_spec,
    run_check,
    validate_check_params,
    verdict_message,
)
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import api_transport_from_module, run_on_api


def argument_spec():
    spec = check_argument_spec(
        wait=dict(type="bool", default=False),
        timeout=dict(type="int", default=600),
        fail_on_not_ready=dict(type="bool", default=True),
    )
    spec.update(AUTH_ARG_SPEC)
    return spec


def main():
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    result = run_on_api(module, params, validate_check_params, api_transport_from_module,
                        lambda transport: run_check(transport, params, log=module.debug),
                        "Kubernetes API error while checking GPU readiness: %s")
    result["changed"] = False
    msg = verdict_message(result)
    if not result["ready"] and params["fail_on_not_ready"]:
        if result["timed_out"]:
            msg = "timed out after %ss waiting for GPU readiness; %s" % (params["timeout"], msg)
        module.fail_json(msg=msg, **result)
    result["msg"] = msg
    module.exit_json(**result)


if __name__ == "__main__":
    main()
