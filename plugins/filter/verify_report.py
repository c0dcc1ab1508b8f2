# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Report filters of the end-to-end check. Documentation lives in the sidecar ``<filter name>.yml`` files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.mlops.platform.plugins.module_utils.verify_report import (
    VerifyReportError, helm_check, isvc_check, junit_xml, report, workload_check)


def verify_report(checks, environment=""):
    """The JSON report of a list of checks."""
    try:
        return report(checks, environment=environment)
    except VerifyReportError as exc:
        raise AnsibleFilterError("mlops.platform.verify_report: %s" % exc)


def verify_junit(checks, suite="mlops.platform.verify"):
    """The JUnit XML document of a list of checks."""
    try:
        return junit_xml(checks, suite=suite)
    except VerifyReportError as exc:
        raise AnsibleFilterError("mlops.platform.verify_junit: %s" % exc)


class FilterModule(object):
    """Report filters of the end-to-end check."""

    def filters(self):
        return {"verify_report": verify_report, "verify_junit": verify_junit, "verify_helm_check": helm_check,
                "verify_workload_check": workload_check, "verify_isvc_check": isvc_check}
