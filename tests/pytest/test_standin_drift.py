# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in drift check: the testbed's stand-in charts accept no values path the real chart lacks.

The stand-ins (tests/testbed/charts/*) have strict values.schema.json files so that a wrong key fails
on the testbed. If a stand-in's schema declared a path the real chart does not have, a role could set
it, pass every testbed test, and break (or be silently ignored) on a real cluster. So every path the
stand-in schemas declare (walking ``properties``) must be admitted by the real chart, by the same rule
as the values conformance check (tests/pytest/upstream.py): present in the real values.yaml (or below
an open map or a list there), or admitted by the real values.schema.json.
"""

from __future__ import annotations

import functools
import json
import os
import sys

import pytest

import upstream

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHARTS_DIR = os.path.join(ROOT, "tests", "testbed", "charts")

# Stand-in chart -> the real chart whose values it stands in for. The kserve stand-in renders the
# controller and its configuration from values under ``kserve.*``: that is upstream's kserve-resources
# chart (the CRDs are kserve-crd's, which the testbed serves directly).
STANDIN_TO_REAL = {
    "gpu-operator": "gpu-operator",
    "jupyterhub": "jupyterhub",
    "kserve": "kserve-resources",
    "mlflow": "mlflow",
}
# Values a chart hands to a subchart: checked against that subchart's own data.
SUBCHARTS = {"gpu-operator": {"node-feature-discovery": "node-feature-discovery"}}


def standins():
    return sorted(d for d in os.listdir(CHARTS_DIR) if os.path.isfile(os.path.join(CHARTS_DIR, d, "values.schema.json")))


def declared_paths(schema, prefix=()):
    """Every path a schema declares through nested ``properties``."""
    if not isinstance(schema, dict):
        return
    for key, sub in (schema.get("properties") or {}).items():
        yield prefix + (key,)
        yield from declared_paths(sub, prefix + (key,))


@functools.lru_cache(maxsize=None)
def _real(real):
    return upstream.chart_values(real), upstream.chart_schema(real)


def real_admits(real, path):
    """Whether the real chart ``real`` admits ``path`` (the conformance check's rule)."""
    for prefix, subchart in SUBCHARTS.get(real, {}).items():
        if path[0] == prefix:
            return len(path) == 1 or real_admits(subchart, path[1:])
    if upstream.dotted(path) in upstream.COMMENTED_KEYS.get(real, ()):
        return True
    if any(upstream.dotted(path) + "." in key for key in upstream.COMMENTED_KEYS.get(real, ())):
        return True  # a map whose keys upstream documents commented out
    defaults, schema = _real(real)
    if upstream._values_admit(defaults, path):  # pylint: disable=protected-access
        return True
    return schema is not None and upstream._schema_admits(schema, path)  # pylint: disable=protected-access


def drift(standin):
    with open(os.path.join(CHARTS_DIR, standin, "values.schema.json"), encoding="utf-8") as handle:
        schema = json.load(handle)
    real = STANDIN_TO_REAL[standin]
    return [upstream.dotted(path) for path in declared_paths(schema) if not real_admits(real, path)]


def test_every_standin_is_mapped():
    assert set(standins()) == set(STANDIN_TO_REAL), "map each stand-in chart to its real chart in STANDIN_TO_REAL"
    assert set(STANDIN_TO_REAL.values()) <= set(upstream.CHART_DIRS)


@pytest.mark.parametrize("standin", sorted(STANDIN_TO_REAL))
def test_standin_accepts_no_path_the_real_chart_lacks(standin):
    bad = drift(standin)
    real = STANDIN_TO_REAL[standin]
    assert not bad, "the %s stand-in's values.schema.json declares paths the real %s %s chart does not have:\n  %s" % (
        standin, real, upstream.RELEASES[real], "\n  ".join(bad))


@pytest.mark.parametrize("standin", sorted(STANDIN_TO_REAL))
def test_standin_defaults_conform(standin):
    """The stand-in's own values.yaml holds only paths the real chart has (its schema check aside)."""
    with open(os.path.join(CHARTS_DIR, standin, "values.yaml"), encoding="utf-8") as handle:
        values = upstream.yaml.safe_load(handle) or {}
    real = STANDIN_TO_REAL[standin]
    bad = [upstream.dotted(p) for p, _v in upstream.leaf_paths(values) if p and not real_admits(real, p)]
    assert not bad, "the %s stand-in's values.yaml sets paths the real %s chart lacks: %s" % (standin, real, bad)


def test_drift_check_catches_a_planted_path(tmp_path, monkeypatch):
    """The check can fail: a stand-in schema declaring a path the real chart lacks is reported by name."""
    chart = tmp_path / "charts" / "kserve"
    chart.mkdir(parents=True)
    with open(os.path.join(CHARTS_DIR, "kserve", "values.schema.json"), encoding="utf-8") as handle:
        schema = json.load(handle)
    schema["properties"]["kserve"]["properties"]["controller"]["properties"]["deploymentmode"] = {"type": "string"}
    schema["properties"]["controllerManager"] = {"type": "object", "properties": {"replicas": {"type": "integer"}}}
    (chart / "values.schema.json").write_text(json.dumps(schema), encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "CHARTS_DIR", str(tmp_path / "charts"))
    assert sorted(drift("kserve")) == ["controllerManager", "controllerManager.replicas", "kserve.controller.deploymentmode"]


def test_commented_keys_are_documented_upstream():
    """Each key admitted because upstream documents it commented out is still there, commented, in values.yaml."""
    for chart, keys in upstream.COMMENTED_KEYS.items():
        with open(upstream.upstream_path(upstream.CHART_DIRS[chart], "values.yaml"), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        commented = {line.strip().lstrip("#").strip().split(":", 1)[0] for line in lines if line.strip().startswith("#")}
        for key in keys:
            assert not upstream._values_admit(upstream.chart_values(chart), tuple(key.split("."))), \
                "%s is now in %s values.yaml uncommented: drop it from COMMENTED_KEYS" % (key, chart)  # pylint: disable=protected-access
            assert key.rsplit(".", maxsplit=1)[-1] in commented, "%s is no longer documented in %s values.yaml" % (key, chart)
            parent = key.split(".", maxsplit=1)[0]
            assert parent in upstream.chart_values(chart), key
