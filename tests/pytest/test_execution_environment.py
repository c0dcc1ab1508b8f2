# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The execution environment definition (execution-environment.yml) builds a complete context.

``ansible-builder create`` runs offline (it writes the build context, it pulls nothing) on a copy of
the definition and of the files it names, with the collection tarball built by ansible-galaxy; the
test then reads the context: the Containerfile, this collection and its requirements, and the Helm
step with its three sha256 checks, whose values must be the ones scripts/bootstrap.sh records.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VENV_BIN = os.path.dirname(sys.executable)
CHECKSUM_NAMES = ("K8S_TOOLS_TGZ_SHA256", "K8S_TOOLS_ZIP_SHA256", "HELM_BIN_SHA256")


def bootstrap_checksums():
    """The sha256 values scripts/bootstrap.sh records for the Helm/kubectl npm package."""
    with open(os.path.join(ROOT, "scripts", "bootstrap.sh"), encoding="utf-8") as handle:
        text = handle.read()
    found = {}
    for name in CHECKSUM_NAMES:
        match = re.search(r'^%s="([0-9a-f]{64})"' % name, text, re.MULTILINE)
        assert match, "scripts/bootstrap.sh no longer records %s" % name
        found[name] = match.group(1)
    return found


def helm_step_problems(containerfile, checksums):
    """What is wrong with the Helm install step of a Containerfile (empty when nothing is)."""
    problems = []
    for name, value in checksums.items():
        if not re.search(r"^ARG %s=%s$" % (name, value), containerfile, re.MULTILINE):
            problems.append("no ARG %s=%s" % (name, value))
        if '"$%s  ' % name not in containerfile:
            problems.append("%s is never checked with sha256sum" % name)
    run = [line for line in containerfile.splitlines() if "/usr/local/bin/helm" in line]
    if not run:
        problems.append("helm is never installed to /usr/local/bin/helm")
    else:
        line = run[0]
        install_at = line.find("install -m 0755 layer/helm/helm")
        checks = [line.find('"$%s  ' % name) for name in CHECKSUM_NAMES]
        if install_at < 0 or any(at < 0 or at > install_at for at in checks):
            problems.append("helm is installed before all three checksums are checked")
        if "set -eux" not in line:
            problems.append("the helm step does not stop at the first failed check (set -e)")
    return problems


@pytest.fixture(scope="module")
def builder():
    path = shutil.which("ansible-builder", path=VENV_BIN)
    if path is None:
        pytest.fail("ansible-builder is not installed in the project virtualenv (%s); it is part of the "
                    "development toolchain (requirements-dev.txt, pinned in constraints.txt)" % VENV_BIN)
    return path


@pytest.fixture(scope="module")
def context(builder, tmp_path_factory):
    """A copy of the definition and what it names, then ``ansible-builder create`` into ``context``."""
    src = tmp_path_factory.mktemp("ee-src")
    for name in ("execution-environment.yml", "requirements.yml", "requirements.txt"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    dist = src / ".build" / "dist"
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    build = subprocess.run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", "--force",
                            "--output-path", str(dist), ROOT],
                           capture_output=True, text=True, env=env, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    out = tmp_path_factory.mktemp("ee-context")
    create = subprocess.run([builder, "create", "-f", str(src / "execution-environment.yml"), "-c", str(out),
                             "--output-filename", "Containerfile", "-v", "3"],
                            capture_output=True, text=True, env=env, check=False)
    assert create.returncode == 0, create.stdout + create.stderr
    return out


def _galaxy():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_the_definition_is_schema_v3_with_pinned_ansible():
    with open(os.path.join(ROOT, "execution-environment.yml"), encoding="utf-8") as handle:
        ee = yaml.safe_load(handle)
    assert ee["version"] == 3
    deps = ee["dependencies"]
    assert deps["galaxy"] == "requirements.yml" and deps["python"] == "requirements.txt"
    assert re.fullmatch(r"ansible-core==[0-9.]+", deps["ansible_core"]["package_pip"])
    assert re.fullmatch(r"ansible-runner==[0-9.]+", deps["ansible_runner"]["package_pip"])
    # The same ansible-core the project's toolchain is locked to.
    with open(os.path.join(ROOT, "constraints.txt"), encoding="utf-8") as handle:
        assert deps["ansible_core"]["package_pip"] in handle.read().split()
    assert not ee["images"]["base_image"]["name"].endswith(":latest")


def test_the_context_has_a_containerfile_with_every_stage(context):
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    for stage in ("AS base", "AS galaxy", "AS builder", "AS final"):
        assert "FROM" in containerfile and stage in containerfile, stage
    assert "ansible-core==2.21.5" in containerfile
    assert "LABEL ansible-execution-environment=true" in containerfile


def test_the_context_carries_the_collection_and_its_requirements(context):
    built = context / "_build"
    with open(os.path.join(ROOT, "requirements.yml"), encoding="utf-8") as handle:
        wanted = yaml.safe_load(handle)
    assert yaml.safe_load((built / "requirements.yml").read_text(encoding="utf-8")) == wanted
    assert {c["name"] for c in wanted["collections"]} >= {"kubernetes.core", "azure.azcollection", "awx.awx"}
    with open(os.path.join(ROOT, "requirements.txt"), encoding="utf-8") as handle:
        assert (built / "requirements.txt").read_text(encoding="utf-8") == handle.read()

    galaxy = _galaxy()
    tarball = built / "collections" / ("mlops-platform-%s.tar.gz" % galaxy["version"])
    assert tarball.is_file(), sorted(p.name for p in (built / "collections").iterdir())
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))
        ee_meta = yaml.safe_load(tar.extractfile("meta/execution-environment.yml"))
    assert manifest["collection_info"]["namespace"] == "mlops" and manifest["collection_info"]["name"] == "platform"
    # Other execution environments that include the collection get its Python requirements from here.
    assert ee_meta["dependencies"]["python"] == "requirements.txt" and "requirements.txt" in names
    assert "plugins/modules/gpu_readiness.py" in names and "roles/gpu_operator/tasks/main.yml" in names

    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    galaxy_stage = containerfile.split("AS galaxy", 1)[1].split("AS builder", 1)[0]
    assert "-r requirements.yml" in galaxy_stage
    assert "/build/collections/mlops-platform-*.tar.gz" in galaxy_stage
    # The builder stage introspects the installed collections (ours included) and the user requirements.
    assert "introspect.py introspect --user-pip=requirements.txt" in containerfile


def test_helm_is_installed_only_after_its_checksums_match_the_bootstrap(context):
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    final_stage = containerfile.split("AS final", 1)[1]
    assert helm_step_problems(final_stage, bootstrap_checksums()) == []
    assert "lambda-layer-kubectl-v31-2.1.0.tgz" in final_stage


def test_the_helm_step_check_fails_on_a_planted_wrong_step():
    checksums = bootstrap_checksums()
    good = "\n".join("ARG %s=%s" % item for item in checksums.items()) + "\n" + (
        'RUN set -eux; ' + "; ".join('echo "$%s  f" | sha256sum -c -' % n for n in CHECKSUM_NAMES)
        + "; install -m 0755 layer/helm/helm /usr/local/bin/helm")
    assert helm_step_problems(good, checksums) == []
    wrong_value = good.replace(checksums["HELM_BIN_SHA256"], "0" * 64, 1)
    assert any("ARG HELM_BIN_SHA256" in p for p in helm_step_problems(wrong_value, checksums))
    unchecked = good.replace('echo "$K8S_TOOLS_ZIP_SHA256  f" | sha256sum -c -; ', "")
    assert any("K8S_TOOLS_ZIP_SHA256 is never checked" in p for p in helm_step_problems(unchecked, checksums))
    late = good.replace("RUN set -eux; ", "RUN set -eux; install -m 0755 layer/helm/helm /usr/local/bin/helm; ")
    assert any("before all three" in p for p in helm_step_problems(late, checksums))
