# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPU node pool filters. Documentation lives in the sidecar ``<filter name>.yml`` files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.mlops.platform.plugins.module_utils.aks_gpu_pool import AksPoolError, plan_pool
from ansible_collections.mlops.platform.plugins.module_utils.gpu_node_labels import (
    ANNOTATION,
    NodeLabelError,
    plan_nodes,
)


def gpu_node_plan(nodes, labels=None, taints=None, state="present", annotation=ANNOTATION):
    """Per-node merge patches that add (or remove) the role's labels and taints, keeping every other taint."""
    try:
        return plan_nodes(nodes, labels=labels, taints=taints, state=state, annotation=annotation)
    except NodeLabelError as exc:
        raise AnsibleFilterError("mlops.platform.gpu_node_plan: %s" % exc)


def aks_gpu_pool_params(pool, driver_owner="operator", existing=None, state="present"):
    """azure_rm_aksagentpool parameters, the agentPools REST body and the planned action for an AKS GPU pool."""
    try:
        return plan_pool(pool, driver_owner, existing=existing, state=state)
    except AksPoolError as exc:
        raise AnsibleFilterError("mlops.platform.aks_gpu_pool_params: %s" % exc)


class FilterModule(object):
    """GPU node pool filters."""

    def filters(self):
        return {
            "gpu_node_plan": gpu_node_plan,
            "aks_gpu_pool_params": aks_gpu_pool_params,
        }
