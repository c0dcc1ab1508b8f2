# -*- coding: utf-8 -*-
# Copyright (c) mlops.platform maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform spec filters, and playbooks/vars/platform.yml: every variable it lists resolves."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.mlops.platform.plugins.filter.platform_spec import FilterModule

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
FILTERS = FilterModule().filters()
REFERENCE = re.compile(r"^\{\{ mlops_platform_roles\.([a-z_]+)\.([a-z0-9_]+) \}\}$")

MINIMAL = {"gpu": {"nodeSelector": "accelerator=nvidia-gpu"}, "jupyterhub": {"auth": {"type": "dummy"}}}


def _spec(env):
    with open(os.path.join(ROOT, "inventories", env, "group_vars", "mlops_platform", "platform.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["mlops_platform_spec"]


def _platform_vars():
    with open(os.path.join(ROOT, "playbooks", "vars", "platform.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_filter_names():
    assert sorted(FILTERS) == ["platform_role_vars", "platform_spec_errors"]


def test_errors_filter_lists_every_problem_and_role_vars_raises_with_all_of_them():
    spec = {"gpu": {"minNodes": 3, "maxNodes": 1}, "mlflow": {"storage": "gcs"}}
    errors = FILTERS["platform_spec_errors"](spec, allow_dummy_auth=True)
    assert "gpu.maxNodes: must be >= gpu.minNodes (got 1 < 3)" in errors
    assert any(e.startswith("mlflow.storage:") for e in errors)
    with pytest.raises(AnsibleFilterError) as info:
        FILTERS["platform_role_vars"](spec, allow_dummy_auth=True)
    message = str(info.value)
    assert message.startswith("mlops.platform.platform_role_vars: mlops_platform_spec has %d problems" % len(errors))
    for error in errors:
        assert error in message


def test_dummy_auth_follows_the_flag():
    assert FILTERS["platform_spec_errors"](MINIMAL, allow_dummy_auth=True) == []
    assert [e.split(":")[0] for e in FILTERS["platform_spec_errors"](MINIMAL)] == ["jupyterhub.auth.type"]


def test_platform_vars_file_only_references_the_filter_output():
    variables = _platform_vars()
    assert variables, "playbooks/vars/platform.yml lists no variable"
    for name, value in variables.items():
        match = REFERENCE.match(value)
        assert match, "%s: %r is not a plain reference to mlops_platform_roles.<role>.<var>" % (name, value)
        role, var = match.groups()
        if role not in ("readiness",):
            assert var == name, "%s refers to %s.%s" % (name, role, var)


@pytest.mark.parametrize("spec, dummy", [(MINIMAL, True), (_spec("local"), True), (_spec("aks-dev"), False), (_spec("aks-prod"), False)],
                         ids=["minimal", "local", "aks-dev", "aks-prod"])
def test_every_reference_in_the_platform_vars_file_resolves(spec, dummy):
    output = FILTERS["platform_role_vars"](spec, allow_dummy_auth=dummy)
    for name, value in _platform_vars().items():
        role, var = REFERENCE.match(value).groups()
        assert var in output[role], "%s: mlops_platform_roles.%s.%s is missing" % (name, role, var)


def test_every_decided_variable_is_listed_in_the_platform_vars_file():
    output = FILTERS["platform_role_vars"](_spec("aks-prod"))
    listed = set(REFERENCE.match(v).groups() for v in _platform_vars().values())
    for role in ("platform_base", "gpu_nodepool", "gpu_operator", "dcgm_monitoring", "mlflow", "jupyterhub", "kserve", "mlops"):
        for var in output[role]:
            assert (role, var) in listed, "%s.%s is decided by the spec but not listed in playbooks/vars/platform.yml" % (role, var)


def test_role_vars_are_real_role_variables():
    """Each role's dict holds only names its meta/argument_specs.yml declares."""
    output = FILTERS["platform_role_vars"](_spec("aks-prod"))
    for role in ("gpu_nodepool", "gpu_operator", "dcgm_monitoring", "mlflow", "jupyterhub", "kserve"):
        with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"), encoding="utf-8") as handle:
            options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
        unknown = sorted(set(output[role]) - set(options))
        assert not unknown, "%s: not in its argument_specs: %s" % (role, unknown)
    assert "mlops_gpu_driver_owner" in yaml.safe_load(open(os.path.join(ROOT, "roles", "gpu_operator", "meta", "argument_specs.yml"),
                                                           encoding="utf-8"))["argument_specs"]["main"]["options"]
