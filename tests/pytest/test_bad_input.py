# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input is rejected with a message naming the parameter, and changes nothing on the cluster.

Every case in CASES is one task with bad input to a module, a filter, the platform spec (as site.yml
maps it) or a role of this collection. All cases run in one ansible-playbook against the testbed; before
each module or role case a read-only marker request (a GET of a ConfigMap named after the case) goes into
the API audit log, so the log splits into one slice per case (consecutive filter and spec cases, which run
on the controller only, share one slice). A role case runs the role in a block whose rescue records the
failure. Each case must
fail, its message must contain every string in ``expect`` (the parameter's name first), and its slice
of the audit log must hold no create/update/patch/delete by anyone but the testbed's own actors (node
agent, controllers).

Adding a case: append a dict to CASES with
    id      a short unique name (lower-case, digits and '-'),
    task    the task's module and arguments, e.g. {"mlops.platform.gpu_readiness": {"min_nodes": -1}},
            or a filter call inside ansible.builtin.set_fact,
    expect  strings the failure message must contain.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
import yaml

from audit import AuditLog, format_requests, is_system_user

POD = {"containers": [{"name": "main", "image": "registry.example/app:1.0"}]}


def _spec(spec):
    """A task that maps a platform spec onto the role variables, as site.yml does."""
    return {"ansible.builtin.set_fact": {"bad_input_result": "{{ %s | mlops.platform.platform_role_vars }}" % json.dumps(spec)}}


def _role(name, variables):
    """A task that runs a role with bad variables; the harness wraps it so the failure is recorded."""
    return {"ansible.builtin.include_role": {"name": "mlops.platform.%s" % name}, "vars": variables}


def _filter(expression):
    """A task that evaluates a Jinja expression (a filter call) into a fact."""
    return {"ansible.builtin.set_fact": {"bad_input_result": "{{ %s }}" % expression}}


CASES = [
    # --- mlops.platform.gpu_readiness / gpu_node_info: types, ranges, choices, unknown options
    {"id": "readiness-min-nodes-not-int", "task": {"mlops.platform.gpu_readiness": {"min_nodes": "two"}},
     "expect": ["min_nodes", "int"]},
    {"id": "readiness-min-nodes-negative", "task": {"mlops.platform.gpu_readiness": {"min_nodes": -1}},
     "expect": ["min_nodes", ">= 0"]},
    {"id": "readiness-gpus-per-node-zero", "task": {"mlops.platform.gpu_readiness": {"gpus_per_node": 0}},
     "expect": ["gpus_per_node", ">= 1"]},
    {"id": "readiness-timeout-negative", "task": {"mlops.platform.gpu_readiness": {"wait": True, "timeout": -5}},
     "expect": ["timeout", ">= 0"]},
    {"id": "readiness-page-size-zero", "task": {"mlops.platform.gpu_readiness": {"page_size": 0}},
     "expect": ["page_size", ">= 1"]},
    {"id": "readiness-unknown-resource", "task": {"mlops.platform.gpu_readiness": {"resource": "nvidia.com/tpu"}},
     "expect": ["resource", "nvidia.com/tpu"]},
    {"id": "readiness-wait-not-bool", "task": {"mlops.platform.gpu_readiness": {"wait": "maybe"}},
     "expect": ["wait", "bool"]},
    {"id": "readiness-selector-unbalanced", "task": {"mlops.platform.gpu_readiness": {
        "label_selectors": ["accelerator in (nvidia-gpu"]}}, "expect": ["label_selectors", "accelerator in (nvidia-gpu"]},
    {"id": "readiness-selector-no-key", "task": {"mlops.platform.gpu_readiness": {"label_selectors": ["=nvidia-gpu"]}},
     "expect": ["label_selectors", "=nvidia-gpu"]},
    {"id": "readiness-misspelt-option", "task": {"mlops.platform.gpu_readiness": {"min_node": 2}},
     "expect": ["min_node", "Unsupported parameters"]},
    {"id": "node-info-require-all-not-bool", "task": {"mlops.platform.gpu_node_info": {"require_all_nodes": "sometimes"}},
     "expect": ["require_all_nodes", "bool"]},
    {"id": "node-info-selector-garbage", "task": {"mlops.platform.gpu_node_info": {"label_selectors": ["a b c"]}},
     "expect": ["label_selectors", "a b c"]},
    {"id": "node-info-page-size-not-int", "task": {"mlops.platform.gpu_node_info": {"page_size": "many"}},
     "expect": ["page_size", "int"]},
    # --- mlops.platform.gpu_smoke_test
    {"id": "smoke-gpus-zero", "task": {"mlops.platform.gpu_smoke_test": {"gpus": 0}},
     "expect": ["gpus", ">= 1"]},
    {"id": "smoke-timeout-zero", "task": {"mlops.platform.gpu_smoke_test": {"timeout": 0}},
     "expect": ["timeout", ">= 1"]},
    {"id": "smoke-gpus-not-int", "task": {"mlops.platform.gpu_smoke_test": {"gpus": "lots"}},
     "expect": ["gpus", "int"]},
    {"id": "smoke-bad-mig-profile", "task": {"mlops.platform.gpu_smoke_test": {"mig_profile": "huge"}},
     "expect": ["mig_profile", "huge"]},
    {"id": "smoke-bad-toleration-operator", "task": {"mlops.platform.gpu_smoke_test": {
        "tolerations": [{"key": "spot", "operator": "Maybe"}]}}, "expect": ["tolerations", "operator", "Maybe"]},
    # --- filters: wrong types, out-of-range numbers, malformed quantities, conflicting options
    {"id": "pod-spec-gpus-negative", "task": _filter("pod | mlops.platform.gpu_pod_spec(gpus=-1)"),
     "expect": ["gpus", "-1"]},
    {"id": "pod-spec-shm-malformed", "task": _filter("pod | mlops.platform.gpu_pod_spec(shm_size='8Gx')"),
     "expect": ["shm_size", "8Gx"]},
    {"id": "pod-spec-shm-millibytes", "task": _filter("pod | mlops.platform.gpu_pod_spec(shm_size='500m')"),
     "expect": ["shm_size", "500m"]},
    {"id": "pod-spec-bad-mig-profile", "task": _filter("pod | mlops.platform.gpu_pod_spec(mig_profile='1g')"),
     "expect": ["mig_profile", "1g"]},
    {"id": "pod-spec-bad-selector-key", "task": _filter("pod | mlops.platform.gpu_pod_spec(node_selector={'bad key!': 'x'})"),
     "expect": ["node_selector", "bad key!"]},
    {"id": "pod-spec-unknown-container", "task": _filter("pod | mlops.platform.gpu_pod_spec(container='sidecar')"),
     "expect": ["container", "sidecar"]},
    {"id": "pod-spec-conflicting-selector", "task": _filter(
        "pod | combine({'nodeSelector': {'node-type': 'cpu'}}) | mlops.platform.gpu_pod_spec(node_selector={'node-type': 'ai'})"),
     "expect": ["node_selector", "conflicts"]},
    {"id": "pod-spec-manifest-not-spec", "task": _filter("{'kind': 'Pod', 'spec': pod} | mlops.platform.gpu_pod_spec"),
     "expect": ["spec", "manifest"]},
    {"id": "node-affinity-empty", "task": _filter("[] | mlops.platform.gpu_node_affinity"),
     "expect": ["products", "non-empty"]},
    {"id": "profiles-missing-image", "task": _filter("[{'name': 'gpu'}] | mlops.platform.jupyterhub_profiles"),
     "expect": ["image", "missing"]},
    {"id": "profiles-ambiguous-memory", "task": _filter(
        "[{'name': 'gpu', 'image': 'jupyter/base:1.0', 'memory': '8G'}] | mlops.platform.jupyterhub_profiles"),
     "expect": ["memory", "8G"]},
    {"id": "profiles-guarantee-over-limit", "task": _filter(
        "[{'name': 'cpu', 'image': 'jupyter/base:1.0', 'cpu': 1, 'cpu_guarantee': 2}] | mlops.platform.jupyterhub_profiles"),
     "expect": ["cpu_guarantee", "exceeds"]},
    {"id": "inference-bad-name", "task": _filter(
        "'Bad_Name' | mlops.platform.inference_service(model_format='sklearn', storage_uri='s3://b/m')"),
     "expect": ["name", "Bad_Name"]},
    {"id": "inference-bad-storage-uri", "task": _filter(
        "'iris' | mlops.platform.inference_service(model_format='sklearn', storage_uri='nobucket')"),
     "expect": ["storage_uri", "nobucket"]},
    {"id": "inference-bad-protocol", "task": _filter(
        "'iris' | mlops.platform.inference_service(model_format='sklearn', storage_uri='s3://b/m', protocol_version='v9')"),
     "expect": ["protocol_version", "v9"]},
    # --- the platform spec (mlops.platform.platform_role_vars, as site.yml maps it): each message starts with the field's path
    {"id": "spec-max-below-min", "task": _spec({"gpu": {"minNodes": 3, "maxNodes": 1}}),
     "expect": ["gpu.maxNodes: must be >= gpu.minNodes"]},
    {"id": "spec-unknown-key", "task": _spec({"gpu": {"maxNode": 4}}), "expect": ["gpu.maxNode"]},
    {"id": "spec-bad-provider", "task": _spec({"gpu": {"provider": "gke"}}), "expect": ["gpu.provider", "gke"]},
    {"id": "spec-replicas-not-int", "task": _spec({"gpu": {"sharing": {"strategy": "time-slicing", "replicas": "four"}}}),
     "expect": ["gpu.sharing.replicas"]},
    {"id": "spec-mig-profile-malformed", "task": _spec({"gpu": {"mig": {"strategy": "mixed", "profile": "1g10gb"}}}),
     "expect": ["gpu.mig.profile", "1g10gb"]},
    {"id": "spec-memory-malformed", "task": _spec({"jupyterhub": {"userResources": {"cpu": 2, "memory": "8GB", "gpu": 1}}}),
     "expect": ["jupyterhub.userResources.memory", "8GB"]},
    {"id": "spec-dummy-auth-not-allowed", "task": _spec({"jupyterhub": {"auth": {"type": "dummy"}}}),
     "expect": ["jupyterhub.auth.type", "dummy"]},
    {"id": "spec-storage-choice", "task": _spec({"mlflow": {"storage": "gcs"}}), "expect": ["mlflow.storage", "gcs"]},
    {"id": "spec-team-gpus-negative", "task": _spec({"teams": [{"name": "vision", "quota": {"gpus": -1}}]}),
     "expect": ["teams[0].quota.gpus: must be >= 0"]},
    {"id": "spec-team-egress-not-cidr", "task": _spec({"teams": [{"name": "vision", "egressCidrs": ["10.0.0.0"]}]}),
     "expect": ["teams[0].egressCidrs[0]", "10.0.0.0"]},
    {"id": "spec-serving-framework", "task": _spec({"modelServing": {"framework": "seldon"}}),
     "expect": ["modelServing.framework", "seldon"]},
    # --- roles: argument specs and each role's own cross-field checks, before any change
    {"id": "role-nodepool-provider-choice", "task": _role("gpu_nodepool", {"gpu_nodepool_provider": "gke"}),
     "expect": ["gpu_nodepool_provider", "gke"]},
    {"id": "role-nodepool-aks-needs-cluster", "task": _role("gpu_nodepool", {"gpu_nodepool_provider": "aks"}),
     "expect": ["gpu_nodepool_aks.resource_group", "gpu_nodepool_aks.cluster_name"]},
    {"id": "role-operator-mig-strategy-choice", "task": _role("gpu_operator", {"gpu_operator_mig_strategy": "sometimes"}),
     "expect": ["gpu_operator_mig_strategy", "sometimes"]},
    {"id": "role-operator-driver-owner-conflict", "task": _role("gpu_operator", {
        "mlops_gpu_driver_owner": "aks", "gpu_operator_driver_version": "550.127.08"}),
     "expect": ["gpu_operator_driver_version", "mlops_gpu_driver_owner"]},
    {"id": "role-dcgm-threshold-not-int", "task": _role("dcgm_monitoring", {"dcgm_monitoring_temperature_warning_celsius": "hot"}),
     "expect": ["dcgm_monitoring_temperature_warning_celsius"]},
    {"id": "role-mlflow-artifacts-choice", "task": _role("mlflow", {"mlflow_artifacts_mode": "gcs"}),
     "expect": ["mlflow_artifacts_mode", "gcs"]},
    {"id": "role-mlflow-s3-without-keys", "task": _role("mlflow", {"mlflow_artifacts_mode": "s3"}),
     "expect": ["mlflow_s3.access_key_id"]},
    {"id": "role-mlflow-replicas-on-sqlite", "task": _role("mlflow", {
        "mlflow_database_mode": "sqlite", "mlflow_allow_sqlite": True, "mlflow_replicas": 2}),
     "expect": ["mlflow_replicas"]},
    {"id": "role-jupyterhub-dummy-outside-local", "task": _role("jupyterhub", {"jupyterhub_auth_type": "dummy"}),
     "expect": ["jupyterhub_auth_type", "mlops_allow_dummy_auth"]},
    {"id": "role-jupyterhub-oidc-without-client", "task": _role("jupyterhub", {
        "jupyterhub_auth_type": "oidc", "jupyterhub_public_url": "https://hub.example.com", "jupyterhub_allowed_users": ["a"]}),
     "expect": ["jupyterhub_oidc.client_id"]},
    {"id": "role-kserve-mode-choice", "task": _role("kserve", {"kserve_deployment_mode": "Sideways"}),
     "expect": ["kserve_deployment_mode", "Sideways"]},
    {"id": "role-kserve-latest-image", "task": _role("kserve", {"kserve_image_tag": "latest"}),
     "expect": ["kserve_image_tag", "latest"]},
]

MARKER_PREFIX = "bad-input-marker-"
MARKER_NAMESPACE = "default"


def _marker(name):
    return {"name": "Audit marker %s" % name, "kubernetes.core.k8s_info": {
        "kind": "ConfigMap", "namespace": MARKER_NAMESPACE, "name": MARKER_PREFIX + name}}


def _group(case):
    """The audit slice a case is checked in: its own for a module; one shared slice for consecutive filter
    cases, which run on the controller only (zero mutations in the shared slice means zero for each)."""
    return "filters" if "ansible.builtin.set_fact" in case["task"] else case["id"]


def test_cases_are_well_formed():
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    for case in CASES:
        assert re.match(r"^[a-z0-9-]+$", case["id"]), case["id"]
        assert set(case) == {"id", "task", "expect"}, case
        assert len(set(case["task"]) - {"vars"}) == 1 and case["expect"], case


@pytest.fixture(scope="module")
def bad_input_run(testbed, ansible_env, tmp_path_factory):
    """Run every case in one playbook; return ({id: result}, {id: [mutating requests]}, audit figures)."""
    folder = tmp_path_factory.mktemp("bad-input")
    out = folder / "results.json"
    tasks = []
    group = None
    for index, case in enumerate(CASES):
        if _group(case) != group:
            group = _group(case)
            tasks.append(_marker(group))
        if "ansible.builtin.include_role" in case["task"]:
            # A role's failure is not registered on include_role: record ansible_failed_result in a rescue.
            tasks.append({"name": "Case %s" % case["id"], "block": [
                dict(case["task"], name="Case %s | run the role" % case["id"]),
                {"name": "Case %s | the role accepted the input" % case["id"],
                 "ansible.builtin.set_fact": {"case_%d" % index: {"failed": False, "msg": "the role ran to the end"}}},
            ], "rescue": [
                {"name": "Case %s | record the failure" % case["id"],
                 "ansible.builtin.set_fact": {"case_%d" % index: "{{ ansible_failed_result }}"}},
            ]})
            continue
        task = {"name": "Case %s" % case["id"], "register": "case_%d" % index, "ignore_errors": True}
        task.update(case["task"])
        tasks.append(task)
    tasks.append(_marker("end"))
    registered = ", ".join("'%s': case_%d" % (case["id"], i) for i, case in enumerate(CASES))
    tasks.append({"name": "Save the results", "ansible.builtin.copy": {
        "content": "{{ {%s} | to_json }}" % registered, "dest": str(out)}})
    play = [{"name": "Bad input", "hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"pod": POD}, "tasks": tasks}]
    playbook = folder / "bad-input.yml"
    playbook.write_text(yaml.safe_dump(play, sort_keys=False))
    log = AuditLog.for_kubeconfig(testbed.kubeconfig)
    mark = log.mark()
    started = time.monotonic()
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-e", "ansible_python_interpreter=%s" % sys.executable,
                           str(playbook)], env=ansible_env, capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    results = json.loads(out.read_text())

    # Split the audit log at the markers: the GET of each marker ConfigMap opens that case's slice.
    slices, current = {}, None
    for request in log.requests_since(mark):
        if request.verb == "get" and request.resource == "configmaps" and request.name.startswith(MARKER_PREFIX):
            current = request.name[len(MARKER_PREFIX):]
            slices.setdefault(current, [])
            continue
        if current is not None and request.mutating and not is_system_user(request.user):
            slices[current].append(request)
    print("\nRELIABILITY bad input: %d cases, %d rejected, %d with mutating requests, %.0fs" % (
        len(CASES), sum(1 for r in results.values() if r.get("failed")),
        sum(1 for c in CASES if slices.get(_group(c))), time.monotonic() - started))
    return results, slices


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input_is_rejected_naming_the_parameter_and_changes_nothing(case, bad_input_run):
    results, slices = bad_input_run
    result = results[case["id"]]
    assert result.get("failed"), "accepted bad input: %s" % json.dumps(result)[:1000]
    message = str(result.get("msg", ""))
    for text in case["expect"]:
        assert text in message, "%r not in the message: %s" % (text, message)
    group = _group(case)
    assert group in slices, "no audit marker for this case: the audit log was not split as expected"
    assert not slices[group], "mutating requests during the case:\n%s" % format_requests(slices[group])
