# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/awx_configure.yml: a clear failure when the controller cannot be reached (also in check
mode), and the job templates and workflows it renders."""

from __future__ import annotations

import socket
import subprocess

import awx_render


def _closed_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(*args):
    proc = subprocess.run(awx_render.playbook_cmd(*args), capture_output=True, text=True, env=awx_render.ansible_env(),
                          cwd=awx_render.ROOT, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_check_mode_with_an_unreachable_controller_fails_clearly():
    url = "https://127.0.0.1:%d" % _closed_port()
    code, output = _run("--check", "-e", "controller_host=%s" % url)
    assert code != 0, output
    assert "AWX / Automation Controller at %s is not reachable" % url in output
    assert "controller_host (or CONTROLLER_HOST)" in output
    assert "Traceback" not in output
    # Nothing after the check ran: no awx.awx task was attempted.
    assert "TASK [Organization]" not in output


def test_no_controller_host_names_the_variables_to_set():
    code, output = _run("--check")
    assert code != 0, output
    assert "No AWX / Automation Controller host given" in output
    assert "CONTROLLER_HOST" in output and "controller_oauthtoken" in output
    assert "Traceback" not in output


def test_job_templates_and_workflows():
    rendered = awx_render.render({"mlops_awx_kubeconfigs": {"aks-dev": "apiVersion: v1\nkind: Config\n"},
                                  "mlops_awx_azure": {"aks-dev": {"subscription": "s"}}})
    templates = {t["name"]: t for t in rendered["job_templates"]}
    for env in ("local", "aks-dev", "aks-prod"):
        site = templates["Platform — site (%s)" % env]
        assert site["playbook"] == "playbooks/site.yml" and site["inventory"] == "mlops %s" % env
    # Credentials given for an environment are attached to its templates; the others are asked at launch.
    assert templates["Platform — site (aks-dev)"]["credentials"] == ["mlops kubeconfig (aks-dev)", "mlops Azure (aks-dev)"]
    assert templates["Platform — site (aks-prod)"]["credentials"] == []
    assert all(t["ask_credential_on_launch"] for t in templates.values())
    for name in ("GPU readiness check", "GPU smoke test", "Scale GPU pool", "Uninstall (keep data)"):
        assert templates[name]["ask_inventory_on_launch"] is True, name
    assert templates["Uninstall (keep data)"]["extra_vars"] == {"mlops_purge": False}
    assert templates["Scale GPU pool"]["playbook"] == "playbooks/scale_gpu_pool.yml"

    workflows = {w["name"]: w for w in rendered["workflows"]}
    assert len(workflows) == 12
    chain = workflows["Platform — site, readiness, smoke (aks-dev)"]["workflow_nodes"]
    assert [n["unified_job_template"]["name"] for n in chain] == [
        "Platform — site (aks-dev)", "GPU readiness check", "GPU smoke test"]
    assert [n["related"]["success_nodes"] for n in chain] == [[{"identifier": "readiness"}], [{"identifier": "smoke"}], []]
    # The readiness node gets the environment's credentials as prompts.
    assert chain[1]["related"]["credentials"] == [{"name": "mlops kubeconfig (aks-dev)"}, {"name": "mlops Azure (aks-dev)"}]
    for day2 in ("Day 2 — MIG reprofile", "Day 2 — sharing change", "Day 2 — GPU operator / driver upgrade"):
        nodes = workflows["%s (aks-prod)" % day2]["workflow_nodes"]
        assert nodes[0]["unified_job_template"]["type"] == "workflow_approval", day2
        assert nodes[0]["related"]["success_nodes"] == [{"identifier": nodes[1]["identifier"]}]
        assert templates[nodes[1]["unified_job_template"]["name"]]["playbook"] == "playbooks/gpu_change.yml"
        assert workflows["%s (aks-prod)" % day2]["inventory"] == "mlops aks-prod"
        assert workflows["%s (aks-prod)" % day2]["ask_variables_on_launch"] is True
    assert workflows["Platform — site, readiness, smoke (local)"]["ask_variables_on_launch"] is False


def test_the_kubeconfig_credential_type_injects_a_file_the_env_and_mlops_kubeconfig():
    from test_awx_surveys import load_awx_vars

    ctype = load_awx_vars()["mlops_awx_kubeconfig_credential_type"]
    fields = {f["id"]: f for f in ctype["inputs"]["fields"]}
    assert fields["kubeconfig"]["secret"] is True and fields["kubeconfig"]["multiline"] is True
    injectors = ctype["injectors"]
    assert injectors["file"] == {"template.kubeconfig": "{{ kubeconfig }}"}
    assert injectors["env"]["K8S_AUTH_KUBECONFIG"] == "{{ tower.filename.kubeconfig }}"
    assert injectors["extra_vars"]["mlops_kubeconfig"] == "{{ tower.filename.kubeconfig }}"
    assert ctype["kind"] == "cloud"
