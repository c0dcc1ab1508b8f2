# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""gpu_nodepool with provider aks, run for real against a local HTTPS stand-in for Azure Resource Manager.

The role's Azure tasks (azure_rm_resource_info, azure_rm_resource, azure_rm_aksagentpool) run with the Azure SDK
from a venv of their own (tests/pytest/azure_sdk_env.py, built on first use and cached), authenticate as an App
Service style managed identity against the stand-in's token endpoint, and reach the stand-in as a cloud described
by its own metadata document (``ARM_CLOUD_METADATA_URL``; ``cloud_environment`` is the stand-in's resource manager
URL). The tests assert on the requests the stand-in recorded.

The pools are autoscaled from zero (and one run sets ``gpu_nodepool_wait: false``), so the role's wait for joined
nodes has no node to wait for; that wait is exercised by the provider ``existing`` tests on the testbed.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import pytest
import yaml

from arm_standin import SPOT_TAINT, ArmStandin
import azure_sdk_env

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SUBSCRIPTION = "00000000-0000-4000-8000-00000000a1a1"
RG, CLUSTER, POOL = "rg-ml", "aks-ml", "gpua100"
LABELS = {"node-type": "ai", "accelerator": "nvidia-gpu", "workload-type": "ai-ml"}
GPU_TAINT = "nvidia.com/gpu=true:NoSchedule"
POOL_PATH = ("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.ContainerService/managedClusters/%s/"
             "agentPools/%s" % (SUBSCRIPTION, RG, CLUSTER, POOL)).lower()
# The canaries: credentials that must be used and never shown.
CANARY_SECRET = "canary-secret-" + secrets.token_hex(8)
CANARY_IDENTITY_HEADER = "canary-identity-header-" + secrets.token_hex(8)


@pytest.fixture(scope="session")
def azure_python():
    """The Azure SDK venv's python (built from PyPI on first use: about a minute and 1.2 GB, then cached)."""
    try:
        return azure_sdk_env.ensure()
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        pytest.fail("the Azure SDK venv could not be built: %s" % exc)


@pytest.fixture
def arm(tmp_path):
    standin = ArmStandin(tmp_path, identity_header=CANARY_IDENTITY_HEADER, clusters=[(RG, CLUSTER)]).start()
    yield standin
    standin.stop()


def _env(arm, tmp_path):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AZURE_", "ARM_", "IDENTITY_", "MSI_")) and key.lower() not in ("https_proxy", "http_proxy")}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
        ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]),
        # The cloud, described by the stand-in's metadata (azure-cli-core reads it and caches it in the config dir).
        ARM_CLOUD_METADATA_URL=arm.metadata_url,
        AZURE_CONFIG_DIR=str(tmp_path / "azure-config"),
        # The managed identity (App Service style): where to ask for tokens, and the secret header.
        IDENTITY_ENDPOINT=arm.identity_endpoint,
        IDENTITY_HEADER=CANARY_IDENTITY_HEADER,
        # Trust the stand-in's CA (requests/azure-core, and urllib for the metadata).
        REQUESTS_CA_BUNDLE=arm.ca,
        SSL_CERT_FILE=arm.ca,
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


def _run(arm, tmp_path, azure_python, pool=None, extra=None, check=False, verbose=False):
    role_vars = {
        "gpu_nodepool_provider": "aks",
        "gpu_nodepool_aks": dict({
            "resource_group": RG,
            "cluster_name": CLUSTER,
            "name": POOL,
            "vm_size": "Standard_NC24ads_A100_v4",
            "autoscale": {"enabled": True, "min_count": 0, "max_count": 3},
            "polling_interval": 1,
            "polling_timeout": 120,
        }, **(pool or {})),
        "gpu_nodepool_azure_auth": {
            "auth_source": "msi",
            "subscription_id": SUBSCRIPTION,
            "cloud_environment": arm.resource_manager,
            # Not used by the managed identity; a canary that must not show up anywhere.
            "secret": CANARY_SECRET,
        },
    }
    role_vars.update(extra or {})
    play = [{
        "name": "gpu_nodepool against the ARM stand-in",
        "hosts": "localhost",
        "gather_facts": False,
        "roles": [{"role": "mlops.platform.gpu_nodepool", "vars": role_vars}],
    }]
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=%s" % azure_python, str(playbook)]
    if check:
        argv += ["--check", "--diff"]
    if verbose:
        argv += ["-vvv"]
    return subprocess.run(argv, env=_env(arm, tmp_path), capture_output=True, text=True, timeout=1800, check=False)


def _recap(result):
    match = re.search(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                      result.stdout, re.MULTILINE)
    assert match, result.stdout[-3000:] + result.stderr[-3000:]
    return {"ok": int(match.group(1)), "changed": int(match.group(2)), "failed": int(match.group(4))}


def _ok(result):
    recap = _recap(result)
    assert result.returncode == 0 and recap["failed"] == 0, result.stdout[-5000:] + result.stderr[-3000:]
    return recap


def _pool_calls(arm, method):
    return [r for r in arm.recorded(method) if r["path"].lower() == POOL_PATH]


def _seed(arm, **properties):
    props = dict({"mode": "User", "osType": "Linux", "type": "VirtualMachineScaleSets",
                  "vmSize": "Standard_NC24ads_A100_v4", "count": 0, "enableAutoScaling": True, "minCount": 0,
                  "maxCount": 3, "osDiskSizeGB": 128, "maxPods": 110, "nodeLabels": dict(LABELS),
                  "nodeTaints": [GPU_TAINT], "scaleSetPriority": "Regular"}, **properties)
    arm.seed_pool(SUBSCRIPTION, RG, CLUSTER, POOL, props)


def test_create_rerun_check_and_update(arm, tmp_path, azure_python):
    # (a) create, driver owner operator: one PUT through the agentPools REST API with the driver install skipped.
    created = _run(arm, tmp_path, azure_python, extra={"mlops_gpu_driver_owner": "operator"})
    assert _ok(created)["changed"] >= 1
    assert all(r["authorised"] for r in arm.recorded() if r["path"].lower().startswith("/subscriptions/"))
    gets, puts = _pool_calls(arm, "GET"), _pool_calls(arm, "PUT")
    assert gets and gets[0]["api_version"] == "2025-10-01"
    assert len(puts) == 1 and len(arm.mutating()) == 1
    assert puts[0]["api_version"] == "2025-10-01"
    props = puts[0]["body"]["properties"]
    assert props["vmSize"] == "Standard_NC24ads_A100_v4"
    assert props["enableAutoScaling"] is True and props["minCount"] == 0 and props["maxCount"] == 3
    assert props["count"] == 1  # the role's default initial count; the autoscaler owns it afterwards
    assert props["mode"] == "User" and props["osType"] == "Linux"
    assert props["nodeLabels"] == LABELS
    assert props["nodeTaints"] == [GPU_TAINT]
    assert props["gpuProfile"] == {"driver": "None"}
    assert props["scaleSetPriority"] == "Regular"
    stored = arm.pool(SUBSCRIPTION, RG, CLUSTER, POOL)["properties"]
    assert stored["gpuProfile"] == {"driver": "None"}
    # AKS answers the PUT while the pool is still Creating: the role must read it until provisioning has finished.
    assert stored["provisioningState"] == "Succeeded"
    assert len(_pool_calls(arm, "GET")) >= 1 + arm.provisioning_reads

    # (b) a rerun reads the pool and sends nothing.
    arm.clear()
    rerun = _run(arm, tmp_path, azure_python)
    assert _ok(rerun)["changed"] == 0, rerun.stdout[-3000:]
    assert _pool_calls(arm, "GET") and arm.mutating() == []

    # (c) check mode on a changed spec: the change is reported, nothing mutating is sent.
    arm.clear()
    wider = {"autoscale": {"enabled": True, "min_count": 0, "max_count": 5}}
    check = _run(arm, tmp_path, azure_python, pool=wider, check=True)
    assert _ok(check)["changed"] >= 1, check.stdout[-3000:]
    assert "update" in check.stdout and "properties.maxCount" in check.stdout
    assert arm.mutating() == []
    assert arm.pool(SUBSCRIPTION, RG, CLUSTER, POOL)["properties"]["maxCount"] == 3

    # (d) the change for real: one PUT with the new maximum, the driver mode sent again.
    arm.clear()
    update = _run(arm, tmp_path, azure_python, pool=wider)
    assert _ok(update)["changed"] >= 1
    puts = _pool_calls(arm, "PUT")
    assert len(puts) == 1 and len(arm.mutating()) == 1
    assert puts[0]["body"]["properties"]["maxCount"] == 5
    assert puts[0]["body"]["properties"]["gpuProfile"] == {"driver": "None"}
    assert arm.pool(SUBSCRIPTION, RG, CLUSTER, POOL)["properties"]["maxCount"] == 5
    assert arm.pool(SUBSCRIPTION, RG, CLUSTER, POOL)["properties"]["provisioningState"] == "Succeeded"


def test_failed_provisioning_fails_the_role(arm, tmp_path, azure_python):
    # A pool whose provisioning ends Failed (quota, capacity, ...) fails the run, naming the pool.
    arm.fail_provisioning.add(POOL)
    result = _run(arm, tmp_path, azure_python)
    assert result.returncode != 0 and _recap(result)["failed"] == 1
    assert "provisioning of pool %s in cluster %s ended Failed" % (POOL, CLUSTER) in result.stdout, result.stdout[-3000:]
    assert len(_pool_calls(arm, "PUT")) == 1


def test_driver_mode_conflict_fails_before_any_change(arm, tmp_path, azure_python):
    # (e) a pool created with AKS installing the driver, and a play that says the operator owns it.
    _seed(arm, gpuProfile={"driver": "Install"})
    result = _run(arm, tmp_path, azure_python, extra={"mlops_gpu_driver_owner": "operator"})
    assert result.returncode != 0 and _recap(result)["failed"] == 1
    assert "mlops_gpu_driver_owner" in result.stdout, result.stdout[-3000:]
    assert "driver mode Install" in result.stdout
    assert _pool_calls(arm, "GET") and arm.mutating() == []

    # A pool without gpuProfile is one whose driver AKS installs (the API's default): the same conflict.
    arm.clear()
    _seed(arm)
    result = _run(arm, tmp_path, azure_python)
    assert result.returncode != 0 and "mlops_gpu_driver_owner" in result.stdout
    assert arm.mutating() == []


def test_spot_pool(arm, tmp_path, azure_python):
    # (f) spot settings reach the body, and the taint AKS adds to spot pools does not make the rerun change.
    spot = {"spot": {"enabled": True, "eviction_policy": "Delete", "max_price": -1}}
    created = _run(arm, tmp_path, azure_python, pool=spot)
    _ok(created)
    puts = _pool_calls(arm, "PUT")
    assert len(puts) == 1
    props = puts[0]["body"]["properties"]
    assert props["scaleSetPriority"] == "Spot"
    assert props["scaleSetEvictionPolicy"] == "Delete"
    assert props["spotMaxPrice"] == -1
    assert sorted(props["nodeTaints"]) == sorted([GPU_TAINT, SPOT_TAINT])
    assert props["gpuProfile"] == {"driver": "None"}

    arm.clear()
    rerun = _run(arm, tmp_path, azure_python, pool=spot)
    assert _ok(rerun)["changed"] == 0, rerun.stdout[-3000:]
    assert arm.mutating() == []


def test_absent_deletes_the_pool(arm, tmp_path, azure_python):
    # (g) state absent: one DELETE (through azure_rm_aksagentpool), read until the pool is gone (the stand-in keeps
    # it Deleting for a few reads, as AKS does for minutes), then nothing on a rerun.
    arm.deletion_reads = 5
    _seed(arm, gpuProfile={"driver": "None"})
    absent = _run(arm, tmp_path, azure_python, extra={"gpu_nodepool_state": "absent"})
    assert _ok(absent)["changed"] >= 1
    deletes = _pool_calls(arm, "DELETE")
    assert len(deletes) == 1 and [r["method"] for r in arm.mutating()] == ["DELETE"]
    assert deletes[0]["api_version"]
    assert arm.pool(SUBSCRIPTION, RG, CLUSTER, POOL) is None
    # Gone when the run ended: the role read the pool until it answered 404 (the SDK's poller may have read the
    # deletion's operation status once or twice before the module exited).
    reads_after = [r for r in _pool_calls(arm, "GET") if r["time"] > deletes[0]["time"]]
    assert len(reads_after) >= 2, reads_after

    arm.clear()
    again = _run(arm, tmp_path, azure_python, extra={"gpu_nodepool_state": "absent"})
    assert _ok(again)["changed"] == 0, again.stdout[-3000:]
    assert arm.mutating() == []


def test_driver_owner_aks_uses_the_module(arm, tmp_path, azure_python):
    # Owner aks: azure_rm_aksagentpool creates the pool with the SDK's own agentPools call, without gpuProfile (AKS
    # installs the driver), and waits for the operation the stand-in names.
    created = _run(arm, tmp_path, azure_python, extra={"mlops_gpu_driver_owner": "aks", "gpu_nodepool_wait": False})
    _ok(created)
    puts = _pool_calls(arm, "PUT")
    assert len(puts) == 1
    props = puts[0]["body"]["properties"]
    assert "gpuProfile" not in props
    assert props["vmSize"] == "Standard_NC24ads_A100_v4" and props["mode"] == "User"
    assert props["enableAutoScaling"] is True and props["minCount"] == 0 and props["maxCount"] == 3
    assert props["nodeLabels"] == LABELS and props["nodeTaints"] == [GPU_TAINT]

    arm.clear()
    rerun = _run(arm, tmp_path, azure_python, extra={"mlops_gpu_driver_owner": "aks", "gpu_nodepool_wait": False})
    assert _ok(rerun)["changed"] == 0, rerun.stdout[-3000:]
    assert arm.mutating() == []


def test_no_credential_in_verbose_output(arm, tmp_path, azure_python):
    # (h) at -vvv, neither the identity header, the client secret nor the bearer token shows; the header was used.
    result = _run(arm, tmp_path, azure_python, verbose=True)
    _ok(result)
    assert [r for r in arm.recorded("GET") if r["path"] == "/msi/token"], "the managed identity was not asked"
    assert _pool_calls(arm, "PUT")
    output = result.stdout + result.stderr
    for value in (CANARY_IDENTITY_HEADER, CANARY_SECRET, arm.token):
        assert value not in output
