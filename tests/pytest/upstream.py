# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real upstream charts' data files, and the values conformance check built on them.

The data lives outside the repository (``MLOPS_UPSTREAM_DATA``, default ``../shared/upstream-charts``
beside the checkout) and is never copied in. When it is missing, every test that needs it fails and
says where it looked: none of them skips.

``conformance_errors(chart, values)`` answers one question: would the real chart understand the Helm
values a role renders? For every leaf path of ``values``:

* the path exists in the real chart's ``values.yaml``, or lies below a map whose upstream default is
  an open ``{}`` (or a list, whose items upstream leaves to the user), or is admitted by the real
  chart's ``values.schema.json`` where upstream ships one;
* where upstream ships a schema, the values merged over the chart's defaults (as Helm merges them)
  validate against it.

Each error names the bad path (``driver.enabeld: not in gpu-operator v26.7.0 values.yaml``).
"""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import sys
import tempfile

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
UPSTREAM = os.path.abspath(os.environ.get("MLOPS_UPSTREAM_DATA", os.path.join(ROOT, "..", "shared", "upstream-charts")))

# chart name -> its directory under UPSTREAM
CHART_DIRS = {
    "gpu-operator": "gpu-operator",
    "node-feature-discovery": "gpu-operator/charts/node-feature-discovery",
    "jupyterhub": "jupyterhub",
    "kserve-crd": "kserve/kserve-crd",
    "kserve-resources": "kserve/kserve-resources",
    "mlflow": "mlflow",
    "dcgm-exporter": "dcgm-exporter",
}
# The published release of each chart (source trees carry placeholder versions; see the data's README).
RELEASES = {
    "gpu-operator": "v26.7.0",
    "node-feature-discovery": "0.19.0",
    "jupyterhub": "4.4.0",
    "kserve-crd": "v0.20.0",
    "kserve-resources": "v0.20.0",
    "mlflow": "1.11.5",
    "dcgm-exporter": "4.8.2",
}


# Keys upstream documents in values.yaml only as commented-out examples, which its templates read
# (``#version: ""`` under ``operator``). Each is checked by tests/pytest/test_upstream_conformance.py to
# still appear, commented, in the upstream file; review an addition against the chart's templates.
COMMENTED_KEYS = {
    "gpu-operator": (
        "operator.version", "validator.version",
        "dcgmExporter.config.name", "dcgmExporter.config.create", "dcgmExporter.config.data",
        "dcgmExporter.hpcJobMapping.enabled", "dcgmExporter.hpcJobMapping.directory",
    ),
}


def upstream_path(*parts):
    """Absolute path of a file in the upstream data; fails the test (never skips) when it is missing."""
    path = os.path.join(UPSTREAM, *parts)
    if not os.path.exists(path):
        pytest.fail(
            "upstream chart data missing: %s does not exist. Set MLOPS_UPSTREAM_DATA to the directory that holds "
            "the real charts' data files (default: ../shared/upstream-charts beside the checkout)." % path
        )
    return path


def load_yaml(*parts):
    with open(upstream_path(*parts), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_yaml_all(*parts):
    with open(upstream_path(*parts), encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


@functools.lru_cache(maxsize=64)
def _parsed(path, _mtime):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle) if path.endswith(".json") else yaml.safe_load(handle)


def _read(path):
    """A parsed data file, read once per modification (callers get their own copy)."""
    return copy.deepcopy(_parsed(path, os.stat(path).st_mtime_ns))


def chart_values(chart):
    """The real chart's default values (``values.yaml``)."""
    return _read(upstream_path(CHART_DIRS[chart], "values.yaml")) or {}


def chart_schema(chart):
    """The real chart's ``values.schema.json``, or None where upstream ships none."""
    path = os.path.join(UPSTREAM, CHART_DIRS[chart], "values.schema.json")
    upstream_path(CHART_DIRS[chart], "values.yaml")  # the chart itself must be there
    if not os.path.exists(path):
        return None
    return _read(path)


def leaf_paths(values, prefix=()):
    """Yield (path tuple, value) for every leaf of a values tree; an empty dict is a leaf."""
    if isinstance(values, dict) and values:
        for key, value in values.items():
            yield from leaf_paths(value, prefix + (key,))
    else:
        yield prefix, values


def dotted(path):
    return ".".join(str(part) for part in path)


def _resolve_ref(root, ref):
    """The sub-schema a local ``$ref`` (``#/$defs/...``) points at; None for a reference it cannot follow."""
    if not ref.startswith("#"):
        return None
    node = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _branches(root, node, seen=None):
    """``node`` and every schema it is combined with: its ``$ref`` target and its allOf/anyOf/oneOf branches."""
    seen = set() if seen is None else seen
    if not isinstance(node, dict) or id(node) in seen:
        return []
    seen.add(id(node))
    out = [node]
    if isinstance(node.get("$ref"), str):
        target = _resolve_ref(root, node["$ref"])
        if target is None:
            out.append(True)  # a reference that cannot be followed: do not claim what it forbids
        else:
            out.extend(_branches(root, target, seen))
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(key) or []:
            out.extend(_branches(root, sub, seen))
    return out


def _schema_admits(schema, path, root=None):
    """True when a JSON schema names (or openly admits) ``path`` under nested ``properties``.

    Follows local ``$ref`` and allOf/anyOf/oneOf. A node that declares no properties and no
    ``additionalProperties`` (and is an object, or untyped) is open; one that declares properties
    admits only those, matching ``patternProperties``, or what ``additionalProperties`` allows.
    """
    import re  # pylint: disable=import-outside-toplevel

    root = schema if root is None else root
    if not path:
        return True
    if schema is True:
        return True
    if not isinstance(schema, dict):
        return False
    key, rest = path[0], path[1:]
    branches = _branches(root, schema)
    if True in branches:
        return True
    declares = False
    types = set()
    for branch in branches:
        kind = branch.get("type")
        types.update(kind if isinstance(kind, list) else [kind] if kind else [])
        props = branch.get("properties") or {}
        patterns = branch.get("patternProperties") or {}
        declares = declares or bool(props) or bool(patterns) or "additionalProperties" in branch
        if key in props and _schema_admits(props[key], rest, root):
            return True
        for pattern, sub in patterns.items():
            if re.search(pattern, str(key)) and _schema_admits(sub, rest, root):
                return True
        extra = branch.get("additionalProperties")
        if extra is True or extra == {}:
            return True
        if isinstance(extra, dict) and _schema_admits(extra, rest, root):
            return True
    return not declares and (not types or "object" in types)


def _values_admit(defaults, path):
    """True when ``path`` exists in ``defaults`` or lies below an open map or a list there.

    The top level itself is never open: a chart whose values.yaml is empty reads no values.
    """
    if not defaults:
        return False
    node = defaults
    for key in path:
        if isinstance(node, dict):
            if not node:
                return True  # an open {}: the chart leaves its keys to the user
            if key not in node:
                return False
            node = node[key]
            continue
        if isinstance(node, list):
            return True  # a list's items are the user's to shape
        # A scalar (often null) default: upstream documents the key as a value, not a map; a
        # nested key under a null default is open, under a string or number it is wrong.
        return node is None
    return True


def merge(base, override):
    """Helm's coalescing: maps merge recursively, everything else is replaced; null deletes a key."""
    if not isinstance(base, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def conformance_errors(chart, values):
    """Every reason why the real ``chart`` would not understand ``values``; empty when it would."""
    if chart not in CHART_DIRS:
        raise ValueError("unknown chart %r; known: %s" % (chart, ", ".join(sorted(CHART_DIRS))))
    defaults = chart_values(chart)
    schema = chart_schema(chart)
    where = "%s %s" % (chart, RELEASES[chart])
    errors = []
    for path, _value in leaf_paths(values or {}):
        if not path:
            continue
        if _values_admit(defaults, path) or dotted(path) in COMMENTED_KEYS.get(chart, ()):
            continue
        if schema is not None and _schema_admits(schema, path):
            continue
        errors.append("%s: not in %s values.yaml%s" % (dotted(path), where, "" if schema is None else " nor its schema"))
    if schema is not None:
        import jsonschema

        validator = jsonschema.Draft7Validator(schema) if "draft-07" in schema.get("$schema", "") else jsonschema.validators.validator_for(schema)(schema)
        for err in sorted(validator.iter_errors(merge(defaults, values or {})), key=lambda e: list(e.absolute_path)):
            errors.append("%s: %s (%s values.schema.json)" % (dotted(err.absolute_path) or "<root>", err.message, where))
    return errors


def assert_conforms(chart, values):
    errors = conformance_errors(chart, values)
    assert not errors, "values do not conform to the real %s chart:\n  %s" % (chart, "\n  ".join(errors))


def render_role_values(role, extra_vars=None, fact=None, tasks_from="render"):
    """Run a role's render step (no cluster needed) and return the values fact it sets.

    Every role that installs a chart has ``tasks/render.yml``, which computes ``<role>_release_values``
    (the dict handed to Helm) from the role's variables without touching the cluster.
    """
    fact = fact or "%s_release_values" % role
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "values.json")
        playbook = os.path.join(tmp, "render.yml")
        varsfile = os.path.join(tmp, "vars.json")
        with open(varsfile, "w", encoding="utf-8") as handle:
            json.dump(extra_vars or {}, handle)
        with open(playbook, "w", encoding="utf-8") as handle:
            yaml.safe_dump(
                [
                    {
                        "name": "Render",
                        "hosts": "localhost",
                        "gather_facts": False,
                        "connection": "local",
                        "tasks": [
                            {"name": "Render", "ansible.builtin.include_role": {"name": "mlops.platform.%s" % role, "tasks_from": tasks_from}},
                            {"name": "Dump", "ansible.builtin.copy": {"content": "{{ %s | to_json }}" % fact, "dest": out, "mode": "0600"}},
                        ],
                    }
                ],
                handle,
            )
        env = dict(os.environ)
        venv_bin = os.path.dirname(sys.executable)
        env.update(
            ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
            ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
            ANSIBLE_NOCOLOR="1",
            PATH=os.pathsep.join([venv_bin, env.get("PATH", "")]),
        )
        proc = subprocess.run(
            [os.path.join(venv_bin, "ansible-playbook"), "-i", "localhost,", playbook, "-e", "@" + varsfile],
            capture_output=True, text=True, env=env, check=False,
        )
        if proc.returncode != 0:
            raise AssertionError("rendering role %s failed:\n%s\n%s" % (role, proc.stdout[-4000:], proc.stderr[-2000:]))
        with open(out, encoding="utf-8") as handle:
            return json.load(handle)
