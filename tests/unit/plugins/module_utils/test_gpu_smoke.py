# -*- coding: utf-8 -*-
# Copyright: (c) 2026, mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Smoke-test Job rendering and per-node verdict (plugins/module_utils/gpu_smoke.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

import pytest

from ansible_collections.mlops.platform.plugins.module_utils import gpu_smoke
from ansible_collections.mlops.platform.plugins.module_utils.k8s_values import GpuSpecError


def test_render_job_pins_node_and_requests_gpu():
    job = gpu_smoke.render_job("gpu-0", "abc123", "smoke", gpus=2, active_deadline=360)
    assert job["kind"] == "Job" and job["apiVersion"] == "batch/v1"
    assert job["metadata"]["namespace"] == "smoke"
    assert job["metadata"]["labels"][gpu_smoke.RUN_LABEL] == "abc123"
    spec = job["spec"]["template"]["spec"]
    assert spec["nodeName"] == "gpu-0"
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "gpu-0"}
    assert spec["restartPolicy"] == "Never"
    container = spec["containers"][0]
    assert container["image"] == gpu_smoke.DEFAULT_IMAGE
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in spec["tolerations"]
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 360
    assert job["spec"]["template"]["metadata"]["labels"][gpu_smoke.RUN_LABEL] == "abc123"


def test_render_job_mig_spot_and_image_override():
    job = gpu_smoke.render_job("gpu-1", "r1", "default", image="registry.local/cuda-sample:vectoradd", mig_profile="1g.10gb",
                               spot=True, command=["/bin/sh", "-c", "true"])
    spec = job["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["image"] == "registry.local/cuda-sample:vectoradd"
    assert container["command"] == ["/bin/sh", "-c", "true"]
    assert container["resources"]["limits"] == {"nvidia.com/mig-1g.10gb": 1}
    assert any(t["key"] == "kubernetes.azure.com/scalesetpriority" for t in spec["tolerations"])


def test_render_job_rejects_bad_mig_profile():
    with pytest.raises(GpuSpecError):
        gpu_smoke.render_job("gpu-0", "r1", "default", mig_profile="huge")


@pytest.mark.parametrize("node", ["gpu-0", "aks-gpupool-12345678-vmss000000", "Node_With.Odd.Chars" * 5])
def test_job_name_is_dns1123(node):
    name = gpu_smoke.job_name(node, "abcdef")
    assert len(name) <= 63
    assert re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name)
    assert gpu_smoke.job_name(node, "abcdef") == name
    assert gpu_smoke.job_name(node + "x", "abcdef") != name


def _job(state):
    conds = [{"type": state, "status": "True", "reason": "BackoffLimitExceeded" if state == "Failed" else None}] if state else []
    return {"metadata": {"name": "gpu-smoke-gpu-0"}, "status": {"conditions": conds}}


def _pod(phase, exit_code=None):
    status = {"phase": phase, "containerStatuses": [{"name": "vectoradd", "state": {}}]}
    if exit_code is not None:
        status["containerStatuses"][0]["state"] = {"terminated": {"exitCode": exit_code}}
    return {"metadata": {"name": "gpu-smoke-gpu-0-abcde"}, "status": status}


PASS_LOG = "[Vector addition of 50000 elements]\nCopy input data\nTest PASSED\nDone\n"


def test_verdict_pass():
    result = gpu_smoke.node_verdict("gpu-0", _job("Complete"), _pod("Succeeded", 0), PASS_LOG)
    assert result["passed"] is True
    assert result["reasons"] == []
    assert result["exit_code"] == 0 and result["log_passed"] is True
    assert result["log_tail"].endswith("Done")


def test_verdict_fail_exit_code_and_log():
    result = gpu_smoke.node_verdict("gpu-0", _job("Failed"), _pod("Failed", 1), "Test FAILED\n")
    assert result["passed"] is False
    assert "Job failed (BackoffLimitExceeded)" in result["reasons"]
    assert "pod phase is Failed" in result["reasons"]
    assert "container exited with code 1" in result["reasons"]
    assert "log does not contain 'Test PASSED'" in result["reasons"]


def test_verdict_success_without_marker_is_a_failure():
    result = gpu_smoke.node_verdict("gpu-0", _job("Complete"), _pod("Succeeded", 0), "done\n")
    assert result["passed"] is False
    assert result["reasons"] == ["log does not contain 'Test PASSED'"]


def test_verdict_timeout_reports_pending_reason():
    pod = _pod("Pending")
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ImagePullBackOff", "message": "pull denied"}}
    result = gpu_smoke.node_verdict("gpu-0", _job(None), pod, "", timed_out=True, timeout=30)
    assert result["passed"] is False
    assert result["reasons"] == ["timed out after 30s waiting for the Job (pod phase Pending, ImagePullBackOff: pull denied)"]


def test_verdict_timeout_without_pod():
    result = gpu_smoke.node_verdict("gpu-0", _job(None), None, "", timed_out=True, timeout=30)
    assert result["reasons"] == ["timed out after 30s waiting for the Job (pod phase none, no pod created)"]


def test_verdict_no_job():
    result = gpu_smoke.node_verdict("gpu-0", None, None, "")
    assert result["passed"] is False and result["reasons"] == ["Job was not created"]
