#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

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
  - mlops.platform.gpu_nodes
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

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.mlops.platform.plugins.module_utils.gpu_smoke_run import (
    new_run_id,
    run_smoke,
    smoke_argument_spec,
    smoke_message,
    validate_smoke_params,
)
from ansible_collections.mlops.platform.plugins.module_utils.k8s_watch import api_transport_from_module, run_on_api


def argument_spec():
    spec = smoke_argument_spec()
    spec.update(AUTH_ARG_SPEC)
    return spec


def main():
    module = AnsibleK8SModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    run_id = new_run_id()
    result = run_on_api(module, params, validate_smoke_params, api_transport_from_module,
                        lambda transport: run_smoke(transport, params, run_id, check_mode=module.check_mode),
                        "Kubernetes API error during the GPU smoke test (run %s): %%s" % run_id)
    result["msg"] = smoke_message(result, module.check_mode)
    if not result["results"] and not module.check_mode:
        module.fail_json(**result)
    if not result["passed"] and params["fail_on_error"] and not module.check_mode:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
