# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """How the MLflow clients of this collection (mlflow_model_version, the mlflow_model_uri lookup) talk HTTP."""

    DOCUMENTATION = r"""
options:
  validate_certs:
    description: Verify the server's TLS certificate.
    type: bool
    default: true
  ca_path:
    description: CA bundle to verify the server with.
    type: path
  timeout:
    description: Seconds to wait for each answer.
    type: int
    default: 30
"""
