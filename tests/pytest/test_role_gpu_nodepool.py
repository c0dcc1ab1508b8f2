# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""gpu_nodepool (provider existing) against the testbed: the role's taints are merged with a foreign taint, state
absent removes only what the role added, and bad input fails before anything changes, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROLE = os.path.join(ROOT, "roles", "gpu_nodepool")
NODE = "system-1"
ANNOTATION = "mlops.platform/gpu-nodepool-managed"
FOREIGN = {"key": "example.com/pytest-dedicated", "value": "team-b", "effect": "NoExecute"}
LABELS = {"workload-type": "ai-ml", "mlops.platform.test/pytest": "true"}
TAINTS = [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]


def _core(k8s):
    from kubernetes import client

    return client.CoreV1Api(k8s)


def _state(k8s):
    node = _core(k8s).read_node(NODE)
    taints = [{"key": t.key, "value": t.value or "", "effect": t.effect} for t in node.spec.taints or []]
    return dict(node.metadata.labels or {}), taints, dict(node.metadata.annotations or {})


def _set_taints(k8s, taints):
    _core(k8s).patch_node(NODE, {"spec": {"taints": taints}})


def _run_role(tmp_path, ansible_env, testbed, extra, check=False):
    play = [{
        "name": "gpu_nodepool",
        "hosts": "localhost",
        "gather_facts": False,
        "module_defaults": {
            "group/kubernetes.core.k8s": {"kubeconfig": testbed.kubeconfig},
            "group/mlops.platform.gpu": {"kubeconfig": testbed.kubeconfig},
        },
        "roles": [{"role": "mlops.platform.gpu_nodepool", "vars": dict({
            "gpu_nodepool_provider": "existing",
            "gpu_nodepool_node_names": [NODE],
            "gpu_nodepool_labels": LABELS,
            "gpu_nodepool_taints": TAINTS,
            "gpu_nodepool_wait_timeout": 300,
        }, **extra)}],
    }]
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump(play))
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook)]
    if check:
        argv += ["--check", "--diff"]
    return subprocess.run(argv, env=ansible_env, capture_output=True, text=True, timeout=900, check=False)


@pytest.fixture
def foreign_taint(k8s, tmp_path, ansible_env, testbed):
    """The node with a foreign taint and none of the role's additions; restored afterwards."""
    labels, taints, _annotations = _state(k8s)
    _set_taints(k8s, [t for t in taints if t["key"] != FOREIGN["key"]] + [FOREIGN])
    yield
    _run_role(tmp_path, ansible_env, testbed, {"gpu_nodepool_state": "absent"})
    _labels, now, _annotations = _state(k8s)
    _set_taints(k8s, [t for t in now if t["key"] != FOREIGN["key"]])


def test_merge_keeps_foreign_taint_and_absent_removes_only_ours(k8s, tmp_path, ansible_env, testbed, foreign_taint):
    before_labels, before_taints, _annotations = _state(k8s)

    present = _run_role(tmp_path, ansible_env, testbed, {})
    assert present.returncode == 0, present.stdout[-3000:] + present.stderr[-2000:]
    labels, taints, annotations = _state(k8s)
    assert FOREIGN in taints
    assert TAINTS[0] in taints
    assert all(labels[key] == value for key, value in LABELS.items())
    assert ANNOTATION in annotations

    rerun = _run_role(tmp_path, ansible_env, testbed, {})
    assert rerun.returncode == 0 and "changed=0" in rerun.stdout, rerun.stdout[-3000:]

    absent = _run_role(tmp_path, ansible_env, testbed, {"gpu_nodepool_state": "absent"})
    assert absent.returncode == 0, absent.stdout[-3000:] + absent.stderr[-2000:]
    labels, taints, annotations = _state(k8s)
    assert sorted(taints, key=str) == sorted(before_taints, key=str)
    assert FOREIGN in taints and TAINTS[0] not in taints
    assert labels == before_labels
    assert ANNOTATION not in annotations


@pytest.mark.parametrize("extra, variable", [
    ({"gpu_nodepool_taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "Sometimes"}]}, "gpu_nodepool_taints"),
    ({"gpu_nodepool_labels": {"workload-type": "not a value"}}, "gpu_nodepool_labels"),
    ({"gpu_nodepool_node_selector": "node-type=system"}, "gpu_nodepool_node_selector"),
    ({"gpu_nodepool_node_names": ["no-such-node"]}, "gpu_nodepool_node_names"),
    ({"mlops_gpu_driver_owner": "nvidia"}, "mlops_gpu_driver_owner"),
])
def test_bad_input_fails_before_any_change(k8s, tmp_path, ansible_env, testbed, foreign_taint, extra, variable):
    before = _state(k8s)
    result = _run_role(tmp_path, ansible_env, testbed, extra)
    assert result.returncode != 0
    assert variable in result.stdout + result.stderr, result.stdout[-3000:]
    assert "changed=0" in result.stdout
    assert _state(k8s) == before


def test_pool_defaults_in_step():
    """defaults/main.yml, the built-in pool settings in vars/main.yml and meta/argument_specs.yml agree."""
    with open(os.path.join(ROLE, "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    with open(os.path.join(ROLE, "vars", "main.yml")) as handle:
        builtin = yaml.safe_load(handle)["__gpu_nodepool_aks_builtin"]
    with open(os.path.join(ROLE, "meta", "argument_specs.yml")) as handle:
        spec = yaml.safe_load(handle)["argument_specs"]["main"]["options"]

    def spec_defaults(options):
        return {key: (spec_defaults(opt["options"]) if "options" in opt and opt["type"] == "dict" else opt.get("default"))
                for key, opt in options.items()}

    assert defaults["gpu_nodepool_aks"] == builtin
    assert spec_defaults(spec["gpu_nodepool_aks"]["options"]) == builtin
    for key, value in defaults.items():
        if key != "gpu_nodepool_aks":
            assert spec[key].get("default") == value, key
