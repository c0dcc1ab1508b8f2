# Copyright: mlops.platform contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The chart pins (plugins/module_utils/pins.py) are the releases the upstream data comes from.

The roles' default chart versions come from the pins; the conformance and drift checks read the
upstream data. Both must describe the same release, so a bump of one without the other fails here
(see docs/upstream.md for the procedure).
"""

from __future__ import annotations

import importlib.util
import os
import re

import pytest

import upstream

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# pin name -> the chart of the upstream data it pins
PIN_TO_CHART = {
    "gpu_operator": "gpu-operator",
    "dcgm_exporter": "dcgm-exporter",
    "jupyterhub": "jupyterhub",
    "mlflow": "mlflow",
    "kserve_crd": "kserve-crd",
    "kserve_resources": "kserve-resources",
}
# Pins the upstream data does not cover, with the reason; their versions are not proven here.
UNBACKED = {
    "kube_prometheus_stack": "installed by dcgm_monitoring only on request; no upstream data for it is kept",
}
# Charts a source tree versions with a placeholder; their release is the tag (README, upstream.RELEASES).
PLACEHOLDER = re.compile(r"devel|set\.by\.chartpress|^0\.0\.")
# Charts pinned through another chart: NFD is the gpu-operator chart's dependency.
DEPENDENCIES = {"node-feature-discovery": "gpu-operator"}


def _pins():
    spec = importlib.util.spec_from_file_location("mlops_pins", os.path.join(ROOT, "plugins", "module_utils", "pins.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PINS = _pins()


def readme_row(directory):
    """The row of the upstream data README's table for one top-level directory."""
    with open(upstream.upstream_path("README.md"), encoding="utf-8") as handle:
        rows = [line for line in handle if line.startswith("| `%s/`" % directory)]
    assert len(rows) == 1, "the upstream README has no single row for %s/" % directory
    return rows[0]


def test_every_pin_and_chart_is_mapped():
    assert not set(PIN_TO_CHART) & set(UNBACKED)
    assert set(PIN_TO_CHART) | set(UNBACKED) == set(PINS.CHARTS)
    assert set(PIN_TO_CHART.values()) | set(DEPENDENCIES) == set(upstream.CHART_DIRS)


@pytest.mark.parametrize("pin_name", sorted(PIN_TO_CHART))
def test_pin_is_the_upstream_release(pin_name):
    chart = PIN_TO_CHART[pin_name]
    entry = PINS.pin(pin_name)
    assert entry["chart"] == chart
    assert entry["version"] == upstream.RELEASES[chart], "pins.py %s.version %s, upstream data %s" % (
        pin_name, entry["version"], upstream.RELEASES[chart])
    meta = upstream.load_yaml(upstream.CHART_DIRS[chart], "Chart.yaml")
    assert meta["name"] == chart
    if not PLACEHOLDER.search(str(meta["version"])):
        assert str(meta["version"]) == entry["version"], "Chart.yaml carries %s" % meta["version"]
    directory = upstream.CHART_DIRS[chart].split("/")[0]
    assert re.search(r"`%s`|\b%s\b" % (re.escape(entry["version"]), re.escape(entry["version"])), readme_row(directory)), \
        "the upstream README's %s/ row does not name %s" % (directory, entry["version"])


@pytest.mark.parametrize("pin_name", sorted(p for p in PIN_TO_CHART if "app_version" in PINS.CHARTS[p]))
def test_app_version_is_the_upstream_one(pin_name):
    chart = PIN_TO_CHART[pin_name]
    app = PINS.pin(pin_name + ".app_version")
    meta = upstream.load_yaml(upstream.CHART_DIRS[chart], "Chart.yaml")
    image_tag = str((upstream.chart_values(chart).get("image") or {}).get("tag") or "")
    assert app == str(meta.get("appVersion")) or image_tag.startswith(app), \
        "pins.py %s.app_version %s: Chart.yaml appVersion %s, image tag %r" % (pin_name, app, meta.get("appVersion"), image_tag)
    assert app in readme_row(upstream.CHART_DIRS[chart].split("/")[0]) or app == str(meta.get("appVersion"))


def test_dependency_pinned_by_its_parent():
    for dependency, parent in DEPENDENCIES.items():
        meta = upstream.load_yaml(upstream.CHART_DIRS[parent], "Chart.yaml")
        (dep,) = [d for d in meta.get("dependencies") or [] if d["name"] == dependency]
        sub = upstream.load_yaml(upstream.CHART_DIRS[dependency], "Chart.yaml")
        assert str(dep["version"]) == str(sub["version"]) == upstream.RELEASES[dependency]


def test_a_wrong_pin_would_fail(monkeypatch):
    """The comparison can fail: a pin one release off is told apart from the data."""
    monkeypatch.setitem(PINS.CHARTS["mlflow"], "version", "1.11.4")
    with pytest.raises(AssertionError, match="1.11.4"):
        test_pin_is_the_upstream_release("mlflow")
