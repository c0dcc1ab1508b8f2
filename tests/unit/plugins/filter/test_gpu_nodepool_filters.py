# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node pool filters wrap module_utils; errors become AnsibleFilterError naming the filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.mlops.platform.plugins.filter.gpu_nodepool import FilterModule
from ansible_collections.mlops.platform.plugins.module_utils.aks_gpu_pool import plan_pool
from ansible_collections.mlops.platform.plugins.module_utils.gpu_node_labels import plan_nodes

FILTERS = FilterModule().filters()
NODES = [{"metadata": {"name": "n1", "labels": {}}, "spec": {}}]
POOL = {"resource_group": "rg", "cluster_name": "aks", "name": "gpu", "vm_size": "Standard_NC6s_v3", "count": 1}


def test_filter_names():
    assert sorted(FILTERS) == ["aks_gpu_pool_params", "gpu_node_plan"]


def test_gpu_node_plan_matches_module_utils():
    assert FILTERS["gpu_node_plan"](NODES, {"a": "b"}, ["x=y:NoSchedule"]) == plan_nodes(NODES, {"a": "b"}, ["x=y:NoSchedule"])


def test_aks_gpu_pool_params_matches_module_utils():
    assert FILTERS["aks_gpu_pool_params"](POOL, "aks") == plan_pool(POOL, "aks")


def test_errors_name_the_filter():
    with pytest.raises(AnsibleFilterError, match="mlops.platform.gpu_node_plan: .*effect"):
        FILTERS["gpu_node_plan"](NODES, {}, ["x=y:Never"])
    with pytest.raises(AnsibleFilterError, match="mlops.platform.aks_gpu_pool_params: .*mlops_gpu_driver_owner"):
        FILTERS["aks_gpu_pool_params"](POOL, "gpu")
