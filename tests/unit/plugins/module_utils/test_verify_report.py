# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import xml.etree.ElementTree as ET

import pytest

from ansible_collections.mlops.platform.plugins.module_utils.verify_report import VerifyReportError, junit_xml, report

CHECKS = [
    {"name": "GPU readiness", "component": "gpu", "status": "passed", "message": "2 of 2 ready", "seconds": 1.5},
    {"name": "smoke test", "component": "gpu", "status": "failed", "message": "gpu-1: <exit 1> & \"oops\"", "seconds": 30},
    {"name": "Hub spawn", "component": "jupyterhub", "status": "skipped", "message": "no Hub API URL"},
]


def test_report_counts_every_status_and_is_not_ok_with_a_failure():
    out = report(CHECKS, environment="local")
    assert (out["total"], out["passed"], out["failed"], out["skipped"]) == (3, 1, 1, 1)
    assert out["ok"] is False and out["environment"] == "local"
    assert out["checks"][2]["seconds"] == 0.0


def test_report_is_ok_when_nothing_failed():
    assert report([CHECKS[0], CHECKS[2]])["ok"] is True


def test_junit_parses_and_carries_failures_and_skips():
    root = ET.fromstring(junit_xml(CHECKS).encode("utf-8"))
    suite = root.find("testsuite")
    assert suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("skipped") == "1"
    cases = suite.findall("testcase")
    assert [c.get("classname") for c in cases] == ["gpu", "gpu", "jupyterhub"]
    failure = cases[1].find("failure")
    assert failure is not None and failure.text == 'gpu-1: <exit 1> & "oops"'
    assert cases[2].find("skipped").get("message") == "no Hub API URL"
    assert cases[0].find("failure") is None and float(suite.get("time")) == pytest.approx(31.5)


@pytest.mark.parametrize("checks, path", [
    ("nope", "checks: must be a list"),
    ([1], "checks[0]: must be a dict"),
    ([{"component": "gpu", "status": "passed"}], "checks[0].name"),
    ([{"name": "x", "component": "", "status": "passed"}], "checks[0].component"),
    ([{"name": "x", "component": "gpu", "status": "ok"}], "checks[0].status"),
    ([CHECKS[0], {"name": "x", "component": "gpu", "status": "passed", "seconds": -1}], "checks[1].seconds"),
])
def test_malformed_checks_name_the_field(checks, path):
    with pytest.raises(VerifyReportError) as exc:
        report(checks)
    assert str(exc.value).startswith(path)


def test_helm_check_passes_a_deployed_release_and_fails_a_missing_or_failed_one():
    from ansible_collections.mlops.platform.plugins.module_utils.verify_report import helm_check
    ok = helm_check({"item": "mlflow", "status": {"name": "mlflow", "status": "deployed", "chart": "mlflow-1.11.5", "revision": "2"}})
    assert ok["status"] == "passed" and "mlflow-1.11.5" in ok["message"] and ok["component"] == "mlflow"
    assert helm_check({"item": "kserve"})["status"] == "failed"
    assert helm_check({"item": "kserve", "status": {"status": "pending-upgrade"}})["status"] == "failed"


def test_workload_check_names_the_deployment_short_of_replicas():
    from ansible_collections.mlops.platform.plugins.module_utils.verify_report import workload_check
    good = {"metadata": {"name": "hub"}, "spec": {"replicas": 1}, "status": {"availableReplicas": 1}}
    bad = {"metadata": {"name": "proxy"}, "spec": {"replicas": 2}, "status": {"availableReplicas": 1}}
    assert workload_check({"item": "jupyterhub", "resources": [good]})["status"] == "passed"
    out = workload_check({"item": "jupyterhub", "resources": [good, bad]})
    assert out["status"] == "failed" and out["message"] == "proxy: 1 of 2 replicas available"
    assert workload_check({"item": "mlflow", "resources": []})["message"] == "no Deployment found"


def test_isvc_check_reads_the_ready_condition():
    from ansible_collections.mlops.platform.plugins.module_utils.verify_report import isvc_check
    ready = {"metadata": {"name": "m", "namespace": "t"}, "status": {"url": "http://m.t", "conditions": [{"type": "Ready", "status": "True"}]}}
    stuck = {"metadata": {"name": "m", "namespace": "t"}, "status": {"conditions": [{"type": "Ready", "status": "False", "message": "no GPU"}]}}
    assert isvc_check(ready) == {"name": "InferenceService t/m Ready", "component": "kserve", "status": "passed", "message": "http://m.t"}
    assert isvc_check(stuck)["message"] == "no GPU"
    assert isvc_check({"metadata": {"name": "n"}})["message"] == "no Ready condition yet"
