# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every inventory parses with ``ansible-inventory --list``, puts the controller in ``mlops_platform``, and
holds no secret in plain text: each variable named like a secret reads a vault variable or the environment."""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
INVENTORIES = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "inventories", "*", "hosts.yml")))
SECRET_KEY = re.compile(r"(passw(or)?d|secret|token|connection_?string|private_?key)$", re.I)
# What a secret's value may be: a vault variable, an environment lookup, or empty.
SECRET_SOURCE = re.compile(r"^(\{\{\s*(vault_\w+|lookup\('ansible\.builtin\.env'.*)[^}]*\}\}|)$")


def secret_like_values(data, path=""):
    """(path, value) of every string value under a secret-like key that does not come from vault or the environment."""
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            where = "%s.%s" % (path, key) if path else str(key)
            if SECRET_KEY.search(str(key)) and isinstance(value, str) and not SECRET_SOURCE.match(value.strip()):
                found.append((where, value))
            found.extend(secret_like_values(value, where))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.extend(secret_like_values(value, "%s[%d]" % (path, index)))
    return found


def test_there_are_the_three_environments():
    assert {"local", "aks-dev", "aks-prod"} <= set(INVENTORIES)


@pytest.mark.parametrize("env", INVENTORIES)
def test_ansible_inventory_lists_the_controller_in_mlops_platform(env):
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-inventory"), "-i",
                           os.path.join(ROOT, "inventories", env, "hosts.yml"), "--list"],
                          capture_output=True, text=True, check=False,
                          env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg")))
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert listed["mlops_platform"]["hosts"] == ["localhost"]
    hostvars = listed["_meta"]["hostvars"]["localhost"]
    assert hostvars["mlops_environment"] == env and "mlops_platform_spec" in hostvars


@pytest.mark.parametrize("env", INVENTORIES)
def test_no_secret_in_plain_text(env):
    found = []
    for path in glob.glob(os.path.join(ROOT, "inventories", env, "**", "*.yml"), recursive=True):
        with open(path, encoding="utf-8") as handle:
            found += [(os.path.relpath(path, ROOT), where, value) for where, value in secret_like_values(yaml.safe_load(handle))]
    assert not found, found


def test_the_secret_scan_can_fail():
    planted = {"mlops_platform_spec": {"mlflow": {"auth": {"adminPassword": "hunter2"}}}, "db": {"password": "{{ vault_db }}"}}
    assert secret_like_values(planted) == [("mlops_platform_spec.mlflow.auth.adminPassword", "hunter2")]
