#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gpu_node_info
short_description: Gather GPU node and NVIDIA GPU operator facts
version_added: 0.1.0
author:
  - mlops.platform maintainers (!UNKNOWN)
description:
  - Gathers the same facts and per-node problems as M(mlops.platform.gpu_readiness) without waiting and without ever
    failing because the cluster is not ready.
  - Lists are paginated, so the number of API requests grows with the number of pages, never with the number of
    nodes.
options: {}
extends_documentation_fragment:
  - mlops.platform.gpu_nodes
  - mlops.platform.gpu_nodes.CHECK
  - kubernetes.core.k8s_auth_options
  - mlops.platform.attributes
  - mlops.platform.attributes.READ_ONLY
requirements:
  - kubernetes >= 24.2.0
seealso:
  - module: mlops.platform.gpu_readiness
  - module: mlops.platform.gpu_smoke_test
"""

EXAMPLES = r"""
- name: Gather GPU facts
  mlops.platform.gpu_node_info:
  register: gpu_info

- name: List the GPU products per node
  ansible.builtin.debug:
    msg: "{{ gpu_info.nodes | items2dict(key_name='name', value_name='product') }}"

- name: Inspect only the spot pool, ignoring the operator
  mlops.platform.gpu_node_info:
    label_selectors:
      - kubernetes.azure.com/scalesetpriority=spot
    check_operator: false
  register: spot_gpus
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
  description: Seconds the module spent gathering facts.
  returned: always
  type: float
  sample: 3.214
api_requests:
  description: Number of API requests made (list pages).
  returned: always
  type: int
  sample: 4
msg:
  description: Summary of the verdict; when not ready, the problems per node.
  returned: always
  type: str
  sample: "GPU cluster ready: 2 of 2 selected node(s) ready"
"""

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.mlops.platform.plugins.module_utils.gpu_cluster import (
    check_argument_spec,
    run_check,
    validate_check_params,
    verdict_message,
)
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import ApiError, api_transport_from_module


def argument_spec():
    spec = check_argument_spec()
    spec.update(AUTH_ARG_SPEC)
    return spec


def main():
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = dict(module.params, wait=False)
    error = validate_check_params(params)
    if error:
        module.fail_json(msg=error)
    try:
        transport = api_transport_from_module(module)
        result = run_check(transport, params)
    except ApiError as err:
        module.fail_json(msg="Kubernetes API error while gathering GPU facts: %s" % err)
        return
    except Exception as err:  # pylint: disable=broad-except
        module.fail_from_exception(err)
        return
    result.pop("timed_out", None)
    result.pop("progress", None)
    result.pop("watch_errors", None)
    result["changed"] = False
    result["msg"] = verdict_message(result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
