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
  description:
    - One entry per selected node, sorted by name, with the same keys as RV(mlops.platform.gpu_readiness#module:nodes)
      (C(name), C(ok), C(ready), C(schedulable), C(resource), C(capacity), C(allocatable), C(mig_resources),
      C(product), C(memory_mib), C(gpu_count), C(driver), C(cuda), C(mig_strategy), C(mig_config_state),
      C(sharing_replicas), C(sharing_strategy), C(taints), C(spot), C(problems), C(hints)).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "gpu-0", "ok": true, "ready": true, "allocatable": 4, "product": "NVIDIA-A100-SXM4-80GB",
            "problems": [], "hints": ["taint nvidia.com/gpu=true:NoSchedule: GPU pods need a matching toleration"]}]
operator:
  description:
    - GPU operator verdict, with the same keys as RV(mlops.platform.gpu_readiness#module:operator) (C(checked),
      C(ready), C(clusterpolicy), C(state), C(namespace), C(daemonsets), C(problems)).
  returned: always
  type: dict
  sample: {"checked": true, "ready": true, "clusterpolicy": "cluster-policy", "state": "ready",
           "namespace": "gpu-operator", "daemonsets": [], "problems": []}
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
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import api_transport_from_module, run_on_api


def argument_spec():
    spec = check_argument_spec()
    spec.update(AUTH_ARG_SPEC)
    return spec


def main():
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = dict(module.params, wait=False)
    result = run_on_api(module, params, validate_check_params, api_transport_from_module,
                        lambda transport: run_check(transport, params),
                        "Kubernetes API error while gathering GPU facts: %s")
    result.pop("timed_out", None)
    result.pop("progress", None)
    result.pop("watch_errors", None)
    result["changed"] = False
    result["msg"] = verdict_message(result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
