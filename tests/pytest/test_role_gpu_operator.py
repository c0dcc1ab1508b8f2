# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gpu_operator role's render step, without a cluster: Helm values against the real chart,
the device-plugin configurations against the node agent's parser, the ClusterPolicy the values
produce against the real CRD, and the validation messages."""

from __future__ import annotations

import os
import subprocess

import jsonschema
import pytest
import yaml

import upstream

from node_agent import gpu_operator as played

STAND_IN = os.path.join(upstream.ROOT, "tests", "testbed", "charts", "gpu-operator")
FULL = {
    "mlops_gpu_driver_owner": "operator",
    "gpu_operator_driver_version": "580.95.05",
    "gpu_operator_image_registry": "mirror.example.com",
    "gpu_operator_image_pull_secrets": ["mirror-pull"],
    "gpu_operator_validator_plugin_env": [{"name": "WITH_WORKLOAD", "value": "false"}],
    "gpu_operator_nfd": "disabled",
    "gpu_operator_mig_strategy": "mixed",
    "gpu_operator_mig_configs": {
        "all-disabled": [{"devices": "all", "mig-enabled": False}],
        "all-1g.10gb": [{"devices": "all", "mig-enabled": True, "mig-devices": {"1g.10gb": 7}}],
    },
    "gpu_operator_mig_node_configs": [{"node_selector": "pool=mig", "config": "all-1g.10gb"}],
    "gpu_operator_sharing": {"strategy": "time-slicing", "replicas": 4},
    "gpu_operator_sharing_node_configs": [
        {"name": "mps-2", "node_selector": "pool=inference", "strategy": "mps", "replicas": 2},
        {"name": "shared-8", "node_selector": "pool=notebooks", "strategy": "time-slicing", "replicas": 8, "rename": True},
    ],
    "gpu_operator_spot_tolerations": True,
    "gpu_operator_extra_tolerations": [{"key": "workload-type", "operator": "Equal", "value": "ai-ml", "effect": "NoSchedule"}],
    "gpu_operator_dcgm_exporter_enabled": False,
}


def render(extra=None, fact=None, tasks_from="render"):
    return upstream.render_role_values("gpu_operator", extra or {}, fact=fact, tasks_from=tasks_from)


@pytest.fixture(scope="module")
def default_values():
    return render()


@pytest.fixture(scope="module")
def full_values():
    return render(FULL)


def test_default_values_conform_to_the_real_chart(default_values):
    upstream.assert_conforms("gpu-operator", default_values)
    assert default_values["driver"]["enabled"] is True
    assert default_values["nfd"]["enabled"] is True
    assert default_values["mig"]["strategy"] == "none"
    assert default_values["devicePlugin"]["config"] == {"create": False, "name": "mlops-device-plugin-config", "default": "default"}
    # The AI taint is tolerated by every operand.
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in default_values["daemonsets"]["tolerations"]
    # dcgm_monitoring brings its own ServiceMonitor; the operator's would scrape twice.
    assert default_values["dcgmExporter"]["serviceMonitor"] == {"enabled": False}
    assert {"name": "DCGM_EXPORTER_KUBERNETES", "value": "true"} in default_values["dcgmExporter"]["env"]


def test_every_feature_conforms_to_the_real_chart(full_values):
    upstream.assert_conforms("gpu-operator", full_values)
    assert full_values["driver"]["version"] == "580.95.05"
    assert full_values["migManager"]["config"] == {"create": False, "default": "all-disabled", "name": "mlops-mig-parted-config"}
    assert full_values["migManager"]["enabled"] is True
    assert full_values["mig"]["strategy"] == "mixed"
    assert full_values["nfd"]["enabled"] is False
    assert full_values["dcgmExporter"]["enabled"] is False
    for section in ("operator", "validator", "driver", "devicePlugin", "gfd"):
        assert full_values[section]["repository"] == "mirror.example.com/nvidia", section
    assert full_values["toolkit"]["repository"] == "mirror.example.com/nvidia/k8s"
    assert full_values["migManager"]["repository"] == "mirror.example.com/nvidia/cloud-native"
    assert full_values["operator"]["imagePullSecrets"] == ["mirror-pull"]
    keys = [t["key"] for t in full_values["daemonsets"]["tolerations"]]
    assert keys == ["nvidia.com/gpu", "kubernetes.azure.com/scalesetpriority", "workload-type"]


def test_a_planted_wrong_path_fails_the_conformance_check():
    values = render({"gpu_operator_release_overrides": {"driver": {"enabeld": False}, "devicePlugin": {"cofig": {"name": "x"}}}})
    errors = upstream.conformance_errors("gpu-operator", values)
    assert any(e.startswith("driver.enabeld:") for e in errors), errors
    assert any(e.startswith("devicePlugin.cofig.name:") for e in errors), errors


def test_overrides_combine_recursively(default_values):
    values = render({"gpu_operator_release_overrides": {"driver": {"usePrecompiled": True}}})
    assert values["driver"]["usePrecompiled"] is True
    assert values["driver"]["repository"] == default_values["driver"]["repository"]


def test_driver_follows_the_shared_owner_switch():
    assert render({"mlops_gpu_driver_owner": "aks"})["driver"]["enabled"] is False
    assert render({"mlops_gpu_driver_owner": "operator"})["driver"]["enabled"] is True


def test_nfd_stays_off_when_the_preflight_found_one():
    assert render({"__gpu_operator_nfd_found": True})["nfd"]["enabled"] is False
    assert render({"__gpu_operator_nfd_found": True, "gpu_operator_nfd": "enabled"})["nfd"]["enabled"] is True


def test_exporter_counters_key_is_a_key_upstream_documents_in_a_comment():
    """dcgmExporter.config.name is read by the chart's template but only commented in its values.yaml.

    The conformance check admits it as one of the documented commented keys (upstream.COMMENTED_KEYS),
    and that comment must still be in the real values.yaml.
    """
    values = render({"gpu_operator_dcgm_exporter_config_name": "dcgm-exporter-metrics"})
    assert values["dcgmExporter"]["config"] == {"name": "dcgm-exporter-metrics"}
    assert "dcgmExporter.config.name" in upstream.COMMENTED_KEYS["gpu-operator"]
    assert upstream.conformance_errors("gpu-operator", values) == []
    with open(upstream.upstream_path("gpu-operator", "values.yaml"), encoding="utf-8") as handle:
        assert "# config:\n    # name: custom-dcgm-exporter-metrics" in handle.read()


def test_device_plugin_configs_are_what_the_device_plugin_reads():
    data = render(FULL, fact="__gpu_operator_device_plugin_data")
    assert sorted(data) == ["default", "mps-2", "shared-8"]
    docs = {key: yaml.safe_load(text) for key, text in data.items()}
    assert docs["default"]["version"] == "v1"
    assert docs["default"]["flags"]["migStrategy"] == "mixed"
    assert docs["default"]["sharing"]["timeSlicing"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 4}]
    assert docs["mps-2"]["sharing"]["mps"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 2}]
    # The testbed's device plugin (the node agent) reads them as the real one would.
    assert played.parse_sharing(data["default"]) == played.Sharing("time-slicing", 4, False)
    assert played.parse_sharing(data["mps-2"]) == played.Sharing("mps", 2, False)
    assert played.parse_sharing(data["shared-8"]) == played.Sharing("time-slicing", 8, True)


def test_no_sharing_renders_a_plain_config():
    data = render({}, fact="__gpu_operator_device_plugin_data")
    assert yaml.safe_load(data["default"]) == {"version": "v1", "flags": {"migStrategy": "none"}}
    assert played.parse_sharing(data["default"]) == played.NO_SHARING


def test_mig_parted_config_is_rendered_for_mig_manager():
    data = render(FULL, fact="__gpu_operator_mig_data")
    doc = yaml.safe_load(data["config.yaml"])
    assert doc["version"] == "v1"
    assert doc["mig-configs"]["all-1g.10gb"] == [{"devices": "all", "mig-enabled": True, "mig-devices": {"1g.10gb": 7}}]


def _cluster_policy(values, tmp_path):
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    out = subprocess.run(["helm", "template", "t", STAND_IN, "-n", "gpu-operator", "-f", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d and d.get("kind") == "ClusterPolicy"]


@pytest.mark.parametrize("which", ["default", "full"])
def test_the_real_crd_accepts_the_cluster_policy(which, default_values, full_values, tmp_path):
    """The ClusterPolicy the values produce (stand-in chart) validates against the real v26.7.0 CRD schema."""
    values = default_values if which == "default" else full_values
    policies = _cluster_policy(values, tmp_path)
    assert len(policies) == 1
    crd = upstream.load_yaml_all("gpu-operator", "crds", "nvidia.com_clusterpolicies.yaml")[0]
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = version["schema"]["openAPIV3Schema"]
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(policies[0]), key=lambda e: list(e.absolute_path))
    assert not errors, ["%s: %s" % (".".join(map(str, e.absolute_path)), e.message) for e in errors]
    spec = policies[0]["spec"]
    assert spec["driver"]["enabled"] == values["driver"]["enabled"]
    assert spec["devicePlugin"]["config"]["name"] == "mlops-device-plugin-config"
    assert spec["mig"]["strategy"] == values["mig"]["strategy"]


def test_the_real_crd_schema_catches_a_bad_cluster_policy(default_values, tmp_path):
    """The check above can fail: a MIG strategy outside the CRD's enum is reported."""
    policy = _cluster_policy(default_values, tmp_path)[0]
    policy["spec"]["mig"]["strategy"] = "split"
    crd = upstream.load_yaml_all("gpu-operator", "crds", "nvidia.com_clusterpolicies.yaml")[0]
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")["schema"]["openAPIV3Schema"]
    assert any(list(e.absolute_path) == ["spec", "mig", "strategy"] for e in jsonschema.Draft7Validator(schema).iter_errors(policy))


@pytest.mark.parametrize("extra, variable", [
    ({"gpu_operator_sharing": {"strategy": "time-slicing", "replicas": 1}}, "gpu_operator_sharing"),
    ({"gpu_operator_sharing_node_configs": [{"name": "x", "node_selector": "a=b", "strategy": "mps", "replicas": 0}]},
     "gpu_operator_sharing_node_configs[0]"),
    ({"gpu_operator_sharing_node_configs": [{"name": "default", "node_selector": "a=b", "replicas": 2}]}, "gpu_operator_sharing_node_configs"),
    ({"gpu_operator_mig_node_configs": [{"node_selector": "a=b", "config": "all-1g.10gb"}]}, "gpu_operator_mig_strategy"),
    ({"gpu_operator_mig_strategy": "single", "gpu_operator_mig_configs": {"all-disabled": []},
      "gpu_operator_mig_node_configs": [{"node_selector": "a=b", "config": "all-7g"}]}, "gpu_operator_mig_node_configs"),
    ({"mlops_gpu_driver_owner": "aks", "gpu_operator_driver_version": "580.95.05"}, "gpu_operator_driver_version"),
    ({"gpu_operator_namespace": "GPU_Operator"}, "gpu_operator_namespace"),
    ({"mlops_gpu_driver_owner": "azure"}, "mlops_gpu_driver_owner"),
    ({"gpu_operator_nfd": "maybe"}, "gpu_operator_nfd"),
])
def test_bad_input_fails_before_anything_changes_naming_the_variable(extra, variable):
    with pytest.raises(AssertionError) as failure:
        upstream.render_role_values("gpu_operator", extra, fact="gpu_operator_state", tasks_from="main")
    assert variable in str(failure.value)
