# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPU-aware filters: pod specs, tolerations, node affinity, JupyterHub profiles, KServe InferenceServices.

Each filter only translates the renderer's GpuSpecError into AnsibleFilterError; the logic lives in
module_utils (gpu_pod_spec, jupyterhub_profiles, inference_service). Documentation lives in the sidecar
``<filter name>.yml`` files.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.mlops.platform.plugins.module_utils.gpu_pod_spec import (
    gpu_node_affinity as _gpu_node_affinity,
    gpu_tolerations as _gpu_tolerations,
    render_gpu_pod_spec,
)
from ansible_collections.mlops.platform.plugins.module_utils.inference_service import render_inference_service
from ansible_collections.mlops.platform.plugins.module_utils.jupyterhub_profiles import render_jupyterhub_profiles
from ansible_collections.mlops.platform.plugins.module_utils.k8s_values import GpuSpecError


def _call(filter_name, func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except GpuSpecError as exc:
        raise AnsibleFilterError("mlops.platform.%s: %s" % (filter_name, exc))


def gpu_pod_spec(spec, gpus=1, container=None, mig_profile=None, node_selector=None, tolerations=None, spot=False,
                 gpu_products=None, shm_size=None, priority_class=None):
    """Return a copy of a PodSpec set up to run on GPU nodes."""
    return _call("gpu_pod_spec", render_gpu_pod_spec, spec, gpus=gpus, container=container, mig_profile=mig_profile,
                 node_selector=node_selector, tolerations=tolerations, spot=spot, gpu_products=gpu_products,
                 shm_size=shm_size, priority_class=priority_class)


def gpu_tolerations(spot=False):
    """Tolerations for the GPU taint (and the AKS spot taint when the input is true)."""
    return _call("gpu_tolerations", _gpu_tolerations, spot)


def gpu_node_affinity(products):
    """A pod affinity requiring one of the given nvidia.com/gpu.product label values."""
    return _call("gpu_node_affinity", _gpu_node_affinity, products)


def jupyterhub_profiles(profiles):
    """zero-to-jupyterhub singleuser.profileList entries from simple profile mappings."""
    return _call("jupyterhub_profiles", render_jupyterhub_profiles, profiles)


def inference_service(name, **kwargs):
    """A KServe v1beta1 InferenceService manifest with a GPU-aware predictor."""
    return _call("inference_service", render_inference_service, name, **kwargs)


class FilterModule(object):
    """GPU-aware pod spec filters."""

    def filters(self):
        return {
            "gpu_pod_spec": gpu_pod_spec,
            "gpu_tolerations": gpu_tolerations,
            "gpu_node_affinity": gpu_node_affinity,
            "jupyterhub_profiles": jupyterhub_profiles,
            "inference_service": inference_service,
        }
