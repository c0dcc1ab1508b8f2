# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Security posture filter. Documentation lives in the sidecar ``security_posture.yml`` file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mlops.platform.plugins.module_utils.security_posture import posture


def security_posture(objects, platform_namespaces, mlflow_values=None, jupyterhub_values=None, allow_dummy_auth=False):
    """The posture findings of a cluster's objects."""
    return posture(objects, platform_namespaces, mlflow_values=mlflow_values, jupyterhub_values=jupyterhub_values,
                   allow_dummy_auth=allow_dummy_auth)


class FilterModule(object):
    """Security posture filter."""

    def filters(self):
        return {"security_posture": security_posture}
