# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Options the GPU modules share: which nodes they look at, and how the readiness verdict is made."""

    # Node selection: gpu_readiness, gpu_node_info and gpu_smoke_test.
    DOCUMENTATION = r"""
options:
  label_selectors:
    description:
      - Label selectors that pick the GPU nodes. A node matching any of them is selected.
      - Each entry is a Kubernetes label selector string such as V(accelerator=nvidia-gpu) or V(node-type in (ai,gpu)).
      - An empty list selects every node.
    type: list
    elements: str
    default: ["accelerator=nvidia-gpu"]
"""

    # The readiness verdict: gpu_readiness and gpu_node_info.
    CHECK = r"""
options:
  min_nodes:
    description:
      - Minimum number of selected nodes that must be healthy (no problems) for RV(ready) to be true.
    type: int
    default: 1
  require_all_nodes:
    description:
      - When V(true), RV(ready) requires every selected node to be healthy, not only O(min_nodes) of them.
    type: bool
    default: false
  gpus_per_node:
    description:
      - Expected number of physical GPUs allocatable per node. With time-slicing, the expected allocatable count is
        this number times the replicas from the C(nvidia.com/gpu.replicas) label.
      - Not checked when O(resource) is a MIG resource.
    type: int
  resource:
    description:
      - The extended resource GPU work will request.
      - V(nvidia.com/gpu) for whole GPUs (or MIG devices under the C(single) MIG strategy),
        V(nvidia.com/gpu.shared) for renamed time-sliced GPUs, or V(nvidia.com/mig-<profile>) such as
        V(nvidia.com/mig-1g.10gb) under the C(mixed) MIG strategy.
      - A MIG profile with a C(+) suffix is advertised with a C(.) instead, profile C(1g.10gb+me) as
        V(nvidia.com/mig-1g.10gb.me).
    type: str
    default: nvidia.com/gpu
  check_operator:
    description:
      - Also check the NVIDIA GPU operator, the ClusterPolicy C(status.state) must be C(ready) and every operand
        DaemonSet in O(operator_namespace) fully ready; operand pods on each selected node must be ready.
    type: bool
    default: true
  operator_namespace:
    description:
      - Namespace of the GPU operator operands.
    type: str
    default: gpu-operator
  page_size:
    description:
      - Page size (C(limit)) of the list requests.
    type: int
    default: 500
"""
