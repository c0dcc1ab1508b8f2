# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""MLflow chart filters. Documentation lives in the sidecar ``<filter name>.yml`` files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.mlops.platform.plugins.module_utils.mlflow_chart import MlflowChartError, server_command


def mlflow_server_command(values):
    try:
        return server_command(values)
    except MlflowChartError as exc:
        raise AnsibleFilterError("mlops.platform.mlflow_server_command: %s" % exc)


class FilterModule(object):
    """MLflow chart filters."""

    def filters(self):
        return {"mlflow_server_command": mlflow_server_command}
