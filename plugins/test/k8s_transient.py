# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jinja tests: did a registered Kubernetes or Helm task fail for a transient reason? Docs: k8s_transient.yml, k8s_drain_retryable.yml."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.mlops.platform.plugins.module_utils.k8s_retry import result_is_retryable_drain_failure, result_is_transient_failure


def k8s_transient(result):
    """True when ``result`` is a failed task result whose failure is transient (429, 5xx, connection loss)."""
    return result_is_transient_failure(result)


def k8s_drain_retryable(result):
    """True when a failed M(kubernetes.core.k8s_drain) result can finish on a retry (transient, or a namespace being deleted)."""
    return result_is_retryable_drain_failure(result)


class TestModule(object):
    """Kubernetes failure classification."""

    def tests(self):
        return {"k8s_transient": k8s_transient, "k8s_drain_retryable": k8s_drain_retryable}
