# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/awx_configure.yml run for real against the AWX API stand-in (awx_standin.py), at ``-vvv``.

1. A run with a canary in every secret the playbook takes (the controller token, every kubeconfig text,
   every Azure input) and in the stored secrets of the SCM and vault credentials it refers to by name:
   rc 0, the objects the playbook's data describes exist (job templates with their surveys, workflows
   with their approval nodes and links, the kubeconfig credential type, one credential per environment),
   and no canary in stdout, stderr, the ``ANSIBLE_LOG_PATH`` file, a request URL, or any process command
   line sampled while it ran.
2. A second run (basic auth this time, the password a canary too): changed=0, nothing created.
   Then a run whose data drops a workflow node: that node is deleted, the others stay and are linked anew.
3. ``--check`` on a fresh controller: rc 0, it says what a run would create, and not one POST, PATCH or
   DELETE reaches the API.

The figures go to ``RELIABILITY`` lines (docs/reliability.md).
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time

import pytest

import awx_render
from audit import ArgvSampler
from awx_standin import ENCRYPTED, AwxStandin
from test_awx_surveys import load_awx_vars

RECAP_RE = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
ENVIRONMENTS = ("local", "aks-dev", "aks-prod")


def _canary():
    return "canary%s" % secrets.token_hex(8)


def _recap(out):
    found = RECAP_RE.findall(out)
    assert found, out[-3000:]
    ok, changed, unreachable, failed = (int(x) for x in found[-1])
    return {"ok": ok, "changed": changed, "unreachable": unreachable, "failed": failed}


class Canaries:
    """Canary values in every secret input, and the extra vars that carry them."""

    def __init__(self):
        self.token = _canary()
        self.password = _canary()
        self.scm_password = _canary()
        self.vault_password = _canary()
        self.kubeconfigs = {
            "local": "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user: {token: %s}\n" % _canary(),
            "aks-dev": {"kubeconfig": "apiVersion: v1\nkind: Config\n# %s\n" % _canary(), "context": "aks-dev"},
            "aks-prod": "apiVersion: v1\nkind: Config\n# %s\n" % _canary(),
        }
        self.azure = {env: {"subscription": _canary(), "client": _canary(), "secret": _canary(), "tenant": _canary()}
                      for env in ("aks-dev", "aks-prod")}

    def values(self):
        found = [self.token, self.password, self.scm_password, self.vault_password]
        for value in self.kubeconfigs.values():
            text = value["kubeconfig"] if isinstance(value, dict) else value
            found.extend(re.findall(r"canary[0-9a-f]{16}", text))
        for inputs in self.azure.values():
            found.extend(inputs.values())
        return found

    def extra_vars(self, url, auth):
        extra = {"controller_host": url, "controller_validate_certs": False,
                 "mlops_awx_scm_credential": "mlops git", "mlops_awx_vault_credential": "mlops vault",
                 "mlops_awx_kubeconfigs": self.kubeconfigs, "mlops_awx_azure": self.azure}
        if auth == "token":
            extra["controller_oauthtoken"] = self.token
        else:
            extra.update(controller_username="admin", controller_password=self.password)
        return extra


def new_standin(canaries):
    standin = AwxStandin(token=canaries.token, username="admin", password=canaries.password, tls=True)
    # The SCM and vault credentials the playbook refers to by name (made by hand on a real controller).
    scm = standin.find("credential_types", name="Source Control")[0]["id"]
    vault = standin.find("credential_types", name="Vault")[0]["id"]
    standin.handle("POST", "/api/v2/credentials/", json.dumps(
        {"name": "mlops git", "credential_type": scm, "inputs": {"username": "git", "password": canaries.scm_password}}),
        "Bearer %s" % canaries.token)
    standin.handle("POST", "/api/v2/credentials/", json.dumps(
        {"name": "mlops vault", "credential_type": vault, "inputs": {"vault_password": canaries.vault_password}}),
        "Bearer %s" % canaries.token)
    assert len(standin.all("credentials")) == 2
    standin.requests.clear()
    return standin.start()


def run_playbook(tmp_path, name, extra, *args, sampler_values=None):
    """ansible-playbook awx_configure.yml with the extra vars in a file (never on the command line)."""
    vars_file = tmp_path / ("%s-vars.json" % name)
    vars_file.write_text(json.dumps(extra))
    log_file = tmp_path / ("%s-ansible.log" % name)
    env = awx_render.ansible_env()
    env["ANSIBLE_LOG_PATH"] = str(log_file)
    cmd = awx_render.playbook_cmd("-e", "@%s" % vars_file, *args)
    started = time.monotonic()
    with ArgvSampler(sampler_values or []) as sampler:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=awx_render.ROOT, check=False)
    seconds = time.monotonic() - started
    vars_file.unlink()
    log = log_file.read_text() if log_file.exists() else ""
    return {"rc": proc.returncode, "out": proc.stdout + proc.stderr, "log": log, "sampler": sampler,
            "seconds": seconds}


@pytest.fixture(scope="module")
def awx_vars():
    return load_awx_vars()


@pytest.fixture(scope="module")
def canaries():
    return Canaries()


@pytest.fixture(scope="module")
def converged(canaries, tmp_path_factory):
    """The stand-in after the first -vvv run (token auth), and that run's result."""
    standin = new_standin(canaries)
    tmp_path = tmp_path_factory.mktemp("awx-standin")
    try:
        result = run_playbook(tmp_path, "first", canaries.extra_vars(standin.url, "token"), "-vvv",
                              sampler_values=canaries.values())
        yield standin, result
    finally:
        standin.stop()


def _leaks(result, standin, values, since=0):
    found = {}
    for where, text in (("output", result["out"]), ("log file", result["log"])):
        hits = sorted(v for v in values if v in text)
        if hits:
            found[where] = hits
    urls = ["%s?%s" % (r.path, json.dumps(r.query)) for r in standin.requests[since:]]
    hits = sorted(v for v in values if any(v in u for u in urls))
    if hits:
        found["request URLs"] = hits
    if result["sampler"].hits:
        found["command lines"] = result["sampler"].hits[:3]
    return found


def test_first_run_at_vvv_configures_without_leaking_a_secret(converged, canaries):
    standin, result = converged
    values = canaries.values()
    recap = _recap(result["out"])
    writes = standin.writes()
    print("\nRELIABILITY awx_configure -vvv on the AWX stand-in: rc %d, changed %d, %d requests (%d writes), "
          "%.0fs; canaries %d, ps samples %d, log %d bytes"
          % (result["rc"], recap["changed"], len(standin.requests), len(writes), result["seconds"], len(values),
             result["sampler"].samples, len(result["log"])))
    assert result["rc"] == 0, result["out"][-8000:]
    assert recap["failed"] == 0 and recap["changed"] > 0
    # It really ran at -vvv and logged to the file.
    assert "ESTABLISH LOCAL CONNECTION" in result["out"]
    assert "TASK [Workflows | nodes (job templates and approvals)]" in result["log"]
    # The canaries were really used: they reached the controller (so finding none in the output means something).
    stored = {c["name"]: standin.stored("credentials", c["id"]) for c in standin.all("credentials")}
    assert canaries.kubeconfigs["local"] == stored["mlops kubeconfig (local)"]["inputs"]["kubeconfig"]
    assert canaries.azure["aks-prod"]["secret"] == stored["mlops Azure (aks-prod)"]["inputs"]["secret"]
    assert all(r.authenticated for r in standin.requests if r.path not in ("/api/v2/ping/",))
    assert not [r for r in standin.requests if r.status >= 400], [
        (r.method, r.path, r.status) for r in standin.requests if r.status >= 400]
    leaks = _leaks(result, standin, values)
    assert not leaks, "canaries found: %s" % leaks
    assert result["sampler"].samples >= 2


def test_the_objects_of_the_playbooks_data_exist(converged, canaries, awx_vars):
    standin, result = converged
    assert result["rc"] == 0
    org = standin.find("organizations", name="MLOps Platform")
    assert len(org) == 1
    org_id = org[0]["id"]
    ee = standin.find("execution_environments", name="mlops.platform")[0]
    project = standin.find("projects", name="mlops.platform")[0]
    assert project["organization"] == org_id and project["default_environment"] == ee["id"]
    git = standin.find("credentials", name="mlops git")[0]
    vault = standin.find("credentials", name="mlops vault")[0]
    assert project["credential"] == git["id"] and project["scm_type"] == "git"

    ctype_data = awx_vars["mlops_awx_kubeconfig_credential_type"]
    ctype = standin.find("credential_types", name=ctype_data["name"])
    assert len(ctype) == 1 and ctype[0]["kind"] == "cloud" and ctype[0]["managed"] is False
    assert ctype[0]["inputs"] == ctype_data["inputs"] and ctype[0]["injectors"] == ctype_data["injectors"]

    # One credential per environment given; secrets read back encrypted, as AWX answers.
    for env in ENVIRONMENTS:
        kube = standin.find("credentials", name="mlops kubeconfig (%s)" % env)
        assert len(kube) == 1 and kube[0]["credential_type"] == ctype[0]["id"] and kube[0]["organization"] == org_id
        assert kube[0]["inputs"]["kubeconfig"] == ENCRYPTED
    assert standin.find("credentials", name="mlops kubeconfig (aks-dev)")[0]["inputs"]["context"] == "aks-dev"
    for env in ("aks-dev", "aks-prod"):
        azure = standin.find("credentials", name="mlops Azure (%s)" % env)
        assert len(azure) == 1 and azure[0]["inputs"]["secret"] == ENCRYPTED
    assert not standin.find("credentials", name="mlops Azure (local)")

    inventories = {i["name"]: i for i in standin.all("inventories")}
    assert sorted(inventories) == sorted("mlops %s" % env for env in ENVIRONMENTS)
    for env in awx_vars["mlops_awx_environments"]:
        source = standin.find("inventory_sources", name="mlops %s (repository)" % env["name"])
        assert len(source) == 1
        assert source[0]["source"] == "scm" and source[0]["source_project"] == project["id"]
        assert source[0]["source_path"] == env["inventory_path"]
        assert source[0]["inventory"] == inventories["mlops %s" % env["name"]]["id"]
        assert source[0]["credential"] == (vault["id"] if env["azure"] else None)

    # Job templates: one per environment or one asked at launch, each with its survey.
    expected = {}
    for jt in awx_vars["mlops_awx_job_templates"]:
        names = ["%s (%s)" % (jt["name"], env) for env in ENVIRONMENTS] if jt["per_environment"] else [jt["name"]]
        for name in names:
            expected[name] = jt
    templates = {t["name"]: t for t in standin.all("job_templates")}
    assert sorted(templates) == sorted(expected)
    for name, jt in expected.items():
        template = templates[name]
        assert template["playbook"] == jt["playbook"] and template["project"] == project["id"], name
        assert template["execution_environment"] == ee["id"] and template["ask_credential_on_launch"] is True
        survey = standin.survey("job_templates", template["id"])
        variables = [q if isinstance(q, str) else q["variable"] for q in jt["survey"]]
        variables = [awx_vars["mlops_awx_questions"][v]["variable"] if v in awx_vars["mlops_awx_questions"] else v
                     for v in variables]
        assert template["survey_enabled"] is bool(jt["survey"]), name
        assert [q["variable"] for q in survey.get("spec", [])] == variables, name
        assert json.loads(template["extra_vars"] or "{}") == jt["extra_vars"], name
    site_dev = templates["Platform — site (aks-dev)"]
    attached = sorted(c["name"] for c in site_dev["summary_fields"]["credentials"])
    assert attached == ["mlops Azure (aks-dev)", "mlops kubeconfig (aks-dev)"]
    assert [c["name"] for c in templates["Platform — site (local)"]["summary_fields"]["credentials"]] == [
        "mlops kubeconfig (local)"]

    # Workflows per environment; their nodes linked in order; approvals in front of the day-2 changes.
    workflows = {w["name"]: w for w in standin.all("workflow_job_templates")}
    wanted = ["%s (%s)" % (w["name"], env) for w in awx_vars["mlops_awx_workflows"] for env in ENVIRONMENTS]
    assert sorted(workflows) == sorted(wanted)
    approvals = 0
    for spec in awx_vars["mlops_awx_workflows"]:
        for env in ENVIRONMENTS:
            wf = workflows["%s (%s)" % (spec["name"], env)]
            assert wf["inventory"] == inventories["mlops %s" % env]["id"]
            wf_nodes = standin.find("workflow_job_template_nodes", workflow_job_template=wf["id"])
            nodes = {n["identifier"]: n for n in wf_nodes}
            assert sorted(nodes) == sorted(n["identifier"] for n in spec["nodes"]), wf["name"]
            for this, nxt in zip(spec["nodes"], spec["nodes"][1:] + [None]):
                node = nodes[this["identifier"]]
                links = standin.linked("workflow_job_template_nodes", node["id"], "success_nodes")
                assert links == ([nodes[nxt["identifier"]]["id"]] if nxt else []), (wf["name"], this)
                target = node["summary_fields"]["unified_job_template"]
                if "approval" in this:
                    approvals += 1
                    assert target["unified_job_type"] == "workflow_approval_template"
                    assert target["name"] == "%s (%s)" % (this["approval"], env)
                    approval = standin.find("workflow_approval_templates", id=target["id"])[0]
                    assert approval["timeout"] == this["timeout"]
                else:
                    assert target["unified_job_type"] == "job_template"
                    per_env = expected.get("%s (%s)" % (this["job_template"], env)) is not None
                    assert target["name"] == ("%s (%s)" % (this["job_template"], env) if per_env
                                              else this["job_template"])
    assert approvals == 3 * len(ENVIRONMENTS)
    # A node that runs an environment-less template gets the environment's credentials as prompts.
    wf = workflows["Platform — site, readiness, smoke (aks-dev)"]
    readiness = standin.find("workflow_job_template_nodes", workflow_job_template=wf["id"], identifier="readiness")[0]
    prompts = standin.linked("workflow_job_template_nodes", readiness["id"], "credentials")
    assert sorted(standin.find("credentials", id=i)[0]["name"] for i in prompts) == [
        "mlops Azure (aks-dev)", "mlops kubeconfig (aks-dev)"]


def test_second_run_changes_nothing_and_leaks_nothing(converged, canaries, tmp_path):
    standin, first = converged
    assert first["rc"] == 0
    mark = len(standin.requests)
    counts_before = {name: len(standin.all(name)) for name in standin.stores}
    result = run_playbook(tmp_path, "second", canaries.extra_vars(standin.url, "password"), "-vvv",
                          sampler_values=canaries.values())
    recap = _recap(result["out"])
    requests = standin.requests[mark:]
    writes = [r for r in requests if r.method in ("POST", "PATCH", "PUT", "DELETE") and r.path != "/api/v2/tokens/"
              and not r.path.startswith("/api/v2/tokens/")]
    print("\nRELIABILITY awx_configure second run (basic auth, -vvv): rc %d, changed %d, %d requests, writes "
          "besides session tokens %s, %.0fs; ps samples %d"
          % (result["rc"], recap["changed"], len(requests), sorted({(r.method, r.path.split('/')[3]) for r in writes}),
             result["seconds"], result["sampler"].samples))
    assert result["rc"] == 0, result["out"][-8000:]
    assert recap["changed"] == 0, "\n".join(line for line in result["out"].splitlines() if line.startswith("changed:"))
    assert {name: len(standin.all(name)) for name in standin.stores} == counts_before
    assert not [r for r in requests if r.method == "POST" and r.status == 201 and r.path != "/api/v2/tokens/"]
    # Basic auth was used: session tokens were asked for and given back.
    assert any(r.path == "/api/v2/tokens/" and r.method == "POST" for r in requests)
    leaks = _leaks(result, standin, canaries.values(), since=mark)
    assert not leaks, "canaries found: %s" % leaks


def test_a_node_dropped_from_the_data_is_removed_and_the_rest_relinked(converged, canaries, awx_vars, tmp_path):
    """The workflows are the playbook's: a node the data no longer has goes; the others stay, linked anew."""
    standin, first = converged
    assert first["rc"] == 0
    workflows = [dict(w, nodes=[n for n in w["nodes"] if n["identifier"] != "readiness"])
                 for w in awx_vars["mlops_awx_workflows"]]
    local = [e for e in awx_vars["mlops_awx_environments"] if e["name"] == "local"]
    wf = standin.find("workflow_job_templates", name="Platform — site, readiness, smoke (local)")[0]
    before = {n["identifier"]: n["id"] for n in standin.find("workflow_job_template_nodes", workflow_job_template=wf["id"])}
    assert sorted(before) == ["readiness", "site", "smoke"]
    untouched = standin.find("workflow_job_templates", name="Platform — site, readiness, smoke (aks-dev)")[0]
    untouched_nodes = standin.find("workflow_job_template_nodes", workflow_job_template=untouched["id"])
    mark = len(standin.requests)
    extra = dict(canaries.extra_vars(standin.url, "token"), mlops_awx_workflows=workflows, mlops_awx_environments=local)
    result = run_playbook(tmp_path, "drop-node", extra, sampler_values=canaries.values())
    assert result["rc"] == 0, result["out"][-8000:]
    deletes = [r for r in standin.requests[mark:] if r.method == "DELETE"]
    assert [r.path for r in deletes] == ["/api/v2/workflow_job_template_nodes/%d/" % before["readiness"]], deletes
    after = {n["identifier"]: n["id"] for n in standin.find("workflow_job_template_nodes", workflow_job_template=wf["id"])}
    # The kept nodes are the same objects, and site now runs smoke on success.
    assert after == {"site": before["site"], "smoke": before["smoke"]}
    assert standin.linked("workflow_job_template_nodes", after["site"], "success_nodes") == [after["smoke"]]
    # Workflows of environments this run did not configure keep their nodes.
    assert standin.find("workflow_job_template_nodes", workflow_job_template=untouched["id"]) == untouched_nodes
    assert "Workflows | remove the nodes the data no longer has" in result["out"]
    leaks = _leaks(result, standin, canaries.values(), since=mark)
    assert not leaks, "canaries found: %s" % leaks


def test_check_mode_on_a_fresh_controller_writes_nothing(canaries, tmp_path):
    standin = new_standin(canaries)
    try:
        result = run_playbook(tmp_path, "check", canaries.extra_vars(standin.url, "token"), "--check", "-vvv",
                              sampler_values=canaries.values())
        writes = standin.writes()
        print("\nRELIABILITY awx_configure --check on a fresh AWX stand-in: rc %d, %d requests, %d writes"
              % (result["rc"], len(standin.requests), len(writes)))
        assert result["rc"] == 0, result["out"][-8000:]
        assert not writes, [(r.method, r.path) for r in writes]
        assert _recap(result["out"])["changed"] >= 1
        assert "Organization MLOps Platform does not exist on %s yet" % standin.url in result["out"]
        assert "10 job templates and 12 workflows" in result["out"]
        leaks = _leaks(result, standin, canaries.values())
        assert not leaks, "canaries found: %s" % leaks
    finally:
        standin.stop()


def test_the_standin_rejects_what_awx_rejects(canaries):
    """The stand-in is strict where a playbook error would otherwise pass unnoticed."""
    standin = AwxStandin(token=canaries.token, tls=False)
    auth = "Bearer %s" % canaries.token
    assert standin.handle("GET", "/api/v2/organizations/", "", None)[0] == 401
    assert standin.handle("GET", "/api/v2/organizations/", "", "Bearer wrong")[0] == 401
    assert standin.handle("GET", "/api/v2/no_such_things/", "", auth)[0] == 404
    assert standin.handle("GET", "/api/v2/organizations/?colour=red", "", auth)[0] == 400
    azure = standin.find("credential_types", name="Microsoft Azure Resource Manager")[0]["id"]
    status, body = standin.handle("POST", "/api/v2/credentials/", json.dumps(
        {"name": "x", "credential_type": azure, "inputs": {"subscription": "s", "client_secret": "typo"}}), auth)
    assert status == 400 and "client_secret" in json.dumps(body)
    status, body = standin.handle("POST", "/api/v2/job_templates/", json.dumps({"name": "jt", "project": 99}), auth)
    assert status == 400 and "project" in body
    status, body = standin.handle("POST", "/api/v2/organizations/", json.dumps({"name": "o"}), auth)
    assert status == 201
    assert standin.handle("POST", "/api/v2/organizations/", json.dumps({"name": "o"}), auth)[0] == 400
    # A secret input is answered as $encrypted$, and $encrypted$ sent back keeps the stored value.
    status, cred = standin.handle("POST", "/api/v2/credentials/", json.dumps(
        {"name": "az", "credential_type": azure, "inputs": {"subscription": "s", "secret": "hidden"}}), auth)
    assert status == 201 and cred["inputs"] == {"subscription": "s", "secret": ENCRYPTED}
    status, cred = standin.handle("PATCH", cred["url"], json.dumps(
        {"inputs": {"subscription": "t", "secret": ENCRYPTED}}), auth)
    assert status == 200
    assert standin.stored("credentials", cred["id"])["inputs"] == {"subscription": "t", "secret": "hidden"}
