# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.mlops.platform.plugins.module_utils.platform_base import PlatformSpecError, render_platform_base


def _kinds(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def test_namespaces_are_restricted_by_default_and_denied_by_default():
    out = render_platform_base(namespaces=[{"name": "mlflow"}])
    ns = out["namespaces"][0]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/warn"] == "restricted"
    deny = [o for o in out["objects"] if o["metadata"]["name"] == "default-deny"]
    assert deny and deny[0]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_looser_pod_security_needs_a_reason():
    with pytest.raises(PlatformSpecError, match=r"^namespaces\[0\]\.justification"):
        render_platform_base(namespaces=[{"name": "gpu-operator", "pod_security": "privileged"}])
    out = render_platform_base(namespaces=[{"name": "gpu-operator", "pod_security": "privileged", "justification": "driver"}])
    assert out["namespaces"][0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert out["namespaces"][0]["metadata"]["annotations"]["mlops.platform/pod-security-justification"] == "driver"


def test_team_quota_defaults_follow_the_guide_and_rbac_is_scoped():
    out = render_platform_base(teams=[{"name": "vision", "users": ["alice"], "groups": ["vision-ds"]}])
    quota = _kinds(out["objects"], "ResourceQuota")[0]
    assert quota["metadata"]["namespace"] == "vision"
    assert quota["spec"]["hard"] == {"requests.cpu": "50", "limits.cpu": "100", "requests.memory": "200Gi",
                                     "limits.memory": "400Gi", "requests.nvidia.com/gpu": "8", "persistentvolumeclaims": "20"}
    role = _kinds(out["objects"], "Role")[0]
    verbs = {(g, r): rule["verbs"] for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert ("", "secrets") not in verbs
    assert not any(r.startswith("roles") or r.startswith("rolebindings") for (_g, r) in verbs)
    binding = _kinds(out["objects"], "RoleBinding")[0]
    assert {s["kind"] for s in binding["subjects"]} == {"User", "Group"}
    assert _kinds(out["objects"], "ClusterRoleBinding") == []


def test_allow_opens_ingress_and_matching_egress():
    out = render_platform_base(
        namespaces=[{"name": "mlflow"}, {"name": "jupyterhub"}],
        allows=[{"name": "notebooks-to-mlflow", "to_namespace": "mlflow", "to_pod_selector": {"app": "mlflow"},
                 "from": [{"namespace": "jupyterhub", "pod_selector": {"component": "singleuser-server"}}], "ports": [5000]}])
    ingress = [o for o in out["objects"] if o["metadata"]["name"] == "allow-notebooks-to-mlflow"][0]
    assert ingress["metadata"]["namespace"] == "mlflow"
    assert ingress["spec"]["ingress"][0]["ports"] == [{"port": 5000, "protocol": "TCP"}]
    egress = [o for o in out["objects"] if o["metadata"]["name"] == "allow-notebooks-to-mlflow-egress"][0]
    assert egress["metadata"]["namespace"] == "jupyterhub"
    assert egress["spec"]["egress"][0]["to"][0]["podSelector"] == {"matchLabels": {"app": "mlflow"}}


@pytest.mark.parametrize("kwargs, path", [
    ({"namespaces": [{"name": "Bad_Name"}]}, r"^namespaces\[0\]\.name"),
    ({"namespaces": [{"name": "a"}, {"name": "a"}]}, r"^namespaces\[1\]\.name"),
    ({"namespaces": [{"name": "a", "pod_security": "open"}]}, r"^namespaces\[0\]\.pod_security"),
    ({"teams": [{"name": "a"}], "namespaces": [{"name": "a"}]}, r"^teams\[0\]\.namespace"),
    ({"namespaces": [{"name": "a"}], "allows": [{"name": "x", "to_namespace": "a", "from": []}]}, r"^allows\[0\]\.from"),
    ({"namespaces": [{"name": "a"}], "allows": [{"name": "x", "to_namespace": "a", "from": [{"namespace": "b"}]}]},
     r"^allows\[0\]: namespace b"),
    ({"namespaces": [{"name": "a"}], "allows": [{"name": "x", "to_namespace": "a", "from": [{"namespace": "a"}],
                                                 "ports": [{"port": 1, "protocol": "ICMP"}]}]}, r"^allows\[0\]\.ports\[0\]\.protocol"),
    ({"priority_classes": [{"name": "p", "value": "high"}]}, r"^priority_classes\[0\]\.value"),
    ({"priority_classes": [{"name": "p", "value": True}]}, r"^priority_classes\[0\]\.value"),
])
def test_bad_input_names_the_path(kwargs, path):
    with pytest.raises(PlatformSpecError, match=path):
        render_platform_base(**kwargs)


def test_priority_classes():
    out = render_platform_base(priority_classes=[{"name": "ml-training", "value": 1000}, {"name": "ml-inference", "value": 2000}])
    values = {o["metadata"]["name"]: o["value"] for o in _kinds(out["objects"], "PriorityClass")}
    assert values == {"ml-training": 1000, "ml-inference": 2000}


def test_manifests_validate_against_a_current_kubernetes_schema():
    import kubernetes_validate
    out = render_platform_base(
        namespaces=[{"name": "mlflow", "egress_cidrs": ["0.0.0.0/0"]}, {"name": "jupyterhub"}],
        teams=[{"name": "vision", "users": ["alice"], "limit_range": {"max_gpus": 2}}],
        allows=[{"name": "hub", "to_namespace": "mlflow", "from": [{"namespace": "jupyterhub"}, {"cidr": "10.0.0.0/8"}]}],
        priority_classes=[{"name": "ml-training", "value": 1000}])
    for manifest in out["namespaces"] + out["objects"]:
        kubernetes_validate.validate(manifest, "1.34", strict=True)


def test_owned_namespace_takes_the_owning_roles_managed_by_and_levels():
    out = render_platform_base(namespaces=[
        {"name": "gpu-operator", "pod_security": "privileged", "pod_security_audit": "privileged", "pod_security_warn": "privileged",
         "justification": "driver", "managed_by": "mlops.platform.gpu_operator", "owner": "gpu_operator"},
        {"name": "jupyterhub", "pod_security": "baseline", "justification": "notebooks", "managed_by": None},
        {"name": "teamless"}])
    gpu, hub, plain = (n["metadata"] for n in out["namespaces"])
    assert gpu["labels"]["app.kubernetes.io/managed-by"] == "mlops.platform.gpu_operator"
    assert gpu["labels"]["pod-security.kubernetes.io/audit"] == "privileged"
    assert gpu["labels"]["pod-security.kubernetes.io/warn"] == "privileged"
    assert gpu["annotations"]["mlops.platform/owner"] == "gpu-operator"
    assert "app.kubernetes.io/managed-by" not in hub["labels"]
    assert hub["labels"]["pod-security.kubernetes.io/warn"] == "restricted"
    assert plain["labels"]["app.kubernetes.io/managed-by"] == "mlops.platform"


def test_bad_audit_level_and_managed_by_are_named():
    with pytest.raises(PlatformSpecError, match=r"^namespaces\[0\]\.pod_security_audit"):
        render_platform_base(namespaces=[{"name": "a", "pod_security_audit": "loose"}])
    with pytest.raises(PlatformSpecError, match=r"^namespaces\[0\]\.managed_by"):
        render_platform_base(namespaces=[{"name": "a", "managed_by": 3}])


def test_source_without_egress_needs_no_declared_namespace():
    allow = {"name": "scrape", "to_namespace": "gpu-operator", "from": [{"namespace": "monitoring", "egress": False}], "ports": [9400]}
    out = render_platform_base(namespaces=[{"name": "gpu-operator", "pod_security": "privileged", "justification": "x"}], allows=[allow])
    policies = [o for o in out["objects"] if o["metadata"]["name"].startswith("allow-scrape")]
    assert [p["metadata"]["namespace"] for p in policies] == ["gpu-operator"]
    with pytest.raises(PlatformSpecError, match=r"^allows\[0\]: namespace monitoring is not declared"):
        render_platform_base(namespaces=[{"name": "gpu-operator", "pod_security": "privileged", "justification": "x"}],
                             allows=[dict(allow, **{"from": [{"namespace": "monitoring"}]})])
