# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filter plugins are thin wrappers: same results as module_utils, errors as AnsibleFilterError."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.mlops.platform.plugins.filter.gpu_pod_spec import FilterModule
from ansible_collections.mlops.platform.plugins.module_utils.gpu_pod_spec import (
    gpu_node_affinity,
    gpu_tolerations,
    render_gpu_pod_spec,
)
from ansible_collections.mlops.platform.plugins.module_utils.inference_service import render_inference_service
from ansible_collections.mlops.platform.plugins.module_utils.jupyterhub_profiles import render_jupyterhub_profiles

FILTERS = FilterModule().filters()
SPEC = {"containers": [{"name": "main", "image": "app:1"}]}


def test_filter_names():
    assert sorted(FILTERS) == ["gpu_node_affinity", "gpu_pod_spec", "gpu_tolerations", "inference_service", "jupyterhub_profiles"]


def test_results_match_module_utils():
    kwargs = dict(gpus=2, mig_profile="1g.10gb", spot=True, gpu_products=["T4"], shm_size="1Gi", priority_class="p",
                  node_selector={"a": "b"}, tolerations=[{"key": "k", "operator": "Exists"}], container="main")
    assert FILTERS["gpu_pod_spec"](SPEC, **kwargs) == render_gpu_pod_spec(SPEC, **kwargs)
    assert FILTERS["gpu_pod_spec"](SPEC) == render_gpu_pod_spec(SPEC)
    assert FILTERS["gpu_tolerations"](True) == gpu_tolerations(True)
    assert FILTERS["gpu_tolerations"]() == gpu_tolerations()
    assert FILTERS["gpu_node_affinity"](["A"]) == gpu_node_affinity(["A"])
    profiles = [{"name": "a", "image": "i", "gpus": 1}]
    assert FILTERS["jupyterhub_profiles"](profiles) == render_jupyterhub_profiles(profiles)
    assert FILTERS["inference_service"]("m", gpus=1, namespace="ns") == render_inference_service("m", gpus=1, namespace="ns")


@pytest.mark.parametrize("name, args, kwargs, message", [
    ("gpu_pod_spec", ([],), {}, "mlops.platform.gpu_pod_spec: spec: expected a mapping, got list"),
    ("gpu_pod_spec", (SPEC,), {"gpus": -1}, "mlops.platform.gpu_pod_spec: gpus: expected an integer >= 0, got -1"),
    ("gpu_pod_spec", (SPEC,), {"container": "x"}, "mlops.platform.gpu_pod_spec: container: no container named 'x' in spec.containers (known: 'main')"),
    ("gpu_tolerations", ("yes",), {}, "mlops.platform.gpu_tolerations: spot: expected a boolean (true/false), got string 'yes'"),
    ("gpu_node_affinity", ("T4",), {}, "mlops.platform.gpu_node_affinity: products: expected a list, got string 'T4'"),
    ("jupyterhub_profiles", ([{"name": "a"}],), {}, "mlops.platform.jupyterhub_profiles: profiles[0] ('a'): missing required key 'image'"),
    ("inference_service", ("Bad",), {}, "mlops.platform.inference_service: name: 'Bad' is not a valid DNS-1035 label"),
])
def test_errors_become_filter_errors(name, args, kwargs, message):
    with pytest.raises(AnsibleFilterError) as err:
        FILTERS[name](*args, **kwargs)
    assert str(err.value).startswith(message)


def test_unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError, match="colour"):
        FILTERS["inference_service"]("m", colour="red")
