# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Batch apply helpers. Documentation lives in the sidecar ``<filter name>.yml`` files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.mlops.platform.plugins.module_utils.k8s_retry import batch_entries, failed_definitions


def k8s_failed_definitions(definitions, result):
    """The definitions whose apply failed in one kubernetes.core.k8s run with continue_on_error."""
    if definitions is not None and not isinstance(definitions, list):
        raise AnsibleFilterError("mlops.platform.k8s_failed_definitions: the input must be a list of definitions, got %s"
                                 % type(definitions).__name__)
    try:
        return failed_definitions(definitions, result)
    except ValueError as exc:
        raise AnsibleFilterError("mlops.platform.k8s_failed_definitions: %s" % exc)


def k8s_batch_entries(result):
    """The per-definition entries of what one kubernetes.core.k8s run registered."""
    return batch_entries(result)


class FilterModule(object):
    """Batch apply helpers."""

    def filters(self):
        return {"k8s_batch_entries": k8s_batch_entries, "k8s_failed_definitions": k8s_failed_definitions}
