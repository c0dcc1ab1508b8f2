# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every survey variable and every extra var of every AWX job template lands on something real.

The job templates are the ones playbooks/awx_configure.yml renders (awx_render.py). Each variable must
be an option of a role's argument spec (roles/*/meta/argument_specs.yml) or a playbook variable declared
in playbooks/vars/awx.yml for the template's playbook, with a compatible type: integer -> int,
float -> float, multiselect -> list, multiplechoice/text/textarea -> str (choices within the spec's),
password -> str with ``no_log`` in the spec. Declared playbook variables must be read by their playbook.
"""

from __future__ import annotations

import glob
import os

import pytest
import yaml

import awx_render

ROOT = awx_render.ROOT
SURVEY_TYPES = {"integer": "int", "float": "float", "multiselect": "list", "multiplechoice": "str",
                "text": "str", "textarea": "str", "password": "str"}
PYTHON_TYPES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}


class _Loader(yaml.SafeLoader):
    """Reads Ansible's ``!unsafe`` tag as a plain string."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load_awx_vars():
    with open(os.path.join(ROOT, "playbooks", "vars", "awx.yml"), encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def role_options():
    """Every public variable of every role: name -> (role, its argument spec entry)."""
    options = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml"))):
        role = path.split(os.sep)[-3]
        with open(path, encoding="utf-8") as handle:
            spec = yaml.safe_load(handle)
        for name, option in spec["argument_specs"]["main"]["options"].items():
            options.setdefault(name, (role, option))
    return options


def survey_problems(question, target):
    """Why a survey question does not fit ``target`` ({'type', 'choices', 'no_log'}); empty when it fits."""
    name = question["variable"]
    want = SURVEY_TYPES.get(question["type"])
    problems = []
    if want is None:
        return ["%s: unknown survey type %r" % (name, question["type"])]
    have = target.get("type", "str")
    if have != "raw" and have != want:
        problems.append("%s: survey %s gives %s, the target expects %s" % (name, question["type"], want, have))
    if question["type"] == "password" and not target.get("no_log"):
        problems.append("%s: a password question must land on a no_log option" % name)
    if question["type"] != "password" and target.get("no_log"):
        problems.append("%s: a secret option must be asked with a password question" % name)
    if question["type"] in ("multiplechoice", "multiselect"):
        choices = question.get("choices") or []
        if not choices:
            problems.append("%s: %s without choices" % (name, question["type"]))
        allowed = target.get("choices") or (target.get("elements_choices") if question["type"] == "multiselect" else None)
        if allowed is not None and not set(choices) <= set(allowed):
            problems.append("%s: choices %s not within %s" % (name, sorted(set(choices) - set(allowed)), allowed))
        defaults = question.get("default") or ""
        picked = defaults.split("\n") if question["type"] == "multiselect" else [defaults]
        if any(d and d not in choices for d in picked):
            problems.append("%s: default %r not among the choices" % (name, defaults))
    if question["type"] in ("integer", "float"):
        low, high, default = question.get("min"), question.get("max"), question.get("default")
        if low is None or high is None or low > high:
            problems.append("%s: %s needs min <= max (got %r, %r)" % (name, question["type"], low, high))
        elif default not in (None, "") and not low <= default <= high:
            problems.append("%s: default %r outside [%r, %r]" % (name, default, low, high))
    return problems


def extra_var_problems(name, value, target):
    have = target.get("type", "str")
    kind = PYTHON_TYPES.get(type(value))
    if have != "raw" and kind != have:
        return ["%s: extra var %r is %s, the target expects %s" % (name, value, kind, have)]
    if target.get("choices") and value not in target["choices"]:
        return ["%s: %r not among %s" % (name, value, target["choices"])]
    return []


def resolve(name, playbook, options, declared):
    """The argument-spec entry or the declared playbook variable ``name`` lands on, or None."""
    if name in options:
        return options[name][1]
    return declared.get(playbook, {}).get(name)


def template_problems(template, options, declared):
    problems = []
    seen = set()
    for question in template["survey"]:
        name = question["variable"]
        if name in seen:
            problems.append("%s: asked twice" % name)
        seen.add(name)
        target = resolve(name, template["playbook"], options, declared)
        if target is None:
            problems.append("%s: neither a role option nor a variable declared for %s" % (name, template["playbook"]))
            continue
        problems += survey_problems(question, target)
    for name, value in template["extra_vars"].items():
        target = resolve(name, template["playbook"], options, declared)
        if target is None:
            problems.append("%s: neither a role option nor a variable declared for %s" % (name, template["playbook"]))
            continue
        problems += extra_var_problems(name, value, target)
    return ["%s: %s" % (template["name"], p) for p in problems]


@pytest.fixture(scope="module")
def rendered():
    return awx_render.render()


def test_every_survey_variable_and_extra_var_maps_onto_a_typed_option(rendered):
    options = role_options()
    declared = load_awx_vars()["mlops_awx_playbook_variables"]
    problems = []
    for template in rendered["job_templates"]:
        problems += template_problems(template, options, declared)
    assert problems == [], "\n".join(problems)
    # The check saw the knobs the templates exist for.
    variables = {q["variable"] for t in rendered["job_templates"] for q in t["survey"]}
    assert {"gpu_operator_timeout", "mlops_platform_components", "mlops_gpu_pool_min", "mlops_gpu_pool_max",
            "kserve_mlflow_password", "mlops_gpu_change_batch_size"} <= variables
    types = {q["type"] for t in rendered["job_templates"] for q in t["survey"]}
    assert {"integer", "multiselect", "password", "multiplechoice"} <= types


def test_declared_playbook_variables_are_read_by_their_playbook():
    declared = load_awx_vars()["mlops_awx_playbook_variables"]
    missing = []
    for playbook, variables in declared.items():
        path = os.path.join(ROOT, playbook)
        if not os.path.exists(path):
            missing.append("%s does not exist" % playbook)
            continue
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        if "tasks/" in text:
            for extra in sorted(glob.glob(os.path.join(os.path.dirname(path), "tasks", "*.yml"))):
                with open(extra, encoding="utf-8") as handle:
                    text += handle.read()
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        for name, spec in variables.items():
            assert spec["type"] in ("int", "bool", "str", "list", "dict", "float"), (playbook, name)
            if name not in code:
                missing.append("%s does not read %s" % (playbook, name))
    assert missing == [], "\n".join(missing)


def test_every_job_template_playbook_is_in_the_repository(rendered):
    playbooks = {t["playbook"] for t in rendered["job_templates"]}
    assert not [p for p in sorted(playbooks) if not os.path.exists(os.path.join(ROOT, p))]


# The comparison itself, on planted mismatches: each must be reported.
SPEC_INT = {"type": "int"}
SPEC_STR = {"type": "str"}
SPEC_SECRET = {"type": "str", "no_log": True}
SPEC_CHOICES = {"type": "str", "choices": ["none", "single", "mixed"]}


@pytest.mark.parametrize("question,target,needle", [
    ({"variable": "v", "type": "integer", "min": 1, "max": 9, "default": 3}, SPEC_STR, "expects str"),
    ({"variable": "v", "type": "multiselect", "choices": ["a"], "default": "a"}, SPEC_INT, "expects int"),
    ({"variable": "v", "type": "password", "default": ""}, SPEC_STR, "no_log"),
    ({"variable": "v", "type": "text", "default": ""}, SPEC_SECRET, "password question"),
    ({"variable": "v", "type": "multiplechoice", "choices": ["none", "all"], "default": "none"}, SPEC_CHOICES, "not within"),
    ({"variable": "v", "type": "integer", "min": 10, "max": 1, "default": 3}, SPEC_INT, "min <= max"),
    ({"variable": "v", "type": "integer", "min": 1, "max": 5, "default": 9}, SPEC_INT, "outside"),
    ({"variable": "v", "type": "multiselect", "choices": ["a", "b"], "default": "a\nc"}, {"type": "list"}, "default"),
])
def test_a_planted_mismatch_is_reported(question, target, needle):
    problems = survey_problems(question, target)
    assert any(needle in p for p in problems), problems


def test_fitting_questions_pass_the_comparison():
    assert survey_problems({"variable": "v", "type": "integer", "min": 1, "max": 9, "default": 3}, SPEC_INT) == []
    assert survey_problems({"variable": "v", "type": "password", "default": ""}, SPEC_SECRET) == []
    assert survey_problems({"variable": "v", "type": "multiplechoice", "choices": ["none", "mixed"], "default": "mixed"},
                           SPEC_CHOICES) == []


def test_unknown_variables_and_wrong_extra_vars_are_reported():
    options = {"gpu_operator_timeout": ("gpu_operator", SPEC_INT)}
    template = {"name": "T", "playbook": "playbooks/x.yml", "extra_vars": {"gpu_operator_timeout": "900", "nobody": 1},
                "survey": [{"variable": "typo_timeout", "type": "integer", "min": 1, "max": 2, "default": 1}]}
    problems = template_problems(template, options, {})
    assert any("typo_timeout: neither" in p for p in problems), problems
    assert any("nobody: neither" in p for p in problems), problems
    assert any("gpu_operator_timeout: extra var '900' is str" in p for p in problems), problems
